//! A Cloud Storage fake that speaks the XML API, on the loopback fake
//! framework: written from Google's published XML API reference, not from
//! accord's client. The emulators in the package registries do not accept
//! XML API uploads (fake-gcs-server routes every PUT to its JSON upload
//! handler, its issue #331), which is what object_store writes through.
//!
//! In: the buckets that exist and the test service-account key, whose
//! public half checks the bearer tokens. Out:
//! - `PUT /{bucket}/{object}` (upload): `x-goog-if-generation-match` is the
//!   precondition (`0`: only when no live object has the name), 412
//!   `PreconditionFailed` when it does not hold; on success the `ETag` and
//!   `x-goog-generation` headers;
//! - `GET`/`HEAD /{bucket}/{object}` (download, metadata): the bytes with
//!   `Content-Length`, `ETag`, `Last-Modified` and `x-goog-generation`, or
//!   404 `NoSuchKey`;
//! - XML multipart uploads: `POST /{bucket}/{object}?uploads` starts one
//!   (an `InitiateMultipartUploadResult` with its `UploadId`), `PUT
//!   ...?partNumber=N&uploadId=ID` stores part `N` (1 to 10,000; its `ETag`
//!   answered), `POST ...?uploadId=ID` with a `CompleteMultipartUpload` body
//!   joins the listed parts into the object (400 `InvalidPart` for a part or
//!   tag it does not hold, `InvalidPartOrder` unless the numbers ascend,
//!   `EntityTooSmall` for a part but the last under 5 MiB), and `DELETE
//!   ...?uploadId=ID` aborts it (204); an unknown upload is 404
//!   `NoSuchUpload`. The object appears only when the upload completes;
//! - `GET /{bucket}?list-type=2&prefix=P` (list objects, V2): a
//!   `ListBucketResult` of the names under `P`;
//! - any request on a bucket that does not exist: 404 `NoSuchBucket`;
//! - a request without a bearer token Google would accept: 401
//!   `AuthenticationRequired`, before anything else is looked at.
//!
//! Tokens: a client holding a service-account key either trades a signed
//! assertion for an access token at the key's `token_uri`, or (what
//! object_store 0.13 does) sends a self-signed JWT as the bearer token
//! itself (Google's AIP-4111). The fake accepts the latter as Cloud Storage
//! does: RS256, signed by the key the header's `kid` names, `iss` and `sub`
//! the account's email, a storage scope (or the storage audience), at most
//! an hour long and not expired. An assertion signed by any other key, even
//! one naming the same account, is refused.
//!
//! Errors are the XML API's `<Error><Code/><Message/></Error>` bodies.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::Value;

use crate::fake::{FakeServer, Policy};

/// The test key whose assertions the fake accepts (never a real credential).
pub const KEY_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/keys/google_service_account_TEST_ONLY.json"
);

/// Scopes that grant object reads and writes (Cloud Storage's OAuth scopes).
const STORAGE_SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/devstorage.read_write",
];
/// The audience of a self-signed JWT meant for Cloud Storage.
const STORAGE_AUDIENCE: &str = "https://storage.googleapis.com/";
/// A 10 MB delivery file is one PUT; Cloud Storage takes up to 5 TiB.
const MAX_UPLOAD: usize = 64 * 1024 * 1024;

/// The smallest part of a multipart upload but the last.
const MIN_PART: usize = 5 * 1024 * 1024;

/// A multipart upload in progress: its object's place and its parts by
/// number.
struct Upload {
    bucket: String,
    name: String,
    parts: BTreeMap<u32, (String, Bytes)>,
}

impl Upload {
    /// Whether the upload is of the object `name` in `bucket`.
    fn is_of(&self, (bucket, name): (&str, &str)) -> bool {
        self.bucket == bucket && self.name == name
    }
}

/// One live object version.
#[derive(Clone)]
struct Object {
    bytes: Bytes,
    generation: u64,
    etag: String,
    updated: SystemTime,
}

/// The service account whose key signs the tokens the fake accepts.
struct Account {
    email: String,
    key_id: String,
    public_key: Vec<u8>,
}

pub struct Gcs {
    account: Account,
    buckets: Mutex<BTreeMap<String, BTreeMap<String, Object>>>,
    /// Generations only grow, across buckets, as in Cloud Storage.
    last_generation: Mutex<u64>,
    /// Multipart uploads started and neither completed nor aborted, by id.
    uploads: Mutex<BTreeMap<String, Upload>>,
    /// Set by a test: part uploads are refused (403), as with a key that
    /// may create uploads but not write to the bucket.
    pub refuse_parts: std::sync::atomic::AtomicBool,
}

