//! Whether a destination URL (`endpoint`, or an `http` destination's `url`)
//! is one a run may send records to.
//!
//! Input: the URL text. Output: `Ok` or the reason it is refused. The form
//! accepted is deliberately narrow: `https://HOST[:PORT][/PATH]`, or
//! `http://` to a loopback host (127.0.0.0/8, `[::1]`, `localhost`) for
//! local tests and fakes. No credentials (they would sit in the plan and in
//! git), no query or fragment (a base URL has paths appended to it), no
//! percent-escapes or odd characters in the host: whatever the strict form
//! does not cover is refused, so the check never accepts a URL that an HTTP
//! client reads differently. Pure.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a URL is refused; `Display` is a diagnostic label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    NotAbsolute,
    Scheme(String),
    /// Plain http to a host that is not loopback.
    Insecure(String),
    Credentials,
    QueryOrFragment,
    Host(String),
    Port(String),
}

impl std::fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlProblem::NotAbsolute => f.write_str("not an absolute URL (`https://host/...`)"),
            UrlProblem::Scheme(s) => write!(f, "`{s}:` is not http or https"),
            UrlProblem::Insecure(host) => write!(
                f,
                "plain http to `{host}` would send records unencrypted; http is only for loopback hosts"
            ),
            UrlProblem::Credentials => {
                f.write_str("the URL carries credentials (`user:password@`)")
            }
            UrlProblem::QueryOrFragment => {
                f.write_str("a base URL takes no query (`?`) or fragment (`#`)")
            }
            UrlProblem::Host(h) => write!(f, "`{h}` is not a host name or IP address"),
            UrlProblem::Port(p) => write!(f, "`{p}` is not a port number"),
        }
    }
}

/// Checks `text` against the accepted form.
pub fn check(text: &str) -> Result<(), UrlProblem> {
    let (scheme, rest) = text.split_once("://").ok_or(UrlProblem::NotAbsolute)?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err(UrlProblem::NotAbsolute);
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(UrlProblem::Scheme(scheme));
    }
    if rest.contains(['?', '#']) {
        return Err(UrlProblem::QueryOrFragment);
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(UrlProblem::Credentials);
    }
    let host = host_of(authority)?;
    if scheme == "http" && !is_loopback(&host) {
        return Err(UrlProblem::Insecure(host));
    }
    Ok(())
}

/// The host of `HOST[:PORT]`, lower-cased; IPv6 keeps its brackets.
fn host_of(authority: &str) -> Result<String, UrlProblem> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or_else(|| UrlProblem::Host(authority.to_string()))?;
        inside
            .parse::<Ipv6Addr>()
            .map_err(|_| UrlProblem::Host(authority.to_string()))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UrlProblem::Host(authority.to_string()))?,
            ),
        };
        (format!("[{inside}]"), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err(UrlProblem::Port(port.to_string()));
    }
    let name_ok = host.starts_with('[')
        || (!host.is_empty()
            && !host.starts_with(['.', '-'])
            && !host.ends_with('-')
            && !host.contains("..")
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if !name_ok {
        return Err(UrlProblem::Host(host));
    }
    Ok(host.to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inside.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_on_loopback_are_accepted() {
        for url in [
            "https://api.linkedin.com",
            "https://123-ABC-456.mktorest.com/",
            "https://example.com:8443/base/path",
            "http://127.0.0.1:18080",
            "http://127.8.9.10/",
            "http://localhost:3000/hook",
            "http://LOCALHOST",
            "http://[::1]:9000",
            "HTTPS://Example.COM",
        ] {
            assert_eq!(check(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn plain_http_elsewhere_is_insecure() {
        for url in [
            "http://example.com",
            "http://10.0.0.5:8080",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
            "http://127.1",
        ] {
            assert!(matches!(check(url), Err(UrlProblem::Insecure(_))), "{url}");
        }
    }

    #[test]
    fn malformed_urls_are_refused_with_their_reason() {
        assert_eq!(check("example.com/api"), Err(UrlProblem::NotAbsolute));
        assert_eq!(check("/relative"), Err(UrlProblem::NotAbsolute));
        assert_eq!(check(""), Err(UrlProblem::NotAbsolute));
        assert_eq!(
            check("ftp://example.com"),
            Err(UrlProblem::Scheme("ftp".into()))
        );
        assert_eq!(
            check("https://user:pw@example.com"),
            Err(UrlProblem::Credentials)
        );
        assert_eq!(
            check("https://token@example.com/x"),
            Err(UrlProblem::Credentials)
        );
        assert_eq!(
            check("https://example.com/?key=1"),
            Err(UrlProblem::QueryOrFragment)
        );
        assert_eq!(
            check("https://example.com/#top"),
            Err(UrlProblem::QueryOrFragment)
        );
        assert_eq!(check("https:///path"), Err(UrlProblem::Host(String::new())));
        assert_eq!(
            check("https://exa mple.com"),
            Err(UrlProblem::Host("exa mple.com".into()))
        );
        assert_eq!(
            check("https://ex%41.com"),
            Err(UrlProblem::Host("ex%41.com".into()))
        );
        assert_eq!(
            check("https://example.com:99999"),
            Err(UrlProblem::Port("99999".into()))
        );
        assert_eq!(
            check("https://example.com:"),
            Err(UrlProblem::Port(String::new()))
        );
        assert_eq!(check("https://[::1"), Err(UrlProblem::Host("[::1".into())));
    }
}
