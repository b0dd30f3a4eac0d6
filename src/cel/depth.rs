//! A bound on how deep a CEL expression nests, checked before parsing.
//!
//! Input: the decoded expression text. Output: `None`, or a [`TooDeep`]
//! saying how deep the expression is. One linear pass over the characters,
//! no recursion, so it is safe on any input.
//!
//! Why: the `cel` parser and every walk of the syntax tree (type checking,
//! ranges, lowering, evaluation) recurse once per level of the tree. A member
//! chain of a few hundred `.name`, `.size()` or `[0]`, or a few hundred `+`
//! in a row, overflowed the 2 MiB stack of a checker thread and aborted the
//! whole process. Real rules are a few levels deep; [`MAX_DEPTH`] leaves
//! them all through and keeps every walk far from the end of the stack.
//!
//! The scan estimates the tree's depth from above without parsing: per
//! bracket level, the longest run of left-associative binary operators
//! (`a + b + c` nests), the ternaries, the logarithm of the `&&`/`||` terms
//! (the parser balances those), and the deepest operand: its postfix chain
//! (`.f`, `[i]`, calls) plus what its brackets hold. Runs of `!` or unary `-`
//! add nothing: the parser folds them.

/// The deepest expression accepted. Measured: a debug build overflowed a
/// 2 MiB checker thread at a depth of about 500 member selections and 600
/// index operations; the checker runs on threads with a larger stack
/// ([`STACK_SIZE`]), so the bound leaves a wide margin in every build.
pub const MAX_DEPTH: u32 = 100;

/// The stack size of threads that parse, check or walk CEL trees.
pub const STACK_SIZE: usize = 16 * 1024 * 1024;

/// An expression deeper than [`MAX_DEPTH`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// The estimated depth.
    pub depth: u32,
}

/// The state of one bracket level: the whole text, or the inside of one
/// pair of brackets.
#[derive(Default)]
struct Level {
    /// Left-associative binary operators since the last `&&`, `||`, `?`,
    /// `:` or `,`; and the most of them in one run.
    run: u32,
    max_run: u32,
    ternaries: u32,
    logic: u32,
    /// Depth of the operand being read: postfix operations plus the deepest
    /// bracket content attached to it; and the deepest operand so far.
    operand: u32,
    max_operand: u32,
}

impl Level {
    fn end_operand(&mut self) {
        self.max_operand = self.max_operand.max(self.operand);
        self.operand = 0;
    }

    fn end_run(&mut self) {
        self.max_run = self.max_run.max(self.run);
        self.run = 0;
    }

    fn depth(mut self) -> u32 {
        self.end_operand();
        self.end_run();
        let logic = u32::BITS - self.logic.leading_zeros();
        1u32.saturating_add(self.max_run)
            .saturating_add(self.ternaries)
            .saturating_add(logic)
            .saturating_add(self.max_operand)
    }
}

/// What the previous significant token was, to tell a call from a group,
/// an index from a list, and a binary `-` from a unary one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    Operand,
    Other,
}

/// `Some` when `text` nests deeper than [`MAX_DEPTH`].
pub fn check(text: &str) -> Option<TooDeep> {
    let depth = estimate(text);
    (depth > MAX_DEPTH).then_some(TooDeep { depth })
}

/// An upper estimate of the depth of `text`'s syntax tree.
pub fn estimate(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut levels: Vec<Level> = vec![Level::default()];
    let mut prev = Prev::Other;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let top = levels.len() - 1;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(bytes, i, false);
                prev = Prev::Operand;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &text[start..i];
                // String prefixes: r"..", b'..', rb"..".
                if i < bytes.len()
                    && matches!(bytes[i], b'"' | b'\'')
                    && word.len() <= 2
                    && word.bytes().all(|b| matches!(b, b'r' | b'R' | b'b' | b'B'))
                {
                    let raw = word.bytes().any(|b| matches!(b, b'r' | b'R'));
                    i = skip_string(bytes, i, raw);
                    prev = Prev::Operand;
                } else if word == "in" {
                    levels[top].run += 1;
                    levels[top].end_operand();
                    prev = Prev::Other;
                } else {
                    prev = Prev::Operand;
                }
                continue;
            }
            c if c.is_ascii_digit() => {
                i = skip_number(bytes, i);
                prev = Prev::Operand;
                continue;
            }
            b'.' => {
                // `.5` is a number; otherwise a member selection.
                if prev == Prev::Other && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i = skip_number(bytes, i);
                    prev = Prev::Operand;
                    continue;
                }
                levels[top].operand = levels[top].operand.saturating_add(1);
                prev = Prev::Other;
            }
            b'(' | b'[' | b'{' => {
                // A call or an index adds a level to the operand it follows.
                if prev == Prev::Operand && c != b'{' {
                    levels[top].operand = levels[top].operand.saturating_add(1);
                }
                levels.push(Level::default());
                prev = Prev::Other;
            }
            b')' | b']' | b'}' => {
                // An unbalanced closer is the parser's to report.
                if levels.len() > 1 {
                    let inner = levels.pop().map_or(0, Level::depth);
                    let parent = levels.last_mut().expect("the root level stays");
                    parent.operand = parent.operand.saturating_add(inner);
                }
                prev = Prev::Operand;
            }
            b'&' | b'|' if bytes.get(i + 1) == Some(&c) => {
                let level = &mut levels[top];
                level.logic = level.logic.saturating_add(1);
                level.end_operand();
                level.end_run();
                prev = Prev::Other;
                i += 2;
                continue;
            }
            b'?' | b':' | b',' => {
                let level = &mut levels[top];
                if c == b'?' {
                    level.ternaries = level.ternaries.saturating_add(1);
                }
                level.end_operand();
                level.end_run();
                prev = Prev::Other;
            }
            b'!' | b'-' if prev == Prev::Other => {
                // Unary: folded by the parser (`!!a`), no level of its own
                // that a run could stack up. `!=` after an operand is binary.
            }
            b'=' | b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' => {
                let level = &mut levels[top];
                level.run = level.run.saturating_add(1);
                level.end_operand();
                // Two-character operators count once.
                if bytes.get(i + 1) == Some(&b'=') && matches!(c, b'=' | b'!' | b'<' | b'>') {
                    i += 1;
                }
                prev = Prev::Other;
            }
            _ => {
                // Anything else is the parser's to report; step over the
                // whole character.
                i += text[i..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
        }
        i += 1;
    }
    // Unclosed brackets still count: their content is read as nested.
    while levels.len() > 1 {
        let inner = levels.pop().map_or(0, Level::depth);
        let parent = levels.last_mut().expect("the root level stays");
        parent.operand = parent.operand.saturating_add(inner);
    }
    levels.pop().map_or(0, Level::depth)
}

