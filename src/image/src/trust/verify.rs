//! Checking an image's detached signature against the trust store.

use std::io::{self, Read};

use pgp::composed::{Deserializable, DetachedSignature};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::Timestamp;

use rkt_schema::AcIdentifier;

use super::error::TrustError;
use super::key::{Fingerprint, Signer, Unusable};
use super::store::{ImageSubject, KeyScope, TrustStore, TrustedKey};

/// How far a signature's creation time may be ahead of this machine's clock: a publisher whose
/// clock runs a little fast must not break fetches of images it has just signed.
const CLOCK_SKEW_SECS: u32 = 5 * 60;

/// A good signature by a trusted key.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The trusted key (its primary fingerprint, also when a subkey signed).
    pub fingerprint: Fingerprint,
    /// The key's user IDs, to show who vouched for the image.
    pub user_ids: Vec<String>,
    /// The scope the key is trusted in that covers the image.
    pub scope: KeyScope,
    /// When the signature says it was made (seconds since the epoch).
    pub signed_at: u64,
}

impl TrustStore {
    /// The signatures made by one of `keys`, with their key and signer, in the order given.
    /// None: the refusal names `image` and the first signature's issuer, and the prefixes that
    /// key is trusted for instead, if any.
    pub(crate) fn trusted_signers<'k, 's>(
        &self,
        image: &str,
        keys: &'k [TrustedKey],
        signatures: &'s [Signature],
    ) -> Result<Vec<(&'s Signature, &'k TrustedKey, Signer<'k>)>, TrustError> {
        let candidates: Vec<_> = signatures
            .iter()
            .flat_map(|sig| {
                keys.iter()
                    .filter_map(move |k| k.key.signer(sig).map(|signer| (sig, k, signer)))
            })
            .collect();
        if !candidates.is_empty() {
            return Ok(candidates);
        }
        let elsewhere: Vec<String> = self
            .list()?
            .iter()
            .filter(|k| signatures.iter().any(|sig| k.key.signer(sig).is_some()))
            .map(|k| k.scope.to_string())
            .collect();
        Err(TrustError::UntrustedKey {
            image: image.to_owned(),
            key_id: issuer(&signatures[0]),
            elsewhere: if elsewhere.is_empty() {
                String::new()
            } else {
                format!(" (only for {})", elsewhere.join(", "))
            },
        })
    }