impl Gcs {
    /// The bytes of `name` in `bucket`, `None` when there is no such object.
    pub fn object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let buckets = self.buckets.lock().unwrap();
        buckets.get(bucket)?.get(name).map(|o| o.bytes.to_vec())
    }

    /// The names in `bucket`, in order.
    pub fn names(&self, bucket: &str) -> BTreeSet<String> {
        let buckets = self.buckets.lock().unwrap();
        buckets
            .get(bucket)
            .map(|objects| objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Multipart uploads neither completed nor aborted.
    pub fn uploads_in_progress(&self) -> usize {
        self.uploads.lock().unwrap().len()
    }

    /// The next generation number.
    fn generation(&self) -> u64 {
        let mut last = self.last_generation.lock().unwrap();
        *last += 1;
        *last
    }
}

/// Starts the fake with `buckets` (empty) on loopback.
pub fn start(buckets: &[&str]) -> (FakeServer, Arc<Gcs>) {
    let key: Value = serde_json::from_str(&std::fs::read_to_string(KEY_FILE).unwrap()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pair = RsaKeyPair::from_pkcs8(&STANDARD.decode(der).unwrap()).unwrap();
    let gcs = Arc::new(Gcs {
        account: Account {
            email: key["client_email"].as_str().unwrap().to_string(),
            key_id: key["private_key_id"].as_str().unwrap().to_string(),
            public_key: pair.public_key().as_ref().to_vec(),
        },
        buckets: Mutex::new(
            buckets
                .iter()
                .map(|b| (b.to_string(), BTreeMap::new()))
                .collect(),
        ),
        last_generation: Mutex::new(1_700_000_000_000_000),
        uploads: Mutex::new(BTreeMap::new()),
        refuse_parts: Default::default(),
    });
    let state = gcs.clone();
    let server = FakeServer::start(Policy::open(), move |_| router(state));
    (server, gcs)
}

fn router(gcs: Arc<Gcs>) -> Router {
    Router::new()
        .route("/{bucket}", get(list_objects))
        .route(
            "/{bucket}/{*object}",
            get(get_object)
                .head(get_object)
                .put(put_object)
                .post(post_object)
                .delete(abort_upload),
        )
        .layer(middleware::from_fn_with_state(gcs.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(gcs)
}

/// An XML API error body.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{}</Message></Error>",
        escape(message)
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn no_such_bucket() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchBucket",
        "The specified bucket does not exist.",
    )
}

// --- authentication --------------------------------------------------------

async fn authenticate(State(gcs): State<Arc<Gcs>>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer.map(|token| gcs.account.verify(token)) {
        Some(Ok(())) => next.run(request).await,
        Some(Err(why)) => error(StatusCode::UNAUTHORIZED, "AuthenticationRequired", why),
        None => error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequired",
            "Authentication required.",
        ),
    }
}

impl Account {
    /// Checks a self-signed JWT as Cloud Storage does.
    fn verify(&self, token: &str) -> Result<(), &'static str> {
        let invalid = "Invalid Credentials";
        let (signed, signature) = token.rsplit_once('.').ok_or(invalid)?;
        let (header, claims) = signed.split_once('.').ok_or(invalid)?;
        let header = decode_part(header).ok_or(invalid)?;
        let claims = decode_part(claims).ok_or(invalid)?;
        if header["alg"] != "RS256" || header["kid"] != self.key_id.as_str() {
            return Err(invalid);
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid)?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| invalid)?;
        if claims["iss"] != self.email.as_str() || claims["sub"] != self.email.as_str() {
            return Err(invalid);
        }
        let scoped = claims["scope"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|s| STORAGE_SCOPES.contains(&s)));
        if !scoped && claims["aud"] != STORAGE_AUDIENCE {
            return Err(invalid);
        }
        let now = unix_seconds(SystemTime::now());
        let iat = claims["iat"].as_u64().ok_or(invalid)?;
        let exp = claims["exp"].as_u64().ok_or(invalid)?;
        if iat > now + 300 || exp <= now || exp <= iat || exp - iat > 3600 {
            return Err(invalid);
        }
        Ok(())
    }
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

// --- objects ---------------------------------------------------------------

