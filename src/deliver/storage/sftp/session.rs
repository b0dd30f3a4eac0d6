//! One SSH connection to an SFTP server: TCP within a bounded time, the
//! handshake with only the pinned host key's algorithm offered and only that
//! key accepted, the login, and the SFTP subsystem.
//!
//! Every failure is a `StorageError` naming the server (never a secret):
//! refused, timed out or dropped -> `Unreachable`; another host key ->
//! `HostKeyMismatch`; a login the server refuses or a key that cannot be
//! read -> `Denied`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::{self, Algorithm, EcdsaCurve, HashAlg, PrivateKeyWithHashAlg, PublicKeyBase64};
use russh::{AlgorithmKind, Preferred};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::rawsession::Limits;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use super::remote::Remote;
use super::settings::{Login, SftpSettings};
use crate::deliver::storage::{StorageError, StorageErrorKind};
use crate::host_key::{self, HostKey, KeyType};

/// How long a server may take to accept the TCP connection: an unreachable
/// host fails a run in seconds, not at the operating system's minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the handshake and login, and then each SFTP request, may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per write and read request when the server does not announce its
/// limits (the size every SFTP server must accept).
const DEFAULT_CHUNK: u64 = 32 * 1024;
/// OpenSSH announces 255 KiB; larger requests gain nothing on the wire.
const MAX_CHUNK: u64 = 255 * 1024;

/// Accepts the server only when it presents the pinned key.
pub(super) struct PinnedHostKey {
    pinned: HostKey,
}

#[derive(Debug)]
pub(super) enum HandshakeError {
    Ssh(russh::Error),
    /// The server proved it holds another key (its fingerprint).
    OtherHostKey(String),
}

impl From<russh::Error> for HandshakeError {
    fn from(error: russh::Error) -> Self {
        HandshakeError::Ssh(error)
    }
}

impl client::Handler for PinnedHostKey {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        offered: &keys::PublicKeyOrCertificate,
    ) -> Result<bool, HandshakeError> {
        let blob = match offered {
            keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.public_key_bytes(),
            // Certificates are never asked for (no certificate algorithm is
            // offered); a server that sends one anyway is not the pinned key.
            keys::PublicKeyOrCertificate::Certificate(certificate) => {
                return Err(HandshakeError::OtherHostKey(format!(
                    "a certificate (of key {})",
                    certificate.public_key().fingerprint(HashAlg::Sha256)
                )));
            }
        };
        if blob == self.pinned.blob {
            Ok(true)
        } else {
            Err(HandshakeError::OtherHostKey(host_key::fingerprint(&blob)))
        }
    }
}

/// The host key algorithms to offer: only the pinned key's, so a server
/// with several host keys presents the one that is pinned. RSA keys sign
/// with SHA-2 (RFC 8332); SHA-1 `ssh-rsa` signatures are not accepted.
fn host_key_algorithms(key_type: KeyType) -> Vec<Algorithm> {
    let ecdsa = |curve| vec![Algorithm::Ecdsa { curve }];
    match key_type {
        KeyType::Ed25519 => vec![Algorithm::Ed25519],
        KeyType::EcdsaP256 => ecdsa(EcdsaCurve::NistP256),
        KeyType::EcdsaP384 => ecdsa(EcdsaCurve::NistP384),
        KeyType::EcdsaP521 => ecdsa(EcdsaCurve::NistP521),
        KeyType::Rsa => vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ],
    }
}

/// Connects, verifies the host key, logs in and starts SFTP.
pub(super) async fn open(settings: &SftpSettings) -> Result<Remote, StorageError> {
    let server = format!("sftp://{}:{}", settings.host, settings.port);
    let unreachable = |why: String| {
        StorageError::new(
            StorageErrorKind::Unreachable,
            format!("{server}: cannot connect: {why}"),
        )
    };
    let address = (settings.host.as_str(), settings.port);
    let socket = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {}s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Ok(Ok(socket)) => socket,
    };
    // Small request-reply packets: Nagle's delay would be paid on each.
    let _ = socket.set_nodelay(true);
    let config = client::Config {
        preferred: Preferred {
            key: Cow::Owned(host_key_algorithms(settings.host_key.key_type)),
            ..Preferred::default()
        },
        ..client::Config::default()
    };
    let handler = PinnedHostKey {
        pinned: settings.host_key.clone(),
    };
    let handshake = async {
        let mut handle = client::connect_stream(Arc::new(config), socket, handler)
            .await
            .map_err(|e| handshake_error(&server, settings, e))?;
        log_in(&server, settings, &mut handle).await?;
        start_sftp(&server, handle).await
    };
    tokio::time::timeout(REQUEST_TIMEOUT, handshake)
        .await
        .unwrap_or_else(|_| {
            Err(unreachable(format!(
                "the SSH handshake and login took over {}s",
                REQUEST_TIMEOUT.as_secs()
            )))
        })
}