    /// Checks the ASCII-armored detached signature `armored_signature` over the image bytes
    /// that `open_aci` reads (exactly as fetched: the compressed file), using the keys trusted
    /// for `image` (root keys and keys of prefixes covering it). The image is streamed, never
    /// held in memory, and read only after a signature and its key have passed every other
    /// check; `open_aci` is called again only when a signature in the same armor is tried
    /// after one whose check over the bytes failed.
    pub fn verify<R: Read>(
        &self,
        image: &AcIdentifier,
        mut open_aci: impl FnMut() -> io::Result<R>,
        armored_signature: &[u8],
    ) -> Result<Verified, TrustError> {
        let now = Timestamp::now();
        let name = image.to_string();
        let signatures = parse_signatures(&name, armored_signature)?;
        let keys = self.keys_for(&ImageSubject::Appc(image))?;
        let candidates = self.trusted_signers(&name, &keys, &signatures)?;
        // Each in turn until one is good: a signature by a key that expired or was revoked,
        // or one over other bytes, does not hide a good one beside it. The image is hashed
        // once per signature that gets that far (once, when the first is good). When none
        // is good, the first that failed over the bytes says why (the image is not what a
        // usable trusted key signed), else the first failure.
        let mut first_error = None;
        let mut first_bad = None;
        for (signature, trusted, signer) in candidates {
            let fingerprint = trusted.key.fingerprint().clone();
            let checked = trusted
                .key
                .usable(&signer, now)
                .map_err(|why| unusable_error(&name, &fingerprint, why))
                .and_then(|()| check_hash(&name, signature))
                .and_then(|()| check_times(&name, signature, now))
                .and_then(|created| {
                    let aci = open_aci().map_err(TrustError::ReadImage)?;
                    check_over(&name, &signer, trusted, signature, aci)?;
                    Ok(created)
                });
            match checked {
                Ok(created) => {
                    return Ok(Verified {
                        fingerprint,
                        user_ids: trusted.key.user_ids().to_vec(),
                        scope: trusted.scope.clone(),
                        signed_at: created.into(),
                    });
                }
                // The image could not be read: no other signature would fare better.
                Err(e @ TrustError::ReadImage(_)) => return Err(e),
                Err(e @ TrustError::BadSignature { .. }) => {
                    first_bad.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_bad
            .or(first_error)
            .expect("at least one candidate failed"))
    }
}

/// Checks `signature` over the bytes `aci` reads; a read error is reported as such, not as a
/// tampered image.
fn check_over(
    name: &str,
    signer: &Signer<'_>,
    trusted: &TrustedKey,
    signature: &Signature,
    aci: impl Read,
) -> Result<(), TrustError> {
    // Large reads: the hash runs at hundreds of MB/s, and images are big.
    let mut reader = io::BufReader::with_capacity(
        1 << 16,
        ErrorKeepingReader {
            inner: aci,
            error: None,
        },
    );
    let checked = signer.verify(&trusted.key, signature, &mut reader);
    if let Some(e) = reader.into_inner().error {
        return Err(TrustError::ReadImage(e));
    }
    checked.map_err(|_| TrustError::BadSignature {
        image: name.to_owned(),
        fingerprint: trusted.key.fingerprint().to_string(),
    })
}

fn parse_signatures(image: &str, armored: &[u8]) -> Result<Vec<Signature>, TrustError> {
    if armored.iter().all(u8::is_ascii_whitespace) {
        return Err(TrustError::NoSignature {
            image: image.to_owned(),
        });
    }
    let malformed = |reason: String| TrustError::MalformedSignature {
        image: image.to_owned(),
        reason,
    };
    let mut signatures: Vec<Signature> = Vec::new();
    for block in armor_blocks(armored) {
        let (parsed, _headers) = DetachedSignature::from_armor_many(block).map_err(|e| {
            malformed(format!(
                "{e} (expected an ASCII-armored detached signature)"
            ))
        })?;
        for sig in parsed {
            signatures.push(sig.map_err(|e| malformed(e.to_string()))?.signature);
        }
    }
    if signatures.is_empty() {
        return Err(malformed("the armor holds no signature".into()));
    }
    if let Some(other) = signatures
        .iter()
        .find(|s| s.typ() != Some(SignatureType::Binary))
    {
        return Err(malformed(format!(
            "a {:?} signature, not a signature over a file (`gpg --detach-sign`)",
            other.typ()
        )));
    }
    Ok(signatures)
}

/// The armor blocks of an `.asc`, each from its `-----BEGIN PGP` line: a file may hold
/// several (signatures appended one after another), and the OpenPGP crate reads only the
/// first block it is given. Input without any begin line is returned whole, to be refused.
fn armor_blocks(armored: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    let starts: Vec<usize> = (0..armored.len())
        .filter(|&i| armored[i..].starts_with(BEGIN) && (i == 0 || armored[i - 1] == b'\n'))
        .collect();
    if starts.is_empty() {
        return vec![armored];
    }
    starts
        .iter()
        .zip(starts.iter().skip(1).copied().chain([armored.len()]))
        .map(|(&from, to)| &armored[from..to])
        .collect()
}

/// The issuer as gpg prints it: the fingerprint if the signature names it, else the key ID.
pub(super) fn issuer(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return hex::encode(fp.as_bytes());
    }
    match sig.issuer_key_id().first() {
        Some(id) => hex::encode(id.as_ref()),
        None => "(unnamed)".into(),
    }
}

/// Refuses digests with practical collisions (MD5, SHA-1, RIPEMD-160): a publisher could be
/// made to sign a harmless file that collides with a malicious one. The OpenPGP crate accepts
/// them, so the policy is here.
pub(super) fn check_hash(image: &str, sig: &Signature) -> Result<(), TrustError> {
    match sig.hash_alg() {
        Some(
            HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha224
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512,
        ) => Ok(()),
        other => Err(TrustError::WeakSignature {
            image: image.to_owned(),
            hash: other.map_or_else(|| "(unknown)".to_owned(), |h| h.to_string()),
        }),
    }
}

/// Refuses signatures from the future or past their own expiry; returns the creation time.
pub(super) fn check_times(image: &str, sig: &Signature, now: Timestamp) -> Result<u32, TrustError> {
    let created = sig
        .created()
        .ok_or_else(|| TrustError::MalformedSignature {
            image: image.to_owned(),
            reason: "it has no creation time".into(),
        })?
        .as_secs();
    if created > now.as_secs().saturating_add(CLOCK_SKEW_SECS) {
        return Err(TrustError::SignatureInFuture {
            image: image.to_owned(),
            created: format_time(created.into()),
        });
    }
    if let Some(lifetime) = sig.signature_expiration_time().filter(|d| d.as_secs() != 0) {
        let expires = u64::from(created).saturating_add(u64::from(lifetime.as_secs()));
        if u64::from(now.as_secs()) >= expires {
            return Err(TrustError::SignatureExpired {
                image: image.to_owned(),
                expired: format_time(expires),
            });
        }
    }
    Ok(created)
}

pub(super) fn unusable_error(image: &str, fingerprint: &Fingerprint, why: Unusable) -> TrustError {
    let (image, fingerprint) = (image.to_owned(), fingerprint.to_string());
    match why {
        Unusable::Revoked { reason } => TrustError::KeyRevoked {
            image,
            fingerprint,
            reason: reason.map(|r| format!(" ({r})")).unwrap_or_default(),
        },
        Unusable::Expired { at } => TrustError::KeyExpired {
            image,
            fingerprint,
            expired: format_time(at.as_secs().into()),
        },
        Unusable::Weak { algorithm, bits } => TrustError::WeakKey {
            fingerprint,
            algorithm,
            bits,
        },
        Unusable::NotForSigning | Unusable::Unbound => {
            TrustError::NotASigningKey { image, fingerprint }
        }
    }
}

/// RFC 3339 in UTC, as the rest of rkt prints times.
fn format_time(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} s after the epoch"))
}

/// Keeps the reader's I/O error, which the OpenPGP crate would otherwise fold into "bad
/// signature": a failed read is not a tampered image.
struct ErrorKeepingReader<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for ErrorKeepingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let kept = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(kept)
            }
            other => other,
        }
    }
}
