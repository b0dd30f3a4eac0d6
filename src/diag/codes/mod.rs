//! The registry of diagnostic codes.
//!
//! Each code is declared exactly once, with its default severity, a one-line
//! title and its `accord explain` page (`docs/codes/CODE.md`). Codes are never
//! reused: a retired code stays in the registry, documented as retired.
//! The areas: `A` spec errors, `G` governance, `P` plan and guardrails, `R` run.

use super::Severity;

/// A stable diagnostic code such as `A0101`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(pub &'static str);

impl Code {
    pub fn as_str(self) -> &'static str {
        self.0
    }

    pub fn info(self) -> &'static CodeInfo {
        lookup(self.0).expect("every Code constant is registered")
    }
}

/// One entry of the registry.
#[derive(Debug)]
pub struct CodeInfo {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// The `accord explain` page: what it does, why it matters, an example.
    pub explain: &'static str,
}

/// Declares codes: constants plus the area's `CODES` table. The explain page
/// of code `X` is `docs/codes/X.md`, embedded in the binary; a code without a
/// page does not compile.
macro_rules! declare_codes {
    ($( $name:ident = $code:literal, $sev:ident, $title:literal; )*) => {
        $( pub const $name: $crate::diag::Code = $crate::diag::Code($code); )*
        pub static CODES: &[$crate::diag::CodeInfo] = &[
            $( $crate::diag::CodeInfo {
                code: $code,
                name: stringify!($name),
                severity: $crate::diag::Severity::$sev,
                title: $title,
                explain: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/codes/", $code, ".md")),
            }, )*
        ];
    };
}

pub mod cel;
pub mod governance;
pub mod plan;
pub mod render;
pub mod run;
pub mod spec;

/// Every registered code, in code order.
pub fn all() -> impl Iterator<Item = &'static CodeInfo> {
    let mut all: Vec<&'static CodeInfo> = [
        spec::CODES,
        cel::CODES,
        governance::CODES,
        plan::CODES,
        render::CODES,
        run::CODES,
    ]
    .into_iter()
    .flatten()
    .collect();
    all.sort_by_key(|c| c.code);
    all.into_iter()
}

pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    all().find(|c| c.code.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_well_formed_and_documented() {
        let mut seen = BTreeSet::new();
        for info in super::all() {
            assert!(seen.insert(info.code), "{} declared twice", info.code);
            let (area, digits) = info.code.split_at(1);
            assert!(matches!(area, "A" | "G" | "P" | "R"), "{}", info.code);
            assert!(digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()));
            assert!(
                info.explain.contains("## What it does") && info.explain.contains("## Example"),
                "{} needs an explain page with what it does and an example",
                info.code
            );
        }
    }
}
