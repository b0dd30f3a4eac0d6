//! The delivery keys of one destination against its catalog type: only API
//! types take them (object stores take `endpoint`), URLs are https (http
//! only on loopback), and a `rate_limit` may only lower the type's.
//!
//! Input: a destination and its catalog type. Output: diagnostics, and
//! (for the plan) the effective rate limit: the catalog's, lowered by the
//! destination's. Pure.

use super::endpoint;
use crate::catalog::{DestinationType, RateLimit, Window};
use crate::diag::{Diagnostic, codes};
use crate::syntax::delivery_keys::RateLimitSpec;
use crate::syntax::{Destination, SettingValue, Sp};

pub fn check(destination: &Destination, ty: &DestinationType, diags: &mut Vec<Diagnostic>) {
    let keys = &destination.delivery;
    // Object stores take `endpoint` too (an S3-compatible store, an emulator).
    if let Some(url) = &keys.endpoint
        && (ty.is_api() || ty.setting("endpoint").is_some())
    {
        check_url(destination, "endpoint", &url.value, diags);
    }
    if !ty.is_api() {
        not_for_files(destination, ty, diags);
        return;
    }
    if ty.name == "http"
        && let Some(setting) = destination.settings.iter().find(|s| s.key.value == "url")
        && let SettingValue::String(text) = &setting.value.value
    {
        check_url(
            destination,
            "url",
            &Sp::new(text.clone(), setting.value.span),
            diags,
        );
    }
    if let Some(spec) = &keys.rate_limit {
        check_rate_limit(destination, ty, &spec.value, diags);
    }
}

fn not_for_files(destination: &Destination, ty: &DestinationType, diags: &mut Vec<Diagnostic>) {
    let keys: Vec<&str> = ty.settings.iter().map(|s| s.key).collect();
    for (key, span) in destination.delivery.written() {
        if ty.setting(key).is_some() {
            continue;
        }
        diags.push(
            Diagnostic::new(
                codes::spec::UNKNOWN_KEY,
                span,
                format!(
                    "destination `{}`: `{}` destinations have no setting `{key}`",
                    destination.name.value, ty.name
                ),
            )
            .label("only destinations that deliver through an API take it; it is ignored")
            .suggest(
                key,
                keys.iter().copied(),
                format!("settings of `{}`: {}", ty.name, keys.join(", ")),
            ),
        );
    }
}

fn check_url(destination: &Destination, key: &str, url: &Sp<String>, diags: &mut Vec<Diagnostic>) {
    let Err(problem) = endpoint::check(&url.value) else {
        return;
    };
    diags.push(
        Diagnostic::new(
            codes::spec::INVALID_ENDPOINT,
            url.span,
            format!(
                "destination `{}`: `{key}` is not a URL accord sends records to",
                destination.name.value
            ),
        )
        .label(problem.to_string())
        .help("write `https://HOST[:PORT][/PATH]` (http only for 127.0.0.1, [::1] or localhost); credentials go in secret settings"),
    );
}

/// The destination's `rate_limit` as a catalog limit.
fn wanted(spec: &RateLimitSpec) -> RateLimit {
    RateLimit {
        window: spec
            .calls
            .as_ref()
            .zip(spec.per.as_ref())
            .map(|(c, p)| Window {
                calls: c.value,
                per_seconds: p.value,
            }),
        concurrency: spec.concurrent.as_ref().map(|c| c.value),
        daily: spec.daily.as_ref().map(|d| d.value),
    }
}

fn check_rate_limit(
    destination: &Destination,
    ty: &DestinationType,
    spec: &Sp<RateLimitSpec>,
    diags: &mut Vec<Diagnostic>,
) {
    let wanted = wanted(&spec.value);
    let Some(catalog) = ty.limits.rate_limit else {
        if wanted.window.is_none() {
            diags.push(no_window(destination, ty, spec));
        }
        return;
    };
    for part in catalog.raised_by(&wanted) {
        let (span, theirs, ours) = match part {
            "calls" => (
                spec.value.calls.as_ref().map_or(spec.span, |c| c.span),
                window_text(wanted.window),
                window_text(catalog.window),
            ),
            "concurrent" => (
                spec.value.concurrent.as_ref().map_or(spec.span, |c| c.span),
                count(wanted.concurrency),
                count(catalog.concurrency),
            ),
            _ => (
                spec.value.daily.as_ref().map_or(spec.span, |c| c.span),
                count(wanted.daily),
                count(catalog.daily),
            ),
        };
        diags.push(
            Diagnostic::new(
                codes::spec::RATE_LIMIT_RAISED,
                span,
                format!(
                    "destination `{}`: `rate_limit` raises `{part}` above what `{}` allows",
                    destination.name.value, ty.name
                ),
            )
            .label(format!("{theirs} is above the catalog's {ours}"))
            .help(format!(
                "`rate_limit` may only lower the vendor's limit; write at most {ours}, or leave `{part}` out"
            )),
        );
    }
    if catalog.lowered_by(&wanted).window.is_none() {
        diags.push(no_window(destination, ty, spec));
    }
}

/// A limit without a window cannot be planned: the run paces requests by it.
fn no_window(
    destination: &Destination,
    ty: &DestinationType,
    spec: &Sp<RateLimitSpec>,
) -> Diagnostic {
    Diagnostic::new(
        codes::spec::MISSING_KEY,
        spec.span,
        format!(
            "destination `{}`: `rate_limit` needs `calls` and `per`",
            destination.name.value
        ),
    )
    .label(format!(
        "`{}` publishes no request rate to start from",
        ty.name
    ))
    .help(
        "write the rate agreed with the vendor, e.g. `rate_limit = { calls = 100, per = \"1m\" }`",
    )
}

fn window_text(window: Option<Window>) -> String {
    window.map_or("no limit".to_string(), |w| {
        format!("{} calls per {} s", w.calls, w.per_seconds)
    })
}

fn count(value: Option<u32>) -> String {
    value.map_or("no limit".to_string(), |v| v.to_string())
}

/// The limit a run keeps to: the type's, lowered by the destination's
/// `rate_limit`. `None` when neither sets a request rate.
pub fn effective_rate_limit(destination: &Destination, ty: &DestinationType) -> Option<RateLimit> {
    let wanted = destination
        .delivery
        .rate_limit
        .as_ref()
        .map(|s| wanted(&s.value.value));
    let effective = match (ty.limits.rate_limit, wanted) {
        (Some(catalog), Some(w)) => catalog.lowered_by(&w),
        (catalog, w) => catalog.or(w)?,
    };
    effective.window.is_some().then_some(effective)
}
