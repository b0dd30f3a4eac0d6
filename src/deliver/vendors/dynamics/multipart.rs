//! OData `$batch` bodies as Dataverse's Web API takes and gives them: a
//! `multipart/mixed` body (RFC 2046) whose parts are `application/http`
//! messages, one request or response each.
//!
//! In: the operations of one batch. Out: the body and its boundary, which
//! is derived from the content (a hash), so that the same members always
//! give the same bytes: dry runs and golden tests are stable. Back: the
//! responses of a batch answer, in order with their `Content-ID`s.
//!
//! The parser is lenient where senders differ (CRLF or LF line ends, a
//! quoted `boundary` parameter, a preamble, nested change-set responses) and
//! strict where a wrong guess would misattribute a result: a part that is no
//! HTTP response, or a body without the closing delimiter, is an error,
//! never a panic.

use crate::hash::sha256_hex;

/// One request inside a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub method: &'static str,
    /// Absolute URL of the operation.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A batch body and the boundary its `Content-Type` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub boundary: String,
    pub body: Vec<u8>,
}

impl Encoded {
    /// The value of the request's `Content-Type` header.
    pub fn content_type(&self) -> String {
        format!("multipart/mixed; boundary={}", self.boundary)
    }
}

/// One response inside a batch answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartResponse {
    /// The `Content-ID` of the part, when the answer carries one.
    pub content_id: Option<String>,
    pub status: u16,
    pub body: Vec<u8>,
}

/// The operations as one body; part `i` has `Content-ID: i+1`.
pub fn encode(operations: &[Operation]) -> Encoded {
    let parts: Vec<Vec<u8>> = operations
        .iter()
        .enumerate()
        .map(|(i, op)| part(i + 1, op))
        .collect();
    // A boundary must not occur in the parts (RFC 2046 5.1.1). A content
    // hash practically never does; should it, hash again with a counter.
    let joined = parts.concat();
    let mut salt = 0u32;
    let boundary = loop {
        let digest = sha256_hex([joined.as_slice(), &salt.to_be_bytes()].concat());
        let boundary = format!("batch_{}", &digest[..32]);
        if !contains(&joined, boundary.as_bytes()) {
            break boundary;
        }
        salt += 1;
    };
    let mut body = Vec::with_capacity(joined.len() + (parts.len() + 1) * 50);
    for part in &parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(part);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Encoded { boundary, body }
}

fn part(content_id: usize, op: &Operation) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {content_id}\r\n\r\n{} {} HTTP/1.1\r\n",
        op.method, op.url
    );
    for (name, value) in &op.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&op.body);
    bytes.extend_from_slice(b"\r\n");
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `boundary` parameter of a `multipart/mixed` content type, quoted or
/// not (RFC 2046 5.1.1, RFC 9110 5.6.6).
pub fn boundary_of(content_type: &str) -> Result<String, String> {
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return Err(format!("the answer is `{media}`, not multipart/mixed"));
    }
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("boundary") {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if value.is_empty() {
                break;
            }
            return Ok(value.to_string());
        }
    }
    Err("the multipart answer names no boundary".into())
}

/// The responses of a batch answer with this `Content-Type`, in order;
/// the responses of a change set are flattened in their place.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<PartResponse>, String> {
    let boundary = boundary_of(content_type)?;
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for part in split(&text, &boundary)? {
        let (headers, content) = headers_and_rest(&part);
        let part_type = header(&headers, "content-type").unwrap_or("");
        if part_type
            .to_ascii_lowercase()
            .starts_with("multipart/mixed")
        {
            out.extend(parse(part_type, content.as_bytes())?);
            continue;
        }
        if !part_type
            .to_ascii_lowercase()
            .starts_with("application/http")
        {
            return Err(format!(
                "a part of the answer is `{part_type}`, not application/http"
            ));
        }
        let mut response = http_response(&content)?;
        response.content_id = header(&headers, "content-id")
            .map(str::to_string)
            .or(response.content_id);
        out.push(response);
    }
    Ok(out)
}

