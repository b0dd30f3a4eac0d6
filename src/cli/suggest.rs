//! Commands that messages suggest, written out whole (the project folder,
//! the environment, the date the user gave), quoted for a POSIX shell where
//! a word needs it, so they can be pasted as they are.

use std::path::Path;

/// `accord WORDS... DIR [--env ENV] [--today DATE] [EXTRA...]`.
pub fn command(
    words: &[&str],
    dir: &Path,
    env: Option<&str>,
    today: Option<&str>,
    extra: &[&str],
) -> String {
    let dir = dir.display().to_string();
    let mut line: Vec<&str> = vec!["accord"];
    line.extend(words);
    line.push(&dir);
    if let Some(env) = env {
        line.extend(["--env", env]);
    }
    if let Some(today) = today {
        line.extend(["--today", today]);
    }
    line.extend(extra);
    line.iter().map(|w| quoted(w)).collect::<Vec<_>>().join(" ")
}

/// A word as a POSIX shell reads it back: plain when it is only safe
/// characters, else in single quotes.
fn quoted(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+,".contains(&b));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_whole_and_quoted() {
        assert_eq!(
            command(&["check"], Path::new("specs"), Some("prod"), None, &[]),
            "accord check specs --env prod"
        );
        assert_eq!(
            command(
                &["plan"],
                Path::new("my specs"),
                Some("dev"),
                Some("2026-11-28"),
                &["--out", "plan.json"]
            ),
            "accord plan 'my specs' --env dev --today 2026-11-28 --out plan.json"
        );
        assert_eq!(quoted("it's"), r"'it'\''s'");
    }
}
