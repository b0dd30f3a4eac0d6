//! File destinations in object stores (`s3`, `azure_blob`, `gcs`) through
//! `object_store`, behind the synchronous [`FileStore`].
//!
//! Input: the destination's catalog type, its settings from the plan, its
//! resolved secrets and its `endpoint`. Output: a store whose names live
//! under the destination's `prefix`.
//!
//! Atomicity: an object store never shows a half-written object, so `put` is
//! one PUT, and `put_file` of a file larger than [`Multipart::threshold`]
//! is one multipart upload (S3's and Cloud Storage's `UploadPart`, Azure's
//! `Put Block`), the object appearing whole when the upload completes; an
//! upload that fails is aborted, so no part is left stored. `put_new` is a
//! create-only PUT (`PutMode::Create`: S3's
//! `If-None-Match: *`, Azure's `If-None-Match: *`, GCS's
//! `x-goog-if-generation-match: 0`), so of two runs writing the same manifest
//! exactly one wins and the other learns it lost.
//!
//! Blocking: the store owns a current-thread tokio runtime and blocks on it.
//! Call it from a plain thread (the run's file delivery). Called from inside
//! a tokio runtime it does not panic: the request runs on a short-lived
//! scoped thread and the caller's thread waits, which stalls that worker, so
//! async code should call it through `spawn_blocking`.
//!
//! Time: every request has a connect timeout and an overall timeout, and
//! object_store's own retries are bounded in count and total time, so an
//! unreachable endpoint fails in seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, MultipartUpload, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};
use secrecy::{ExposeSecret, SecretString};

use super::{FileStore, StorageError, StorageErrorKind, aws_profile};
use crate::plan::SettingPlan;

/// AWS's default region, used when an S3 destination names none: the one
/// region every S3-compatible store answers in.
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// How long a connection may take to open: a blackholed endpoint fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, upload included: one PUT or one part of
/// at most [`Multipart::threshold`] bytes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// S3's and Cloud Storage's most parts in one multipart upload (Azure
/// allows 50,000 blocks).
const MAX_PARTS: u64 = 10_000;
/// S3's and Cloud Storage's smallest part but the last.
const MIN_PART: usize = 5 * 1024 * 1024;
/// Parts uploaded at once: enough to keep a link busy while the next part
/// is read from disk, few enough that memory stays a few parts.
const PARTS_IN_FLIGHT: usize = 4;

/// When `put_file` uploads in parts, and how large they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Multipart {
    /// Files larger than this are uploaded in parts; smaller ones are one
    /// PUT, read into memory. S3 takes at most 5 GB in one PUT.
    pub threshold: u64,
    /// The size of a part (the last may be smaller); grown for a file that
    /// would need more than 10,000 parts. At least 5 MiB.
    pub part: usize,
}

impl Default for Multipart {
    /// Files over 64 MiB in parts of 16 MiB: at most about 80 MiB held per
    /// upload, and up to 156 GiB before parts must grow.
    fn default() -> Multipart {
        Multipart {
            threshold: 64 * 1024 * 1024,
            part: 16 * 1024 * 1024,
        }
    }
}

impl Multipart {
    /// The part size for a file of `len` bytes: the configured size, larger
    /// where the file would need more than [`MAX_PARTS`] parts, and never
    /// below the stores' minimum.
    fn part_for(&self, len: u64) -> usize {
        let fewest = len.div_ceil(MAX_PARTS) as usize;
        self.part.max(fewest).max(MIN_PART)
    }
}

/// object_store's retries of connection errors, 5xx and throttling: at most
/// three, within ten seconds, so a dead endpoint is reported in seconds and
/// a run is not held for minutes by a store that is down.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(10),
    }
}

/// Where a destination of type `kind` puts its objects, as reports show it
/// (`s3://bucket/prefix/`), from its settings alone: what a dry run names
/// without building a client. `None` for a type that is no object store.
pub fn location(kind: &str, settings: &BTreeMap<String, SettingPlan>) -> Option<String> {
    let text = |key: &str| match settings.get(key) {
        Some(SettingPlan::Text(t)) => Some(t.as_str()),
        _ => None,
    };
    let root = match kind {
        "s3" => format!("s3://{}", text("bucket")?),
        "azure_blob" => format!("az://{}/{}", text("account")?, text("container")?),
        "gcs" => format!("gs://{}", text("bucket")?),
        _ => return None,
    };
    Some(with_prefix(
        &root,
        text("prefix").unwrap_or("").trim_matches('/'),
    ))
}