/// The parts between the delimiters, each as lines joined by CRLF.
fn split(text: &str, boundary: &str) -> Result<Vec<String>, String> {
    let delimiter = format!("--{boundary}");
    let closing = format!("--{boundary}--");
    let mut parts: Vec<Vec<&str>> = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Transport padding (whitespace) may follow a delimiter.
        let bare = line.trim_end();
        if bare == closing {
            parts.extend(current.take());
            return Ok(parts.into_iter().map(|lines| lines.join("\r\n")).collect());
        }
        if bare == delimiter {
            parts.extend(current.replace(Vec::new()));
            continue;
        }
        // Lines before the first delimiter are the preamble.
        if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    Err(format!(
        "the multipart answer is cut short: no closing `{closing}`"
    ))
}

/// The headers of a part or message (names lower-cased) and what follows
/// the blank line after them.
fn headers_and_rest(text: &str) -> (Vec<(String, String)>, String) {
    let mut headers = Vec::new();
    let mut lines = text.split("\r\n");
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, lines.collect::<Vec<_>>().join("\r\n"))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `HTTP/1.1 204 No Content`, headers, a blank line, the body.
fn http_response(content: &str) -> Result<PartResponse, String> {
    let content = content.trim_start_matches("\r\n");
    let (status_line, rest) = content.split_once("\r\n").unwrap_or((content, ""));
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => {
            code.parse::<u16>().ok().filter(|s| (100..=599).contains(s))
        }
        _ => None,
    };
    let Some(status) = status else {
        let shown: String = status_line.chars().take(60).collect();
        return Err(format!(
            "a part of the answer is no HTTP response: {shown:?}"
        ));
    };
    let (headers, body) = headers_and_rest(rest);
    let content_id = header(&headers, "content-id").map(str::to_string);
    Ok(PartResponse {
        content_id,
        status,
        body: body.trim_end().as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(n: usize) -> Operation {
        Operation {
            method: "PATCH",
            url: format!(
                "https://org.crm.dynamics.com/api/data/v9.2/contacts(emailaddress1='p{n}%40x.com')"
            ),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: format!(r#"{{"nw_intent":"active","firstname":"P{n}"}}"#).into_bytes(),
        }
    }

    #[test]
    fn a_batch_is_one_application_http_part_per_operation() {
        let encoded = encode(&[op(1), op(2)]);
        let text = String::from_utf8(encoded.body.clone()).unwrap();
        let b = &encoded.boundary;
        assert!(b.starts_with("batch_") && b.len() == 38, "{b}");
        let expected = format!(
            "--{b}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n\
             PATCH https://org.crm.dynamics.com/api/data/v9.2/contacts(emailaddress1='p1%40x.com') HTTP/1.1\r\n\
             Content-Type: application/json\r\n\r\n{{\"nw_intent\":\"active\",\"firstname\":\"P1\"}}\r\n\
             --{b}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n\
             PATCH https://org.crm.dynamics.com/api/data/v9.2/contacts(emailaddress1='p2%40x.com') HTTP/1.1\r\n\
             Content-Type: application/json\r\n\r\n{{\"nw_intent\":\"active\",\"firstname\":\"P2\"}}\r\n\
             --{b}--\r\n"
        );
        assert_eq!(text, expected);
        assert_eq!(
            encoded.content_type(),
            format!("multipart/mixed; boundary={b}")
        );
    }

    #[test]
    fn the_boundary_follows_the_content() {
        assert_eq!(encode(&[op(1), op(2)]), encode(&[op(1), op(2)]));
        assert_ne!(
            encode(&[op(1), op(2)]).boundary,
            encode(&[op(2), op(1)]).boundary
        );
    }

    #[test]
    fn a_body_that_holds_the_boundary_gets_another() {
        let first = encode(&[op(1)]).boundary;
        let mut tricky = op(1);
        tricky.body = format!("--{first}").into_bytes();
        let encoded = encode(&[tricky]);
        let parts = String::from_utf8(encoded.body).unwrap();
        assert_eq!(
            parts
                .matches(&format!("--{}\r\n", encoded.boundary))
                .count(),
            1
        );
    }

    const ANSWER: &str = "--batchresponse_c1\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
\r\n\
HTTP/1.1 204 No Content\r\n\
OData-Version: 4.0\r\n\
OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/contacts(7a3d6c2e-0000-0000-0000-000000000001)\r\n\
\r\n\
\r\n\
--batchresponse_c1\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
\r\n\
HTTP/1.1 400 Bad Request\r\n\
Content-Type: application/json; odata.metadata=minimal\r\n\
OData-Version: 4.0\r\n\
\r\n\
{\"error\":{\"code\":\"0x80060888\",\"message\":\"Could not find a property named 'nw_x' on type 'Microsoft.Dynamics.CRM.contact'.\"}}\r\n\
--batchresponse_c1--\r\n";

    #[test]
    fn an_answer_gives_each_response_in_order() {
        let parts = parse(
            "multipart/mixed; boundary=batchresponse_c1",
            ANSWER.as_bytes(),
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].status, 204);
        assert!(parts[0].body.is_empty());
        assert_eq!(parts[0].content_id, None);
        assert_eq!(parts[1].status, 400);
        let error: serde_json::Value = serde_json::from_slice(&parts[1].body).unwrap();
        assert_eq!(error["error"]["code"], "0x80060888");
    }

    #[test]
    fn lf_line_ends_a_quoted_boundary_a_preamble_and_content_ids_are_read() {
        let answer = format!(
            "preamble to ignore\n{}",
            ANSWER.replace("\r\n", "\n").replace(
                "Content-Transfer-Encoding: binary\n",
                "Content-Transfer-Encoding: binary\nContent-ID: 7\n"
            )
        );
        let parts = parse(
            "Multipart/Mixed; charset=utf-8; boundary=\"batchresponse_c1\"",
            answer.as_bytes(),
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].status, 400);
        assert_eq!(parts[0].content_id.as_deref(), Some("7"));
    }

    #[test]
    fn change_set_responses_are_flattened_in_place() {
        let nested = "--batchresponse_o\r\nContent-Type: multipart/mixed; boundary=changesetresponse_i\r\n\r\n\
--changesetresponse_i\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n\
--changesetresponse_i\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n\
--changesetresponse_i--\r\n--batchresponse_o--\r\n";
        let parts = parse(
            "multipart/mixed; boundary=batchresponse_o",
            nested.as_bytes(),
        )
        .unwrap();
        let ids: Vec<_> = parts.iter().map(|p| p.content_id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("2")]);
    }

    #[test]
    fn broken_answers_are_errors_never_panics() {
        let ct = "multipart/mixed; boundary=batchresponse_c1";
        let cut = &ANSWER[..ANSWER.len() - 24];
        assert!(parse(ct, cut.as_bytes()).unwrap_err().contains("cut short"));
        assert!(
            parse("application/json", b"{}")
                .unwrap_err()
                .contains("not multipart")
        );
        assert!(
            parse("multipart/mixed", b"")
                .unwrap_err()
                .contains("no boundary")
        );
        assert!(parse("multipart/mixed; boundary=\"\"", b"").is_err());
        let not_http = "--b\r\nContent-Type: application/http\r\n\r\nHELLO\r\n--b--\r\n";
        assert!(
            parse("multipart/mixed; boundary=b", not_http.as_bytes())
                .unwrap_err()
                .contains("no HTTP response")
        );
        let wrong_type = "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n";
        assert!(parse("multipart/mixed; boundary=b", wrong_type.as_bytes()).is_err());
        assert_eq!(
            parse("multipart/mixed; boundary=b", b"--b--\r\n"),
            Ok(vec![])
        );
        for junk in [
            &b"\xff\xfe--b\r\n"[..],
            b"--b\r\n\r\n\r\n--b--",
            b"--b\r\nHTTP/1.1 999 X\r\n--b--",
        ] {
            let _ = parse("multipart/mixed; boundary=b", junk);
        }
    }
}
