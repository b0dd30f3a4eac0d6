//! Alerts against the model: `on` names an activation, an audience (or a
//! split part) or a source that exists (`A0140`); `when` watches something
//! that target has (`A0141`); `threshold` is there exactly when the kind
//! compares, and in its range (`A0142`); `notify` is one channel with its
//! credentials as references (`A0143`, `A0110` for a literal).

use crate::closed_set::closed_set;
use crate::diag::{Diagnostic, codes};
use crate::syntax::{Alert, Notify, SettingValue, Sp};

use super::Model;
use super::destinations::literal_credential;
use super::names::unknown;
use super::references::{audience_exists, split_part_names};

closed_set! {
    /// What an alert watches.
    pub enum AlertTargetKind {
        Activation = "activation",
        Audience = "audience",
        Source = "source",
    }
}

closed_set! {
    /// The condition an alert fires on.
    pub enum AlertKind {
        /// The size fell by more than `threshold` of the last run's.
        SizeDrop = "size_drop",
        /// The size grew by more than `threshold` of the last run's.
        SizeGrowth = "size_growth",
        /// More than `threshold` of the members sent were rejected.
        RejectedRatio = "rejected_ratio",
        /// The activation ended `failed`, `held` or `blocked`.
        Failed = "failed",
        /// The source is older than its `max_age`.
        Stale = "stale",
    }
}

closed_set! {
    /// What a fired alert does to the run's exit code.
    pub enum AlertSeverity {
        /// `accord run` exits 1.
        Error = "error",
        /// Reported (and sent); the exit code is not changed.
        Warning = "warning",
    }
}

closed_set! {
    /// How often a breached alert fires.
    pub enum AlertRepeat {
        /// Once when the condition starts to hold; again only after it
        /// cleared in a run between.
        Once = "once",
        /// In every run while the condition holds.
        EveryRun = "every_run",
    }
}

impl AlertKind {
    /// The target kinds the condition has a figure for.
    pub fn targets(self) -> &'static [AlertTargetKind] {
        use AlertTargetKind::*;
        match self {
            AlertKind::SizeDrop | AlertKind::SizeGrowth => &[Activation, Audience],
            AlertKind::RejectedRatio | AlertKind::Failed => &[Activation],
            AlertKind::Stale => &[Source],
        }
    }

    /// Whether the condition compares with a `threshold`.
    pub fn takes_threshold(self) -> bool {
        matches!(
            self,
            AlertKind::SizeDrop | AlertKind::SizeGrowth | AlertKind::RejectedRatio
        )
    }

    /// The thresholds that can ever fire, as a range check and its words:
    /// a drop or a share of rejections is at most 1 (all of it), so a
    /// threshold of 1 or more would never be passed; growth has no ceiling.
    pub fn threshold_fits(self, t: f64) -> Result<(), &'static str> {
        match self {
            AlertKind::SizeGrowth if t.is_finite() && t >= 0.0 => Ok(()),
            AlertKind::SizeGrowth => Err("a growth ratio is 0 or more (1 = doubled)"),
            _ if (0.0..1.0).contains(&t) => Ok(()),
            _ => Err("a share from 0 up to, not including, 1"),
        }
    }
}

/// The channels of `notify`, and the key each needs beside it.
const CHANNEL_KEYS: &[&str] = &["webhook", "secret", "slack"];

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    for (_, i) in model.alerts.iter() {
        check_one(model, &model.syntax.alerts[i], diags);
    }
}

