//! Identity normalisation in SQL: the rules of `semantics::normalise` (the
//! reference, on values), spelled in a dialect. Which rule applies to a
//! column, and how a mapping is prepared for it, is decided there.

pub use crate::semantics::normalise::{applies_to_raw, prepare, rule};

use super::dialect::Dialect;
use crate::catalog::Normalise;
use crate::semantics::normalise;

/// The gmail rule in SQL over an expression, as `normalise::gmail`: an
/// address with one `@` and a gmail domain loses the dots and `+suffix` of
/// its local part and gets the domain `gmail.com`. The pattern is anchored
/// and has no backslash, so it reads the same in every dialect.
pub fn gmail_sql(d: &dyn Dialect, email: &str) -> String {
    let e = format!("LOWER({})", d.trim(email));
    let local = d.split_part(&e, "@", 1);
    let domains = normalise::GMAIL_DOMAINS
        .map(|domain| domain.replace('.', "[.]"))
        .join("|");
    format!(
        "(CASE WHEN {} THEN REPLACE({}, '.', '') || '@gmail.com' ELSE {e} END)",
        d.regex_match(&e, &d.string(&format!("^[^@]*@({domains})$"))),
        d.split_part(&local, "+", 1)
    )
}

/// The normalisation of a raw value in SQL.
pub fn sql(d: &dyn Dialect, rule: Normalise, v: &str) -> String {
    match rule {
        Normalise::None => v.to_string(),
        Normalise::Trim => d.trim(v),
        Normalise::EmailLower => format!("LOWER({})", d.trim(v)),
        Normalise::EmailGmail => gmail_sql(d, v),
        Normalise::Domain => {
            // Anchored patterns without backslashes: the same in every
            // dialect whether REGEXP_REPLACE replaces the first match or all.
            let scheme = format!(
                "REGEXP_REPLACE(LOWER({}), {}, '')",
                d.trim(v),
                d.string("^[a-z][a-z0-9+.-]*://")
            );
            let path = format!("REGEXP_REPLACE({scheme}, {}, '')", d.string("/.*$"));
            format!("REGEXP_REPLACE({path}, {}, '')", d.string("^www[.]"))
        }
        Normalise::PhoneE164 => phone_sql(d, v),
    }
}

/// E.164 in SQL, as `normalise::phone`: `+` then the digits,
/// NULL (a missing identity) unless there are 8 to 15 and the first is not
/// 0. The pattern has no backslash, so it reads the same in every dialect.
pub fn phone_sql(d: &dyn Dialect, v: &str) -> String {
    let digits = d.digits_only(v);
    format!(
        "(CASE WHEN {} THEN '+' || {digits} END)",
        d.regex_match(&digits, &d.string("^[1-9][0-9]{7,14}$"))
    )
}

/// An email normalised by `normalised` (SQL over `email`), NULL when
/// nothing is left of it, as the interpreter's `hash_email`.
pub fn present_sql(normalised: &str) -> String {
    format!("(CASE WHEN {normalised} <> '' THEN {normalised} END)")
}
