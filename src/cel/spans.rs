//! Mapping offsets in a decoded TOML string back to the raw literal.
//!
//! Input: a TOML string literal exactly as it appears in the file, quotes
//! included (`"a \"b\""`, `'...'`, `"""..."""`, `'''...'''`). Output: for each
//! byte offset of the decoded value, where that byte came from in the raw
//! text. The checker reports byte ranges into the decoded CEL expression; the
//! resolve stage maps them through an [`OffsetMap`] and adds the literal's
//! span start to point into the file.
//!
//! Invariants: the maps have one entry per decoded byte plus one for the end;
//! starts are non-decreasing; every range maps inside the raw literal. Text
//! that is not a quoted literal maps to itself, so a caller never panics on
//! an unexpected input.

use std::ops::Range;

/// Where each decoded byte came from in a raw TOML string literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetMap {
    /// `starts[i]`: raw offset where decoded byte `i` begins; one extra entry
    /// for the end of the value (the closing delimiter).
    starts: Vec<usize>,
    /// `ends[i]`: raw offset just past the text that produced decoded byte `i`
    /// (past the whole escape sequence for an escaped character).
    ends: Vec<usize>,
    decoded: String,
}

/// For each byte offset of the decoded string value (and its end), the byte
/// offset in `raw_literal` (the literal including its quotes).
pub fn decoded_to_raw(raw_literal: &str) -> Vec<usize> {
    OffsetMap::new(raw_literal).starts
}

impl OffsetMap {
    pub fn new(raw_literal: &str) -> OffsetMap {
        let mut builder = Builder::default();
        let (open, close, escapes) = delimiters(raw_literal);
        let content_end = raw_literal.len().saturating_sub(close).max(open);
        let mut pos = open;
        // A multi-line string trims the newline right after its opening quotes.
        if open == 3 {
            if raw_literal[pos..content_end].starts_with("\r\n") {
                pos += 2;
            } else if raw_literal[pos..content_end].starts_with('\n') {
                pos += 1;
            }
        }
        while pos < content_end {
            let rest = &raw_literal[pos..content_end];
            let Some(c) = rest.chars().next() else { break };
            if escapes
                && c == '\\'
                && let Some((decoded, len)) = escape(rest, open == 3)
            {
                builder.push_escaped(decoded, pos, pos + len);
                pos += len;
                continue;
            }
            builder.push_plain(c, pos);
            pos += c.len_utf8();
        }
        builder.finish(content_end)
    }

    /// The decoded string value.
    pub fn decoded(&self) -> &str {
        &self.decoded
    }

    /// The raw range that produced the decoded `range`, clamped to the value.
    pub fn raw_range(&self, range: Range<usize>) -> Range<usize> {
        let last = self.starts.len() - 1;
        let start = range.start.min(last);
        let end = range.end.min(last).max(start);
        if end == start {
            return self.starts[start]..self.starts[start];
        }
        self.starts[start]..self.ends[end - 1]
    }
}

/// The lengths of the opening and closing delimiters, and whether escapes
/// are processed, for the four kinds of TOML strings.
fn delimiters(raw: &str) -> (usize, usize, bool) {
    let closed = |quote: &str| raw.len() >= 2 * quote.len() && raw.ends_with(quote);
    if raw.starts_with("\"\"\"") && closed("\"\"\"") {
        (3, 3, true)
    } else if raw.starts_with("'''") && closed("'''") {
        (3, 3, false)
    } else if raw.starts_with('"') && closed("\"") {
        (1, 1, true)
    } else if raw.starts_with('\'') && closed("'") {
        (1, 1, false)
    } else {
        // Not a quoted literal: the text maps to itself.
        (0, 0, false)
    }
}

