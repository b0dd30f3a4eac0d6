//! SHA-256 as lowercase hex: the one spelling of a digest, for hashed
//! identities, split buckets, delivered files, run ids and plan
//! fingerprints alike, so a digest printed by one reads the same in another.

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(bytes.as_ref()))
}

/// SHA-256 of `bytes` as its 32 bytes, for stores that keep digests
/// compact (the delivery ledger).
pub fn sha256(bytes: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(bytes.as_ref()).into()
}

/// A digest (or any bytes) as lowercase hex, two digits a byte: for a
/// hasher fed in pieces, such as the plan's fingerprints.
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A writer that passes its bytes on to `inner` while it counts and
/// hashes them: a file's length and SHA-256 as it is written or read, not
/// from its bytes held in memory.
pub struct Sha256Writer<W: std::io::Write> {
    inner: W,
    len: u64,
    sha256: Sha256,
}

impl<W: std::io::Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Sha256Writer<W> {
        Sha256Writer {
            inner,
            len: 0,
            sha256: Sha256::new(),
        }
    }

    /// Flushes `inner`: the length and SHA-256 (hex) of every byte written.
    pub fn finish(mut self) -> std::io::Result<(u64, String)> {
        self.inner.flush()?;
        Ok((self.len, hex(&self.sha256.finalize())))
    }
}

impl<W: std::io::Write> std::io::Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha256.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::sha256_hex;

    #[test]
    fn the_digest_of_nothing() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_hex(b"abc".as_slice()), sha256_hex("abc"));
    }
}
