//! Name tables: one per kind, built once, with duplicates reported.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, codes};
use crate::syntax::Sp;

/// Kinds whose names must differ in more than letter case.
const CASE_BLIND_KINDS: &[&str] = &["activation", "destination", "audience"];

/// Names of one kind mapped to the index of their definition in `Syntax`.
/// The first definition of a duplicated name wins; the later ones are
/// reported and ignored.
#[derive(Clone, Debug, Default)]
pub struct NameIndex {
    map: BTreeMap<String, usize>,
}

impl NameIndex {
    pub fn build<'a>(
        kind: &str,
        names: impl IntoIterator<Item = &'a Sp<String>>,
        diags: &mut Vec<Diagnostic>,
    ) -> NameIndex {
        let mut map = BTreeMap::new();
        let mut first: BTreeMap<&str, &Sp<String>> = BTreeMap::new();
        let mut folded: BTreeMap<String, &Sp<String>> = BTreeMap::new();
        let case_blind = CASE_BLIND_KINDS.contains(&kind);
        for (i, name) in names.into_iter().enumerate() {
            // Names that become file names (or, for audiences, column names
            // in case-insensitive engines) must differ in more than case:
            // `Foo` and `foo` would share one state file on macOS.
            if case_blind
                && let Some(other) = folded.get(&name.value.to_ascii_lowercase())
                && other.value != name.value
            {
                diags.push(
                    Diagnostic::new(
                        codes::spec::DUPLICATE_NAME,
                        name.span,
                        format!(
                            "{kind} `{}` differs from {kind} `{}` only in case",
                            name.value, other.value
                        ),
                    )
                    .label("the same name to a case-insensitive file system")
                    .with_secondary(other.span, "the other spelling")
                    .help(format!(
                        "{kind} names become file names, which macOS and Windows (and \
                         some SQL engines) do not tell apart by case; rename one"
                    )),
                );
            }
            folded
                .entry(name.value.to_ascii_lowercase())
                .or_insert(name);
            if let Some(earlier) = first.get(name.as_str()) {
                diags.push(
                    Diagnostic::new(
                        codes::spec::DUPLICATE_NAME,
                        name.span,
                        format!("{kind} `{}` is defined twice", name.value),
                    )
                    .label("defined again here")
                    .with_secondary(earlier.span, "first defined here")
                    .help(format!(
                        "{kind} names are unique across the project; rename or remove one"
                    )),
                );
                continue;
            }
            first.insert(name.as_str(), name);
            map.insert(name.value.clone(), i);
        }
        NameIndex { map }
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.map.get(name).copied()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// (name, index) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.map.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Reports `reference`, made by `from` (such as "activation `x`"), when
/// `index` has no such name, with a suggestion.
pub fn expect(
    index: &NameIndex,
    from: &str,
    reference: &Sp<String>,
    kind: &str,
    code: crate::diag::Code,
    diags: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let found = index.get(&reference.value);
    if found.is_none() {
        diags.push(unknown(code, from, reference, kind, index.names()));
    }
    found
}

/// The "unknown NAME" diagnostic of a reference made by `from` (such as
/// "activation `x`", so the message names the definition it is about),
/// with a did-you-mean over `candidates`.
pub fn unknown<'a>(
    code: crate::diag::Code,
    from: &str,
    reference: &Sp<String>,
    kind: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Diagnostic {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let otherwise = if candidates.is_empty() {
        format!(
            "no {kind} is defined; define `[{}.{}]`",
            kind.replace(' ', "_"),
            reference.value
        )
    } else {
        format!(
            "define it, or use one of the {} defined {kind}s",
            candidates.len()
        )
    };
    Diagnostic::new(
        code,
        reference.span,
        format!("{from}: unknown {kind} `{}`", reference.value),
    )
    .label(format!("no {kind} has this name"))
    .suggest(&reference.value, candidates, otherwise)
}