fn handshake_error(server: &str, settings: &SftpSettings, error: HandshakeError) -> StorageError {
    let pinned = settings.host_key.fingerprint();
    let key_type = settings.host_key.key_type.name();
    match error {
        HandshakeError::OtherHostKey(offered) => StorageError::new(
            StorageErrorKind::HostKeyMismatch,
            format!(
                "{server}: the server's {key_type} host key is {offered}, not the pinned {pinned}; \
                 nothing was sent. If the server's key changed on purpose, confirm the new \
                 fingerprint with its operator and pin it (`ssh-keyscan -t {key_type} HOST`)"
            ),
        ),
        HandshakeError::Ssh(russh::Error::NoCommonAlgo {
            kind: AlgorithmKind::Key,
            theirs,
            ..
        }) => StorageError::new(
            StorageErrorKind::HostKeyMismatch,
            format!(
                "{server}: the server has no {key_type} host key (it offers {}), so it cannot \
                 be the pinned {pinned}; nothing was sent",
                theirs.join(", ")
            ),
        ),
        HandshakeError::Ssh(error) => ssh_error(server, "the SSH handshake failed", error),
    }
}

fn ssh_error(server: &str, what: &str, error: russh::Error) -> StorageError {
    let kind = match error {
        russh::Error::IO(_)
        | russh::Error::HUP
        | russh::Error::Disconnect
        | russh::Error::ConnectionTimeout
        | russh::Error::KeepaliveTimeout
        | russh::Error::InactivityTimeout
        | russh::Error::SendError => StorageErrorKind::Unreachable,
        _ => StorageErrorKind::Other,
    };
    StorageError::new(kind, format!("{server}: {what}: {error}"))
}

async fn log_in(
    server: &str,
    settings: &SftpSettings,
    handle: &mut Handle<PinnedHostKey>,
) -> Result<(), StorageError> {
    let user = settings.username.as_str();
    let denied =
        |what: String| StorageError::new(StorageErrorKind::Denied, format!("{server}: {what}"));
    let (result, method) = match &settings.login {
        Login::Password(password) => (
            handle
                .authenticate_password(user, password.expose_secret())
                .await,
            "password",
        ),
        Login::PrivateKey { key, passphrase } => {
            let key = keys::decode_secret_key(
                key.expose_secret(),
                passphrase.as_ref().map(|p| p.expose_secret()),
            )
            .map_err(|e| {
                denied(format!(
                    "`private_key` cannot be used ({e}): it must be an OpenSSH private key, \
                     with `passphrase` when it is encrypted"
                ))
            })?;
            // RSA keys sign with the best SHA-2 the server accepts
            // (`server-sig-algs`); other keys have one signature algorithm.
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| ssh_error(server, "the login failed", e))?
                    .flatten()
                    .or(Some(HashAlg::Sha256))
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            (
                handle.authenticate_publickey(user, key).await,
                "private key",
            )
        }
    };
    match result.map_err(|e| ssh_error(server, "the login failed", e))? {
        AuthResult::Success => Ok(()),
        AuthResult::Failure {
            remaining_methods, ..
        } => {
            let accepted: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            Err(denied(format!(
                "the server refused user `{user}`'s {method} (it accepts: {})",
                if accepted.is_empty() {
                    "nothing more".to_string()
                } else {
                    accepted.join(", ")
                }
            )))
        }
    }
}

async fn start_sftp(server: &str, handle: Handle<PinnedHostKey>) -> Result<Remote, StorageError> {
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| ssh_error(server, "cannot open a session", e))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| ssh_error(server, "the server has no sftp subsystem", e))?;
    let config = russh_sftp::client::Config {
        request_timeout_secs: REQUEST_TIMEOUT.as_secs(),
        ..russh_sftp::client::Config::default()
    };
    let mut sftp = RawSftpSession::new_with_config(channel.into_stream(), config);
    let failed = |e: russh_sftp::client::error::Error| {
        StorageError::new(
            StorageErrorKind::Other,
            format!("{server}: the SFTP session did not start: {e}"),
        )
    };
    let version = sftp.init().await.map_err(failed)?;
    let offers = |name: &str| version.extensions.get(name).is_some_and(|v| v == "1");
    let mut chunk = DEFAULT_CHUNK;
    let mut read_chunk = DEFAULT_CHUNK;
    if offers("limits@openssh.com") {
        let limits = Limits::from(sftp.limits().await.map_err(failed)?);
        chunk = limits.write_len.unwrap_or(chunk).min(MAX_CHUNK);
        read_chunk = limits.read_len.unwrap_or(read_chunk).min(MAX_CHUNK);
        sftp.set_limits(limits);
    }
    Ok(Remote::new(
        Arc::new(handle),
        Arc::new(sftp),
        offers("posix-rename@openssh.com"),
        chunk as usize,
        read_chunk as u32,
    ))
}