async fn put_object(
    State(gcs): State<Arc<Gcs>>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(upload_id) = query.get("uploadId") {
        return put_part(
            &gcs,
            (&bucket, &name),
            upload_id,
            query.get("partNumber"),
            body,
        );
    }
    let precondition = match headers.get("x-goog-if-generation-match") {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
            Some(generation) => Some(generation),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "Invalid argument: x-goog-if-generation-match.",
                );
            }
        },
    };
    let mut buckets = gcs.buckets.lock().unwrap();
    let Some(objects) = buckets.get_mut(&bucket) else {
        return no_such_bucket();
    };
    let current = objects.get(&name).map_or(0, |o| o.generation);
    if precondition.is_some_and(|wanted| wanted != current) {
        return error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        );
    }
    let generation = gcs.generation();
    let object = Object {
        etag: entity_tag(&body),
        bytes: body,
        generation,
        updated: SystemTime::now(),
    };
    let answer = (
        StatusCode::OK,
        [
            (header::ETAG, object.etag.clone()),
            (
                header::HeaderName::from_static("x-goog-generation"),
                generation.to_string(),
            ),
        ],
    )
        .into_response();
    objects.insert(name, object);
    answer
}

// --- multipart uploads -----------------------------------------------------

fn no_such_upload() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The specified multipart upload does not exist.",
    )
}

fn malformed() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "MalformedXML",
        "The XML you provided was not well-formed.",
    )
}

fn invalid_part(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "InvalidPart", message)
}

/// `POST` on an object: `?uploads` starts a multipart upload, `?uploadId=`
/// completes one; nothing else is served.
async fn post_object(
    State(gcs): State<Arc<Gcs>>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if !gcs.buckets.lock().unwrap().contains_key(&bucket) {
        return no_such_bucket();
    }
    if query.contains_key("uploads") {
        let id = URL_SAFE_NO_PAD.encode(gcs.generation().to_be_bytes());
        gcs.uploads.lock().unwrap().insert(
            id.clone(),
            Upload {
                bucket: bucket.clone(),
                name: name.clone(),
                parts: BTreeMap::new(),
            },
        );
        let body = format!(
            "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
            escape(&bucket),
            escape(&name)
        );
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/xml")],
            body,
        )
            .into_response();
    }
    let Some(upload_id) = query.get("uploadId") else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "The fake serves POST only for multipart uploads.",
        );
    };
    complete_upload(&gcs, (&bucket, &name), upload_id, &body)
}

fn put_part(
    gcs: &Gcs,
    (bucket, name): (&str, &str),
    upload_id: &str,
    number: Option<&String>,
    body: Bytes,
) -> Response {
    let Some(number) = number
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=10_000).contains(n))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "partNumber must be an integer from 1 to 10000.",
        );
    };
    if gcs.refuse_parts.load(std::sync::atomic::Ordering::SeqCst) {
        return error(StatusCode::FORBIDDEN, "AccessDenied", "Access denied.");
    }
    let mut uploads = gcs.uploads.lock().unwrap();
    let Some(upload) = uploads
        .get_mut(upload_id)
        .filter(|u| u.is_of((bucket, name)))
    else {
        return no_such_upload();
    };
    let etag = entity_tag(&body);
    upload.parts.insert(number, (etag.clone(), body));
    (StatusCode::OK, [(header::ETAG, etag)]).into_response()
}

/// The `<PartNumber>` and `<ETag>` of each `<Part>` of a
/// `CompleteMultipartUpload` body, in the body's order.
fn listed_parts(body: &str) -> Option<Vec<(u32, String)>> {
    let inner = |part: &str, tag: &str| -> Option<String> {
        let open = format!("<{tag}>");
        let start = part.find(&open)? + open.len();
        let end = start + part[start..].find(&format!("</{tag}>"))?;
        Some(part[start..end].trim().replace("&quot;", "\""))
    };
    body.split("<Part>")
        .skip(1)
        .map(|part| {
            Some((
                inner(part, "PartNumber")?.parse().ok()?,
                inner(part, "ETag")?,
            ))
        })
        .collect()
}