/// `root/prefix/`, or `root/` without a prefix.
fn with_prefix(root: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("{root}/")
    } else {
        format!("{root}/{prefix}/")
    }
}

/// Which bucket (S3, GCS) or container (Azure) of a store a client is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bucket<'a> {
    S3(&'a str),
    Azure {
        account: &'a str,
        container: &'a str,
    },
    Gcs(&'a str),
}

impl Bucket<'_> {
    /// `s3://bucket`, `az://account/container`, `gs://bucket`: what reports
    /// and errors show.
    pub fn root(&self) -> String {
        match self {
            Bucket::S3(bucket) => format!("s3://{bucket}"),
            Bucket::Azure { account, container } => format!("az://{account}/{container}"),
            Bucket::Gcs(bucket) => format!("gs://{bucket}"),
        }
    }
}

/// The one place an object_store client is built, for storage destinations
/// and object-store sources alike: the credentials of `settings` (secrets
/// resolved into `secrets`, a `profile:` reference read here), else the
/// environment's default chain; `endpoint` for S3-compatible stores and
/// emulators; bounded timeouts and retries. `settings` keys and values are
/// those of the `s3`, `azure_blob` and `gcs` destinations (`region`,
/// `access_key_id`, `credentials`, ...); keys naming the place (`bucket`,
/// `prefix`) are ignored here, `bucket` says it.
pub fn client(
    bucket: &Bucket<'_>,
    settings: &BTreeMap<String, SettingPlan>,
    secrets: &BTreeMap<String, SecretString>,
    endpoint: Option<&str>,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let region = match settings.get("region") {
        Some(SettingPlan::Text(t)) => Some(t.as_str()),
        _ => None,
    };
    let options = ClientOptions::new()
        .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    let root = bucket.root();
    let built = |e: object_store::Error| config_error(format!("{root}: {e}"));
    Ok(match *bucket {
        Bucket::S3(name) => Arc::new(
            s3(settings, secrets, name, region, endpoint)?
                .with_client_options(options)
                .with_retry(retry())
                .build()
                .map_err(built)?,
        ),
        Bucket::Azure { account, container } => Arc::new(
            azure(secrets, account, container, endpoint)?
                .with_client_options(options)
                .with_retry(retry())
                .build()
                .map_err(built)?,
        ),
        Bucket::Gcs(name) => Arc::new(
            gcs(secrets, name, endpoint)?
                .with_client_options(options)
                .with_retry(retry())
                .build()
                .map_err(built)?,
        ),
    })
}

/// An S3 bucket, Azure Blob container or GCS bucket, with a key prefix.
pub struct ObjectFileStore {
    store: Arc<dyn ObjectStore>,
    /// `None` only while dropping (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    /// `s3://bucket/prefix/`: what reports and errors show.
    location: String,
    /// The prefix without its slashes, empty for the bucket's root.
    prefix: String,
    multipart: Multipart,
}

