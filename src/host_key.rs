//! An OpenSSH public key line (`ssh-ed25519 AAAA... comment`), as an SFTP
//! destination pins its server's host key: parsed and checked whole, so
//! `check` refuses a key the run could never match, and fingerprinted the
//! way `ssh-keygen -l` prints it (`SHA256:` and unpadded base64), so a
//! mismatch at run time names both keys in the form operators compare.
//!
//! Pure and in the default build: `resolve` checks the setting with it and
//! the SFTP store (behind `deliver`) compares the server's key against it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// The kinds of host key an SSH server presents that accord can pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa,
}

impl KeyType {
    const ALL: [KeyType; 5] = [
        KeyType::Ed25519,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::EcdsaP521,
        KeyType::Rsa,
    ];

    /// The name OpenSSH writes first on the line and inside the key.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyType::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyType::EcdsaP521 => "ecdsa-sha2-nistp521",
            KeyType::Rsa => "ssh-rsa",
        }
    }

    fn from_name(name: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The curve name inside an ECDSA key, and the length of its point
    /// (uncompressed: a 0x04 byte and both coordinates).
    fn curve(self) -> Option<(&'static str, usize)> {
        match self {
            KeyType::EcdsaP256 => Some(("nistp256", 65)),
            KeyType::EcdsaP384 => Some(("nistp384", 97)),
            KeyType::EcdsaP521 => Some(("nistp521", 133)),
            KeyType::Ed25519 | KeyType::Rsa => None,
        }
    }
}

/// A public key: its type and its wire encoding (the bytes the base64 of
/// the line decodes to, which is what SSH servers send and what
/// fingerprints hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    pub key_type: KeyType,
    pub blob: Vec<u8>,
}

impl HostKey {
    /// `SHA256:...`, as `ssh-keygen -l` and `ssh` print it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob)
    }
}

/// The SHA-256 fingerprint of a key's wire encoding.
pub fn fingerprint(blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(crate::hash::sha256(blob))
    )
}

/// Why a line is not a pinnable public key; the text says what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyError {
    Empty,
    /// `HOST ssh-ed25519 AAAA...`: a line of `ssh-keyscan` or known_hosts.
    LeadingHost(String),
    Certificate(String),
    UnsupportedType(String),
    MissingKey(KeyType),
    NotBase64,
    /// The decoded key does not have the structure its type requires.
    Malformed(KeyType, &'static str),
    /// The line says one type and the key inside is another.
    TypeMismatch {
        line: KeyType,
        inside: String,
    },
}

impl fmt::Display for HostKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyError::Empty => f.write_str("the key is empty"),
            HostKeyError::LeadingHost(host) => write!(
                f,
                "the line starts with the host `{host}`: pin the key alone, from its type on"
            ),
            HostKeyError::Certificate(name) => write!(
                f,
                "`{name}` is a certificate: pin the server's plain host key"
            ),
            HostKeyError::UnsupportedType(name) => write!(
                f,
                "`{name}` is not a host key type accord can pin (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa)"
            ),
            HostKeyError::MissingKey(t) => {
                write!(
                    f,
                    "the line has the type `{}` but no key after it",
                    t.name()
                )
            }
            HostKeyError::NotBase64 => f.write_str("the key after the type is not base64"),
            HostKeyError::Malformed(t, what) => {
                write!(f, "the `{}` key is cut or damaged: {what}", t.name())
            }
            HostKeyError::TypeMismatch { line, inside } => write!(
                f,
                "the line says `{}` but the key inside is `{inside}`",
                line.name()
            ),
        }
    }
}

impl std::error::Error for HostKeyError {}

