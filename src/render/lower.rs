//! Lowering CEL to SQL: one typed expression to one SQL expression, with
//! every condition over a collection turned into a feature column.
//!
//! Input: a `Typed` tree, a `Scope` binding its variables to SQL rows, a
//! `Dialect`. Output: a SQL expression, and features registered in
//! `Features`: `account.people.exists(p, P)` becomes the column
//! `f_people_1 = MAX(CASE WHEN P THEN 1 ELSE 0 END)` of the account view,
//! aggregated in one pass over the people table together with every other
//! feature over people. Identical sub-predicates share one column.
//!
//! Missing values follow `semantics::eval`: every boolean is lowered to a value
//! that is never NULL (`COALESCE(cmp, FALSE)`), so `NOT` and `OR` agree with
//! the interpreter on missing fields.

use std::collections::{BTreeMap, BTreeSet};

use super::dialect::Dialect;
use super::normalise;
use crate::cel::Type;
use crate::cel::typed::{ArithOp, CmpOp, CompKind, Node, Typed};
use crate::semantics::audience_column;

/// What a variable stands for in SQL.
#[derive(Clone, Debug)]
pub enum Binding {
    /// A row of the view of `schema`, under `alias`.
    Row { alias: String, schema: String },
    /// An element of an unnested list: the column `__elem` of `alias`.
    Elem { alias: String },
}

/// The variables in scope and where audience columns live.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub vars: Vec<(String, Binding)>,
    /// The alias whose columns are audience memberships, when `in_audience`
    /// is allowed.
    pub audiences: Option<String>,
    /// Whether features may be registered (not in export queries).
    pub features: bool,
    /// Why a variable that is not bound here cannot be read, for messages.
    pub note: &'static str,
}

/// The note of the scope inside a condition over a collection.
const ELEMENT_ONLY: &str = "a condition over a collection is computed in one pass over that collection and reads only its own element";

/// How a feature aggregates its collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agg {
    Exists,
    All,
    Count,
    Sum,
    Max,
    Min,
}

/// One aggregate column of a parent view.
#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    pub column: String,
    /// The aggregate over the collection's rows, alias `c`.
    pub aggregate: String,
    /// The value when the parent has no rows in the collection.
    pub default: Option<&'static str>,
    /// The rows that can change the aggregate: every other row adds
    /// nothing beyond what `default` gives an empty collection. `None`:
    /// every row counts.
    pub rows: Option<String>,
    /// What the aggregate reads of its elements' own collections.
    pub nested: Nested,
}

/// What a feature reads of its elements' own collections: an account
/// feature over people that asks whether a person opened an email reads
/// the people's feature over `emailOpens`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Nested {
    /// The element's collections whose feature columns the aggregate reads.
    pub reads: BTreeSet<String>,
    /// The element's collections in which an element must have a row for
    /// `rows` to hold (`p.emailOpens.exists(..)` needs `emailOpens`): an
    /// element without one adds nothing, so a pass may read only the
    /// elements that have one.
    pub needs: BTreeSet<String>,
}

/// Where a collection's rows come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Rows of the view of `child` whose column `__link_<link>` holds the
    /// parent key.
    Link { child: String, link: String },
    /// The elements of the parent's list field.
    List { field: String },
}

/// A collection of a parent schema and its features.
#[derive(Clone, Debug, PartialEq)]
pub struct Collection {
    pub source: Source,
    pub features: Vec<Feature>,
}

/// Every feature registered so far, by (parent schema, collection name).
#[derive(Clone, Debug, Default)]
pub struct Features {
    pub collections: BTreeMap<(String, String), Collection>,
    /// Every collection a column was asked of, in order: what a feature's
    /// own conditions read is what they asked for while being lowered.
    asked: Vec<(String, String)>,
}

impl Features {
    /// The column for `aggregate` over the collection, registered once.
    fn column(
        &mut self,
        key: (String, String),
        source: Source,
        agg: &str,
        default: Option<&'static str>,
        rows: Option<String>,
        nested: Nested,
    ) -> String {
        self.asked.push(key.clone());
        let prefix = format!("f_{}_", key.1);
        let coll = self.collections.entry(key).or_insert(Collection {
            source,
            features: Vec::new(),
        });
        if let Some(f) = coll.features.iter().find(|f| f.aggregate == agg) {
            return f.column.clone();
        }
        let column = format!("{prefix}{}", coll.features.len() + 1);
        coll.features.push(Feature {
            column: column.clone(),
            aggregate: agg.to_string(),
            default,
            rows,
            nested,
        });
        column
    }

