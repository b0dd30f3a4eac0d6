//! Identity normalisation of exported values, per the destination's rules
//! (`catalog::Normalise`): the reference, on values. The rendered SQL
//! spells the same rules per dialect (`render::normalise`) and reads which
//! rule applies from here.
//!
//! Input: a mapping column and its destination type. Output: the rule that
//! applies, the mapping's typed tree prepared for it (`hash_email` under the
//! gmail rule becomes `hash_email_gmail`), and the normalisation of a raw
//! (unhashed) identity value. An identity column is normalised before it is
//! sent or hashed; a column that is not an identity of the destination is
//! sent as mapped.

use std::sync::Arc;

use super::eval::Value;
use crate::catalog::{self, Normalise};
use crate::cel::typed::{Node, Typed};
use crate::resolve::Transform;

/// The rule of `column` for the destination type, `None` when it is not an
/// identity column of that type.
pub fn rule(destination_type: &str, column: &str) -> Normalise {
    catalog::lookup(destination_type)
        .and_then(|t| t.identities.iter().find(|i| i.column == column))
        .map_or(Normalise::None, |i| i.normalise)
}

/// The mapping prepared for its rule: under the gmail rule, `hash_email`
/// hashes the gmail-normalised address.
/// The checked tree is shared: only a tree that changes is copied.
pub fn prepare(mut tree: Arc<Typed>, rule: Normalise) -> Arc<Typed> {
    if rule == Normalise::EmailGmail {
        rename(Arc::make_mut(&mut tree), "hash_email", "hash_email_gmail");
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

/// An email before hashing or sending: trimmed (of ASCII whitespace, as
/// the SQL: a CSV line's `\r` too) and lower-cased.
pub fn email(s: &str) -> String {
    s.trim_ascii().to_lowercase()
}

/// The domains the gmail rule applies to: Google serves `googlemail.com`
/// as the same mailboxes as `gmail.com`.
pub const GMAIL_DOMAINS: [&str; 2] = ["gmail.com", "googlemail.com"];

/// The gmail rule on a trimmed, lower-cased address with one `@`: for
/// `gmail.com` and `googlemail.com`, the local part loses its dots and any
/// `+suffix` and the domain becomes `gmail.com`, so every spelling of one
/// mailbox hashes alike. Any other address is only trimmed and lower-cased.
pub fn gmail(address: &str) -> String {
    let e = email(address);
    match e.split_once('@') {
        // The domain is all after the first `@`: an address with a second
        // `@` is not a gmail address (as the SQL's anchored pattern).
        Some((local, domain)) if GMAIL_DOMAINS.contains(&domain) => {
            let local = local.split('+').next().unwrap_or(local).replace('.', "");
            format!("{local}@gmail.com")
        }
        _ => e,
    }
}

/// E.164 before hashing: `+` then the digits only; `None` when that is not
/// an E.164 number (8 to 15 digits, the first not 0).
pub fn phone(s: &str) -> Option<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let valid = (8..=15).contains(&digits.len()) && !digits.starts_with('0');
    valid.then(|| format!("+{digits}"))
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
        Normalise::EmailLower => email(&s),
        Normalise::EmailGmail => gmail(&s),
        Normalise::Domain => domain(&s),
        Normalise::PhoneE164 => match phone(&s) {
            Some(phone) => phone,
            None => return Value::Null,
        },
    })
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
    fn googlemail_is_gmail() {
        assert_eq!(gmail("Jane.Doe+ads@GoogleMail.com"), "janedoe@gmail.com");
        // A second `@`: not an address at gmail.com, left as it is.
        assert_eq!(gmail("a.b@gmail.com@x.example"), "a.b@gmail.com@x.example");
        assert_eq!(gmail("a.b@x@gmail.com"), "a.b@x@gmail.com");
    }

    #[test]
    fn domains_lose_scheme_path_and_www() {
        assert_eq!(domain(" HTTPS://www.Example.com/about "), "example.com");
        assert_eq!(domain("example.com"), "example.com");
        assert_eq!(domain("wwwx.example.com"), "wwwx.example.com");
    }
}