/// The escape sequence at the start of `rest` (which starts with `\`): the
/// text it decodes to and its raw length. `None` for an invalid escape, which
/// is then taken literally (the TOML parser has already rejected it).
fn escape(rest: &str, multi_line: bool) -> Option<(String, usize)> {
    let bytes = rest.as_bytes();
    let simple = match bytes.get(1)? {
        b'"' => Some('"'),
        b'\\' => Some('\\'),
        b'n' => Some('\n'),
        b't' => Some('\t'),
        b'r' => Some('\r'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'e' => Some('\u{1b}'),
        _ => None,
    };
    if let Some(c) = simple {
        return Some((c.to_string(), 2));
    }
    let hex = |digits: usize| -> Option<(String, usize)> {
        let text = rest.get(2..2 + digits)?;
        let value = u32::from_str_radix(text, 16).ok()?;
        Some((char::from_u32(value)?.to_string(), 2 + digits))
    };
    match bytes[1] {
        b'x' => hex(2),
        b'u' => hex(4),
        b'U' => hex(8),
        b' ' | b'\t' | b'\r' | b'\n' if multi_line => {
            // A line-ending backslash: only whitespace may follow on its line,
            // and it trims every whitespace character and newline after it.
            let after = &rest[1..];
            let line_end = after.find('\n')?;
            if !after[..line_end]
                .chars()
                .all(|c| c == ' ' || c == '\t' || c == '\r')
            {
                return None;
            }
            let trimmed = after.trim_start_matches([' ', '\t', '\r', '\n']);
            Some((String::new(), rest.len() - trimmed.len()))
        }
        _ => None,
    }
}

#[derive(Default)]
struct Builder {
    starts: Vec<usize>,
    ends: Vec<usize>,
    decoded: String,
}

impl Builder {
    fn push_plain(&mut self, c: char, raw: usize) {
        for k in 0..c.len_utf8() {
            self.starts.push(raw + k);
            self.ends.push(raw + k + 1);
        }
        self.decoded.push(c);
    }

    /// Every byte of an escaped character maps to the whole escape sequence.
    fn push_escaped(&mut self, text: String, raw_start: usize, raw_end: usize) {
        for _ in 0..text.len() {
            self.starts.push(raw_start);
            self.ends.push(raw_end);
        }
        self.decoded.push_str(&text);
    }

    fn finish(mut self, end: usize) -> OffsetMap {
        self.starts.push(end);
        self.ends.push(end);
        OffsetMap {
            starts: self.starts,
            ends: self.ends,
            decoded: self.decoded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{OffsetMap, decoded_to_raw};

    /// Decodes `raw` with the real TOML parser and checks that our decoding
    /// agrees, and that each plain decoded character maps onto itself.
    fn check(raw: &str) -> OffsetMap {
        let doc = format!("v = {raw}\n");
        let value: toml::Table = toml::from_str(&doc).unwrap_or_else(|e| panic!("{raw}: {e}"));
        let expected = value["v"].as_str().expect("a string");
        let map = OffsetMap::new(raw);
        assert_eq!(map.decoded(), expected, "decoding {raw:?}");
        assert_eq!(map.starts.len(), expected.len() + 1);
        assert!(
            map.starts.windows(2).all(|w| w[0] <= w[1]),
            "monotonic {raw:?}"
        );
        for (i, c) in expected.char_indices() {
            let r = map.raw_range(i..i + c.len_utf8());
            assert!(r.end <= raw.len());
            let raw_text = &raw[r.clone()];
            if !raw_text.starts_with('\\') {
                assert_eq!(raw_text, c.to_string(), "{raw:?} byte {i}");
            }
        }
        map
    }

    #[test]
    fn basic_strings_map_escapes_to_their_sequences() {
        let raw = r#""a.x == \"b\" && \u00e9 == '\\'""#;
        let map = check(raw);
        let decoded = map.decoded();
        let quote = decoded.find('"').expect("quote");
        assert_eq!(&raw[map.raw_range(quote..quote + 1)], "\\\"");
        let e = decoded.find('é').expect("é");
        assert_eq!(&raw[map.raw_range(e..e + 2)], "\\u00e9");
        let b = decoded.find("\"b\"").expect("b");
        assert_eq!(&raw[map.raw_range(b..b + 3)], "\\\"b\\\"");
        check(r#""tab\there\nnl \U0001F600 end""#);
    }

    #[test]
    fn literal_strings_are_shifted_by_the_quote() {
        let raw = r#"'account.name == "x\d"'"#;
        let map = check(raw);
        assert_eq!(decoded_to_raw(raw)[0], 1);
        assert_eq!(&raw[map.raw_range(0..7)], "account");
        assert_eq!(*decoded_to_raw(raw).last().expect("end"), raw.len() - 1);
    }

    #[test]
    fn multi_line_basic_strings_trim_the_first_newline_and_line_continuations() {
        let raw = "\"\"\"\naccount.a \\\n    && é \\t\n  x\"\"\"";
        let map = check(raw);
        let amp = map.decoded().find("&&").expect("&&");
        assert_eq!(&raw[map.raw_range(amp..amp + 2)], "&&");
        let x = map.decoded().find('x').expect("x");
        assert_eq!(&raw[map.raw_range(x..x + 1)], "x");
        check("\"\"\"one \"quote\" \"\"here\"\"\"\"");
        check("\"\"\"\r\nwindows\r\nline\"\"\"");
    }

    #[test]
    fn multi_line_literal_strings_keep_backslashes() {
        let raw = "'''\naccount.industry in [\"a\"]\n  && p.jobTitle.matches(\"(?i)\\\\bVP\")'''";
        let map = check(raw);
        let m = map.decoded().find("matches").expect("matches");
        assert_eq!(&raw[map.raw_range(m..m + 7)], "matches");
        check("'''no newline'''");
    }

    #[test]
    fn empty_ranges_and_out_of_bounds_are_clamped() {
        let map = OffsetMap::new("\"ab\"");
        assert_eq!(map.raw_range(0..0), 1..1);
        assert_eq!(map.raw_range(2..2), 3..3);
        assert_eq!(map.raw_range(1..99), 2..3);
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 5..1;
        assert_eq!(map.raw_range(reversed), 3..3);
    }

    #[test]
    fn unquoted_text_maps_to_itself() {
        assert_eq!(decoded_to_raw("ab"), vec![0, 1, 2]);
        assert_eq!(decoded_to_raw(""), vec![0]);
        assert_eq!(decoded_to_raw("\""), vec![0, 1]);
        assert_eq!(decoded_to_raw("'"), vec![0, 1]);
    }
}
