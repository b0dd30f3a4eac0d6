//! What a definition name may be.
//!
//! Names leave the spec: activation and destination names become file and
//! folder names (`exports/<activation>.sql`, run state, delivered files),
//! audience names become SQL columns and list names at vendors, label and
//! computed attribute names are written inside expressions. So a name is
//! checked once, here, against one character set that is safe in all of
//! those places: ASCII letters, digits, `_` and `-`, not starting with `-`
//! (it would read as a command-line option), at most [`MAX_LEN`] bytes.
//! That set has no path separator, no dot (so no `.`, `..` or hidden file),
//! no space and no control character, whatever the platform.
//!
//! Names that are written inside expressions (labels in `deny`, computed
//! attributes in CEL) must also be identifiers: no `-`, no leading digit.

use crate::diag::{Diagnostic, codes};

use super::reader::{Cx, Sp};

/// The longest name: file systems limit a file name to 255 bytes, and a name
/// is a part of longer file names (`<activation>.consent.sql`).
pub const MAX_LEN: usize = 128;

/// How the name is used, which decides the characters it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameUse {
    /// A name that may become a file name or a SQL identifier.
    File,
    /// A name written bare inside an expression.
    Identifier,
}

/// The use of the names of a `[KIND.NAME]` definition.
pub fn use_of(kind: &str) -> NameUse {
    match kind {
        "label" | "computed" => NameUse::Identifier,
        _ => NameUse::File,
    }
}

/// Why `name` is not allowed, or `None` when it is.
pub fn problem(name: &str, name_use: NameUse) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".into());
    }
    if name.len() > MAX_LEN {
        return Some(format!(
            "the name is {} bytes long, more than {MAX_LEN}",
            name.len()
        ));
    }
    // The most telling reason first: a path separator or a name that is a
    // path of its own says why the name is dangerous, not just unusual.
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return Some(format!(
            "`{}` is a path separator: the name would be a path",
            c.escape_default()
        ));
    }
    if name == "." || name == ".." {
        return Some(format!("`{name}` names a folder, not a file"));
    }
    if name.starts_with('.') {
        return Some("a leading `.` would make a hidden file".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Some(match c {
            '.' => "`.` is not allowed in a name".into(),
            c if c.is_control() => format!("`{}` is a control character", c.escape_default()),
            ' ' => "a space is not allowed in a name".into(),
            c => format!("`{c}` is not allowed in a name"),
        });
    }
    match name_use {
        NameUse::File if name.starts_with('-') => Some("the name starts with `-`".into()),
        NameUse::Identifier if name.contains('-') => {
            Some("`-` is not allowed in a name used in expressions".into())
        }
        NameUse::Identifier if name.starts_with(|c: char| c.is_ascii_digit()) => {
            Some("a name used in expressions cannot start with a digit".into())
        }
        _ => None,
    }
}

/// A name of the allowed characters close to `name`, to suggest.
fn suggestion(name: &str, name_use: NameUse) -> Option<String> {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '_' => c,
            '-' if name_use == NameUse::File => '-',
            _ => '_',
        })
        .collect();
    // Leading separators or dots (`../../x`) carry no meaning: drop them.
    out = out.trim_start_matches(['_', '-']).to_string();
    out.truncate(MAX_LEN);
    if name_use == NameUse::Identifier && out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    (!out.is_empty() && problem(&out, name_use).is_none()).then_some(out)
}

/// How messages call a definition of `kind`.
pub fn kind_words(kind: &str) -> &str {
    match kind {
        "marketing_action" => "marketing action",
        "consent" => "consent policy",
        "computed" => "computed attribute",
        kind => kind,
    }
}

/// Reports `A0010` when the name of a `kind` definition is not allowed.
pub fn check(cx: &mut Cx<'_>, kind: &str, name: &Sp<String>) {
    report(cx, kind, None, name);
}

/// Reports `A0010` when a part of a split of `audience` has a name that is
/// not allowed: `AUDIENCE.PART` is an audience name of its own.
pub fn check_part(cx: &mut Cx<'_>, audience: &Sp<String>, part: &Sp<String>) {
    report(cx, "split part", Some(audience), part);
}

fn report(cx: &mut Cx<'_>, kind: &str, audience: Option<&Sp<String>>, name: &Sp<String>) {
    let name_use = use_of(kind);
    let described = kind_words(kind);
    let Some(problem) = problem(&name.value, name_use) else {
        return;
    };
    let subject = if let Some(audience) = audience {
        format!(
            "audience `{}` has a split part `{}` whose name is not allowed",
            audience.value,
            name.value.escape_default()
        )
    } else if name.value.is_empty() {
        let article = if described.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {described} has an empty name")
    } else {
        format!(
            "{described} `{}` has a name that is not allowed",
            name.value.escape_default()
        )
    };
    let allowed = match name_use {
        NameUse::File => {
            "names are made of ASCII letters, digits, `_` and `-` (not first), \
                          because they become file names and SQL identifiers"
        }
        NameUse::Identifier => {
            "this name is written inside expressions, so it is made of \
                                ASCII letters, digits and `_`, not starting with a digit"
        }
    };
    let help = match suggestion(&name.value, name_use) {
        Some(s) => format!("rename it, for example to `{s}`: {allowed}"),
        None => format!("rename it: {allowed}"),
    };
    cx.report(
        Diagnostic::new(codes::spec::INVALID_NAME, name.span, subject)
            .label(problem)
            .help(help),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_a_folder_are_refused() {
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\0b", "a\nb", "-x", "é", "a b",
        ] {
            assert!(problem(bad, NameUse::File).is_some(), "{bad:?}");
        }
        assert!(problem(&"a".repeat(MAX_LEN + 1), NameUse::File).is_some());
        for good in [
            "B2B_ICP",
            "icp-linkedin",
            "2026_q4",
            "_x",
            &"a".repeat(MAX_LEN),
        ] {
            assert_eq!(problem(good, NameUse::File), None, "{good:?}");
        }
    }

    #[test]
    fn identifiers_have_no_dash_and_no_leading_digit() {
        assert!(problem("partner-restricted", NameUse::Identifier).is_some());
        assert!(problem("9lives", NameUse::Identifier).is_some());
        assert_eq!(problem("partner_restricted", NameUse::Identifier), None);
    }

    #[test]
    fn suggestions_are_allowed_names() {
        assert_eq!(
            suggestion("../../../escape_act", NameUse::File).as_deref(),
            Some("escape_act")
        );
        assert_eq!(suggestion("", NameUse::File), None);
        assert_eq!(
            suggestion("a-b", NameUse::Identifier).as_deref(),
            Some("a_b")
        );
    }
}
