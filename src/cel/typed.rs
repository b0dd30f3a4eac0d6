//! A typed tree of a checked CEL expression: what the interpreter (`eval`)
//! and the SQL lowering (`render::lower`) both walk, so the two back ends see
//! one meaning of every expression.
//!
//! The checker builds the tree as it checks (`assemble`, called as it
//! leaves each node), so an expression is parsed and typed once: each node
//! carries the type the checker gave it, macros recognised (`exists`, `all`,
//! `exists_one`, `filter`, `map`), member calls with the receiver first.
//! Building never panics; a construct the tree does not model is an `Err`
//! with a short reason (the checker accepted it, so the caller reports it as
//! "cannot be evaluated/lowered").

use cel::common::ast::{ComprehensionExpr, Expr, IdedExpr, LiteralValue};

use super::check::{Macro, recognise};
use super::env::CelEnv;
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

/// A subtree, or why the tree does not model it.
pub type Built = Result<Typed, String>;

/// Parses, checks and types `text` with the one checker: the tree of an
/// expression without errors, else the first error. For the unit tests
/// that start from text; the compiler keeps the tree the checker built
/// when it checked the spec.
#[cfg(test)]
pub fn build(text: &str, env: &CelEnv, scope: &super::env::Scope) -> Result<Typed, String> {
    super::check::checked_tree(text, env, scope).map(|t| t.as_ref().clone())
}

fn boxed(t: Typed) -> Box<Typed> {
    Box::new(t)
}

/// The tree of node `e`, typed `ty` by the checker, from the trees of its
/// children in the order the checker visited them (a call's receiver
/// first, then its arguments; a comprehension's range, then the `map`
/// filter, then the body). Called by the checker as it leaves each node,
/// so an expression is parsed, walked and typed once.
pub(crate) fn assemble(env: &CelEnv, e: &IdedExpr, ty: &Type, children: Vec<Built>) -> Built {
    // Constructs outside the tree are refused before their parts are
    // looked at, so the reason names the construct itself.
    match &e.expr {
        Expr::Select(select) if select.test => return Err("`has()` is not supported".into()),
        Expr::Map(_) | Expr::Struct(_) => {
            return Err("map and struct literals are not supported".into());
        }
        Expr::Unspecified => return Err("an empty expression".into()),
        Expr::Comprehension(comp) if comp.iter_var2.is_some() => {
            return Err("two-variable comprehensions are not supported".into());
        }
        _ => {}
    }
    let typed = |node| {
        Ok(Typed {
            node,
            ty: ty.clone(),
        })
    };
    match &e.expr {
        Expr::Literal(lit) => typed(literal(lit)?),
        Expr::Ident(name) => typed(Node::Var(name.clone())),
        Expr::Select(select) => {
            let base = one(children)?;
            typed(select_node(env, base, &select.field)?)
        }
        Expr::List(_) => typed(Node::List(children.into_iter().collect::<Result<_, _>>()?)),
        Expr::Call(call) => {
            let args = children.into_iter().collect::<Result<Vec<_>, _>>()?;
            call_node(&call.func_name, args, ty)
        }
        Expr::Comprehension(comp) => typed(comprehension_node(comp, children)?),
        Expr::Map(_) | Expr::Struct(_) | Expr::Unspecified => {
            Err("map and struct literals are not supported".into())
        }
    }
}

/// The single child of a node that has one.
fn one(children: Vec<Built>) -> Built {
    children
        .into_iter()
        .next()
        .unwrap_or_else(|| Err("a missing operand".into()))
}

/// A member of an entity: a field, or a link (collection or single entity).
fn select_node(env: &CelEnv, base: Typed, field: &str) -> Result<Node, String> {
    let Type::Entity(schema) = &base.ty else {
        return Err(format!("cannot select `{field}` from a `{}`", base.ty));
    };
    let entity = env
        .entities
        .get(schema)
        .ok_or_else(|| format!("unknown schema `{schema}`"))?;
    if entity.fields.contains_key(field) {
        return Ok(Node::Field {
            base: boxed(base),
            name: field.into(),
        });
    }
    let (schema, many) = match (entity.to_many.get(field), entity.to_one.get(field)) {
        (Some(t), _) => (t.clone(), true),
        (None, Some(t)) => (t.clone(), false),
        (None, None) => return Err(format!("`{schema}` has no member `{field}`")),
    };
    Ok(Node::Link {
        base: boxed(base),
        name: field.into(),
        schema,
        many,
    })
}