fn check_one(model: &Model, alert: &Alert, diags: &mut Vec<Diagnostic>) {
    let what = format!("alert `{}`", alert.name.value);
    let target = alert
        .on
        .as_ref()
        .and_then(|on| target(model, &what, on, diags));
    let kind = alert
        .when
        .as_ref()
        .and_then(|w| AlertKind::parse(&w.value).map(|k| (k, w.span)));
    if let (Some((kind, when_span)), Some((target_kind, on))) = (kind, &target)
        && !kind.targets().contains(target_kind)
    {
        let fits = kind
            .targets()
            .iter()
            .map(|k| format!("an {k}").replace("an source", "a source"))
            .collect::<Vec<_>>()
            .join(" or ");
        let watchable: Vec<&str> = AlertKind::ALL
            .iter()
            .filter(|k| k.targets().contains(target_kind))
            .map(|k| k.as_str())
            .collect();
        diags.push(
            Diagnostic::new(
                codes::spec::ALERT_KIND_NOT_FOR_TARGET,
                when_span,
                format!(
                    "{what}: `{kind}` does not apply to {target_kind} `{}`",
                    on.value
                        .split_once('.')
                        .map_or(on.value.as_str(), |(_, name)| name)
                ),
            )
            .label(format!("`{kind}` watches {fits}"))
            .with_secondary(on.span, format!("this is {}", article(*target_kind)))
            .help(format!(
                "on {}, watch one of: {}",
                article(*target_kind),
                watchable.join(", ")
            )),
        );
    }
    if let Some((kind, when_span)) = kind {
        threshold(&what, kind, when_span, alert, diags);
    }
    if let Some(notify) = &alert.notify {
        check_notify(&what, &alert.name.value, notify, diags);
    }
}

fn article(kind: AlertTargetKind) -> String {
    match kind {
        AlertTargetKind::Activation => "an activation".into(),
        AlertTargetKind::Audience => "an audience".into(),
        AlertTargetKind::Source => "a source".into(),
    }
}

/// `KIND.NAME` resolved; `None` (reported) when it names nothing.
fn target<'a>(
    model: &Model,
    what: &str,
    on: &'a Sp<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(AlertTargetKind, &'a Sp<String>)> {
    let kinds: Vec<&str> = AlertTargetKind::ALL.iter().map(|k| k.as_str()).collect();
    let Some((kind, name)) = on.value.split_once('.') else {
        diags.push(
            Diagnostic::new(
                codes::spec::ALERT_TARGET,
                on.span,
                format!("{what}: `on` must be `KIND.NAME`, not `{}`", on.value),
            )
            .label("no kind before the name")
            .help("write `activation.NAME`, `audience.NAME` or `source.NAME`"),
        );
        return None;
    };
    let Some(target_kind) = AlertTargetKind::parse(kind) else {
        diags.push(
            Diagnostic::new(
                codes::spec::ALERT_TARGET,
                on.span,
                format!("{what}: an alert cannot watch a `{kind}`"),
            )
            .label("not `activation`, `audience` or `source`")
            .suggest(
                kind,
                kinds.iter().copied(),
                "write `activation.NAME`, `audience.NAME` or `source.NAME`",
            ),
        );
        return None;
    };
    let reference = Sp::new(name.to_string(), on.span);
    let found = match target_kind {
        AlertTargetKind::Activation => model.activations.contains(name),
        AlertTargetKind::Source => model.sources.contains(name),
        AlertTargetKind::Audience => audience_exists(model, name),
    };
    if !found {
        let candidates: Vec<String> = match target_kind {
            AlertTargetKind::Activation => model.activations.names().map(String::from).collect(),
            AlertTargetKind::Source => model.sources.names().map(String::from).collect(),
            AlertTargetKind::Audience => model
                .audiences
                .names()
                .map(String::from)
                .chain(split_part_names(model))
                .collect(),
        };
        diags.push(unknown(
            codes::spec::ALERT_TARGET,
            what,
            &reference,
            kind,
            candidates.iter().map(String::as_str),
        ));
        return None;
    }
    Some((target_kind, on))
}

fn threshold(
    what: &str,
    kind: AlertKind,
    when_span: crate::source::Span,
    alert: &Alert,
    diags: &mut Vec<Diagnostic>,
) {
    let problem =
        |span, message: String| Diagnostic::new(codes::spec::ALERT_THRESHOLD, span, message);
    match (&alert.threshold, kind.takes_threshold()) {
        (None, true) if !alert.threshold_written => diags.push(
            problem(when_span, format!("{what}: `{kind}` needs a `threshold`"))
                .label("compares with a threshold that is not given")
                .help("add `threshold = 0.3` (a ratio: 0.3 is 30% of the last run's figure)"),
        ),
        (Some(t), false) => diags.push(
            problem(t.span, format!("{what}: `{kind}` takes no `threshold`"))
                .label("ignored: the condition holds or it does not")
                .with_secondary(when_span, "this condition has no ratio")
                .help("remove `threshold`"),
        ),
        (Some(t), true) => {
            if let Err(range) = kind.threshold_fits(t.value) {
                diags.push(
                    problem(
                        t.span,
                        format!("{what}: threshold {} is out of range for `{kind}`", t.value),
                    )
                    .label(range)
                    .help("write a ratio such as 0.3 (30%)"),
                );
            }
        }
        (None, _) => {}
    }
}

