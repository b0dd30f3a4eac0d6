//! A typed tree of a checked CEL expression: what the interpreter (`eval`)
//! and the SQL lowering (`render::lower`) both walk, so the two back ends see
//! one meaning of every expression.
//!
//! Input: an expression text that `check` accepted, the `CelEnv` it was
//! checked against and its `Scope`. Output: `Typed`, each node with its type,
//! macros recognised (`exists`, `all`, `exists_one`, `filter`, `map`), member
//! calls with the receiver first. Building never panics; a construct the tree
//! does not model is an `Err` with a short reason (the checker accepted it,
//! so the caller reports it as "cannot be evaluated/lowered").

use std::panic::{AssertUnwindSafe, catch_unwind};

use cel::common::ast::{ComprehensionExpr, Expr, IdedExpr, LiteralValue};

use super::check::{Macro, recognise};
use super::env::{CelEnv, Scope};
use super::types::Type;

/// A node and its type.
#[derive(Clone, Debug, PartialEq)]
pub struct Typed {
    pub node: Node,
    pub ty: Type,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Which comprehension macro a node came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompKind {
    Exists,
    All,
    ExistsOne,
    /// `range.filter(x, body)`: the elements for which `body` holds.
    Filter,
    /// `range.map(x, body)`, or `range.map(x, filter, body)`.
    Map,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    /// A variable: `account`, `person`, `now` or a comprehension variable.
    Var(String),
    /// A field of an entity (source or computed).
    Field {
        base: Box<Typed>,
        name: String,
    },
    /// A link of an entity: a to-many collection (`account.people`) or a
    /// to-one entity (`person.account`), of schema `schema`.
    Link {
        base: Box<Typed>,
        name: String,
        schema: String,
        many: bool,
    },
    Not(Box<Typed>),
    Neg(Box<Typed>),
    And(Box<Typed>, Box<Typed>),
    Or(Box<Typed>, Box<Typed>),
    Cmp(CmpOp, Box<Typed>, Box<Typed>),
    Arith(ArithOp, Box<Typed>, Box<Typed>),
    Cond(Box<Typed>, Box<Typed>, Box<Typed>),
    /// `elem in list`.
    In(Box<Typed>, Box<Typed>),
    List(Vec<Typed>),
    /// A function call, receiver first: `x.startsWith(y)` is
    /// `startsWith(x, y)`.
    Call {
        func: String,
        args: Vec<Typed>,
    },
    /// `in_audience("NAME")`.
    Audience(String),
    Comp {
        kind: CompKind,
        var: String,
        range: Box<Typed>,
        /// The `map` filter, when written.
        filter: Option<Box<Typed>>,
        body: Box<Typed>,
    },
}

/// Parses and types `text`. `Err` carries a reason for a construct outside
/// the tree (maps, structs, indexing, unknown macros).
pub fn build(text: &str, env: &CelEnv, scope: &Scope) -> Result<Typed, String> {
    // The same bound as the checker: the walks below recurse per level.
    if super::depth::check(text).is_some() {
        return Err("the expression nests too deep".into());
    }
    let parser = cel::parser::Parser::default();
    let parsed = catch_unwind(AssertUnwindSafe(|| parser.parse(text)));
    let root = match parsed {
        Ok(Ok(root)) => root,
        _ => return Err("the expression does not parse".into()),
    };
    let mut builder = Builder {
        env,
        locals: scope.vars.clone(),
    };
    builder.expr(&root)
}

struct Builder<'a> {
    env: &'a CelEnv,
    locals: Vec<(String, Type)>,
}

fn boxed(t: Typed) -> Box<Typed> {
    Box::new(t)
}