/// Parses `TYPE BASE64 [COMMENT]`, the line `ssh-keyscan` prints after the
/// host name and `/etc/ssh/ssh_host_*_key.pub` holds.
pub fn parse(line: &str) -> Result<HostKey, HostKeyError> {
    let mut words = line.split_whitespace();
    let first = words.next().ok_or(HostKeyError::Empty)?;
    let second = words.next();
    let key_type = match KeyType::from_name(first) {
        Some(t) => t,
        None if second.is_some_and(|w| KeyType::from_name(w).is_some()) => {
            return Err(HostKeyError::LeadingHost(first.to_string()));
        }
        None if first.contains("-cert-") => {
            return Err(HostKeyError::Certificate(first.to_string()));
        }
        None => return Err(HostKeyError::UnsupportedType(first.to_string())),
    };
    let encoded = second.ok_or(HostKeyError::MissingKey(key_type))?;
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| HostKeyError::NotBase64)?;
    check_blob(key_type, &blob)?;
    Ok(HostKey { key_type, blob })
}

/// The SSH wire encoding of a public key (RFC 4253 6.6, RFC 5656 3.1,
/// RFC 8709 4): length-prefixed strings and integers, nothing left over.
fn check_blob(key_type: KeyType, blob: &[u8]) -> Result<(), HostKeyError> {
    let bad = |what| HostKeyError::Malformed(key_type, what);
    let mut reader = Reader(blob);
    let inside = reader.string().ok_or(bad("no type inside"))?;
    if inside != key_type.name().as_bytes() {
        return Err(HostKeyError::TypeMismatch {
            line: key_type,
            inside: String::from_utf8_lossy(inside).into_owned(),
        });
    }
    match key_type {
        KeyType::Ed25519 => {
            let point = reader.string().ok_or(bad("no public point"))?;
            if point.len() != 32 {
                return Err(bad("the public point is not 32 bytes"));
            }
        }
        KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 => {
            let (curve, point_len) = key_type.curve().unwrap_or_default();
            let named = reader.string().ok_or(bad("no curve name"))?;
            if named != curve.as_bytes() {
                return Err(bad("the curve inside is not the one the type names"));
            }
            let point = reader.string().ok_or(bad("no public point"))?;
            if point.len() != point_len || point.first() != Some(&4) {
                return Err(bad(
                    "the public point is not an uncompressed point of the curve",
                ));
            }
        }
        KeyType::Rsa => {
            let exponent = reader.string().ok_or(bad("no public exponent"))?;
            let modulus = reader.string().ok_or(bad("no modulus"))?;
            if exponent.iter().all(|b| *b == 0) {
                return Err(bad("the public exponent is zero"));
            }
            // OpenSSH refuses RSA keys under 1024 bits.
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < 1024 {
                return Err(bad("the modulus is under 1024 bits"));
            }
        }
    }
    if !reader.0.is_empty() {
        return Err(bad("bytes follow the key"));
    }
    Ok(())
}

