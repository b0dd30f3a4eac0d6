//! What a Data Manager API response means for the members it answers.
//!
//! In: the HTTP response to an ingest or remove request. Out: an
//! [`Outcome`]. The API answers a whole request: `{requestId}` on success
//! (it then processes the members asynchronously), or a `google.rpc.Status`
//! (`{"error": {code, message, status, details}}`). It fails fast: one
//! invalid member fails the request with 400 `INVALID_ARGUMENT`, which the
//! core splits to isolate that member.

use serde_json::Value;

use crate::deliver::vendor::Outcome;
use crate::deliver::wire::WireResponse;

/// The outcome of a response to an ingest or remove request.
pub fn outcome(response: &WireResponse) -> Outcome {
    if (200..300).contains(&response.status) {
        return Outcome::Accepted;
    }
    let (code, message) = status(response);
    match (response.status, code.as_str()) {
        (401, _) => Outcome::AuthExpired,
        (429, _) => Outcome::Throttled {
            retry_after: response.retry_after(),
            code,
        },
        // The account or the list is missing, the credentials may not use
        // it, or its terms are not accepted: no member can succeed.
        (403 | 404, _) | (400, "FAILED_PRECONDITION") => Outcome::Fatal { code, message },
        (408 | 409 | 499, _) | (500..=599, _) => Outcome::Transient { code, message },
        (status, _) => Outcome::Refused {
            status,
            code,
            message,
        },
    }
}

/// The canonical status (`INVALID_ARGUMENT`) and message of an error
/// response; for a body that is no `google.rpc.Status`, the HTTP status.
pub fn status(response: &WireResponse) -> (String, String) {
    let body = response.json();
    let error = body.get("error");
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str);
    let code = field("status")
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP_{}", response.status));
    let mut message = field("message").unwrap_or("no message").to_string();
    if let Some(violations) = field_violations(error) {
        message = format!("{message} ({violations})");
    }
    (code, message)
}

/// The `BadRequest` field violations of an error, which say which member
/// and field were invalid.
fn field_violations(error: Option<&Value>) -> Option<String> {
    let details = error?.get("details")?.as_array()?;
    let violations: Vec<String> = details
        .iter()
        .filter_map(|d| d.get("fieldViolations")?.as_array())
        .flatten()
        .map(|v| {
            let field = v.get("field").and_then(Value::as_str).unwrap_or("?");
            let why = v.get("description").and_then(Value::as_str).unwrap_or("");
            format!("{field}: {why}")
        })
        .take(3)
        .collect();
    (!violations.is_empty()).then(|| violations.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn error(status: u16, canonical: &str, headers: &[(&str, &str)]) -> WireResponse {
        let body = serde_json::json!({"error": {
            "code": status, "message": "why", "status": canonical,
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "audience_members[3]", "description": "bad hash"}]}]
        }});
        WireResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn success_accepts_the_whole_request() {
        let ok = WireResponse {
            status: 200,
            headers: vec![],
            body: br#"{"requestId":"r-1"}"#.to_vec(),
        };
        assert_eq!(outcome(&ok), Outcome::Accepted);
    }

    #[test]
    fn each_status_has_its_outcome() {
        let invalid = outcome(&error(400, "INVALID_ARGUMENT", &[]));
        let Outcome::Refused {
            status,
            code,
            message,
        } = invalid
        else {
            panic!("{invalid:?}")
        };
        assert_eq!((status, code.as_str()), (400, "INVALID_ARGUMENT"));
        assert!(
            message.contains("audience_members[3]: bad hash"),
            "{message}"
        );
        assert_eq!(
            outcome(&error(429, "RESOURCE_EXHAUSTED", &[("retry-after", "7")])),
            Outcome::Throttled {
                retry_after: Some(Duration::from_secs(7)),
                code: "RESOURCE_EXHAUSTED".into()
            }
        );
        assert_eq!(
            outcome(&error(401, "UNAUTHENTICATED", &[])),
            Outcome::AuthExpired
        );
        assert!(matches!(
            outcome(&error(403, "PERMISSION_DENIED", &[])),
            Outcome::Fatal { .. }
        ));
        assert!(matches!(
            outcome(&error(404, "NOT_FOUND", &[])),
            Outcome::Fatal { .. }
        ));
        assert!(matches!(
            outcome(&error(400, "FAILED_PRECONDITION", &[])),
            Outcome::Fatal { .. }
        ));
        assert!(matches!(
            outcome(&error(503, "UNAVAILABLE", &[])),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            outcome(&error(500, "INTERNAL", &[])),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            outcome(&error(409, "ABORTED", &[])),
            Outcome::Transient { .. }
        ));
    }

    #[test]
    fn a_body_that_is_not_a_status_still_classifies() {
        let html = WireResponse {
            status: 502,
            headers: vec![],
            body: b"<html>bad gateway</html>".to_vec(),
        };
        assert_eq!(
            outcome(&html),
            Outcome::Transient {
                code: "HTTP_502".into(),
                message: "no message".into()
            }
        );
    }
}