/// `notify` is `{ webhook = REF, secret = REF }` or `{ slack = REF }`.
fn check_notify(what: &str, name: &str, notify: &Notify, diags: &mut Vec<Diagnostic>) {
    let shape = |span, message: String| Diagnostic::new(codes::spec::ALERT_NOTIFY, span, message);
    let get = |key: &str| notify.entries.iter().find(|s| s.key.value == key);
    for entry in &notify.entries {
        let key = entry.key.value.as_str();
        if !CHANNEL_KEYS.contains(&key) {
            diags.push(
                Diagnostic::new(
                    codes::spec::UNKNOWN_KEY,
                    entry.key.span,
                    format!("unknown key `{key}` in the `notify` of {what}"),
                )
                .label("not a key of `notify`; it is ignored")
                .suggest(
                    key,
                    CHANNEL_KEYS.iter().copied(),
                    "`notify` takes `webhook` and `secret`, or `slack`",
                ),
            );
            continue;
        }
        match &entry.value.value {
            SettingValue::Reference { kind, .. } if kind == "env" || kind == "file" => {}
            SettingValue::Reference { kind, .. } => diags.push(
                shape(
                    entry.value.span,
                    format!("{what}: `{key}` cannot be read from a `{kind}` reference"),
                )
                .label("a profile names cloud credentials, not a URL or a key")
                .help(format!(
                    "write `{key} = {{ env = \"VARIABLE\" }}` or `{{ file = \"PATH\" }}`"
                )),
            ),
            SettingValue::String(_) if key == "secret" => {
                diags.push(literal_credential(
                    what,
                    entry,
                    &format!("{name}_alert_secret"),
                ));
            }
            SettingValue::String(_) => {
                let variable = format!("{name}_alert_url").to_ascii_uppercase();
                diags.push(literal_credential(what, entry, &variable).help(format!(
                    "a webhook URL is a credential (whoever has it can post): reference it, e.g. `{key} = {{ env = \"{variable}\" }}`, and remove it from git history"
                )));
            }
            _ => diags.push(
                shape(
                    entry.value.span,
                    format!("{what}: `{key}` is not a credential reference"),
                )
                .label("expected `{ env = \"NAME\" }` or `{ file = \"PATH\" }`")
                .help(format!("write `{key} = {{ env = \"VARIABLE\" }}`")),
            ),
        }
    }
    match (get("webhook"), get("slack"), get("secret")) {
        (None, None, _) => diags.push(
            shape(notify.span, format!("{what}: `notify` names no channel"))
                .label("neither `webhook` nor `slack`")
                .help("write `notify = { webhook = { env = \"URL\" }, secret = { env = \"KEY\" } }` or `notify = { slack = { env = \"URL\" } }`"),
        ),
        (Some(_), Some(slack), _) => diags.push(
            shape(slack.key.span, format!("{what}: `notify` names two channels"))
                .label("a second channel")
                .help("one alert notifies one channel: keep `webhook` or `slack`, or write a second alert"),
        ),
        (Some(webhook), None, None) => diags.push(
            shape(webhook.key.span, format!("{what}: a webhook without `secret`"))
                .label("its requests could not be signed")
                .help("add `secret = { env = \"VARIABLE\" }`: every body is signed with it (HMAC-SHA256), so the receiver knows it came from accord"),
        ),
        (None, Some(_), Some(secret)) => diags.push(
            shape(secret.key.span, format!("{what}: a Slack channel takes no `secret`"))
                .label("Slack's incoming webhooks are not signed")
                .help("remove `secret`: the Slack webhook URL is the credential"),
        ),
        _ => {}
    }
}
