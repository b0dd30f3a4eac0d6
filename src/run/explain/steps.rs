//! Expressions shown one step at a time: the CEL interpreter's value of
//! every `&&` / `||` / `!` operand and every comprehension (with how many
//! elements matched), and the text of a typed tree.

use serde::Serialize;

use crate::cel::typed::{ArithOp, CmpOp, CompKind, Node, Typed};
use crate::semantics::eval::{self, EvalCtx, Value};
use crate::time;

/// One line of an explanation: an expression (or a stage) and its value,
/// indented by depth.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub depth: usize,
    pub expr: String,
    pub value: String,
}

impl Step {
    pub fn new(depth: usize, expr: impl Into<String>, value: impl Into<String>) -> Step {
        Step {
            depth,
            expr: expr.into(),
            value: value.into(),
        }
    }
}

/// Steps as text, one per line, indented two spaces per depth beyond
/// `indent`.
pub fn render_steps(steps: &[Step], indent: usize) -> String {
    let mut s = String::new();
    for step in steps {
        s.push_str(&format!(
            "{}{}{}\n",
            "  ".repeat(step.depth + indent),
            step.expr,
            if step.value.is_empty() {
                String::new()
            } else {
                format!("  => {}", step.value)
            }
        ));
    }
    s
}

/// A value as a step shows it.
pub(super) fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Str(s) => format!("{s:?}"),
        Value::Timestamp(t) => time::format_timestamp(*t),
        Value::Duration(d) => time::format_duration(*d),
        Value::List(items) => format!("[{} items]", items.len()),
        Value::Entity(r) => format!("<{}>", r.schema),
    }
}

/// Records sub-expression values: logical operators are opened up, other
/// nodes are shown whole with their value.
pub(super) fn walk(
    t: &Typed,
    vars: &[(String, Value)],
    ctx: &EvalCtx,
    depth: usize,
    steps: &mut Vec<Step>,
) {
    let value = eval::eval(t, vars, ctx);
    let mut step = Step {
        depth,
        expr: print(t),
        value: show(&value),
    };
    match &t.node {
        Node::And(a, b) | Node::Or(a, b) => {
            step.expr = if matches!(t.node, Node::And(..)) {
                "all of (&&)"
            } else {
                "any of (||)"
            }
            .into();
            steps.push(step);
            walk(a, vars, ctx, depth + 1, steps);
            walk(b, vars, ctx, depth + 1, steps);
        }
        Node::Not(a) => {
            steps.push(step);
            walk(a, vars, ctx, depth + 1, steps);
        }
        Node::Comp {
            kind: CompKind::Exists | CompKind::All | CompKind::ExistsOne | CompKind::Filter,
            var,
            range,
            body,
            ..
        } => {
            // How many elements satisfy the body.
            if let Value::List(items) = eval::eval(range, vars, ctx) {
                let matched = items
                    .iter()
                    .filter(|item| {
                        let mut scope = vars.to_vec();
                        scope.push((var.clone(), (*item).clone()));
                        eval::eval(body, &scope, ctx).truthy()
                    })
                    .count();
                step.value = format!("{} ({matched} of {} match)", step.value, items.len());
            }
            steps.push(step);
        }
        _ => steps.push(step),
    }
}

/// CEL text of a typed tree (normalised spacing and parentheses).
pub fn print(t: &Typed) -> String {
    let bin = |a: &Typed, op: &str, b: &Typed| format!("{} {op} {}", paren(a), paren(b));
    match &t.node {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Double(d) => d.to_string(),
        Node::Str(s) => format!("{s:?}"),
        Node::Var(v) => v.clone(),
        Node::Field { base, name } | Node::Link { base, name, .. } => {
            format!("{}.{name}", print(base))
        }
        Node::Not(a) => format!("!{}", paren(a)),
        Node::Neg(a) => format!("-{}", paren(a)),
        Node::And(a, b) => bin(a, "&&", b),
        Node::Or(a, b) => bin(a, "||", b),
        Node::Cmp(op, a, b) => {
            let op = match op {
                CmpOp::Eq => "==",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            bin(a, op, b)
        }
        Node::Arith(op, a, b) => {
            let op = match op {
                ArithOp::Add => "+",
                ArithOp::Sub => "-",
                ArithOp::Mul => "*",
                ArithOp::Div => "/",
                ArithOp::Rem => "%",
            };
            bin(a, op, b)
        }
        Node::Cond(c, a, b) => format!("{} ? {} : {}", paren(c), paren(a), paren(b)),
        Node::In(a, b) => bin(a, "in", b),
        Node::List(items) => format!(
            "[{}]",
            items.iter().map(print).collect::<Vec<_>>().join(", ")
        ),
        Node::Call { func, args } => {
            format!(
                "{func}({})",
                args.iter().map(print).collect::<Vec<_>>().join(", ")
            )
        }
        Node::Audience(name) => format!("in_audience({name:?})"),
        Node::Comp {
            kind,
            var,
            range,
            filter,
            body,
        } => {
            let name = match kind {
                CompKind::Exists => "exists",
                CompKind::All => "all",
                CompKind::ExistsOne => "exists_one",
                CompKind::Filter => "filter",
                CompKind::Map => "map",
            };
            match filter {
                Some(f) => format!(
                    "{}.{name}({var}, {}, {})",
                    print(range),
                    print(f),
                    print(body)
                ),
                None => format!("{}.{name}({var}, {})", print(range), print(body)),
            }
        }
    }
}

fn paren(t: &Typed) -> String {
    match &t.node {
        Node::And(..)
        | Node::Or(..)
        | Node::Cond(..)
        | Node::Cmp(..)
        | Node::Arith(..)
        | Node::In(..) => {
            format!("({})", print(t))
        }
        _ => print(t),
    }
}
