//! The delivery keys of an API destination: `endpoint`, `rate_limit`,
//! `lists` and `list_prefix`.
//!
//! Input: a destination's TOML table. Output: the keys as typed values with
//! the spans of their keys and of every part, so a check points at the exact
//! value (a `per` that is not a duration, an unknown key inside
//! `rate_limit`). The shape of each value is judged here; whether the type
//! takes the keys at all, and how they compare with the catalog, is judged
//! in `resolve`.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::reader::{Cx, Sp, as_int, as_string};
use crate::diag::{Diagnostic, codes};
use crate::source::Span;

/// A value with the span of its key, for "this key is unknown here".
#[derive(Clone, Debug)]
pub struct Keyed<T> {
    pub key: Span,
    pub value: Sp<T>,
}

/// `rate_limit = { calls, per, concurrent, daily }` as written; each part
/// a positive whole number (`per` in seconds). `calls` and `per` come
/// together or not at all.
#[derive(Clone, Debug, Default)]
pub struct RateLimitSpec {
    pub calls: Option<Sp<u32>>,
    pub per: Option<Sp<u32>>,
    pub concurrent: Option<Sp<u32>>,
    pub daily: Option<Sp<u32>>,
}

/// `lists`: audience reference -> vendor list id, in the order written.
pub type PinnedLists = Vec<(Sp<String>, Sp<String>)>;

#[derive(Clone, Debug, Default)]
pub struct DeliveryKeys {
    pub endpoint: Option<Keyed<String>>,
    pub rate_limit: Option<Keyed<RateLimitSpec>>,
    pub lists: Option<Keyed<PinnedLists>>,
    pub list_prefix: Option<Keyed<String>>,
}

pub const KEYS: &[&str] = &["endpoint", "rate_limit", "lists", "list_prefix"];
pub const RATE_LIMIT_KEYS: &[&str] = &["calls", "per", "concurrent", "daily"];

impl DeliveryKeys {
    /// The keys written, with their spans, in `KEYS` order.
    pub fn written(&self) -> Vec<(&'static str, Span)> {
        [
            ("endpoint", self.endpoint.as_ref().map(|k| k.key)),
            ("rate_limit", self.rate_limit.as_ref().map(|k| k.key)),
            ("lists", self.lists.as_ref().map(|k| k.key)),
            ("list_prefix", self.list_prefix.as_ref().map(|k| k.key)),
        ]
        .into_iter()
        .filter_map(|(key, span)| span.map(|s| (key, s)))
        .collect()
    }
}

/// Reads the delivery keys of `table`; `what` names the destination in
/// messages. Keys with a value of the wrong shape are reported and left out.
pub fn read(cx: &mut Cx<'_>, table: &DeTable<'_>, what: &str) -> DeliveryKeys {
    DeliveryKeys {
        endpoint: keyed(cx, table, "endpoint", as_string),
        rate_limit: keyed(cx, table, "rate_limit", |cx, v| rate_limit(cx, v, what)),
        lists: keyed(cx, table, "lists", |cx, v| lists(cx, v, what)),
        list_prefix: keyed(cx, table, "list_prefix", as_string),
    }
}

fn keyed<T>(
    cx: &mut Cx<'_>,
    table: &DeTable<'_>,
    key: &str,
    read: impl FnOnce(&mut Cx<'_>, &Spanned<DeValue<'_>>) -> Option<Sp<T>>,
) -> Option<Keyed<T>> {
    let (k, v) = table.iter().find(|(k, _)| k.get_ref() == key)?;
    let key = cx.span(k);
    read(cx, v).map(|value| Keyed { key, value })
}

