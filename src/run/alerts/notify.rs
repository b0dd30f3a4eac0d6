//! Sending a fired alert: the request for its channel, sent with bounded
//! retries, or described without being sent (dry run).
//!
//! The channels (`docs/alerts.md` has the payloads):
//! - `webhook`: `POST` of a JSON body (the alert, its reason and figures,
//!   the project, environment and run), signed like the `http`
//!   destination's batches: `X-Accord-Signature: sha256=<hex HMAC-SHA256
//!   of the exact body under the secret>` (`deliver::vendors::webhook`);
//! - `slack`: `POST` of `{"text": ...}`, the payload of Slack's incoming
//!   webhooks.
//!
//! The answer is classified as the `http` destination's are: 2xx sent; 429
//! (with its `Retry-After`), 408 and 5xx, and a connection that fails, are
//! tried again after a full-jitter backoff (`deliver::retry`), at most
//! [`ATTEMPTS`] sends; anything else is refused. The URL and the key are
//! secrets (a webhook URL lets whoever has it post): they are read from
//! their references only to send, and masked in every message.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::deliver::http::Http;
use crate::deliver::retry::Backoff;
use crate::deliver::secrets::{self, PLACEHOLDER};
use crate::deliver::vendor::{Outcome, secret};
use crate::deliver::vendors::webhook::{SIGNATURE_HEADER, classify_status, signature};
use crate::deliver::wire::WireRequest;
use crate::plan::NotifyPlan;
use crate::run::report::AlertReport;

/// Sends of one notification before it is given up (R0025).
pub const ATTEMPTS: u32 = 4;

/// The waits between them: at most 0.5s, 1s, then 2s, so a run waits a
/// few seconds at most for a receiver that is down.
pub const BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(500),
    max: Duration::from_secs(8),
};

/// What a notification says, beside the alert's own report.
pub struct Context<'a> {
    pub alert: &'a str,
    pub project: &'a str,
    pub environment: Option<&'a str>,
    pub run_id: &'a str,
    /// The run's evaluation time, RFC 3339.
    pub at: &'a str,
}

impl NotifyPlan {
    /// `webhook` or `slack`.
    pub fn channel(&self) -> &'static str {
        match self {
            NotifyPlan::Webhook { .. } => "webhook",
            NotifyPlan::Slack { .. } => "slack",
        }
    }

    fn url_reference(&self) -> &str {
        match self {
            NotifyPlan::Webhook { url, .. } | NotifyPlan::Slack { url } => url,
        }
    }
}

/// The JSON a webhook receives.
pub fn webhook_body(cx: &Context<'_>, alert: &AlertReport) -> Value {
    json!({
        "alert": cx.alert,
        "on": alert.on,
        "when": alert.when,
        "severity": alert.severity,
        "reason": alert.reason,
        "figures": alert.figures,
        "project": cx.project,
        "environment": cx.environment,
        "run_id": cx.run_id,
        "at": cx.at,
    })
}

/// The message a Slack channel shows: one line with the alert, then why.
pub fn slack_text(cx: &Context<'_>, alert: &AlertReport) -> String {
    let env = cx
        .environment
        .map(|e| format!(" --env {e}"))
        .unwrap_or_default();
    format!(
        "[{}] accord alert `{}` ({} on {}) in {}{env}, run {} at {}\n{}",
        alert.severity, cx.alert, alert.when, alert.on, cx.project, cx.run_id, cx.at, alert.reason
    )
}

/// The secrets a live send reads: the URL, and the webhook's key.
pub struct Secrets {
    url: SecretString,
    key: Option<SecretString>,
}

impl Secrets {
    /// Reads the references of `notify`; the error names the reference,
    /// never a value.
    pub fn read(notify: &NotifyPlan, root: &std::path::Path) -> Result<Secrets, String> {
        let key = match notify {
            NotifyPlan::Webhook { secret, .. } => Some(secrets::read("secret", secret, root)?),
            NotifyPlan::Slack { .. } => None,
        };
        let url = secrets::read(notify.channel(), notify.url_reference(), root)?;
        Ok(Secrets { url, key })
    }

    /// `text` with the URL and the key masked, for any message built from
    /// what a receiver answered.
    fn mask(&self, text: &str) -> String {
        let mut text = text.replace(secret(&self.url), PLACEHOLDER);
        if let Some(key) = &self.key {
            text = text.replace(secret(key), PLACEHOLDER);
        }
        text
    }
}

/// The request for `notify`: with the secrets to send it, or, without
/// them (a dry run), with the URL as its reference (`<env:NAME>`) and the
/// signature as a placeholder.
pub fn request(
    notify: &NotifyPlan,
    cx: &Context<'_>,
    alert: &AlertReport,
    secrets: Option<&Secrets>,
) -> WireRequest {
    let url = match secrets {
        Some(s) => secret(&s.url).to_string(),
        None => format!("<{}>", notify.url_reference()),
    };
    match notify {
        NotifyPlan::Webhook { .. } => {
            let mut request = WireRequest::new("POST", url).json(&webhook_body(cx, alert));
            let signed = match secrets.and_then(|s| s.key.as_ref()) {
                Some(key) => format!("sha256={}", signature(secret(key), &request.body)),
                None => PLACEHOLDER.to_string(),
            };
            request.set_secret_header(SIGNATURE_HEADER, signed);
            request
        }
        NotifyPlan::Slack { .. } => {
            WireRequest::new("POST", url).json(&json!({ "text": slack_text(cx, alert) }))
        }
    }
}