impl ObjectFileStore {
    /// A store for destination type `kind` (`s3`, `azure_blob`, `gcs`).
    /// `check` has made sure the settings are complete and consistent; what
    /// is still wrong here (an unreadable profile, a malformed key) is an
    /// error naming the setting.
    pub fn new(
        kind: &str,
        settings: &BTreeMap<String, SettingPlan>,
        secrets: &BTreeMap<String, SecretString>,
        endpoint: Option<&str>,
    ) -> Result<ObjectFileStore, StorageError> {
        let text = |key: &str| match settings.get(key) {
            Some(SettingPlan::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        let required = |key: &str| {
            text(key).ok_or_else(|| config_error(format!("`{kind}` destination has no `{key}`")))
        };
        let prefix = text("prefix").unwrap_or("").trim_matches('/').to_string();
        let bucket = match kind {
            "s3" => Bucket::S3(required("bucket")?),
            "azure_blob" => Bucket::Azure {
                account: required("account")?,
                container: required("container")?,
            },
            "gcs" => Bucket::Gcs(required("bucket")?),
            other => {
                return Err(config_error(format!(
                    "`{other}` is not an object store type (s3, azure_blob, gcs)"
                )));
            }
        };
        let store = client(&bucket, settings, secrets, endpoint)?;
        let root = bucket.root();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StorageError::new(StorageErrorKind::Other, format!("{root}: {e}")))?;
        let location = with_prefix(&root, &prefix);
        Ok(ObjectFileStore {
            store,
            runtime: Some(runtime),
            location,
            prefix,
            multipart: Multipart::default(),
        })
    }

    /// The same store, uploading in parts as `multipart` says (tests cross
    /// the threshold with small files).
    pub fn with_multipart(mut self, multipart: Multipart) -> ObjectFileStore {
        self.multipart = multipart;
        self
    }

    fn path(&self, name: &str) -> Result<Path, StorageError> {
        let full = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        };
        Path::parse(&full).map_err(|e| {
            StorageError::new(
                StorageErrorKind::Other,
                format!(
                    "`{name}` is not an object name under {}: {e}",
                    self.location
                ),
            )
        })
    }

    /// Runs `future` to completion on the store's runtime, from any thread.
    fn block_on<F: Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        block_on(
            self.runtime.as_ref().expect("runtime lives until drop"),
            future,
        )
    }

    /// One put of a whole object.
    fn put_payload(&self, name: &str, payload: PutPayload) -> Result<(), StorageError> {
        let path = self.path(name)?;
        self.block_on(self.store.put_opts(&path, payload, PutOptions::default()))
            .map(|_| ())
            .map_err(|e| self.error("writing", name, &e))
    }

    fn error(&self, op: &str, name: &str, error: &object_store::Error) -> StorageError {
        StorageError::new(
            kind_of(error),
            format!("{op} {}{name}: {}", self.location, describe(error)),
        )
    }

    /// A 404 on one object says nothing of its bucket: ask for a listing
    /// under the object's own name, which fails only when the bucket (or
    /// container) is missing.
    async fn bucket_exists(&self, path: &Path) -> Result<(), object_store::Error> {
        let mut listing = self.store.list(Some(path));
        match std::future::poll_fn(|cx| listing.as_mut().poll_next(cx)).await {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

impl FileStore for ObjectFileStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn size(&self, name: &str) -> Result<Option<u64>, StorageError> {
        let path = self.path(name)?;
        self.block_on(async {
            let head = GetOptions::new().with_head(true);
            match self.store.get_opts(&path, head).await {
                Ok(found) => Ok(Some(found.meta.size)),
                Err(object_store::Error::NotFound { .. }) => self
                    .bucket_exists(&path)
                    .await
                    .map(|()| None)
                    .map_err(|e| self.error("listing", name, &e)),
                Err(e) => Err(self.error("reading the size of", name, &e)),
            }
        })
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.put_payload(name, PutPayload::from(bytes.to_vec()))
    }

    /// A file up to the threshold is one put of its bytes, read in without
    /// a second copy; a larger one is a multipart upload read a part at a
    /// time (`upload_parts`), so memory holds a few parts, not the file.
    fn put_file(&self, name: &str, from: &std::path::Path) -> Result<(), StorageError> {
        let len = std::fs::metadata(from)
            .map_err(|e| super::unreadable_local(from, &e))?
            .len();
        if len <= self.multipart.threshold {
            return self.put_payload(name, PutPayload::from(super::read_local(from)?));
        }
        let mut file = std::fs::File::open(from).map_err(|e| super::unreadable_local(from, &e))?;
        let part = self.multipart.part_for(len);
        let path = self.path(name)?;
        self.block_on(async {
            let mut upload = self
                .store
                .put_multipart_opts(&path, PutMultipartOptions::default())
                .await
                .map_err(|e| self.error("starting the upload of", name, &e))?;
            match upload_parts(upload.as_mut(), &mut file, part).await {
                Ok(()) => match upload.complete().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        // object_store's S3 and GCS clients do not abort a
                        // refused completion; the parts must not stay.
                        let _ = upload.abort().await;
                        Err(self.error("completing the upload of", name, &e))
                    }
                },
                Err(failure) => {
                    // Best effort: a store that cannot be reached now keeps
                    // the parts until its lifecycle rule removes them.
                    let _ = upload.abort().await;
                    Err(match failure {
                        PartFailure::Local(e) => super::unreadable_local(from, &e),
                        PartFailure::Store(e) => self.error("uploading a part of", name, &e),
                        PartFailure::Lost(e) => StorageError::new(
                            StorageErrorKind::Other,
                            format!("uploading a part of {}{name}: {e}", self.location),
                        ),
                    })
                }
            }
        })
    }

    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        let path = self.path(name)?;
        let payload = PutPayload::from(bytes.to_vec());
        let create = PutOptions::from(PutMode::Create);
        match self.block_on(self.store.put_opts(&path, payload, create)) {
            Ok(_) => Ok(true),
            // Azure answers 409 and S3 412: both mean the name is taken.
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.error("creating", name, &e)),
        }
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(name)?;
        self.block_on(async {
            let result = match self.store.get_opts(&path, GetOptions::default()).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => {
                    return self
                        .bucket_exists(&path)
                        .await
                        .map(|()| None)
                        .map_err(|e| self.error("listing", name, &e));
                }
                Err(e) => return Err(self.error("reading", name, &e)),
            };
            let bytes = result
                .bytes()
                .await
                .map_err(|e| self.error("reading", name, &e))?;
            Ok(Some(bytes.to_vec()))
        })
    }
}

