//! The one place requests go on the wire: a [`WireRequest`] sent with
//! reqwest (rustls), its answer read whole into a [`WireResponse`].
//!
//! Errors never carry the URL (a token URL may hold a client secret in its
//! query) nor a header: only what failed.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use super::vendor::secret;
use super::wire::{WireRequest, WireResponse};

/// Connecting may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole request, answer included, may take this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP client for one run (it pools connections per host).
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("accord/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {}", describe(e)))?;
        Ok(Http { client })
    }

    /// Sends `request`; `Err` is a network failure or a timeout (the
    /// request may or may not have been applied).
    pub async fn send(&self, request: WireRequest) -> Result<WireResponse, String> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", request.method))?;
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in &request.secret_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            let mut value = HeaderValue::from_str(secret(value)).map_err(|_| {
                format!("the secret header `{name}` has characters a header cannot hold")
            })?;
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        let response = builder.body(request.body).send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.bytes().await.map_err(describe)?.to_vec();
        Ok(WireResponse {
            status,
            headers,
            body,
        })
    }
}

/// A reqwest error without its URL, with its causes (hyper's and the
/// socket's say what actually happened).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut text = format!("{kind}: {error}");
    let mut cause = std::error::Error::source(&error);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}