fn rate_limit(
    cx: &mut Cx<'_>,
    value: &Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Sp<RateLimitSpec>> {
    let DeValue::Table(entries) = value.get_ref() else {
        cx.wrong_type(value, "a table such as { calls = 50, per = \"20s\" }");
        return None;
    };
    let span = cx.span(value);
    let mut spec = RateLimitSpec::default();
    for (k, v) in entries.iter() {
        match k.get_ref().as_ref() {
            "calls" => spec.calls = positive(cx, v, "calls", what),
            "per" => spec.per = seconds(cx, v, what),
            "concurrent" => spec.concurrent = positive(cx, v, "concurrent", what),
            "daily" => spec.daily = positive(cx, v, "daily", what),
            other => cx.report(unknown_part(other, cx.span(k), what)),
        }
    }
    let calls_given = entries.iter().any(|(k, _)| k.get_ref() == "calls");
    let per_given = entries.iter().any(|(k, _)| k.get_ref() == "per");
    if calls_given != per_given {
        let (given, missing) = if calls_given {
            ("calls", "per")
        } else {
            ("per", "calls")
        };
        cx.report(
            Diagnostic::new(
                codes::spec::MISSING_KEY,
                span,
                format!("{what}: `rate_limit` has `{given}` without `{missing}`"),
            )
            .label(format!("`{missing}` is missing"))
            .help("a rate is `calls` per `per`: write both, e.g. `calls = 50, per = \"20s\"`"),
        );
        return None;
    }
    Some(Sp::new(spec, span))
}

fn unknown_part(key: &str, span: Span, what: &str) -> Diagnostic {
    let list = RATE_LIMIT_KEYS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Diagnostic::new(
        codes::spec::UNKNOWN_KEY,
        span,
        format!("{what}: `rate_limit` has no `{key}`"),
    )
    .label("not a part of a rate limit; it is ignored")
    .suggest(
        key,
        RATE_LIMIT_KEYS.iter().copied(),
        format!("a rate limit takes {list}"),
    )
}

/// A whole number from 1 to `u32::MAX`.
fn positive(
    cx: &mut Cx<'_>,
    value: &Spanned<DeValue<'_>>,
    key: &str,
    what: &str,
) -> Option<Sp<u32>> {
    let number = as_int(cx, value)?;
    match u32::try_from(number.value) {
        Ok(n) if n > 0 => Some(Sp::new(n, number.span)),
        _ => {
            cx.report(
                Diagnostic::new(
                    codes::spec::INVALID_VALUE,
                    number.span,
                    format!(
                        "{what}: `{key}` of `rate_limit` must be a whole number from 1 to {}",
                        u32::MAX
                    ),
                )
                .label(format!("{} is out of range", number.value))
                .help("a limit of zero would never send anything; leave the part out to keep the catalog's"),
            );
            None
        }
    }
}

/// `per`: a duration such as `"20s"` or `"1m"`, in whole seconds.
fn seconds(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>, what: &str) -> Option<Sp<u32>> {
    let text = as_string(cx, value)?;
    let micros = crate::duration::parse_micros(&text.value);
    let secs = micros
        .as_ref()
        .ok()
        .and_then(|m| u32::try_from(m / 1_000_000).ok());
    if let Some(secs) = secs {
        return Some(Sp::new(secs, text.span));
    }
    let reason = match micros {
        Err(e) => e.to_string(),
        Ok(_) => "it is longer than a rate window can be".to_string(),
    };
    cx.report(
        Diagnostic::new(
            codes::spec::INVALID_VALUE,
            text.span,
            format!(
                "{what}: `per = \"{}\"` of `rate_limit` is not a duration",
                text.value
            ),
        )
        .label(reason)
        .help("write a whole number and one unit, e.g. `per = \"20s\"` or `per = \"1m\"`"),
    );
    None
}

fn lists(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>, what: &str) -> Option<Sp<PinnedLists>> {
    let DeValue::Table(entries) = value.get_ref() else {
        cx.wrong_type(value, "a table of audience = \"list id\"");
        return None;
    };
    let pinned = entries
        .iter()
        .filter_map(|(k, v)| {
            let id = list_id(cx, v, what)?;
            Some((Sp::new(k.get_ref().to_string(), cx.span(k)), id))
        })
        .collect();
    Some(Sp::new(pinned, cx.span(value)))
}

/// A list id is text even when it looks like a number: vendors' ids are
/// opaque, and `1042` and `"1042"` must not mean two things.
fn list_id(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>, what: &str) -> Option<Sp<String>> {
    let id = as_string(cx, value)?;
    if id.value.trim().is_empty() {
        cx.report(
            Diagnostic::new(
                codes::spec::INVALID_VALUE,
                id.span,
                format!("{what}: a pinned list id is empty"),
            )
                .label("no list has an empty id")
                .help("write the vendor's list or segment id, or remove the entry to let accord create the list"),
        );
        return None;
    }
    Some(id)
}