impl Drop for ObjectFileStore {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; let it wind down in
        // the background instead.
        if let Some(runtime) = self.runtime.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            runtime.shutdown_background();
        }
    }
}

/// Why a part of a multipart upload was not stored.
enum PartFailure {
    /// Reading the local file.
    Local(std::io::Error),
    /// The store refused or could not be reached.
    Store(object_store::Error),
    /// A part's task ended without an answer (it panicked).
    Lost(tokio::task::JoinError),
}

/// Uploads `file` to `upload` in parts of `part` bytes, at most
/// [`PARTS_IN_FLIGHT`] at once, and waits for all of them. The file is read
/// on the store's thread between parts: a local read of a part takes
/// milliseconds, its upload far longer, and the parts in flight go on
/// meanwhile only when awaited, so reading waits for a free slot first.
async fn upload_parts(
    upload: &mut dyn MultipartUpload,
    file: &mut std::fs::File,
    part: usize,
) -> Result<(), PartFailure> {
    let joined = |done: Result<object_store::Result<()>, tokio::task::JoinError>| match done {
        Ok(stored) => stored.map_err(PartFailure::Store),
        Err(e) => Err(PartFailure::Lost(e)),
    };
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.len() >= PARTS_IN_FLIGHT {
            if let Some(done) = in_flight.join_next().await {
                joined(done)?;
            }
        }
        let bytes = read_part(file, part).map_err(PartFailure::Local)?;
        if bytes.is_empty() {
            break;
        }
        in_flight.spawn(upload.put_part(PutPayload::from(bytes)));
    }
    while let Some(done) = in_flight.join_next().await {
        joined(done)?;
    }
    Ok(())
}

/// The next `part` bytes of `file`, fewer only at its end.
fn read_part(file: &mut std::fs::File, part: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(part);
    file.take(part as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Runs `future` to completion on `runtime`, from any thread: blocking on
/// a runtime from inside another panics, so there the caller's thread waits
/// on a helper thread that owns no runtime context.
pub fn block_on<F: Future + Send>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn config_error(message: String) -> StorageError {
    StorageError::new(StorageErrorKind::Other, message)
}

fn secret<'a>(secrets: &'a BTreeMap<String, SecretString>, key: &str) -> Option<&'a str> {
    secrets.get(key).map(|s| s.expose_secret())
}