fn complete_upload(
    gcs: &Gcs,
    (bucket, name): (&str, &str),
    upload_id: &str,
    body: &[u8],
) -> Response {
    let Some(listed) = std::str::from_utf8(body).ok().and_then(listed_parts) else {
        return malformed();
    };
    let mut uploads = gcs.uploads.lock().unwrap();
    let Some(upload) = uploads.get(upload_id).filter(|u| u.is_of((bucket, name))) else {
        return no_such_upload();
    };
    if listed.is_empty() {
        return malformed();
    }
    if listed.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order.",
        );
    }
    let mut joined = Vec::new();
    for (at, (number, etag)) in listed.iter().enumerate() {
        let Some((held, bytes)) = upload.parts.get(number) else {
            return invalid_part("One or more of the specified parts could not be found.");
        };
        if held != etag {
            return invalid_part("One or more of the specified parts' ETags do not match.");
        }
        if at + 1 < listed.len() && bytes.len() < MIN_PART {
            return error(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            );
        }
        joined.extend_from_slice(bytes);
    }
    uploads.remove(upload_id);
    drop(uploads);
    let mut buckets = gcs.buckets.lock().unwrap();
    let Some(objects) = buckets.get_mut(bucket) else {
        return no_such_bucket();
    };
    let generation = gcs.generation();
    let object = Object {
        etag: entity_tag(&joined),
        bytes: Bytes::from(joined),
        generation,
        updated: SystemTime::now(),
    };
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>https://storage.googleapis.com/{bucket}/{name}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
        escape(bucket),
        escape(name),
        escape(&object.etag)
    );
    objects.insert(name.to_string(), object);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/xml".to_string()),
            (
                header::HeaderName::from_static("x-goog-generation"),
                generation.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

/// `DELETE ...?uploadId=ID`: aborts the upload, its parts dropped.
async fn abort_upload(
    State(gcs): State<Arc<Gcs>>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(upload_id) = query.get("uploadId") else {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "The fake deletes only multipart uploads.",
        );
    };
    let mut uploads = gcs.uploads.lock().unwrap();
    match uploads.get(upload_id) {
        Some(u) if u.is_of((&bucket, &name)) => {
            uploads.remove(upload_id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => no_such_upload(),
    }
}

async fn get_object(
    State(gcs): State<Arc<Gcs>>,
    Path((bucket, name)): Path<(String, String)>,
    method: Method,
) -> Response {
    let object = {
        let buckets = gcs.buckets.lock().unwrap();
        let Some(objects) = buckets.get(&bucket) else {
            return no_such_bucket();
        };
        match objects.get(&name) {
            Some(object) => object.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "NoSuchKey",
                    "The specified key does not exist.",
                );
            }
        }
    };
    let mut response = if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        (StatusCode::OK, object.bytes.clone()).into_response()
    };
    let headers = response.headers_mut();
    let value = |text: String| HeaderValue::from_str(&text).unwrap();
    headers.insert(
        header::CONTENT_LENGTH,
        value(object.bytes.len().to_string()),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ETAG, value(object.etag));
    headers.insert(header::LAST_MODIFIED, value(http_date(object.updated)));
    headers.insert("x-goog-generation", value(object.generation.to_string()));
    headers.insert("x-goog-metageneration", HeaderValue::from_static("1"));
    headers.insert(
        "x-goog-stored-content-length",
        value(object.bytes.len().to_string()),
    );
    response
}

/// List objects, V2 (`list-type=2`): every name under `prefix`. The page is
/// the whole listing: the tests' buckets hold far fewer names than the
/// 1,000 a page may carry, so no continuation token is ever needed.
async fn list_objects(
    State(gcs): State<Arc<Gcs>>,
    Path(bucket): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if query.get("list-type").map(String::as_str) != Some("2") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "The fake serves only list-type=2.",
        );
    }
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    let buckets = gcs.buckets.lock().unwrap();
    let Some(objects) = buckets.get(&bucket) else {
        return no_such_bucket();
    };
    let under: Vec<(&String, &Object)> = objects
        .range(prefix.clone()..)
        .take_while(|(name, _)| name.starts_with(&prefix))
        .collect();
    let mut body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>",
        escape(&bucket),
        escape(&prefix),
        under.len()
    );
    for (name, object) in under {
        body.push_str(&format!(
            "<Contents><Key>{}</Key><Generation>{}</Generation><MetaGeneration>1</MetaGeneration><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size></Contents>",
            escape(name),
            object.generation,
            rfc3339(object.updated),
            escape(&object.etag),
            object.bytes.len()
        ));
    }
    body.push_str("</ListBucketResult>");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")],
        body,
    )
        .into_response()
}

/// A quoted tag that changes with the content. Cloud Storage uses the MD5
/// of a non-composite object; clients only compare tags, so a truncated
/// SHA-256 (ring has no MD5) serves the same purpose.
fn entity_tag(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

// --- time ------------------------------------------------------------------

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// (year, month, day, hour, minute, second, weekday with 0 = Sunday), UTC.
fn civil(time: SystemTime) -> (i64, u32, u32, u64, u64, u64, usize) {
    let seconds = unix_seconds(time);
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ((days + 4).rem_euclid(7)) as usize;
    (
        year,
        month,
        day,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        weekday,
    )
}

/// `Last-Modified`: an HTTP date (RFC 9110, IMF-fixdate).
fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(time);
    format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[wd],
        MONTHS[mo as usize - 1]
    )
}

/// A listing's `LastModified`: ISO 8601 in UTC.
fn rfc3339(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(time);
    format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z")
}