    /// The collections of `schema` asked for since `mark`: those that
    /// conditions over `schema`'s rows lowered since then read.
    fn asked_since(&self, mark: usize, schema: &str) -> BTreeSet<String> {
        self.asked[mark..]
            .iter()
            .filter(|(parent, _)| parent == schema)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Whether `schema`'s view has feature columns.
    pub fn has_features(&self, schema: &str) -> bool {
        self.collections.keys().any(|(parent, _)| parent == schema)
    }

    /// Schemas whose view has features.
    pub fn parents(&self) -> Vec<&str> {
        let mut parents: Vec<&str> = self.collections.keys().map(|(p, _)| p.as_str()).collect();
        parents.dedup();
        parents
    }
}

/// The lowering of one expression family in one dialect.
pub struct Lowerer<'a> {
    pub dialect: &'a dyn Dialect,
    /// Schema name -> (link name -> (target schema, reverse collection)).
    pub links: &'a BTreeMap<String, BTreeMap<String, (String, Option<String>)>>,
    pub features: Features,
}

type R = Result<String, String>;

/// A resolved range: the collection's key and source, the filters of its
/// `.filter()` steps, and what its element binds to.
type Resolved = ((String, String), Source, Vec<String>, Binding);

impl Lowerer<'_> {
    fn q(&self, name: &str) -> String {
        self.dialect.ident(name)
    }

    /// A boolean that is never NULL.
    pub fn boolean(&mut self, e: &Typed, scope: &Scope) -> R {
        bounded(match &e.node {
            Node::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Node::Null => "FALSE".into(),
            Node::Not(a) => format!("(NOT {})", self.boolean(a, scope)?),
            Node::And(l, r) => format!(
                "({} AND {})",
                self.boolean(l, scope)?,
                self.boolean(r, scope)?
            ),
            Node::Or(l, r) => format!(
                "({} OR {})",
                self.boolean(l, scope)?,
                self.boolean(r, scope)?
            ),
            Node::Cond(c, t, f) => format!(
                "(CASE WHEN {} THEN {} ELSE {} END)",
                self.boolean(c, scope)?,
                self.boolean(t, scope)?,
                self.boolean(f, scope)?
            ),
            Node::Cmp(op, l, r) if matches!(l.node, Node::Null) || matches!(r.node, Node::Null) => {
                let other = if matches!(l.node, Node::Null) { r } else { l };
                let both = matches!(other.node, Node::Null);
                match (op, both) {
                    (CmpOp::Eq, true) => "TRUE".into(),
                    (CmpOp::Ne, true) => "FALSE".into(),
                    (CmpOp::Eq, false) => format!("({} IS NULL)", self.value(other, scope)?),
                    (CmpOp::Ne, false) => format!("({} IS NOT NULL)", self.value(other, scope)?),
                    _ => "FALSE".into(),
                }
            }
            Node::Audience(name) => {
                let alias = scope
                    .audiences
                    .as_ref()
                    .ok_or("`in_audience` is only available in account audience rules")?;
                format!("{alias}.{}", self.q(&audience_column(name)))
            }
            Node::In(elem, container) => self.membership(elem, container, scope)?,
            Node::Comp { kind, .. } if *kind != CompKind::Filter && *kind != CompKind::Map => {
                self.feature(e, scope)?
            }
            _ => format!("COALESCE({}, FALSE)", self.scalar(e, scope)?),
        })
    }

    /// A value; NULL where the interpreter has null.
    pub fn value(&mut self, e: &Typed, scope: &Scope) -> R {
        if e.ty == Type::Bool {
            return self.boolean(e, scope);
        }
        self.scalar(e, scope)
    }

    /// A value, without the boolean normalisation (its caller's job).
    fn scalar(&mut self, e: &Typed, scope: &Scope) -> R {
        let d = self.dialect;
        bounded(match &e.node {
            Node::Null => "NULL".into(),
            Node::Int(i) => int_literal(*i),
            Node::Double(x) if x.is_finite() => format!("{x:?}"),
            Node::Str(s) => d.string(s),
            Node::Var(name) => match lookup(scope, name) {
                Some(Binding::Elem { alias }) => format!("{alias}.__elem"),
                Some(Binding::Row { .. }) => {
                    return Err(format!("`{name}` is a record, not a value"));
                }
                None if name == "now" => d.now(),
                None => return Err(format!("`{name}` cannot be read here: {}", scope.note)),
            },
            Node::Field { base, name } => match &base.node {
                Node::Var(var) => match lookup(scope, var) {
                    Some(Binding::Row { alias, .. }) => format!("{alias}.{}", self.q(name)),
                    _ => {
                        return Err(format!(
                            "`{var}.{name}` cannot be read here: {}",
                            scope.note
                        ));
                    }
                },
                // `person.account.x`: the linked row is in scope as the
                // variable bound to a row of the link's target schema.
                Node::Link {
                    many: false,
                    schema,
                    ..
                } => match scope.vars.iter().rev().find_map(|(_, b)| match b {
                    Binding::Row { alias, schema: s } if s == schema => Some(alias),
                    _ => None,
                }) {
                    Some(alias) => format!("{alias}.{}", self.q(name)),
                    None => {
                        return Err(format!(
                            "`{name}` is read through a link to `{schema}`, which is not joined here: {}",
                            scope.note
                        ));
                    }
                },
                _ => {
                    return Err(format!(
                        "`{name}` is read through a link, which SQL lowering does not follow"
                    ));
                }
            },
            Node::Neg(a) => match &a.node {
                Node::Int(i) => i.checked_neg().map_or_else(|| "NULL".into(), int_literal),
                _ if a.ty == Type::Int => {
                    let v = self.value(a, scope)?;
                    self.checked_int(&format!("(-{})", d.wide_int(&v)))
                }
                _ => format!("(-{})", self.value(a, scope)?),
            },
            Node::Cmp(op, l, r) => {
                let op = match op {
                    CmpOp::Eq => "=",
                    CmpOp::Ne => "<>",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                };
                format!("({} {op} {})", self.value(l, scope)?, self.value(r, scope)?)
            }
            Node::Arith(op, l, r) => self.arith(*op, l, r, scope)?,
            Node::Cond(c, t, f) => format!(
                "(CASE WHEN {} THEN {} ELSE {} END)",
                self.boolean(c, scope)?,
                self.value(t, scope)?,
                self.value(f, scope)?
            ),
            Node::Call { func, args } => self.call(func, args, scope)?,
            Node::Comp { .. } | Node::Link { .. } | Node::List(_) => {
                return Err("a list value cannot be lowered here; aggregate it with `size`, `sum`, `max`, `min` or a macro".into());
            }
            _ => return Err("this expression cannot be lowered to SQL".into()),
        })
    }

    fn arith(&mut self, op: ArithOp, l: &Typed, r: &Typed, scope: &Scope) -> R {
        if l.ty == Type::Timestamp && r.ty == Type::Duration {
            let interval = self.duration(r)?;
            let sign = match op {
                ArithOp::Add => "+",
                ArithOp::Sub => "-",
                _ => return Err("only `+` and `-` apply to a timestamp".into()),
            };
            return Ok(format!("({} {sign} {interval})", self.value(l, scope)?));
        }
        let (a, b) = (self.value(l, scope)?, self.value(r, scope)?);
        let d = self.dialect;
        let ints = e_is_int(l) && e_is_int(r);
        Ok(match op {
            ArithOp::Add if l.ty == Type::String => format!("({a} || {b})"),
            // Integer overflow is missing in the interpreter; engines wrap,
            // fail the query or widen. The exact result in a 38-digit
            // decimal (an i64 product has at most 37), then NULL outside
            // the i64 range.
            ArithOp::Add | ArithOp::Sub | ArithOp::Mul if ints => {
                let sym = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    _ => "*",
                };
                self.checked_int(&format!("({} {sym} {})", d.wide_int(&a), d.wide_int(&b)))
            }
            ArithOp::Add => format!("({a} + {b})"),
            ArithOp::Sub => format!("({a} - {b})"),
            ArithOp::Mul => format!("({a} * {b})"),
            // Division by zero is missing (never an engine error), and so
            // is `i64::MIN / -1`, the one quotient outside the range.
            ArithOp::Div if ints => format!(
                "(CASE WHEN {b} = -1 THEN {} ELSE {} END)",
                self.checked_int(&format!("(-{})", d.wide_int(&a))),
                d.int_div(&a, &format!("NULLIF({b}, 0)"))
            ),
            ArithOp::Div => format!("({a} / NULLIF({b}, 0))"),
            // `x % -1` is 0, except for `i64::MIN` (an overflow in the
            // interpreter, and in some engines): `a - a` keeps a NULL `a`.
            ArithOp::Rem => format!(
                "(CASE WHEN {b} = -1 THEN (CASE WHEN {a} = {MIN} THEN NULL ELSE ({a} - {a}) END) ELSE {} END)",
                d.modulo(&a, &format!("NULLIF({b}, 0)")),
                MIN = int_literal(i64::MIN)
            ),
        })
    }

    /// An exact integer result (a wide decimal) as an int: NULL, as an
    /// overflow is in the interpreter, outside the i64 range.
    ///
    /// `wide` is written once: clamped to one step outside the range on
    /// either side, those two steps made NULL. Writing it twice (`CASE WHEN
    /// w BETWEEN .. THEN w`) doubles the SQL at every nested operator, so a
    /// sum of 25 ints grew to gigabytes.
    fn checked_int(&self, wide: &str) -> String {
        let d = self.dialect;
        let below = d.wide_int(&d.string(&(i128::from(i64::MIN) - 1).to_string()));
        let above = d.wide_int(&d.string(&(i128::from(i64::MAX) + 1).to_string()));
        format!(
            "CAST(NULLIF(NULLIF(LEAST(GREATEST({wide}, {below}), {above}), {above}), {below}) AS {})",
            d.type_name("int")
        )
    }

    /// `days(N)` or `hours(N)` with a literal N, as an interval.
    fn duration(&self, e: &Typed) -> R {
        if let Node::Call { func, args } = &e.node
            && let [
                Typed {
                    node: Node::Int(n), ..
                },
            ] = args.as_slice()
        {
            match func.as_str() {
                "days" => return Ok(self.dialect.interval(*n, "DAY")),
                "hours" => return Ok(self.dialect.interval(*n, "HOUR")),
                _ => {}
            }
        }
        if let Node::Call { func, args } = &e.node
            && let (
                true,
                [
                    Typed {
                        node: Node::Str(text),
                        ..
                    },
                ],
            ) = (func == "duration", args.as_slice())
            && let Some(micros) = crate::time::parse_cel_duration(text)
            && micros % 1_000_000 == 0
        {
            return Ok(self.dialect.interval(micros / 1_000_000, "SECOND"));
        }
        Err("a duration must be `days(N)`, `hours(N)` or `duration(\"...\")` with literal whole seconds".into())
    }

    fn call(&mut self, func: &str, args: &[Typed], scope: &Scope) -> R {
        let d = self.dialect;
        if matches!(func, "size" | "sum" | "max" | "min")
            && let Some(arg) = args.first().filter(|a| is_collection(a))
        {
            return self.feature_call(func, arg, scope);
        }
        // A literal pattern in the dialect's regex flavour (RE2's ASCII
        // classes, as the interpreter reads them).
        if let (
            "matches",
            [
                s,
                Typed {
                    node: Node::Str(pattern),
                    ..
                },
            ],
        ) = (func, args)
        {
            let s = self.value(s, scope)?;
            return Ok(d.regex_match(&s, &d.string(&d.regex_pattern(pattern))));
        }
        let mut v = Vec::new();
        for a in args {
            v.push(self.value(a, scope)?);
        }
        Ok(match (func, v.as_slice()) {
            ("size", [s]) => d.length(s),
            ("lower", [s]) => format!("LOWER({s})"),
            // ASCII letters only, as CEL says: LOWER and UPPER also map
            // other letters, each engine its own way (`ß`, `İ`).
            ("lowerAscii", [s]) => format!("TRANSLATE({s}, '{UPPER}', '{LOWER}')"),
            ("upperAscii", [s]) => format!("TRANSLATE({s}, '{LOWER}', '{UPPER}')"),
            ("trim", [s]) => d.trim(s),
            ("startsWith", [s, p]) => d.starts_with(s, p),
            ("endsWith", [s, p]) => d.ends_with(s, p),
            ("contains", [s, p]) => d.contains(s, p),
            ("matches", [s, p]) => d.regex_match(s, p),
            // SHA-256 of NULL is NULL: a blank email or a phone that is not
            // E.164 leaves as a missing identity, as in the interpreter.
            ("hash_email", [s]) => {
                d.sha256_hex(&normalise::present_sql(&format!("LOWER({})", d.trim(s))))
            }
            ("hash_phone", [s]) => d.sha256_hex(&normalise::phone_sql(d, s)),
            ("hash_email_gmail", [s]) => {
                d.sha256_hex(&normalise::present_sql(&normalise::gmail_sql(d, s)))
            }
            ("string", [s]) if matches!(args[0].ty, Type::String | Type::Int) => {
                format!("CAST({s} AS {})", d.type_name("string"))
            }
            // Text that is not a number is missing in the interpreter, never
            // a failed query: only optionally signed digits are read as an
            // int (engines would also read `1e3` and round `1.5`).
            ("int", [s]) if args[0].ty == Type::String => format!(
                "(CASE WHEN {} THEN {} END)",
                d.regex_match(&d.trim(s), &d.string("^[+-]?[0-9]+$")),
                d.try_cast(&d.trim(s), d.type_name("int"))
            ),
            ("int", [s]) if args[0].ty == Type::Int => s.clone(),
            ("double", [s]) if args[0].ty == Type::String => {
                d.try_cast(&d.trim(s), d.type_name("double"))
            }
            ("double", [s]) if args[0].ty != Type::Timestamp => {
                format!("CAST({s} AS {})", d.type_name("double"))
            }
            ("timestamp", [_]) => match &args[0].node {
                Node::Str(text) => match crate::time::parse_timestamp(text) {
                    // The instant in UTC, in the one form every dialect
                    // reads: an offset in the literal is applied here.
                    Some(micros) => d.timestamp(
                        crate::time::format_timestamp(micros)
                            .trim_end_matches('Z')
                            .replacen('T', " ", 1)
                            .as_str(),
                    ),
                    None => return Err("`timestamp()` needs a valid literal".into()),
                },
                _ => return Err("`timestamp()` needs a literal".into()),
            },
            _ => {
                return Err(format!(
                    "`{func}` cannot be lowered to SQL with these arguments"
                ));
            }
        })
    }

    /// `elem in container`.
    fn membership(&mut self, elem: &Typed, container: &Typed, scope: &Scope) -> R {
        if let Node::List(items) = &container.node {
            if items.is_empty() {
                return Ok("FALSE".into());
            }
            let mut values = Vec::new();
            for i in items {
                values.push(self.value(i, scope)?);
            }
            return Ok(format!(
                "COALESCE({} IN ({}), FALSE)",
                self.value(elem, scope)?,
                values.join(", ")
            ));
        }
        // `x in account.tags`: an `exists` feature over the list, so the
        // element must not depend on the row.
        let constant = self.value(elem, &Scope::default()).map_err(|_| {
            "the left side of `in` over a list field must not read the record".to_string()
        })?;
        let (key, source, filters, _) = self.collection(container, scope)?;
        let mut preds = filters;
        preds.push(format!("COALESCE(c.__elem = {constant}, FALSE)"));
        let pred = preds.join(" AND ");
        let agg = format!("MAX(CASE WHEN {pred} THEN 1 ELSE 0 END)");
        let alias = parent_alias(container, scope)?;
        // A list's elements are values: they have no collections.
        let column =
            self.features
                .column(key, source, &agg, Some("0"), Some(pred), Nested::default());
        Ok(format!("({alias}.{} = 1)", self.q(&column)))
    }

    /// `exists`, `all`, `exists_one` over a collection.
    fn feature(&mut self, e: &Typed, scope: &Scope) -> R {
        let Node::Comp {
            kind,
            var,
            range,
            body,
            ..
        } = &e.node
        else {
            return Err("not a comprehension".into());
        };
        let mark = self.features.asked.len();
        let (key, source, mut preds, child) = self.collection(range, scope)?;
        let inner = child_scope(var, child.clone());
        preds.push(self.boolean(body, &inner)?);
        let reads = self.element_reads(mark, &child);
        let pred = preds.join(" AND ");
        let alias = parent_alias(range, scope)?;
        // Which rows matter: for `exists` and `exists_one` those that pass;
        // for `all` those that fail (a parent whose rows all pass gets the
        // default, true, whether or not its rows are kept).
        let (agg, default, test, rows) = match kind {
            CompKind::Exists => (
                format!("MAX(CASE WHEN {pred} THEN 1 ELSE 0 END)"),
                "0",
                "= 1",
                pred.clone(),
            ),
            CompKind::All => {
                // A filtered `all` holds for the elements that pass the filter.
                let cond = if preds.len() > 1 {
                    let (last, first) = preds.split_last().ok_or("empty")?;
                    format!("NOT ({}) OR {last}", first.join(" AND "))
                } else {
                    pred.clone()
                };
                (
                    format!("MIN(CASE WHEN {cond} THEN 1 ELSE 0 END)"),
                    "1",
                    "= 1",
                    format!("NOT COALESCE({cond}, FALSE)"),
                )
            }
            CompKind::ExistsOne => (
                format!("SUM(CASE WHEN {pred} THEN 1 ELSE 0 END)"),
                "0",
                "= 1",
                pred.clone(),
            ),
            _ => return Err("not a predicate macro".into()),
        };
        // `rows` of `exists` is the filters and the body; of `all`, the
        // rows that fail it, which need nothing.
        let needs = match kind {
            CompKind::All => BTreeSet::new(),
            _ => filters_need(range)
                .union(&required(body, var))
                .cloned()
                .collect(),
        };
        let nested = Nested { reads, needs };
        let column = self
            .features
            .column(key, source, &agg, Some(default), Some(rows), nested);
        Ok(format!("({alias}.{} {test})", self.q(&column)))
    }

    /// `size(C)`, `sum(C.map(...))`, `max(...)`, `min(...)` over a collection.
    fn feature_call(&mut self, func: &str, arg: &Typed, scope: &Scope) -> R {
        let (range, value) = match (&arg.node, func) {
            (
                Node::Comp {
                    kind: CompKind::Map,
                    var,
                    range,
                    filter,
                    body,
                },
                "sum" | "max" | "min",
            ) => (range.as_ref(), Some((var, filter, body))),
            (_, "size") => (arg, None),
            (_, "sum" | "max" | "min") if matches!(arg.node, Node::Field { .. }) => (arg, None),
            _ => return Err(format!("`{func}` of this list cannot be lowered to SQL")),
        };
        let mark = self.features.asked.len();
        let (key, source, mut preds, child) = self.collection(range, scope)?;
        let alias = parent_alias(range, scope)?;
        let mut needs = filters_need(range);
        let val = match value {
            Some((var, filter, body)) => {
                let inner = child_scope(var, child.clone());
                if let Some(f) = filter {
                    preds.push(self.boolean(f, &inner)?);
                    needs.extend(required(f, var));
                }
                self.value(body, &inner)?
            }
            None => "c.__elem".into(),
        };
        let nested = Nested {
            reads: self.element_reads(mark, &child),
            needs,
        };
        // Rows outside the filter add nothing (a count of 0, a NULL to
        // sum, max or min); without a filter every row counts.
        let rows = (!preds.is_empty()).then(|| preds.join(" AND "));
        let when = rows.clone().unwrap_or_else(|| "TRUE".to_string());
        // A sum of ints is exact in a wide decimal and read back as an int,
        // NULL beyond the i64 range: the interpreter's overflow.
        let int_sum = func == "sum" && matches!(&arg.ty, Type::List(t) if **t == Type::Int);
        let (agg, default) = match func {
            "size" => (
                format!("SUM(CASE WHEN {when} THEN 1 ELSE 0 END)"),
                Some("0"),
            ),
            "sum" if int_sum => (
                format!(
                    "SUM(CASE WHEN {when} THEN {} END)",
                    self.dialect.wide_int(&val)
                ),
                Some("0"),
            ),
            "sum" => (format!("SUM(CASE WHEN {when} THEN {val} END)"), Some("0")),
            "max" => (format!("MAX(CASE WHEN {when} THEN {val} END)"), None),
            _ => (format!("MIN(CASE WHEN {when} THEN {val} END)"), None),
        };
        let column = self
            .features
            .column(key, source, &agg, default, rows, nested);
        let read = format!("{alias}.{}", self.q(&column));
        Ok(if int_sum {
            self.checked_int(&read)
        } else {
            read
        })
    }

    /// The collections of the element bound to `child` whose features the
    /// conditions lowered since `mark` read.
    fn element_reads(&self, mark: usize, child: &Binding) -> BTreeSet<String> {
        match child {
            Binding::Row { schema, .. } => self.features.asked_since(mark, schema),
            Binding::Elem { .. } => BTreeSet::new(),
        }
    }

    /// Resolves a range to its collection, with the filters of `.filter()`
    /// steps lowered over the element alias `c`.
    fn collection(&mut self, range: &Typed, scope: &Scope) -> Result<Resolved, String> {
        if !scope.features {
            return Err(
                "a condition over a collection cannot be lowered in an export query".into(),
            );
        }
        match &range.node {
            Node::Comp {
                kind: CompKind::Filter,
                var,
                range: inner,
                body,
                ..
            } => {
                let (key, source, mut preds, child) = self.collection(inner, scope)?;
                let inner_scope = child_scope(var, child.clone());
                preds.push(self.boolean(body, &inner_scope)?);
                Ok((key, source, preds, child))
            }
            Node::Link {
                base,
                name,
                schema: child,
                many: true,
            } => {
                let parent = row_schema(base, scope)?;
                let link = self
                    .links
                    .get(child)
                    .and_then(|links| {
                        links.iter().find(|(_, (to, rev))| {
                            *to == parent && rev.as_deref() == Some(name.as_str())
                        })
                    })
                    .map(|(l, _)| l.clone())
                    .ok_or_else(|| format!("`{parent}.{name}` has no link to follow"))?;
                Ok((
                    (parent, name.clone()),
                    Source::Link {
                        child: child.clone(),
                        link,
                    },
                    Vec::new(),
                    Binding::Row {
                        alias: "c".into(),
                        schema: child.clone(),
                    },
                ))
            }
            Node::Field { base, name } if matches!(range.ty, Type::List(_)) => {
                let parent = row_schema(base, scope)?;
                Ok((
                    (parent, name.clone()),
                    Source::List {
                        field: name.clone(),
                    },
                    Vec::new(),
                    Binding::Elem { alias: "c".into() },
                ))
            }
            _ => Err("only collections and list fields of a record can be iterated in SQL".into()),
        }
    }
}