fn call_node(func: &str, mut args: Vec<Typed>, ty: &Type) -> Built {
    let typed = |node| {
        Ok(Typed {
            node,
            ty: ty.clone(),
        })
    };
    let pair = |mut args: Vec<Typed>| -> Result<(Box<Typed>, Box<Typed>), String> {
        let r = args.pop().ok_or("missing operand")?;
        let l = args.pop().ok_or("missing operand")?;
        Ok((boxed(l), boxed(r)))
    };
    let cmp = |op: CmpOp, args: Vec<Typed>| {
        let (l, r) = pair(args)?;
        Ok::<Node, String>(Node::Cmp(op, l, r))
    };
    match (func, args.len()) {
        ("_&&_", 2) => {
            let (l, r) = pair(args)?;
            typed(Node::And(l, r))
        }
        ("_||_", 2) => {
            let (l, r) = pair(args)?;
            typed(Node::Or(l, r))
        }
        ("!_", 1) => typed(Node::Not(boxed(args.remove(0)))),
        ("-_", 1) => typed(Node::Neg(boxed(args.remove(0)))),
        ("_==_", 2) => typed(cmp(CmpOp::Eq, args)?),
        ("_!=_", 2) => typed(cmp(CmpOp::Ne, args)?),
        ("_<_", 2) => typed(cmp(CmpOp::Lt, args)?),
        ("_<=_", 2) => typed(cmp(CmpOp::Le, args)?),
        ("_>_", 2) => typed(cmp(CmpOp::Gt, args)?),
        ("_>=_", 2) => typed(cmp(CmpOp::Ge, args)?),
        ("_+_" | "_-_" | "_*_" | "_/_" | "_%_", 2) => {
            let op = match func {
                "_+_" => ArithOp::Add,
                "_-_" => ArithOp::Sub,
                "_*_" => ArithOp::Mul,
                "_/_" => ArithOp::Div,
                _ => ArithOp::Rem,
            };
            let (l, r) = pair(args)?;
            typed(Node::Arith(op, l, r))
        }
        ("_?_:_", 3) => {
            let otherwise = args.remove(2);
            let then = args.remove(1);
            let cond = args.remove(0);
            typed(Node::Cond(boxed(cond), boxed(then), boxed(otherwise)))
        }
        ("@in", 2) => {
            let (l, r) = pair(args)?;
            typed(Node::In(l, r))
        }
        ("in_audience", 1) => match &args[0].node {
            Node::Str(name) => typed(Node::Audience(name.clone())),
            _ => Err("`in_audience` needs a literal audience name".into()),
        },
        // The parser's wrapper around a comprehension's condition: the
        // condition itself, as the interpreter and SQL treat it.
        ("@not_strictly_false", 1) => Ok(args.remove(0)),
        // Any function of the checker's table; its result type is the one
        // the checker took from that table.
        _ if super::functions::lookup(func).is_some() => typed(Node::Call {
            func: func.to_string(),
            args,
        }),
        _ => Err(format!("the function `{func}` is not supported here")),
    }
}

/// A comprehension from its range and the trees of the macro's parts.
fn comprehension_node(comp: &ComprehensionExpr, children: Vec<Built>) -> Result<Node, String> {
    let mut children = children.into_iter();
    let mut next = || {
        children
            .next()
            .unwrap_or_else(|| Err("a missing operand".into()))
    };
    let range = next()?;
    if !matches!(range.ty, Type::List(_)) {
        return Err(format!("cannot iterate over a `{}`", range.ty));
    }
    let shape = recognise(comp).ok_or("an unknown comprehension")?;
    let (kind, filter, body) = match shape {
        Macro::Exists(_) => (CompKind::Exists, None, next()?),
        Macro::All(_) => (CompKind::All, None, next()?),
        Macro::ExistsOne(_) => (CompKind::ExistsOne, None, next()?),
        Macro::Filter(_) => (CompKind::Filter, None, next()?),
        Macro::Map { filter, .. } => {
            let filter = match filter {
                Some(_) => Some(boxed(next()?)),
                None => None,
            };
            (CompKind::Map, filter, next()?)
        }
    };
    Ok(Node::Comp {
        kind,
        var: comp.iter_var.clone(),
        range: boxed(range),
        filter,
        body: boxed(body),
    })
}

fn literal(lit: &LiteralValue) -> Result<Node, String> {
    Ok(match lit {
        LiteralValue::Boolean(b) => Node::Bool(*b.inner()),
        LiteralValue::Int(i) => Node::Int(*i.inner()),
        LiteralValue::UInt(u) => {
            Node::Int(i64::try_from(*u.inner()).map_err(|_| "an unsigned literal out of range")?)
        }
        LiteralValue::Double(d) => Node::Double(*d.inner()),
        LiteralValue::String(s) => Node::Str(s.inner().to_string()),
        LiteralValue::Null => Node::Null,
        LiteralValue::Bytes(_) => return Err("bytes literals are not supported".into()),
    })
}
