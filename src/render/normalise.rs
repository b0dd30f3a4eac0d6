//! Identity normalisation of exported values, per the destination's rules
//! (`catalog::Normalise`), in Rust (the reference) and in SQL.
//!
//! Input: a mapping column and its destination type. Output: the rule that
//! applies, the mapping's typed tree prepared for it (`hash_email` under the
//! gmail rule becomes `hash_email_gmail`), and the normalisation of a raw
//! (unhashed) identity value. An identity column is normalised before it is
//! sent or hashed; a column that is not an identity of the destination is
//! sent as mapped.

use crate::catalog::{self, Normalise};
use crate::cel::eval::Value;
use crate::cel::typed::{Node, Typed};
use crate::resolve::Transform;

use super::dialect::Dialect;

/// The rule of `column` for the destination type, `None` when it is not an
/// identity column of that type.
pub fn rule(destination_type: &str, column: &str) -> Normalise {
    catalog::lookup(destination_type)
        .and_then(|t| t.identities.iter().find(|i| i.column == column))
        .map_or(Normalise::None, |i| i.normalise)
}

/// The mapping prepared for its rule: under the gmail rule, `hash_email`
/// hashes the gmail-normalised address.
pub fn prepare(mut tree: Typed, rule: Normalise) -> Typed {
    if rule == Normalise::EmailGmail {
        rename(&mut tree, "hash_email", "hash_email_gmail");
    }
    tree
}

fn rename(t: &mut Typed, from: &str, to: &str) {
    match &mut t.node {
        Node::Call { func, args } => {
            if func == from {
                *func = to.to_string();
            }
            for a in args {
                rename(a, from, to);
            }
        }
        Node::Field { base, .. } | Node::Link { base, .. } => rename(base, from, to),
        Node::Not(a) | Node::Neg(a) => rename(a, from, to),
        Node::And(a, b)
        | Node::Or(a, b)
        | Node::Cmp(_, a, b)
        | Node::Arith(_, a, b)
        | Node::In(a, b) => {
            rename(a, from, to);
            rename(b, from, to);
        }
        Node::Cond(a, b, c) => {
            rename(a, from, to);
            rename(b, from, to);
            rename(c, from, to);
        }
        Node::List(items) => items.iter_mut().for_each(|i| rename(i, from, to)),
        Node::Comp {
            range,
            filter,
            body,
            ..
        } => {
            rename(range, from, to);
            if let Some(f) = filter {
                rename(f, from, to);
            }
            rename(body, from, to);
        }
        _ => {}
    }
}

/// Whether a raw value of a column with `transform` gets normalised: hashed
/// values are normalised inside the hash already.
pub fn applies_to_raw(transform: Transform, rule: Normalise) -> bool {
    transform == Transform::None && rule != Normalise::None
}

/// The gmail rule on a trimmed, lower-cased address: for `gmail.com`, the
/// local part loses its dots and any `+suffix`.
pub fn gmail(email: &str) -> String {
    let e = email.trim_ascii().to_lowercase();
    match e.split_once('@') {
        Some((local, "gmail.com")) => {
            let local = local.split('+').next().unwrap_or(local).replace('.', "");
            format!("{local}@gmail.com")
        }
        _ => e,
    }
}

/// A domain: trimmed, lower-cased, without scheme, path or leading `www.`.
pub fn domain(value: &str) -> String {
    let mut d = value.trim_ascii().to_lowercase();
    if let Some(i) = d.find("://") {
        let scheme = &d[..i];
        if scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
            && scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
        {
            d = d[i + 3..].to_string();
        }
    }
    if let Some(i) = d.find('/') {
        d.truncate(i);
    }
    d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
}

/// The reference normalisation of a raw value.
pub fn value(rule: Normalise, v: Value) -> Value {
    let Value::Str(s) = v else { return v };
    Value::Str(match rule {
        Normalise::None => s,
        Normalise::Trim => s.trim_ascii().to_string(),
        Normalise::EmailLower => s.trim_ascii().to_lowercase(),
        Normalise::EmailGmail => gmail(&s),
        Normalise::Domain => domain(&s),
        Normalise::PhoneE164 => match crate::cel::eval::normalise_phone(&s) {
            Some(phone) => phone,
            None => return Value::Null,
        },
    })
}

/// The gmail rule in SQL over an expression.
pub fn gmail_sql(d: &dyn Dialect, email: &str) -> String {
    let e = format!("LOWER({})", d.trim(email));
    let local = d.split_part(&e, "@", 1);
    format!(
        "(CASE WHEN {} = 'gmail.com' THEN REPLACE({}, '.', '') || '@gmail.com' ELSE {e} END)",
        d.email_domain(&e),
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

/// E.164 in SQL, as `cel::eval::normalise_phone`: `+` then the digits,
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

#[cfg(test)]
mod tests {
    use super::{domain, gmail};

    #[test]
    fn gmail_drops_dots_and_suffix_only_for_gmail() {
        assert_eq!(gmail(" Jane.Doe+ads@GMail.com "), "janedoe@gmail.com");
        assert_eq!(gmail("jane.doe+x@example.com"), "jane.doe+x@example.com");
    }

    #[test]
    fn domains_lose_scheme_path_and_www() {
        assert_eq!(domain(" HTTPS://www.Example.com/about "), "example.com");
        assert_eq!(domain("example.com"), "example.com");
        assert_eq!(domain("wwwx.example.com"), "wwwx.example.com");
    }
}