impl Builder<'_> {
    fn expr(&mut self, e: &IdedExpr) -> Result<Typed, String> {
        match &e.expr {
            Expr::Literal(lit) => Ok(literal(lit)?),
            Expr::Ident(name) => {
                let ty = self
                    .locals
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| format!("unknown variable `{name}`"))?;
                Ok(Typed {
                    node: Node::Var(name.clone()),
                    ty,
                })
            }
            Expr::Select(select) => {
                if select.test {
                    return Err("`has()` is not supported".into());
                }
                let base = self.expr(&select.operand)?;
                self.select(base, &select.field)
            }
            Expr::List(list) => {
                let items = list
                    .elements
                    .iter()
                    .map(|e| self.expr(e))
                    .collect::<Result<Vec<_>, _>>()?;
                let elem = items
                    .iter()
                    .try_fold(Type::Dyn, |acc, t| acc.unify(&t.ty))
                    .unwrap_or(Type::Dyn);
                Ok(Typed {
                    node: Node::List(items),
                    ty: Type::list(elem),
                })
            }
            Expr::Call(call) => {
                let mut args = Vec::new();
                if let Some(target) = &call.target {
                    args.push(self.expr(target)?);
                }
                for a in &call.args {
                    args.push(self.expr(a)?);
                }
                self.call(&call.func_name, args)
            }
            Expr::Comprehension(comp) => self.comprehension(comp),
            Expr::Map(_) | Expr::Struct(_) => {
                Err("map and struct literals are not supported".into())
            }
            Expr::Unspecified => Err("an empty expression".into()),
        }
    }

    fn select(&self, base: Typed, field: &str) -> Result<Typed, String> {
        let Type::Entity(schema) = &base.ty else {
            return Err(format!("cannot select `{field}` from a `{}`", base.ty));
        };
        let entity = self
            .env
            .entities
            .get(schema)
            .ok_or_else(|| format!("unknown schema `{schema}`"))?;
        if let Some(def) = entity.fields.get(field) {
            let ty = def.ty.clone();
            return Ok(Typed {
                node: Node::Field {
                    base: boxed(base),
                    name: field.into(),
                },
                ty,
            });
        }
        let (target, many) = match (entity.to_many.get(field), entity.to_one.get(field)) {
            (Some(t), _) => (t.clone(), true),
            (None, Some(t)) => (t.clone(), false),
            (None, None) => return Err(format!("`{schema}` has no member `{field}`")),
        };
        let ty = if many {
            Type::list(Type::Entity(target.clone()))
        } else {
            Type::Entity(target.clone())
        };
        Ok(Typed {
            node: Node::Link {
                base: boxed(base),
                name: field.into(),
                schema: target,
                many,
            },
            ty,
        })
    }

    fn call(&mut self, func: &str, mut args: Vec<Typed>) -> Result<Typed, String> {
        let bin = |node: fn(Box<Typed>, Box<Typed>) -> Node, ty: Type, mut args: Vec<Typed>| {
            let r = args.pop().ok_or("missing operand")?;
            let l = args.pop().ok_or("missing operand")?;
            Ok::<Typed, String>(Typed {
                node: node(boxed(l), boxed(r)),
                ty,
            })
        };
        let cmp = |op: CmpOp, args: Vec<Typed>| {
            bin(
                match op {
                    CmpOp::Eq => |l, r| Node::Cmp(CmpOp::Eq, l, r),
                    CmpOp::Ne => |l, r| Node::Cmp(CmpOp::Ne, l, r),
                    CmpOp::Lt => |l, r| Node::Cmp(CmpOp::Lt, l, r),
                    CmpOp::Le => |l, r| Node::Cmp(CmpOp::Le, l, r),
                    CmpOp::Gt => |l, r| Node::Cmp(CmpOp::Gt, l, r),
                    CmpOp::Ge => |l, r| Node::Cmp(CmpOp::Ge, l, r),
                },
                Type::Bool,
                args,
            )
        };
        match (func, args.len()) {
            ("_&&_", 2) => bin(Node::And, Type::Bool, args),
            ("_||_", 2) => bin(Node::Or, Type::Bool, args),
            ("!_", 1) => Ok(Typed {
                node: Node::Not(boxed(args.remove(0))),
                ty: Type::Bool,
            }),
            ("-_", 1) => {
                let a = args.remove(0);
                let ty = a.ty.clone();
                Ok(Typed {
                    node: Node::Neg(boxed(a)),
                    ty,
                })
            }
            ("_==_", 2) => cmp(CmpOp::Eq, args),
            ("_!=_", 2) => cmp(CmpOp::Ne, args),
            ("_<_", 2) => cmp(CmpOp::Lt, args),
            ("_<=_", 2) => cmp(CmpOp::Le, args),
            ("_>_", 2) => cmp(CmpOp::Gt, args),
            ("_>=_", 2) => cmp(CmpOp::Ge, args),
            ("_+_" | "_-_" | "_*_" | "_/_" | "_%_", 2) => {
                let op = match func {
                    "_+_" => ArithOp::Add,
                    "_-_" => ArithOp::Sub,
                    "_*_" => ArithOp::Mul,
                    "_/_" => ArithOp::Div,
                    _ => ArithOp::Rem,
                };
                let ty = arith_type(op, &args[0].ty, &args[1].ty);
                let r = args.remove(1);
                let l = args.remove(0);
                Ok(Typed {
                    node: Node::Arith(op, boxed(l), boxed(r)),
                    ty,
                })
            }
            ("_?_:_", 3) => {
                let otherwise = args.remove(2);
                let then = args.remove(1);
                let cond = args.remove(0);
                let ty = then.ty.unify(&otherwise.ty).unwrap_or(Type::Dyn);
                Ok(Typed {
                    node: Node::Cond(boxed(cond), boxed(then), boxed(otherwise)),
                    ty,
                })
            }
            ("@in", 2) => bin(Node::In, Type::Bool, args),
            ("in_audience", 1) => match &args[0].node {
                Node::Str(name) => Ok(Typed {
                    node: Node::Audience(name.clone()),
                    ty: Type::Bool,
                }),
                _ => Err("`in_audience` needs a literal audience name".into()),
            },
            ("@not_strictly_false", 1) => Ok(args.remove(0)),
            _ => {
                let ty = call_type(func, &args)
                    .ok_or_else(|| format!("the function `{func}` is not supported here"))?;
                Ok(Typed {
                    node: Node::Call {
                        func: func.to_string(),
                        args,
                    },
                    ty,
                })
            }
        }
    }

    fn comprehension(&mut self, comp: &ComprehensionExpr) -> Result<Typed, String> {
        if comp.iter_var2.is_some() {
            return Err("two-variable comprehensions are not supported".into());
        }
        let range = self.expr(&comp.iter_range)?;
        let elem = match &range.ty {
            Type::List(elem) => elem.as_ref().clone(),
            other => return Err(format!("cannot iterate over a `{other}`")),
        };
        let shape = recognise(comp).ok_or("an unknown comprehension")?;
        self.locals.push((comp.iter_var.clone(), elem.clone()));
        let built = (|| {
            let (kind, filter, body) = match shape {
                Macro::Exists(p) => (CompKind::Exists, None, self.expr(p)?),
                Macro::All(p) => (CompKind::All, None, self.expr(p)?),
                Macro::ExistsOne(p) => (CompKind::ExistsOne, None, self.expr(p)?),
                Macro::Filter(p) => (CompKind::Filter, None, self.expr(p)?),
                Macro::Map { transform, filter } => {
                    let filter = match filter {
                        Some(f) => Some(boxed(self.expr(f)?)),
                        None => None,
                    };
                    (CompKind::Map, filter, self.expr(transform)?)
                }
            };
            Ok::<_, String>((kind, filter, body))
        })();
        self.locals.pop();
        let (kind, filter, body) = built?;
        let ty = match kind {
            CompKind::Filter => range.ty.clone(),
            CompKind::Map => Type::list(body.ty.clone()),
            _ => Type::Bool,
        };
        Ok(Typed {
            node: Node::Comp {
                kind,
                var: comp.iter_var.clone(),
                range: boxed(range),
                filter,
                body: boxed(body),
            },
            ty,
        })
    }
}

