//! `sha256:<hex>` content digests, and a reader that checks one while the bytes stream by.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::OciError;

/// A validated content digest. Only SHA-256, which every registry and tool uses, is accepted;
/// anything else is refused rather than trusted unchecked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, OciError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| OciError::BadDigest(s.to_owned()))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(OciError::BadDigest(s.to_owned()));
        }
        Ok(Digest(s.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// `sha256-<hex>`: the digest as a file name.
    pub fn file_name(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    /// Checks that `bytes` have this digest; `what` names them in the error.
    pub fn verify(&self, bytes: &[u8], what: &str) -> Result<(), OciError> {
        let actual = Digest::of(bytes);
        if &actual != self {
            return Err(OciError::DigestMismatch {
                what: what.to_owned(),
                expected: self.0.clone(),
                actual: actual.0,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Hashes what is read through it and refuses to read past the expected size, so a server
/// cannot make us store more than the descriptor announced. [`VerifyingReader::finish`] checks
/// the digest and size once everything was read.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    limit: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
            limit,
        }
    }

    /// Reads what is left, then checks size and digest.
    pub fn finish(mut self, expected: &Digest, size: u64, what: &str) -> Result<(), OciError> {
        io::copy(&mut self, &mut io::sink()).map_err(|e| OciError::Invalid {
            what: what.to_owned(),
            reason: format!("reading it failed: {e}"),
        })?;
        if self.read != size {
            return Err(OciError::SizeMismatch {
                what: what.to_owned(),
                expected: size,
                actual: self.read,
            });
        }
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != expected.as_str() {
            return Err(OciError::DigestMismatch {
                what: what.to_owned(),
                expected: expected.to_string(),
                actual,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than allowed is enough to notice an oversized blob.
        let room = (self.limit + 1).saturating_sub(self.read);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if want == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than the announced {} bytes", self.limit),
            ));
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than the announced {} bytes", self.limit),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_sha256() {
        let hex = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{hex}")).is_ok());
        assert!(Digest::parse(&format!("sha512:{hex}")).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&format!("sha256:../{}", &hex[3..])).is_err());
    }

    #[test]
    fn reader_checks_digest_and_size() {
        let data = b"hello";
        let d = Digest::of(data);
        let mut r = VerifyingReader::new(&data[..], 5);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        r.finish(&d, 5, "blob").unwrap();

        let r = VerifyingReader::new(&b"hellO"[..], 5);
        assert!(
            r.finish(&d, 5, "blob")
                .unwrap_err()
                .to_string()
                .contains("digest")
        );
        let mut r = VerifyingReader::new(&b"hello!"[..], 5);
        assert!(io::copy(&mut r, &mut io::sink()).is_err());
    }
}