/// Reads length-prefixed SSH strings off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `ssh-keygen -t ed25519`; its fingerprint as
    // `ssh-keygen -lf` printed it.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRWf/LhwpBfuFwTNUnE1iLi4VzHDioKu62zODnMj1C8 test@example";
    const ED25519_FINGERPRINT: &str = "SHA256:CUJAANzXYxl6Ov+Qe7nO2qPHM4PBeL1nMQ14TNdvx20";

    #[test]
    fn a_key_line_parses_and_fingerprints_like_ssh_keygen() {
        let key = parse(ED25519).unwrap();
        assert_eq!(key.key_type, KeyType::Ed25519);
        assert_eq!(key.fingerprint(), ED25519_FINGERPRINT);
        // No comment, extra blanks: the same key.
        let bare = ED25519.rsplit_once(' ').unwrap().0;
        assert_eq!(parse(&format!("  {bare}\t")).unwrap(), key);
    }

    #[test]
    fn odd_lines_are_refused_with_a_reason_never_a_panic() {
        let body = ED25519.split(' ').nth(1).unwrap();
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   \n", "empty"),
            ("ssh-ed25519", "no key after it"),
            ("ssh-ed25519 !!!!", "not base64"),
            ("ssh-ed25519 AAAA", "cut or damaged"),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRWf/LhwpBfuFwTNUnE1iLi4VzHDioKu62zODnMj1C",
                "not base64",
            ),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRWf/Lh",
                "cut or damaged",
            ),
            ("ssh-dss AAAAB3NzaC1kc3M=", "not a host key type"),
            ("ssh-ed25519-cert-v01@openssh.com AAAA", "certificate"),
            ("sk-ssh-ed25519@openssh.com AAAA", "not a host key type"),
            (
                "AAAAC3NzaC1lZDI1NTE5AAAAIMRWf/LhwpBfuFwTNUnE1iLi4VzHDioKu62zODnMj1C8",
                "not a host key type",
            ),
            ("é ssh-ed25519", "starts with the host `é`"),
            ("\u{0}\u{ffff}", "not a host key type"),
        ];
        for (line, reason) in cases {
            let err = parse(line).expect_err(line).to_string();
            assert!(err.contains(reason), "{line:?}: {err}");
        }
        let scanned = format!("sftp.example.com {ED25519}");
        assert_eq!(
            parse(&scanned),
            Err(HostKeyError::LeadingHost("sftp.example.com".into()))
        );
        let relabelled = format!("ssh-rsa {body}");
        assert_eq!(
            parse(&relabelled).unwrap_err().to_string(),
            "the line says `ssh-rsa` but the key inside is `ssh-ed25519`"
        );
    }

    #[test]
    fn every_prefix_and_bit_flip_of_a_key_is_handled() {
        let body = ED25519.split(' ').nth(1).unwrap();
        let blob = STANDARD.decode(body).unwrap();
        for cut in 0..blob.len() {
            let line = format!("ssh-ed25519 {}", STANDARD.encode(&blob[..cut]));
            assert!(parse(&line).is_err(), "{cut}");
        }
        for at in 0..blob.len() {
            let mut flipped = blob.clone();
            flipped[at] ^= 0x80;
            // Flips in the point still parse (any 32 bytes are a point on
            // the wire); flips in the framing never panic.
            let _ = parse(&format!("ssh-ed25519 {}", STANDARD.encode(&flipped)));
        }
        let mut longer = blob.clone();
        longer.push(0);
        let line = format!("ssh-ed25519 {}", STANDARD.encode(&longer));
        assert!(
            parse(&line)
                .unwrap_err()
                .to_string()
                .contains("bytes follow")
        );
    }

    fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend((bytes.len() as u32).to_be_bytes());
        out.extend(bytes);
    }

    #[test]
    fn ecdsa_and_rsa_keys_are_checked_by_their_structure() {
        let mut ecdsa = Vec::new();
        ssh_string(&mut ecdsa, b"ecdsa-sha2-nistp256");
        ssh_string(&mut ecdsa, b"nistp256");
        let mut point = vec![4u8];
        point.extend([7u8; 64]);
        ssh_string(&mut ecdsa, &point);
        let line = format!("ecdsa-sha2-nistp256 {}", STANDARD.encode(&ecdsa));
        assert_eq!(parse(&line).unwrap().key_type, KeyType::EcdsaP256);
        let as_384 = format!("ecdsa-sha2-nistp384 {}", STANDARD.encode(&ecdsa));
        assert!(parse(&as_384).is_err());

        let rsa = |bits: usize| {
            let mut out = Vec::new();
            ssh_string(&mut out, b"ssh-rsa");
            ssh_string(&mut out, &[1, 0, 1]);
            let mut modulus = vec![0u8];
            modulus.extend(vec![0xc3; bits / 8]);
            ssh_string(&mut out, &modulus);
            format!("ssh-rsa {}", STANDARD.encode(&out))
        };
        assert_eq!(parse(&rsa(2048)).unwrap().key_type, KeyType::Rsa);
        assert!(parse(&rsa(512)).unwrap_err().to_string().contains("1024"));
    }

    #[test]
    fn a_huge_length_prefix_is_not_trusted() {
        let mut blob = Vec::new();
        blob.extend(u32::MAX.to_be_bytes());
        blob.extend(b"ssh-ed25519");
        let line = format!("ssh-ed25519 {}", STANDARD.encode(&blob));
        assert!(parse(&line).is_err());
    }
}