fn literal(lit: &LiteralValue) -> Result<Typed, String> {
    let (node, ty) = match lit {
        LiteralValue::Boolean(b) => (Node::Bool(*b.inner()), Type::Bool),
        LiteralValue::Int(i) => (Node::Int(*i.inner()), Type::Int),
        LiteralValue::UInt(u) => (
            Node::Int(i64::try_from(*u.inner()).map_err(|_| "an unsigned literal out of range")?),
            Type::Int,
        ),
        LiteralValue::Double(d) => (Node::Double(*d.inner()), Type::Double),
        LiteralValue::String(s) => (Node::Str(s.inner().to_string()), Type::String),
        LiteralValue::Null => (Node::Null, Type::Null),
        LiteralValue::Bytes(_) => return Err("bytes literals are not supported".into()),
    };
    Ok(Typed { node, ty })
}

fn arith_type(op: ArithOp, l: &Type, r: &Type) -> Type {
    use Type::{Double, Duration, Int, Timestamp};
    match (op, l, r) {
        (_, Int, Int) => Int,
        (_, Int | Double, Int | Double) => Double,
        (ArithOp::Add, Type::String, Type::String) => Type::String,
        (ArithOp::Add | ArithOp::Sub, Timestamp, Duration)
        | (ArithOp::Add, Duration, Timestamp) => Timestamp,
        (ArithOp::Sub, Timestamp, Timestamp) => Duration,
        (ArithOp::Add | ArithOp::Sub, Duration, Duration) => Duration,
        (ArithOp::Add, Type::List(a), Type::List(b)) => {
            a.unify(b).map(Type::list).unwrap_or(Type::Dyn)
        }
        _ => Type::Dyn,
    }
}

