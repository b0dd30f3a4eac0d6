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
//! unary := "!" unary | "(" or ")" | LABEL
//! ```

use std::collections::BTreeSet;
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelExpr {
    Label(String, Range<usize>),
    Not(Box<LabelExpr>),
    And(Box<LabelExpr>, Box<LabelExpr>),
    Or(Box<LabelExpr>, Box<LabelExpr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub range: Range<usize>,
}

impl LabelExpr {
    /// Whether a set of labels matches (is denied by) the expression.
    pub fn matches(&self, labels: &BTreeSet<String>) -> bool {
        match self {
            LabelExpr::Label(name, _) => labels.contains(name),
            LabelExpr::Not(e) => !e.matches(labels),
            LabelExpr::And(a, b) => a.matches(labels) && b.matches(labels),
            LabelExpr::Or(a, b) => a.matches(labels) || b.matches(labels),
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
            LabelExpr::And(a, b) | LabelExpr::Or(a, b) => {
                a.collect(out, positive, negated);
                b.collect(out, positive, negated);
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
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            left = LabelExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<LabelExpr, ParseError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            left = LabelExpr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<LabelExpr, ParseError> {
        let range = self.here();
        match self.tokens.get(self.pos).map(|(t, _)| t.clone()) {
            Some(Token::Not) => {
                self.pos += 1;
                Ok(LabelExpr::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() == Some(&Token::Close) {
                    self.pos += 1;
                    Ok(inner)
                } else {
                    Err(ParseError {
                        message: "expected `)`".into(),
                        range: self.here(),
                    })
                }
            }
            Some(Token::Name(name)) => {
                self.pos += 1;
                Ok(LabelExpr::Label(name, range))
            }
            Some(_) => Err(ParseError {
                message: "expected a label name, `!` or `(`".into(),
                range,
            }),
            None => Err(ParseError {
                message: "expected a label name".into(),
                range,
            }),
        }
    }
}

pub fn parse(text: &str) -> Result<LabelExpr, ParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: text.len(),
    };
    let expr = p.or()?;
    if p.pos < p.tokens.len() {
        return Err(ParseError {
            message: "expected `&&`, `||` or the end of the expression".into(),
            range: p.here(),
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
}
