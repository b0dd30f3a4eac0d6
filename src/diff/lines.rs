//! Line diffs of definitions: what changed in a rule, line by line, with
//! the unchanged lines around it, as `- `, `+ ` and `  ` lines.

use similar::{ChangeTag, TextDiff};

/// The lines of `old` and `new`, each marked `- ` (removed), `+ ` (added)
/// or `  ` (kept): a one-line rule shows as its old and new line.
pub fn diff(old: &str, new: &str) -> Vec<String> {
    TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|change| {
            let mark = match change.tag() {
                ChangeTag::Delete => "-",
                ChangeTag::Insert => "+",
                ChangeTag::Equal => " ",
            };
            format!("{mark} {}", change.value().trim_end_matches('\n'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn only_the_changed_lines_are_marked() {
        let old = "a >= 1\n&& b == 2\n&& c";
        let new = "a >= 1\n&& b == 3\n&& c";
        assert_eq!(
            diff(old, new),
            ["  a >= 1", "- && b == 2", "+ && b == 3", "  && c"]
        );
        assert_eq!(diff("x", "y"), ["- x", "+ y"]);
    }
}