/// Whether a URL read from a secret may be sent to: `https://`, or
/// `http://` to a loopback host (local receivers and tests), the rule of
/// destination URLs; a query is allowed (some incoming webhooks carry their
/// token there). The reason never quotes the URL.
fn usable(url: &str) -> Result<(), String> {
    use crate::resolve::endpoint::{UrlProblem, check};
    let base = url.split(['?', '#']).next().unwrap_or_default();
    check(base).map_err(|problem| match problem {
        UrlProblem::Insecure(_) => {
            "the URL is plain http to a host that is not loopback: use https".to_string()
        }
        UrlProblem::Host(_) => "the URL's host is not a host name or IP address".to_string(),
        UrlProblem::Port(_) => "the URL's port is not a port number".to_string(),
        UrlProblem::Scheme(_) => "the URL is not http or https".to_string(),
        other => format!("the URL is refused: {other}"),
    })
}

/// Sends `request`, trying again on a failed connection, 408, 429 and
/// 5xx; the error says what the last attempt got, masked.
pub async fn send(http: &Http, request: WireRequest, secrets: &Secrets) -> Result<(), String> {
    usable(&request.url)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (problem, retry_after) = match http.send(request.clone()).await {
            Err(network) => (network, None),
            Ok(response) => match classify_status(&response) {
                Outcome::Accepted => return Ok(()),
                Outcome::Throttled { retry_after, .. } => ("answered 429".to_string(), retry_after),
                Outcome::Transient { code, message } => {
                    (format!("answered {code}: {message}"), None)
                }
                Outcome::Fatal { code, message } | Outcome::Refused { code, message, .. } => {
                    return Err(secrets.mask(&format!("refused ({code}): {message}")));
                }
                other => return Err(format!("answered {other:?}")),
            },
        };
        if attempt >= ATTEMPTS {
            return Err(secrets.mask(&format!(
                "gave up after {attempt} attempts; last: {problem}"
            )));
        }
        let wait = BACKOFF.delay(attempt, retry_after, &mut rand::rng());
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AlertKind, AlertSeverity};
    use crate::run::report::AlertFigures;

    fn alert() -> AlertReport {
        AlertReport {
            on: "audience.icp".into(),
            when: AlertKind::SizeDrop,
            severity: AlertSeverity::Error,
            fired: true,
            breached_since: None,
            reason: "audience `icp` fell".into(),
            figures: AlertFigures {
                previous: Some(10),
                current: Some(6),
                ..AlertFigures::default()
            },
            channel: Some("webhook".into()),
            notified: None,
            written: None,
        }
    }

    fn cx() -> Context<'static> {
        Context {
            alert: "icp_shrinks",
            project: "example",
            environment: Some("prod"),
            run_id: "20261128T120000Z-abcd0123",
            at: "2026-11-28T12:00:00Z",
        }
    }

    #[test]
    fn a_webhook_request_is_signed_over_its_exact_body() {
        let notify = NotifyPlan::Webhook {
            url: "env:URL".into(),
            secret: "env:KEY".into(),
        };
        let secrets = Secrets {
            url: SecretString::from("https://hooks.example.com/a?token=t0k3n"),
            key: Some(SecretString::from("k3y")),
        };
        let request = request(&notify, &cx(), &alert(), Some(&secrets));
        assert_eq!(request.url, "https://hooks.example.com/a?token=t0k3n");
        let (name, value) = &request.secret_headers[0];
        assert_eq!(name, SIGNATURE_HEADER);
        assert_eq!(
            secret(value),
            format!("sha256={}", signature("k3y", &request.body))
        );
        let body: Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body["alert"], "icp_shrinks");
        assert_eq!(body["figures"]["current"], 6);
        assert!(usable(&request.url).is_ok());
        assert_eq!(
            secrets.mask("echo https://hooks.example.com/a?token=t0k3n and k3y"),
            "echo <redacted> and <redacted>"
        );
    }

    #[test]
    fn a_dry_run_describes_the_request_with_references_only() {
        let notify = NotifyPlan::Webhook {
            url: "env:URL".into(),
            secret: "env:KEY".into(),
        };
        let described = request(&notify, &cx(), &alert(), None).redacted();
        assert_eq!(described["url"], "<env:URL>");
        assert_eq!(described["headers"][SIGNATURE_HEADER], PLACEHOLDER);
        let slack = NotifyPlan::Slack {
            url: "file:slack.url".into(),
        };
        let described = request(&slack, &cx(), &alert(), None).redacted();
        assert_eq!(described["url"], "<file:slack.url>");
        let text = described["body"]["text"].as_str().expect("a text");
        assert!(
            text.starts_with("[error] accord alert `icp_shrinks`"),
            "{text}"
        );
        assert_eq!(described["body"].as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn only_https_or_loopback_http_is_sent_to() {
        assert!(usable("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(usable("http://127.0.0.1:8080/hook").is_ok());
        let refused = usable("http://hooks.example.com/secret-path").unwrap_err();
        assert!(!refused.contains("hooks.example.com"), "{refused}");
        assert!(usable("ftp://x/y").is_err());
    }
}
