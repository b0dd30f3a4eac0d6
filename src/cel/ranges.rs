//! The source range of every node of a parsed CEL expression.
//!
//! Input: the expression text, its AST and the parser's `SourceInfo`.
//! Output: for each node id, the byte range of the whole sub-expression as
//! written.
//!
//! The parser records one token per node, not the node's extent: the `.` of a
//! selection, the operator of a binary call, the `(` of a call, the `[` of a
//! list or index, and for a macro (whose expansion invents nodes) the `(` of
//! the call as written. Its offsets are byte offsets with an inclusive stop.
//! A node's range is the union of its token and its children's ranges,
//! stretched over what no node records: a selection's field name, a global
//! call's function name, the closing `]` or `}` of a literal, and the
//! parentheses the range opens or closes without matching (a call's `)`, the
//! `(` of a parenthesised left operand).

use std::collections::HashMap;
use std::ops::Range;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, SourceInfo};

/// Byte ranges by node id.
pub(crate) type Ranges = HashMap<u64, Range<usize>>;

pub(crate) fn compute(text: &str, root: &IdedExpr, info: &SourceInfo) -> Ranges {
    let mut ranges = Ranges::new();
    visit(text, root, info, &mut ranges);
    ranges
}

fn visit(
    text: &str,
    node: &IdedExpr,
    info: &SourceInfo,
    ranges: &mut Ranges,
) -> Option<Range<usize>> {
    let token = token_range(text, info, node.id);
    let mut children: Vec<&IdedExpr> = Vec::new();
    let mut closer = None;
    let mut name_before = false;
    let mut field = None;
    match &node.expr {
        Expr::Call(call) => {
            children.extend(call.target.as_deref());
            children.extend(&call.args);
            // An operator's token is its symbol; a function call's is its `(`.
            let at = token.as_ref().map_or("", |t| &text[t.clone()]);
            let is_function = call
                .func_name
                .starts_with(|c: char| c.is_ascii_alphabetic());
            if at == "(" && is_function {
                name_before = call.target.is_none();
            } else if at == "[" && call.func_name.starts_with("_[") {
                closer = Some(']');
            }
        }
        Expr::Select(select) => {
            children.push(&select.operand);
            field = Some(select.field.as_str());
            if select.test {
                // `has(x.f)`: the token is the `(` after `has`.
                name_before = true;
            }
        }
        Expr::Comprehension(comp) => {
            children.extend([
                &comp.iter_range,
                &comp.accu_init,
                &comp.loop_cond,
                &comp.loop_step,
                &comp.result,
            ]);
        }
        Expr::List(list) => {
            children.extend(&list.elements);
            closer = Some(']');
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    children.extend([&e.key, &e.value]);
                }
            }
            closer = Some('}');
        }
        Expr::Struct(st) => {
            for entry in &st.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    children.push(&f.value);
                }
            }
            closer = Some('}');
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    let mut range = token;
    for child in children {
        if let Some(r) = visit(text, child, info, ranges) {
            range = Some(union(range, r));
        }
    }
    let mut range = range?;
    if let Some(field) = field {
        range.end = extend_over_field(text, range.end, field);
    }
    if name_before {
        range.start = extend_back_over_name(text, range.start);
    }
    if let Some(closer) = closer {
        range.end = extend_to_closer(text, range.end, closer);
    }
    let range = balance_parens(text, range);
    ranges.insert(node.id, range.clone());
    Some(range)
}

fn union(a: Option<Range<usize>>, b: Range<usize>) -> Range<usize> {
    match a {
        None => b,
        Some(a) => a.start.min(b.start)..a.end.max(b.end),
    }
}