fn e_is_int(e: &Typed) -> bool {
    e.ty == Type::Int
}

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";

/// The most SQL one expression may lower to. Some lowerings write an
/// operand more than once (the `%` of CEL, for one), so deep nesting could
/// grow the text exponentially; past this bound the expression is refused
/// (P0201) instead of exhausting time and memory.
const MAX_EXPRESSION_SQL: usize = 1 << 20;

fn bounded(sql: String) -> R {
    if sql.len() > MAX_EXPRESSION_SQL {
        Err(format!(
            "its SQL grows past {} MiB (nested operators that repeat their operands); write it with fewer nested operators",
            MAX_EXPRESSION_SQL >> 20
        ))
    } else {
        Ok(sql)
    }
}

/// An int literal; `i64::MIN` as an expression, since its digits alone
/// are out of range before the minus applies.
fn int_literal(i: i64) -> String {
    if i == i64::MIN {
        format!("({} - 1)", i64::MIN + 1)
    } else {
        i.to_string()
    }
}

fn is_collection(e: &Typed) -> bool {
    match &e.node {
        Node::Link { many, .. } => *many,
        Node::Field { .. } => matches!(e.ty, Type::List(_)),
        Node::Comp {
            kind: CompKind::Filter | CompKind::Map,
            ..
        } => true,
        _ => false,
    }
}

