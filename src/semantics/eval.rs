//! The CEL interpreter: the reference semantics of audience rules, computed
//! attributes, people filters, consent conditions and mappings, for one
//! account (or person) at a time.
//!
//! Input: a `Typed` tree, the variables in scope as `Value`s (records with
//! their related records attached) and an `EvalCtx` (`now`, audience
//! memberships). Output: a `Value`. Pure; never panics.
//!
//! Missing values follow one rule that the SQL lowering implements too:
//! - a missing field is `null`; a missing list field is the empty list;
//! - any comparison (`==`, `<`, `in`, `startsWith`, `matches`, ...) with a
//!   `null` operand is `false` (only a comparison with the literal `null`
//!   tests for missing: `x == null`);
//! - `!`, `&&`, `||` and `?:` read `null` as `false`;
//! - arithmetic and string functions of `null` are `null`;
//! - `sum` of no values is 0, `max`/`min` of no values is `null`, `size` of a
//!   missing string is `null`.
//!
//! So every boolean an expression computes is `true` or `false`, never
//! unknown, exactly as SQL's `COALESCE(predicate, FALSE)`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::normalise;
use crate::cel::typed::{ArithOp, CmpOp, CompKind, Node, Typed};
use crate::hash::sha256_hex;
use crate::time::{parse_cel_duration, parse_timestamp};

/// A runtime value. Timestamps and durations are microseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Timestamp(i64),
    Duration(i64),
    List(Vec<Value>),
    Entity(Rc<Record>),
}

/// One row of a schema with its related rows attached.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub schema: String,
    pub fields: BTreeMap<String, Value>,
    /// To-many collections by name (`people`, `emailOpens`).
    pub many: BTreeMap<String, Vec<Rc<Record>>>,
    /// To-one links by name (`account`).
    pub one: BTreeMap<String, Rc<Record>>,
}

/// What an evaluation needs beyond the variables.
pub struct EvalCtx<'a> {
    /// The evaluation time, in microseconds since the epoch.
    pub now: i64,
    /// Membership of the current account in an audience (`NAME` or `NAME.part`).
    pub in_audience: &'a dyn Fn(&str) -> bool,
}

