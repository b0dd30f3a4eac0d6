//! The label expression of a policy's `deny`: `&&`, `||`, `!`, parentheses
//! and label names.
//!
//! Input: the decoded string. Output: a [`LabelExpr`] whose leaves carry the
//! byte range of each label name in the string (so an unknown name is reported
//! at the exact name inside the TOML literal), or a [`ParseError`] with the
//! range of the offending token. A hand-written recursive-descent parser: the
//! grammar is four rules and a dependency would be larger than the code.
//!
//! ```text
//! or    := and ("||" and)*
//! and   := unary ("&&" unary)*
//! unary := "!"* ( "(" or ")" | LABEL )
//! ```
//!
//! Depth is bounded whatever the input, so no input can overflow the stack:
//! `&&` and `||` chains are flat lists, a run of `!` is read in a loop and
//! kept as at most one negation, and only parentheses nest, at most
//! [`MAX_NESTING`] deep (deeper is a [`ParseError`] with `too_deep`).

use std::collections::BTreeSet;
use std::ops::Range;

/// How deep parentheses may nest. Real policies nest two or three levels;
/// the bound keeps the parser and every walk of the tree far from the
/// stack's end on any thread.
pub const MAX_NESTING: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelExpr {
    Label(String, Range<usize>),
    Not(Box<LabelExpr>),
    /// Two or more operands.
    And(Vec<LabelExpr>),
    /// Two or more operands.
    Or(Vec<LabelExpr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub range: Range<usize>,
    /// Parentheses nest deeper than [`MAX_NESTING`].
    pub too_deep: bool,
}

impl LabelExpr {
    /// Whether a set of labels matches (is denied by) the expression.
    pub fn matches(&self, labels: &BTreeSet<String>) -> bool {
        match self {
            LabelExpr::Label(name, _) => labels.contains(name),
            LabelExpr::Not(e) => !e.matches(labels),
            LabelExpr::And(all) => all.iter().all(|e| e.matches(labels)),
            LabelExpr::Or(any) => any.iter().any(|e| e.matches(labels)),
        }
    }

    /// Every label name with its range, in source order.
    pub fn names(&self) -> Vec<(&str, Range<usize>)> {
        let mut out = Vec::new();
        self.collect(&mut out, false, false);
        out
    }

    /// The labels of `present` that the expression mentions outside any
    /// negation: these are the ones to blame in a violation.
    pub fn witnesses(&self, present: &BTreeSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out, true, false);
        let mut names: Vec<String> = out
            .into_iter()
            .map(|(n, _)| n.to_string())
            .filter(|n| present.contains(n))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn collect<'a>(
        &'a self,
        out: &mut Vec<(&'a str, Range<usize>)>,
        positive: bool,
        negated: bool,
    ) {
        match self {
            LabelExpr::Label(name, range) => {
                if !(positive && negated) {
                    out.push((name, range.clone()));
                }
            }
            LabelExpr::Not(e) => e.collect(out, positive, !negated),
            LabelExpr::And(operands) | LabelExpr::Or(operands) => {
                for e in operands {
                    e.collect(out, positive, negated);
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Name(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<(Token, Range<usize>)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let two = |t: Token, second: u8, out: &mut Vec<(Token, Range<usize>)>| {
            if bytes.get(i + 1) == Some(&second) {
                out.push((t, i..i + 2));
                Ok(())
            } else {
                Err(ParseError {
                    message: format!("expected `{}{}`", c as char, second as char),
                    range: i..i + 1,
                    too_deep: false,
                })
            }
        };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'&' => {
                two(Token::And, b'&', &mut out)?;
                i += 2;
            }
            b'|' => {
                two(Token::Or, b'|', &mut out)?;
                i += 2;
            }
            b'!' => {
                out.push((Token::Not, i..i + 1));
                i += 1;
            }
            b'(' => {
                out.push((Token::Open, i..i + 1));
                i += 1;
            }
            b')' => {
                out.push((Token::Close, i..i + 1));
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((Token::Name(text[start..i].to_string()), start..i));
            }
            _ => {
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                return Err(ParseError {
                    message: format!("unexpected `{}`", &text[i..i + len]),
                    range: i..i + len,
                    too_deep: false,
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, Range<usize>)>,
    pos: usize,
    end: usize,
    /// Open parentheses around the current position.
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn here(&self) -> Range<usize> {
        self.tokens
            .get(self.pos)
            .map_or(self.end..self.end, |(_, r)| r.clone())
    }

    fn or(&mut self) -> Result<LabelExpr, ParseError> {
        let mut operands = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            operands.push(self.and()?);
        }
        Ok(match operands.len() {
            1 => operands.remove(0),
            _ => LabelExpr::Or(operands),
        })
    }

    fn and(&mut self) -> Result<LabelExpr, ParseError> {
        let mut operands = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            operands.push(self.unary()?);
        }
        Ok(match operands.len() {
            1 => operands.remove(0),
            _ => LabelExpr::And(operands),
        })
    }

    fn unary(&mut self) -> Result<LabelExpr, ParseError> {
        // `!!a` is `a`: a run of negations is counted, not nested.
        let mut negated = false;
        while self.peek() == Some(&Token::Not) {
            self.pos += 1;
            negated = !negated;
        }
        let range = self.here();
        let operand = match self.tokens.get(self.pos).map(|(t, _)| t.clone()) {
            Some(Token::Open) => {
                if self.nesting == MAX_NESTING {
                    return Err(ParseError {
                        message: format!("parentheses nest more than {MAX_NESTING} deep"),
                        range,
                        too_deep: true,
                    });
                }
                self.pos += 1;
                self.nesting += 1;
                let inner = self.or()?;
                self.nesting -= 1;
                if self.peek() == Some(&Token::Close) {
                    self.pos += 1;
                    inner
                } else {
                    return Err(ParseError {
                        message: "expected `)`".into(),
                        range: self.here(),
                        too_deep: false,
                    });
                }
            }
            Some(Token::Name(name)) => {
                self.pos += 1;
                LabelExpr::Label(name, range)
            }
            Some(_) => {
                return Err(ParseError {
                    message: "expected a label name, `!` or `(`".into(),
                    range,
                    too_deep: false,
                });
            }
            None => {
                return Err(ParseError {
                    message: "expected a label name".into(),
                    range,
                    too_deep: false,
                });
            }
        };
        Ok(if negated {
            LabelExpr::Not(Box::new(operand))
        } else {
            operand
        })
    }
}

pub fn parse(text: &str) -> Result<LabelExpr, ParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: text.len(),
        nesting: 0,
    };
    let expr = p.or()?;
    if p.pos < p.tokens.len() {
        return Err(ParseError {
            message: "expected `&&`, `||` or the end of the expression".into(),
            range: p.here(),
            too_deep: false,
        });
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(labels: &[&str]) -> BTreeSet<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precedence_and_negation() {
        let e = parse("C2 || a && !b").unwrap();
        assert!(e.matches(&set(&["C2"])));
        assert!(e.matches(&set(&["a"])));
        assert!(!e.matches(&set(&["a", "b"])));
        assert_eq!(e.witnesses(&set(&["a", "b", "C2"])), vec!["C2", "a"]);
        let p = parse("(C2 || a) && b").unwrap();
        assert!(!p.matches(&set(&["C2"])));
        assert!(p.matches(&set(&["C2", "b"])));
    }

    #[test]
    fn errors_point_at_the_token() {
        assert_eq!(parse("C2 &").unwrap_err().range, 3..4);
        assert_eq!(parse("C2 ||").unwrap_err().range, 5..5);
        assert_eq!(parse("(C2").unwrap_err().range, 3..3);
        assert_eq!(parse("C2 C3").unwrap_err().range, 3..5);
        assert_eq!(parse("C2 + C3").unwrap_err().range, 3..4);
    }

    #[test]
    fn huge_inputs_neither_overflow_nor_nest() {
        let chain = vec!["a"; 100_000].join(" && ");
        assert!(parse(&chain).unwrap().matches(&set(&["a"])));
        let ors = vec!["a"; 100_000].join(" || ");
        assert!(parse(&ors).unwrap().matches(&set(&["a"])));
        let nots = format!("{}a", "!".repeat(40_000));
        assert_eq!(
            parse(&nots).unwrap(),
            LabelExpr::Label("a".into(), 40_000..40_001)
        );
        let nots = format!("{}a", "!".repeat(40_001));
        assert!(!parse(&nots).unwrap().matches(&set(&["a"])));
        let deep = format!("{}a{}", "(".repeat(20_000), ")".repeat(20_000));
        let error = parse(&deep).unwrap_err();
        assert!(error.too_deep);
        assert_eq!(error.range, MAX_NESTING..MAX_NESTING + 1);
        let ok = format!("{}a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(parse(&ok).is_ok());
    }
}