fn lookup<'s>(scope: &'s Scope, name: &str) -> Option<&'s Binding> {
    scope
        .vars
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
}

/// The collections of `var` in which it must have a row for `e` to hold:
/// `v.c.exists(..)`, `size(v.c) >= 1` and `x in v.c` hold of no `v`
/// without one; `&&` needs what either side needs, `||` what both do.
/// Anything else needs nothing (it may hold of an empty collection).
fn required(e: &Typed, var: &str) -> BTreeSet<String> {
    match &e.node {
        Node::And(l, r) => required(l, var).union(&required(r, var)).cloned().collect(),
        Node::Or(l, r) => required(l, var)
            .intersection(&required(r, var))
            .cloned()
            .collect(),
        Node::Comp {
            kind: CompKind::Exists | CompKind::ExistsOne,
            range,
            ..
        } => collection_of(range, var).into_iter().collect(),
        Node::In(_, container) => collection_of(container, var).into_iter().collect(),
        Node::Cmp(op, l, r) => {
            // `size(C) op k`, the size on either side.
            let (op, args, k) = match (&l.node, &r.node) {
                (Node::Call { func, args }, Node::Int(k)) if func == "size" => (*op, args, *k),
                (Node::Int(k), Node::Call { func, args }) if func == "size" => {
                    let flipped = match op {
                        CmpOp::Lt => CmpOp::Gt,
                        CmpOp::Le => CmpOp::Ge,
                        CmpOp::Gt => CmpOp::Lt,
                        CmpOp::Ge => CmpOp::Le,
                        other => *other,
                    };
                    (flipped, args, *k)
                }
                _ => return BTreeSet::new(),
            };
            let empty_fails = match op {
                CmpOp::Ge | CmpOp::Eq => k >= 1,
                CmpOp::Gt => k >= 0,
                _ => false,
            };
            match args.as_slice() {
                [c] if empty_fails => collection_of(c, var).into_iter().collect(),
                _ => BTreeSet::new(),
            }
        }
        _ => BTreeSet::new(),
    }
}