/// An S3 client: explicit keys, a profile's keys, or (neither given) the
/// environment's credential chain (`AWS_*` variables, web identity, the
/// instance's role).
fn s3(
    settings: &BTreeMap<String, SettingPlan>,
    secrets: &BTreeMap<String, SecretString>,
    bucket: &str,
    region: Option<&str>,
    endpoint: Option<&str>,
) -> Result<AmazonS3Builder, StorageError> {
    let profile = match settings.get("credentials") {
        Some(SettingPlan::Reference(r)) => r.strip_prefix("profile:"),
        _ => None,
    };
    let mut builder = match (secret(secrets, "access_key_id"), profile) {
        (Some(key_id), _) => {
            let secret_key = secret(secrets, "secret_access_key").ok_or_else(|| {
                config_error(format!(
                    "s3://{bucket}: `access_key_id` is set without `secret_access_key`"
                ))
            })?;
            let mut b = AmazonS3Builder::new()
                .with_access_key_id(key_id)
                .with_secret_access_key(secret_key);
            if let Some(token) = secret(secrets, "session_token") {
                b = b.with_token(token);
            }
            b
        }
        (None, Some(name)) => {
            let keys = aws_profile::read(name)
                .map_err(|why| config_error(format!("s3://{bucket}: {why}")))?;
            let mut b = AmazonS3Builder::new()
                .with_access_key_id(keys.access_key_id)
                .with_secret_access_key(keys.secret_access_key.expose_secret());
            if let Some(token) = &keys.session_token {
                b = b.with_token(token.expose_secret());
            }
            b
        }
        (None, None) => AmazonS3Builder::from_env(),
    };
    builder = builder
        .with_bucket_name(bucket)
        .with_region(region.unwrap_or(DEFAULT_S3_REGION))
        // S3 has honoured `If-None-Match: *` on PUT since August 2024; this
        // is what makes the manifest create-only.
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    if let Some(endpoint) = endpoint {
        // S3-compatible stores are addressed by path (`ENDPOINT/BUCKET/KEY`).
        builder = builder
            .with_endpoint(endpoint.trim_end_matches('/'))
            .with_virtual_hosted_style_request(false);
    }
    Ok(builder)
}

