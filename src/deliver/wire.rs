//! Requests and responses as plain data: what a vendor file builds and
//! reads, what the dry run writes to `requests.jsonl`, and what `send`
//! turns into HTTP.
//!
//! Secret header values (credentials, signatures) are kept apart from the
//! others so that a request can be written or printed with them redacted;
//! their `Debug` never shows them.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

/// An HTTP request, before it is sent.
#[derive(Clone, Debug)]
pub struct WireRequest {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: &'static str,
    /// Absolute URL, built on the destination's base URL (or `endpoint`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Headers whose values never appear in a dump, a log or an error.
    pub secret_headers: Vec<(String, SecretString)>,
    pub body: Vec<u8>,
}

impl WireRequest {
    pub fn new(method: &'static str, url: impl Into<String>) -> WireRequest {
        WireRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            secret_headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON body, with its content type.
    pub fn json(mut self, body: &Value) -> WireRequest {
        self.body = serde_json::to_vec(body).expect("JSON values serialise");
        self.header("Content-Type", "application/json")
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> WireRequest {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets a header whose value is secret (replacing one of the same name).
    pub fn set_secret_header(&mut self, name: &str, value: String) {
        self.secret_headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.secret_headers
            .push((name.to_string(), SecretString::from(value)));
    }

    /// The request as the dry run writes it: secret headers as
    /// `<redacted>`, a JSON body as JSON, any other body as text.
    pub fn redacted(&self) -> Value {
        let mut headers = serde_json::Map::new();
        for (name, value) in &self.headers {
            headers.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, _) in &self.secret_headers {
            headers.insert(name.clone(), Value::String("<redacted>".into()));
        }
        let body = serde_json::from_slice::<Value>(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()));
        serde_json::json!({
            "method": self.method,
            "url": self.url,
            "headers": headers,
            "body": body,
        })
    }
}

/// An HTTP response, as the vendor file classifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WireResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `Retry-After` in seconds (the HTTP-date form is not used by the
    /// vendors accord sends to).
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.header("retry-after")?.trim();
        value
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters:
/// valid in a query value, a path segment and a form body (Rest.li 2.0
/// URNs in LinkedIn's query parameters, Marketo's forms and list names).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