/// What the `.filter()` steps of a range need of their element (every
/// step must hold for an element to be in the range).
fn filters_need(range: &Typed) -> BTreeSet<String> {
    match &range.node {
        Node::Comp {
            kind: CompKind::Filter,
            var,
            range: inner,
            body,
            ..
        } => required(body, var)
            .union(&filters_need(inner))
            .cloned()
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The collection of `var` a range iterates, through its filters: one of
/// its links to many or one of its list fields.
fn collection_of(range: &Typed, var: &str) -> Option<String> {
    let (base, name) = match &range.node {
        Node::Comp {
            kind: CompKind::Filter,
            range,
            ..
        } => return collection_of(range, var),
        Node::Link {
            base,
            name,
            many: true,
            ..
        } => (base, name),
        Node::Field { base, name } if matches!(range.ty, Type::List(_)) => (base, name),
        _ => return None,
    };
    matches!(&base.node, Node::Var(v) if v == var).then(|| name.clone())
}

fn child_scope(var: &str, binding: Binding) -> Scope {
    // Only the element is in scope: a condition over a collection is computed
    // in one pass over that collection, without the enclosing row.
    Scope {
        vars: vec![(var.to_string(), binding)],
        audiences: None,
        features: true,
        note: ELEMENT_ONLY,
    }
}

/// The schema of the row a collection hangs off.
fn row_schema(base: &Typed, scope: &Scope) -> Result<String, String> {
    match &base.node {
        Node::Var(v) => match lookup(scope, v) {
            Some(Binding::Row { schema, .. }) => Ok(schema.clone()),
            _ => Err(format!("`{v}` cannot be read here: {}", scope.note)),
        },
        _ => Err("a collection reached through a link cannot be lowered to SQL".into()),
    }
}

/// The alias of the row that owns the feature column.
fn parent_alias(range: &Typed, scope: &Scope) -> R {
    match &range.node {
        Node::Comp { range, .. } => parent_alias(range, scope),
        Node::Link { base, .. } | Node::Field { base, .. } => match &base.node {
            Node::Var(v) => match lookup(scope, v) {
                Some(Binding::Row { alias, .. }) => Ok(alias.clone()),
                _ => Err(format!("`{v}` cannot be read here: {}", scope.note)),
            },
            _ => Err("a collection reached through a link cannot be lowered to SQL".into()),
        },
        _ => Err("not a collection".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Binding, Features, Lowerer, Scope};
    use crate::cel::{CelEnv, Scope as CelScope, typed};
    use crate::render::dialect::{DuckDb, Spark};

    fn env() -> CelEnv {
        crate::cel::env::test_env()
    }

    fn links() -> BTreeMap<String, BTreeMap<String, (String, Option<String>)>> {
        let mut person = BTreeMap::new();
        person.insert(
            "account".to_string(),
            ("account".to_string(), Some("people".to_string())),
        );
        BTreeMap::from([("person".to_string(), person)])
    }

    fn scope() -> Scope {
        Scope {
            vars: vec![(
                "account".into(),
                Binding::Row {
                    alias: "r".into(),
                    schema: "account".into(),
                },
            )],
            audiences: Some("r".into()),
            features: true,
            note: "",
        }
    }

    fn lower_all(exprs: &[&str]) -> (Vec<Result<String, String>>, Features) {
        let links = links();
        let mut lw = Lowerer {
            dialect: &DuckDb,
            links: &links,
            features: Features::default(),
        };
        let out = exprs
            .iter()
            .map(|e| {
                let t = typed::build(e, &env(), &CelScope::account()).expect(e);
                lw.boolean(&t, &scope())
            })
            .collect();
        (out, lw.features)
    }

    #[test]
    fn one_column_per_distinct_sub_predicate() {
        let (out, features) = lower_all(&[
            r#"account.people.exists(p, p.title == "CTO")"#,
            r#"account.status == "prospect" && account.people.exists(q, q.title == "CTO")"#,
            r#"account.people.exists(p, p.title == "CFO")"#,
        ]);
        assert!(out.iter().all(Result::is_ok), "{out:?}");
        let people = &features.collections[&("account".to_string(), "people".to_string())];
        // The variable name does not matter: `p` and `q` share a column.
        assert_eq!(people.features.len(), 2);
        assert_eq!(out[0].as_deref(), Ok(r#"(r."f_people_1" = 1)"#));
    }

    #[test]
    fn nested_int_arithmetic_grows_linearly() {
        // Each checked operator writes its operand once: 40 terms of a sum
        // stay a few kilobytes (writing it twice made 2^40 copies).
        let sum = vec!["account.employees"; 40].join(" + ");
        let (out, _) = lower_all(&[&format!("{sum} > 0")]);
        let sql = out[0].as_ref().expect("lowers");
        assert!(sql.len() < 40 * 1024, "{} bytes", sql.len());
    }

    #[test]
    fn sql_that_would_explode_is_refused() {
        // `%` repeats its operands; 30 nested remainders are refused at the
        // size bound instead of taking the machine's memory.
        let mut e = "account.employees".to_string();
        for _ in 0..30 {
            e = format!("({e} % account.employees)");
        }
        let (out, _) = lower_all(&[&format!("{e} > 0")]);
        let error = out[0].as_ref().expect_err("refused");
        assert!(error.contains("grows past"), "{error}");
    }

    #[test]
    fn booleans_never_are_null() {
        let (out, _) = lower_all(&[r#"!(account.status == "customer")"#]);
        assert_eq!(
            out[0].as_deref(),
            Ok(r#"(NOT COALESCE((r."status" = 'customer'), FALSE))"#)
        );
    }

    #[test]
    fn membership_in_a_list_field_is_a_feature() {
        let (out, features) = lower_all(&[r#""x" in account.tags"#]);
        assert_eq!(out[0].as_deref(), Ok(r#"(r."f_tags_1" = 1)"#));
        let tags = &features.collections[&("account".to_string(), "tags".to_string())];
        assert_eq!(
            tags.features[0].aggregate,
            "MAX(CASE WHEN COALESCE(c.__elem = 'x', FALSE) THEN 1 ELSE 0 END)"
        );
    }

    #[test]
    fn a_condition_over_a_collection_cannot_read_the_enclosing_row() {
        let (out, _) = lower_all(&["account.people.exists(p, p.title == account.domain)"]);
        let err = out[0].as_ref().expect_err("must not lower");
        assert!(err.contains("reads only its own element"), "{err}");
    }

    #[test]
    fn dialects_differ_only_in_details() {
        let links = links();
        let t = typed::build(
            r#"account.status.startsWith("pro")"#,
            &env(),
            &CelScope::account(),
        )
        .expect("builds");
        let mut duck = Lowerer {
            dialect: &DuckDb,
            links: &links,
            features: Features::default(),
        };
        let mut spark = Lowerer {
            dialect: &Spark,
            links: &links,
            features: Features::default(),
        };
        assert_eq!(
            duck.boolean(&t, &scope()).as_deref(),
            Ok(r#"COALESCE(STARTS_WITH(r."status", 'pro'), FALSE)"#)
        );
        assert_eq!(
            spark.boolean(&t, &scope()).as_deref(),
            Ok("COALESCE(STARTSWITH(r.`status`, 'pro'), FALSE)")
        );
    }
}