/// The node's own token as a byte range, clamped to char boundaries of `text`.
fn token_range(text: &str, info: &SourceInfo, id: u64) -> Option<Range<usize>> {
    let (start, stop) = info.offset_for(id)?;
    let start = floor_boundary(text, (start as usize).min(text.len()));
    let end = ceil_boundary(text, (stop as usize).saturating_add(1).min(text.len())).max(start);
    Some(start..end)
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// `start` is at a call's `(`: include the identifier before it (and
/// whitespace between), the function name.
fn extend_back_over_name(text: &str, start: usize) -> usize {
    let before = text[..start].trim_end();
    let name = before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
    if name.len() < before.len() {
        name.len()
    } else {
        start
    }
}

/// Grow `range` over the parentheses it opens or closes but does not match,
/// so that `(a + b) == c` is not reported as `a + b) == c`.
fn balance_parens(text: &str, range: Range<usize>) -> Range<usize> {
    let (mut depth, mut lowest) = (0i64, 0i64);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text[range.clone()].chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    lowest = lowest.min(depth);
                }
                _ => {}
            },
        }
    }
    let mut start = range.start;
    for _ in 0..-lowest {
        let before = text[..start].trim_end();
        match before.strip_suffix('(') {
            Some(rest) => start = rest.len(),
            None => break,
        }
    }
    let mut end = range.end;
    for _ in 0..(depth - lowest) {
        let after = text[end..].trim_start();
        match after.strip_prefix(')') {
            Some(rest) => end = text.len() - rest.len(),
            None => break,
        }
    }
    start..end
}

/// A selection's token is its `.`: include the field name after it.
fn extend_over_field(text: &str, end: usize, field: &str) -> usize {
    let rest = &text[end..];
    let after_dot = rest
        .trim_start()
        .strip_prefix('.')
        .unwrap_or(rest.trim_start())
        .trim_start();
    // A backtick-escaped name is not enabled in the parser, so the name is
    // written as is.
    match after_dot.strip_prefix(field) {
        Some(after) => text.len() - after.len(),
        None => end,
    }
}

/// Include the closing bracket after `end` when only whitespace, comments
/// and a trailing comma separate them.
fn extend_to_closer(text: &str, end: usize, closer: char) -> usize {
    let mut rest = &text[end..];
    loop {
        let trimmed = rest.trim_start().trim_start_matches(',');
        let trimmed = trimmed.trim_start();
        if let Some(comment) = trimmed.strip_prefix("//") {
            rest = comment.find('\n').map_or("", |nl| &comment[nl..]);
            continue;
        }
        if trimmed.starts_with(closer) {
            return text.len() - trimmed.len() + closer.len_utf8();
        }
        return end;
    }
}

#[cfg(test)]
mod tests {
    use super::compute;

    /// The text of the root node's range and of every node, sorted.
    fn texts(text: &str) -> (String, Vec<String>) {
        let (root, info) = cel::parser::Parser::default()
            .parse_with_source_info(text)
            .expect("parses");
        let ranges = compute(text, &root, &info);
        let mut all: Vec<String> = ranges
            .values()
            .map(|r| text[r.clone()].to_string())
            .collect();
        all.sort();
        all.dedup();
        (text[ranges[&root.id].clone()].to_string(), all)
    }

    #[test]
    fn whole_nodes_are_covered() {
        for text in [
            "account.people.exists(p, p.jobTitle == \"é\")",
            "size(account.name) + [1, 2][0]",
            "has(account.name)",
            "{'a': 1, 'b': 2}",
            "account.name.startsWith( \"x\" )",
            "-account.employees",
            "a ? b : c",
        ] {
            assert_eq!(texts(text).0, text);
        }
    }

    #[test]
    fn sub_expressions_are_covered() {
        let (_, all) = texts("account.employes >= 10 && size( account.people.filter(p, p.x) ) > 0");
        for expected in [
            "account.employes",
            "account.employes >= 10",
            "account.people",
            "account.people.filter(p, p.x)",
            "size( account.people.filter(p, p.x) )",
            "p.x",
        ] {
            assert!(all.iter().any(|t| t == expected), "{expected} in {all:?}");
        }
    }

    #[test]
    fn parentheses_stay_outside_and_multibyte_text_is_safe() {
        let (root, all) = texts("(\"éé\" + a.b) == x");
        assert_eq!(texts("x == ( a + \")\" )").0, "x == ( a + \")\" )");
        assert_eq!(root, "(\"éé\" + a.b) == x");
        assert!(all.iter().any(|t| t == "\"éé\" + a.b"), "{all:?}");
    }
}