impl Value {
    /// `null` and `false` are false; everything else that is not a bool too.
    pub fn truthy(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
}

/// Evaluates `expr` with `vars` in scope.
pub fn eval(expr: &Typed, vars: &[(String, Value)], ctx: &EvalCtx) -> Value {
    let mut scope = vars.to_vec();
    Eval { ctx }.eval(expr, &mut scope)
}

struct Eval<'c, 'a> {
    ctx: &'c EvalCtx<'a>,
}

impl Eval<'_, '_> {
    fn eval(&self, e: &Typed, scope: &mut Vec<(String, Value)>) -> Value {
        match &e.node {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::Double(d) => Value::Double(*d),
            Node::Str(s) => Value::Str(s.clone()),
            Node::Var(name) => {
                if name == "now" && !scope.iter().any(|(n, _)| n == "now") {
                    return Value::Timestamp(self.ctx.now);
                }
                scope
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map_or(Value::Null, |(_, v)| v.clone())
            }
            Node::Field { base, name } => match self.eval(base, scope) {
                Value::Entity(r) => match r.fields.get(name) {
                    Some(v) => v.clone(),
                    None if matches!(e.ty, crate::cel::Type::List(_)) => Value::List(vec![]),
                    None => Value::Null,
                },
                _ => Value::Null,
            },
            Node::Link {
                base, name, many, ..
            } => match self.eval(base, scope) {
                Value::Entity(r) if *many => Value::List(
                    r.many
                        .get(name)
                        .map(|rows| rows.iter().cloned().map(Value::Entity).collect())
                        .unwrap_or_default(),
                ),
                Value::Entity(r) => r
                    .one
                    .get(name)
                    .map_or(Value::Null, |r| Value::Entity(r.clone())),
                _ if *many => Value::List(vec![]),
                _ => Value::Null,
            },
            Node::Not(a) => Value::Bool(!self.eval(a, scope).truthy()),
            Node::Neg(a) => match self.eval(a, scope) {
                // `-i64::MIN` overflows: missing, as every int overflow.
                Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                Value::Double(d) => Value::Double(-d),
                Value::Duration(d) => Value::Duration(-d),
                _ => Value::Null,
            },
            Node::And(l, r) => {
                Value::Bool(self.eval(l, scope).truthy() && self.eval(r, scope).truthy())
            }
            Node::Or(l, r) => {
                Value::Bool(self.eval(l, scope).truthy() || self.eval(r, scope).truthy())
            }
            Node::Cmp(op, l, r) => {
                let (lv, rv) = (self.eval(l, scope), self.eval(r, scope));
                // Only the literal `null` tests for missing.
                if matches!(l.node, Node::Null) || matches!(r.node, Node::Null) {
                    let both_null = lv == Value::Null && rv == Value::Null;
                    return Value::Bool(match op {
                        CmpOp::Eq => both_null,
                        CmpOp::Ne => !both_null,
                        _ => false,
                    });
                }
                Value::Bool(compare(*op, &lv, &rv))
            }
            Node::Arith(op, l, r) => arith(*op, self.eval(l, scope), self.eval(r, scope)),
            Node::Cond(c, t, f) => {
                if self.eval(c, scope).truthy() {
                    self.eval(t, scope)
                } else {
                    self.eval(f, scope)
                }
            }
            Node::In(elem, list) => {
                let v = self.eval(elem, scope);
                match self.eval(list, scope) {
                    Value::List(items) => {
                        Value::Bool(items.iter().any(|i| compare(CmpOp::Eq, &v, i)))
                    }
                    _ => Value::Bool(false),
                }
            }
            Node::List(items) => Value::List(items.iter().map(|i| self.eval(i, scope)).collect()),
            Node::Audience(name) => Value::Bool((self.ctx.in_audience)(name)),
            Node::Call { func, args } => {
                let values: Vec<Value> = args.iter().map(|a| self.eval(a, scope)).collect();
                call(func, &values)
            }
            Node::Comp {
                kind,
                var,
                range,
                filter,
                body,
            } => {
                let items = match self.eval(range, scope) {
                    Value::List(items) => items,
                    _ => vec![],
                };
                let mut test = |item: &Value, e: &Typed| {
                    scope.push((var.clone(), item.clone()));
                    let v = self.eval(e, scope);
                    scope.pop();
                    v
                };
                match kind {
                    CompKind::Exists => Value::Bool(items.iter().any(|i| test(i, body).truthy())),
                    CompKind::All => Value::Bool(items.iter().all(|i| test(i, body).truthy())),
                    CompKind::ExistsOne => {
                        Value::Bool(items.iter().filter(|i| test(i, body).truthy()).count() == 1)
                    }
                    CompKind::Filter => Value::List(
                        items
                            .into_iter()
                            .filter(|i| test(i, body).truthy())
                            .collect(),
                    ),
                    CompKind::Map => {
                        let mut out = Vec::new();
                        for i in &items {
                            if filter.as_ref().is_none_or(|f| test(i, f).truthy()) {
                                out.push(test(i, body));
                            }
                        }
                        Value::List(out)
                    }
                }
            }
        }
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

/// The order of two values of comparable types; `None` when either is null
/// or the types do not meet.
pub fn order(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Timestamp(a), Value::Timestamp(b)) | (Value::Duration(a), Value::Duration(b)) => {
            Some(a.cmp(b))
        }
        (a, b) => as_f64(a)?.partial_cmp(&as_f64(b)?),
    }
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> bool {
    if let (Value::List(a), Value::List(b)) = (l, r) {
        let eq = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| compare(CmpOp::Eq, x, y));
        return match op {
            CmpOp::Eq => eq,
            CmpOp::Ne => !eq,
            _ => false,
        };
    }
    let Some(ord) = order(l, r) else {
        return false;
    };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

fn arith(op: ArithOp, l: Value, r: Value) -> Value {
    use Value::{Double, Duration, Int, Str, Timestamp};
    match (op, l, r) {
        (ArithOp::Add, Int(a), Int(b)) => a.checked_add(b).map_or(Value::Null, Int),
        (ArithOp::Sub, Int(a), Int(b)) => a.checked_sub(b).map_or(Value::Null, Int),
        (ArithOp::Mul, Int(a), Int(b)) => a.checked_mul(b).map_or(Value::Null, Int),
        (ArithOp::Div, Int(a), Int(b)) => a.checked_div(b).map_or(Value::Null, Int),
        (ArithOp::Rem, Int(a), Int(b)) => a.checked_rem(b).map_or(Value::Null, Int),
        (ArithOp::Add, Str(a), Str(b)) => Str(a + &b),
        (ArithOp::Add, Value::List(mut a), Value::List(b)) => {
            a.extend(b);
            Value::List(a)
        }
        (ArithOp::Add, Timestamp(t), Duration(d)) | (ArithOp::Add, Duration(d), Timestamp(t)) => {
            Timestamp(t.saturating_add(d))
        }
        (ArithOp::Sub, Timestamp(t), Duration(d)) => Timestamp(t.saturating_sub(d)),
        (ArithOp::Sub, Timestamp(a), Timestamp(b)) => Duration(a.saturating_sub(b)),
        (ArithOp::Add, Duration(a), Duration(b)) => Duration(a.saturating_add(b)),
        (ArithOp::Sub, Duration(a), Duration(b)) => Duration(a.saturating_sub(b)),
        (op, l, r) => match (as_f64(&l), as_f64(&r)) {
            (Some(a), Some(b)) => match op {
                ArithOp::Add => Double(a + b),
                ArithOp::Sub => Double(a - b),
                ArithOp::Mul => Double(a * b),
                ArithOp::Div if b != 0.0 => Double(a / b),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
    }
}

const MICROS_PER_HOUR: i64 = 3_600_000_000;

fn call(func: &str, args: &[Value]) -> Value {
    use Value::{Bool, Int, Null, Str};
    match (func, args) {
        ("size", [Str(s)]) => Int(s.chars().count() as i64),
        ("size", [Value::List(l)]) => Int(l.len() as i64),
        ("size", [_]) => Null,
        ("days", [Int(n)]) => Value::Duration(n.saturating_mul(24 * MICROS_PER_HOUR)),
        ("hours", [Int(n)]) => Value::Duration(n.saturating_mul(MICROS_PER_HOUR)),
        ("timestamp", [Str(s)]) => parse_timestamp(s).map_or(Null, Value::Timestamp),
        ("duration", [Str(s)]) => parse_cel_duration(s).map_or(Null, Value::Duration),
        ("duration", [d @ Value::Duration(_)]) => d.clone(),
        ("timestamp", [t @ Value::Timestamp(_)]) => t.clone(),
        ("lower", [Str(s)]) => Str(s.to_lowercase()),
        // CEL's `*Ascii` functions change ASCII letters only.
        ("lowerAscii", [Str(s)]) => Str(s.to_ascii_lowercase()),
        ("upperAscii", [Str(s)]) => Str(s.to_ascii_uppercase()),
        ("trim", [Str(s)]) => Str(s.trim_ascii().to_string()),
        ("startsWith", [Str(s), Str(p)]) => Bool(s.starts_with(p.as_str())),
        ("endsWith", [Str(s), Str(p)]) => Bool(s.ends_with(p.as_str())),
        ("contains", [Str(s), Str(p)]) => Bool(s.contains(p.as_str())),
        ("matches", [Str(s), Str(p)]) => {
            Bool(regex::Regex::new(&ascii_classes(p)).is_ok_and(|re| re.is_match(s)))
        }
        ("startsWith" | "endsWith" | "contains" | "matches", _) => Bool(false),
        // An identity that is blank or invalid after normalisation is
        // missing, not the hash of a non-identity: the run counts the row
        // under "missing identity".
        ("hash_email", [Str(s)]) => {
            present(normalise::email(s)).map_or(Null, |e| Str(sha256_hex(e)))
        }
        ("hash_phone", [Str(s)]) => normalise::phone(s).map_or(Null, |p| Str(sha256_hex(p))),
        // `hash_email` of a destination column under the gmail rule.
        ("hash_email_gmail", [Str(s)]) => {
            present(normalise::gmail(s)).map_or(Null, |e| Str(sha256_hex(e)))
        }
        ("string", [v]) => match v {
            Str(s) => Str(s.clone()),
            Int(i) => Str(i.to_string()),
            Bool(b) => Str(b.to_string()),
            Value::Double(d) => Str(d.to_string()),
            _ => Null,
        },
        ("int", [v]) => match v {
            Int(i) => Int(*i),
            Value::Double(d) if d.is_finite() => Int(d.trunc() as i64),
            Str(s) => s.trim_ascii().parse().map_or(Null, Int),
            _ => Null,
        },
        ("double", [v]) => match v {
            Int(i) => Value::Double(*i as f64),
            Value::Double(d) => Value::Double(*d),
            Str(s) => s.trim_ascii().parse().map_or(Null, Value::Double),
            _ => Null,
        },
        ("sum", [Value::List(items)]) => {
            let present: Vec<&Value> = items.iter().filter(|v| **v != Null).collect();
            if present.iter().all(|v| matches!(v, Int(_))) {
                // Exact whatever the order of the values; a total outside
                // the int range is an overflow, so missing.
                let total: i128 = present
                    .iter()
                    .map(|v| if let Int(i) = v { i128::from(*i) } else { 0 })
                    .sum();
                i64::try_from(total).map_or(Null, Int)
            } else {
                Value::Double(present.iter().filter_map(|v| as_f64(v)).sum())
            }
        }
        ("max" | "min", [Value::List(items)]) => {
            let want = if func == "max" {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            items
                .iter()
                .filter(|v| **v != Null)
                .fold(None::<&Value>, |best, v| match best {
                    Some(b) if order(v, b) != Some(want) => Some(b),
                    _ => Some(v),
                })
                .cloned()
                .unwrap_or(Null)
        }
        _ => Null,
    }
}

/// A `matches` pattern with RE2's ASCII meaning of `\d`, `\w`, `\s` and
/// `\b` (CEL's regexes are RE2, as in DuckDB and BigQuery; Spark's are
/// ASCII too), for the Rust `regex` crate, whose classes are Unicode: there
/// `\d` matches "٣" and `^\w+$` matches "Müller". Negated classes inside
/// brackets (`[^\D]`) are left as written.
pub fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    // Nesting of bracket classes (Rust allows `[a[b]]`), and whether the
    // next `]` is a literal (first in a class).
    let (mut depth, mut first) = (0usize, false);
    while let Some(c) = chars.next() {
        let starts_class = first;
        first = false;
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push(c);
                    break;
                };
                let ascii = match (depth, e) {
                    (0, 'd') => "[0-9]",
                    (0, 'D') => "[^0-9]",
                    (0, 'w') => "[0-9A-Za-z_]",
                    (0, 'W') => "[^0-9A-Za-z_]",
                    (0, 's') => "[\\t\\n\\f\\r ]",
                    (0, 'S') => "[^\\t\\n\\f\\r ]",
                    (0, 'b') => "(?-u:\\b)",
                    (0, 'B') => "(?-u:\\B)",
                    (_, 'd') if depth > 0 => "0-9",
                    (_, 'w') if depth > 0 => "0-9A-Za-z_",
                    (_, 's') if depth > 0 => "\\t\\n\\f\\r ",
                    _ => "",
                };
                if ascii.is_empty() {
                    out.push(c);
                    out.push(e);
                } else {
                    out.push_str(ascii);
                }
            }
            '[' => {
                depth += 1;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                first = true;
            }
            ']' if depth > 0 && !starts_class => {
                depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A normalised identity, `None` when nothing is left of it.
fn present(normalised: String) -> Option<String> {
    (!normalised.is_empty()).then_some(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::{CelEnv, Scope, typed};

    fn env() -> CelEnv {
        crate::cel::env::test_env()
    }

    fn run(text: &str, account: Record) -> Value {
        let tree = typed::build(text, &env(), &Scope::account()).expect(text);
        let no = |_: &str| false;
        let ctx = EvalCtx {
            now: parse_timestamp("2026-11-28T00:00:00Z").unwrap_or(0),
            in_audience: &no,
        };
        eval(
            &tree,
            &[("account".into(), Value::Entity(Rc::new(account)))],
            &ctx,
        )
    }

    fn account() -> Record {
        let person = |t: &str| {
            let mut r = Record {
                schema: "person".into(),
                ..Record::default()
            };
            r.fields.insert("title".into(), Value::Str(t.into()));
            Rc::new(r)
        };
        let mut r = Record {
            schema: "account".into(),
            ..Record::default()
        };
        r.fields.insert("employees".into(), Value::Int(1200));
        r.many
            .insert("people".into(), vec![person("VP Data"), person("Analyst")]);
        r
    }

    #[test]
    fn a_missing_scalar_compares_false_both_ways() {
        assert_eq!(
            run(r#"account.status == "x""#, account()),
            Value::Bool(false)
        );
        assert_eq!(
            run(r#"account.status != "x""#, account()),
            Value::Bool(false)
        );
        assert_eq!(
            run(r#"!(account.status == "x")"#, account()),
            Value::Bool(true)
        );
        assert_eq!(run("account.status == null", account()), Value::Bool(true));
        assert_eq!(run(r#""a" in account.tags"#, account()), Value::Bool(false));
    }

    #[test]
    fn comprehensions_over_related_records() {
        let a = account();
        assert_eq!(
            run(
                r#"account.people.exists(p, p.title.startsWith("VP"))"#,
                a.clone()
            ),
            Value::Bool(true)
        );
        assert_eq!(
            run(
                r#"size(account.people.filter(p, p.title != "x"))"#,
                a.clone()
            ),
            Value::Int(2)
        );
        assert_eq!(
            run(
                r#"account.people.exists_one(p, p.title == "Analyst")"#,
                a.clone()
            ),
            Value::Bool(true)
        );
        assert_eq!(run("account.employees >= 1000 ? 1 : 2", a), Value::Int(1));
    }

    #[test]
    fn timestamps_parse_to_utc_micros() {
        assert_eq!(
            parse_timestamp("1970-01-02T00:00:00Z"),
            Some(86_400_000_000)
        );
        assert_eq!(
            parse_timestamp("1970-01-01T01:00:00+01:00"),
            Some(0),
            "offsets"
        );
        assert_eq!(parse_timestamp("nope"), None);
        // Days a month does not have are refused, never rolled over.
        assert_eq!(parse_timestamp("2026-02-30T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2026-11-31"), None);
    }

    /// Text that is not a timestamp, with multi-byte characters where the
    /// parser splits (the date's end, the clock, the offset, the fraction):
    /// `timestamp()` is missing, never a panic.
    #[test]
    fn timestamps_of_non_ascii_text_are_missing() {
        for text in [
            "２０２６-11-28",
            "2026-11-2８",
            "2026-11-28é12:00:00Z",
            "2026-11-28T１２:00:00Z",
            "2026-11-28T12:00:00+０１:00",
            "2026-11-28T12:00:00+a€",
            "2026-11-28T12:00:00-1€",
            "2026-11-28T12:00:00.５Z",
            "2026-11-28T12:00:00Zé",
            "日本語の日付ではない",
            "é",
        ] {
            assert_eq!(
                call("timestamp", &[Value::Str(text.into())]),
                Value::Null,
                "{text}"
            );
        }
    }

    #[test]
    fn durations_parse_like_cel() {
        assert_eq!(parse_cel_duration("90s"), Some(90_000_000));
        assert_eq!(parse_cel_duration("1h30m"), Some(5_400_000_000));
        assert_eq!(parse_cel_duration("-2h"), Some(-7_200_000_000));
        assert_eq!(parse_cel_duration("1.5h"), Some(5_400_000_000));
        assert_eq!(parse_cel_duration("3 days"), None);
    }

    #[test]
    fn hashes_normalise_first() {
        assert_eq!(
            call("hash_email", &[Value::Str(" A@B.example ".into())]),
            Value::Str(sha256_hex("a@b.example"))
        );
        assert_eq!(
            normalise::phone("+1 (555) 010-0000").as_deref(),
            Some("+15550100000")
        );
    }

    #[test]
    fn regex_classes_are_ascii_as_in_re2() {
        let m = |s: &str, p: &str| call("matches", &[Value::Str(s.into()), Value::Str(p.into())]);
        assert_eq!(
            m("\u{663}", r"\d"),
            Value::Bool(false),
            "an Arabic-Indic digit"
        );
        assert_eq!(m("7", r"\d"), Value::Bool(true));
        assert_eq!(m("Müller", r"^\w+$"), Value::Bool(false));
        assert_eq!(m("Muller", r"^[\w]+$"), Value::Bool(true));
        assert_eq!(m("é Data", r"\bData\b"), Value::Bool(true));
        assert_eq!(
            m("\u{b}", r"\s"),
            Value::Bool(false),
            "RE2's \\s has no vertical tab"
        );
        assert_eq!(ascii_classes(r"[]\d]\\d[^\D]"), r"[]0-9]\\d[^\D]");
    }

    #[test]
    fn identities_invalid_after_normalisation_are_missing() {
        // Too short, too long, a leading 0 (a trunk prefix, not a country
        // code), no digits: none is E.164, so none is hashed.
        for phone in [
            "+1 555 010",
            "+1234567890123456",
            "0044 20 7946 0000",
            "n/a",
        ] {
            assert_eq!(normalise::phone(phone), None, "{phone}");
            assert_eq!(call("hash_phone", &[Value::Str(phone.into())]), Value::Null);
        }
        assert_eq!(
            normalise::phone("+44 20 7946 0000").as_deref(),
            Some("+442079460000")
        );
        assert_eq!(call("hash_email", &[Value::Str("  ".into())]), Value::Null);
        assert_eq!(
            call("hash_email_gmail", &[Value::Str("".into())]),
            Value::Null
        );
    }
}