/// The result type of the functions both back ends implement.
fn call_type(func: &str, args: &[Typed]) -> Option<Type> {
    let first = args.first().map(|a| a.ty.clone());
    Some(match func {
        "size" => Type::Int,
        "days" | "hours" | "duration" => Type::Duration,
        "timestamp" => Type::Timestamp,
        "lower" | "lowerAscii" | "upperAscii" | "trim" | "hash_email" | "hash_phone" | "string" => {
            Type::String
        }
        "startsWith" | "endsWith" | "contains" | "matches" => Type::Bool,
        "int" => Type::Int,
        "double" => Type::Double,
        "sum" | "max" | "min" => match first? {
            Type::List(elem) => *elem,
            _ => Type::Dyn,
        },
        _ => return None,
    })
}

/// The `CelEnv` of a plan: its schemas with their computed attributes and
/// links, and its audience names (split parts included).
pub fn env_from_plan(plan: &crate::plan::Plan) -> CelEnv {
    use super::env::FieldDef;
    let mut env = CelEnv::default();
    for (name, schema) in &plan.schemas {
        let entity = env.entities.entry(name.clone()).or_default();
        for (field, def) in &schema.fields {
            let mut fd = FieldDef::new(Type::parse(&def.ty).unwrap_or(Type::Dyn));
            fd.values = def.values.clone();
            entity.fields.insert(field.clone(), fd);
        }
    }
    for (name, schema) in &plan.schemas {
        for (link, def) in &schema.links {
            // As in resolve: a many-to-many link is read from its target.
            if def.via.is_none()
                && let Some(e) = env.entities.get_mut(name)
            {
                e.to_one.insert(link.clone(), def.to.clone());
            }
            if let (Some(reverse), Some(target)) = (&def.reverse, env.entities.get_mut(&def.to)) {
                target.to_many.insert(reverse.clone(), name.clone());
            }
        }
    }
    for (key, computed) in &plan.computed {
        let field = key.rsplit('.').next().unwrap_or(key).to_string();
        if let Some(e) = env.entities.get_mut(&computed.schema) {
            let mut fd = FieldDef::new(Type::parse(&computed.ty).unwrap_or(Type::Dyn));
            fd.computed = true;
            e.fields.insert(field, fd);
        }
    }
    for (name, audience) in &plan.audiences {
        env.audiences.insert(name.clone());
        for part in &audience.parts {
            env.audiences.insert(format!("{name}.{part}"));
        }
    }
    env
}