/// An Azure Blob client: the account key, a SAS token, or (neither given)
/// the ambient identity (`AZURE_*` variables, workload or managed identity).
fn azure(
    secrets: &BTreeMap<String, SecretString>,
    account: &str,
    container: &str,
    endpoint: Option<&str>,
) -> Result<MicrosoftAzureBuilder, StorageError> {
    let mut builder = match (secret(secrets, "access_key"), secret(secrets, "sas_token")) {
        (Some(key), None) => MicrosoftAzureBuilder::new().with_access_key(key),
        (None, Some(sas)) => MicrosoftAzureBuilder::new()
            .with_config(AzureConfigKey::SasKey, sas.trim_start_matches('?')),
        (None, None) => MicrosoftAzureBuilder::from_env(),
        (Some(_), Some(_)) => {
            return Err(config_error(format!(
                "az://{account}/{container}: give `access_key` or `sas_token`, not both"
            )));
        }
    };
    builder = builder.with_account(account).with_container_name(container);
    if let Some(endpoint) = endpoint {
        // Azurite and other emulators: `http://HOST:PORT/ACCOUNT`.
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    Ok(builder)
}

/// A GCS client: a service account key, or (none given) application default
/// credentials. `credentials` may hold the key itself (`{ file = "key.json" }`
/// reads it) or the path of the key file (`{ env =
/// "GOOGLE_APPLICATION_CREDENTIALS" }`, the variable Google's tools set).
fn gcs(
    secrets: &BTreeMap<String, SecretString>,
    bucket: &str,
    endpoint: Option<&str>,
) -> Result<GoogleCloudStorageBuilder, StorageError> {
    let mut builder = match secret(secrets, "credentials") {
        Some(key) if key.trim_start().starts_with('{') => {
            GoogleCloudStorageBuilder::new().with_service_account_key(key)
        }
        Some(path) => GoogleCloudStorageBuilder::new().with_service_account_path(path),
        None => GoogleCloudStorageBuilder::from_env(),
    };
    builder = builder.with_bucket_name(bucket);
    if let Some(endpoint) = endpoint {
        builder = builder.with_base_url(endpoint.trim_end_matches('/'));
    }
    Ok(builder)
}

/// The kind of a failed request, for the run report.
pub fn kind_of(error: &object_store::Error) -> StorageErrorKind {
    use object_store::Error as E;
    match error {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StorageErrorKind::Denied,
        E::NotFound { .. } => StorageErrorKind::NotFound,
        _ if http_error(error).is_some_and(|h| {
            matches!(
                h.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Request
            )
        }) =>
        {
            StorageErrorKind::Unreachable
        }
        _ => match answer(error).map(|(status, _)| status) {
            Some(401 | 403) => StorageErrorKind::Denied,
            Some(404) => StorageErrorKind::NotFound,
            _ => StorageErrorKind::Other,
        },
    }
}

fn chain(error: &object_store::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(
        std::error::Error::source(error),
        |e: &&(dyn std::error::Error + 'static)| e.source(),
    )
}

fn http_error(error: &object_store::Error) -> Option<&HttpError> {
    chain(error).find_map(|e| e.downcast_ref::<HttpError>())
}

/// The HTTP status and body of a failed request, when the store answered:
/// object_store keeps its request error type private, so this reads the
/// one line it prints for it ("Server returned ... status code: 404 Not
/// Found: BODY").
fn answer(error: &object_store::Error) -> Option<(u16, String)> {
    chain(error).find_map(|e| {
        let text = e.to_string();
        let rest = text
            .strip_prefix("Server returned non-2xx status code: ")
            .or_else(|| text.strip_prefix("Server returned error response: "))?;
        let status = rest.get(..3)?.parse().ok();
        Some((status.unwrap_or(0), rest.to_string()))
    })
}

/// What went wrong, in the store's words but never its request URL (an
/// Azure SAS token rides in the query string): the status and the service's
/// error code when it answered, else the innermost cause (refused, DNS,
/// timeout).
pub fn describe(error: &object_store::Error) -> String {
    if let Some((status, body)) = answer(error) {
        return match error_code(&body) {
            Some(code) => format!("the store answered HTTP {status} ({code})"),
            None => format!("the store answered HTTP {status}"),
        };
    }
    if let Some(http) = http_error(error) {
        let cause = chain(error)
            .last()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let what = match http.kind() {
            HttpErrorKind::Connect => "cannot connect",
            HttpErrorKind::Timeout => "timed out",
            HttpErrorKind::Request => "the request failed",
            HttpErrorKind::Interrupted => "the connection was interrupted",
            HttpErrorKind::Decode => "the answer could not be read",
            _ => "the request failed",
        };
        return format!("{what}: {}", without_urls(&cause));
    }
    match error {
        object_store::Error::NotImplemented { operation, .. } => {
            format!("the store does not support {operation}")
        }
        other => without_urls(&other.to_string()),
    }
}

/// The `<Code>` of an S3, Azure or GCS XML error body (`NoSuchBucket`,
/// `ContainerNotFound`, `AuthenticationFailed`), or a JSON `"message"`.
fn error_code(body: &str) -> Option<String> {
    let tagged = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.trim().to_string());
    tagged.filter(|c| !c.is_empty() && c.len() < 80)
}

/// Drops anything that looks like a URL from a message, so no query string
/// (and no signature in it) reaches a report.
fn without_urls(text: &str) -> String {
    text.split_whitespace()
        .map(|word| if word.contains("://") { "<url>" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_error_codes_are_read_from_xml_bodies() {
        let s3 =
            "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>x</Message></Error>";
        assert_eq!(error_code(s3).as_deref(), Some("NoSuchBucket"));
        assert_eq!(error_code("plain text"), None);
    }

    #[test]
    fn urls_never_reach_a_message() {
        let text = "error sending request for url (http://h/c/x?sig=SECRET&sv=1): refused";
        let clean = without_urls(text);
        assert!(!clean.contains("SECRET"), "{clean}");
        assert!(clean.contains("refused"), "{clean}");
    }
}