/// The index just past the string literal that starts at `start`.
fn skip_string(bytes: &[u8], start: usize, raw: bool) -> usize {
    let quote = bytes[start];
    let triple = bytes.len() >= start + 3 && bytes[start + 1] == quote && bytes[start + 2] == quote;
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && !raw {
            i += 2;
            continue;
        }
        if b == quote {
            if !triple {
                return i + 1;
            }
            if bytes.len() >= i + 3 && bytes[i + 1] == quote && bytes[i + 2] == quote {
                return i + 3;
            }
        }
        if b == b'\n' && !triple {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// The index just past the number that starts at `start` (`1`, `1.5`,
/// `1e-3`, `0x1F`, `2u`).
fn skip_number(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        let exponent_sign = matches!(b, b'+' | b'-') && matches!(bytes[i - 1], b'e' | b'E');
        let fraction = b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if b.is_ascii_alphanumeric() || fraction || (exponent_sign && i > start) {
            i += 1;
        } else {
            break;
        }
    }
    i.max(start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_rules_are_shallow() {
        for rule in [
            r#"account.industry in ["Software", "Fintech"] && account.employees >= 1000"#,
            r#"account.people.exists(p, p.jobTitle.matches("(?i)\\b(VP|Chief)\\b"))"#,
            r#"size(account.people.filter(p, p.emailOpens.exists(e, e.occurredAt > now - days(30))))"#,
            r#"account.engagementScore >= 5 ? "high" : account.engagementScore >= 2 ? "medium" : "low""#,
            "1.5e-3 + .5 - -2 > 0x1F",
        ] {
            let depth = estimate(rule);
            assert!(depth <= 20, "{rule}: {depth}");
        }
    }

    #[test]
    fn chains_and_nesting_count_but_flat_lists_do_not() {
        let member = format!("account.name{}", ".name".repeat(2000));
        assert!(check(&member).is_some_and(|t| t.depth > 2000));
        let size = format!("account.name{} > 0", ".size()".repeat(3000));
        assert!(check(&size).is_some());
        let index = format!("account.tags{} == \"\"", "[0]".repeat(3000));
        assert!(check(&index).is_some());
        let parens = format!("{}true{}", "(".repeat(20_000), ")".repeat(20_000));
        assert!(check(&parens).is_some());
        let plus = format!("{} > 0", vec!["1"; 1000].join(" + "));
        assert!(check(&plus).is_some());
        // Balanced by the parser, or folded: fine at any length.
        assert_eq!(check(&vec!["true"; 100_000].join(" && ")), None);
        assert_eq!(check(&vec!["a == 1"; 10_000].join(" || ")), None);
        assert_eq!(check(&format!("{}true", "!".repeat(40_000))), None);
        let list = format!("account.x in [{}]", vec!["\"v\""; 10_000].join(", "));
        assert_eq!(check(&list), None);
    }

    #[test]
    fn strings_hide_brackets() {
        let text = format!("account.name == \"{}\"", "(".repeat(1000));
        assert_eq!(check(&text), None);
        let raw = format!("account.name == r'{}\\'", "[".repeat(1000));
        assert_eq!(check(&raw), None);
        let triple = format!("account.name == '''{}'''", "('\n".repeat(1000));
        assert_eq!(check(&triple), None);
    }

    #[test]
    fn the_bound_is_exact_for_a_member_chain() {
        // `a` alone is depth 1; every `.f` adds one.
        let at = format!("a{}", ".f".repeat(MAX_DEPTH as usize - 1));
        assert_eq!(estimate(&at), MAX_DEPTH);
        assert_eq!(check(&at), None);
        assert!(check(&format!("{at}.f")).is_some());
    }
}
