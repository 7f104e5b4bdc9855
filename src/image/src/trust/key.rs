//! OpenPGP public keys as rkt trusts them: parsing one armored key, its fingerprint and user
//! IDs, and whether it (or one of its subkeys) may vouch for a data signature right now.
//!
//! The OpenPGP crate (`pgp`, rpgp) checks the cryptography; the rules of validity that it
//! leaves to callers (revocation, expiry, signing capability, which self-signature counts) are
//! here, kept deliberately strict: any verified revocation is final.

use std::fmt;
use std::str::FromStr;

use pgp::composed::{ArmorOptions, Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag, Timestamp};

use super::error::TrustError;

/// A key's full fingerprint as lowercase hex (40 digits for v4 keys, 64 for v6): the name of
/// its file in the trust store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_pgp(fp: &pgp::types::Fingerprint) -> Fingerprint {
        Fingerprint(hex::encode(fp.as_bytes()))
    }
}

impl FromStr for Fingerprint {
    type Err = TrustError;

    /// Accepts upper or lower case, with the spaces gpg prints between groups.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let hex = hex.strip_prefix("0x").unwrap_or(&hex).to_owned();
        if (hex.len() == 40 || hex.len() == 64) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Fingerprint(hex))
        } else {
            Err(TrustError::BadFingerprint(s.to_owned()))
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One OpenPGP public key (certificate): a primary key, its user IDs and subkeys.
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: SignedPublicKey,
    fingerprint: Fingerprint,
    user_ids: Vec<String>,
}

/// Why a key may not vouch for a signature now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    Revoked {
        reason: Option<String>,
    },
    Expired {
        at: Timestamp,
    },
    NotForSigning,
    /// An RSA or DSA key shorter than [`MIN_KEY_BITS`].
    Weak {
        algorithm: &'static str,
        bits: u16,
    },
    /// No valid self-signature binds the component to the key.
    Unbound,
}

impl PublicKey {
    /// Parses exactly one ASCII-armored public key, refusing secret keys and several keys.
    /// Broken self-signatures make it malformed: a key that does not vouch for itself is refused
    /// at the door rather than ignored later.
    pub fn from_armored(bytes: &[u8]) -> Result<PublicKey, TrustError> {
        let text = String::from_utf8_lossy(bytes);
        if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            return Err(TrustError::SecretKey);
        }
        let blocks = text.matches("-----BEGIN PGP ").count();
        if blocks == 0 {
            return Err(TrustError::MalformedKey(
                "no \"-----BEGIN PGP PUBLIC KEY BLOCK-----\" found".into(),
            ));
        }
        if blocks > 1 {
            return Err(TrustError::SeveralKeys(blocks));
        }
        let (keys, _headers) = SignedPublicKey::from_armor_many(bytes)
            .map_err(|e| TrustError::MalformedKey(e.to_string()))?;
        let keys = keys
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrustError::MalformedKey(e.to_string()))?;
        let key = match <[SignedPublicKey; 1]>::try_from(keys) {
            Ok([key]) => key,
            Err(keys) if keys.is_empty() => {
                return Err(TrustError::MalformedKey("the armor holds no key".into()));
            }
            Err(keys) => return Err(TrustError::SeveralKeys(keys.len())),
        };
        Self::from_key(key)
    }

    fn from_key(key: SignedPublicKey) -> Result<PublicKey, TrustError> {
        let fingerprint = Fingerprint::from_pgp(&key.primary_key.fingerprint());
        let user_ids: Vec<String> = key
            .details
            .users
            .iter()
            .filter(|user| {
                user.signatures.iter().any(|sig| {
                    is_user_certification(sig)
                        && sig
                            .verify_certification(&key.primary_key, Tag::UserId, &user.id)
                            .is_ok()
                })
            })
            .map(|user| String::from_utf8_lossy(user.id.id()).into_owned())
            .collect();
        let has_direct_sig = key
            .details
            .direct_signatures
            .iter()
            .any(|sig| sig.verify_key(&key.primary_key).is_ok());
        if user_ids.is_empty() && !has_direct_sig {
            return Err(TrustError::MalformedKey(format!(
                "key {fingerprint} has no valid self-signature"
            )));
        }
        if let Some(Unusable::Weak { algorithm, bits }) = weakness(&key.primary_key) {
            return Err(TrustError::WeakKey {
                fingerprint: fingerprint.to_string(),
                algorithm,
                bits,
            });
        }
        Ok(PublicKey {
            key,
            fingerprint,
            user_ids,
        })
    }

    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The user IDs the key certifies itself (`Name <email>`), in the key's order.
    pub fn user_ids(&self) -> &[String] {
        &self.user_ids
    }

    /// The key, re-armored: what the trust store keeps (no stray text around the armor).
    pub(crate) fn to_armored(&self) -> Result<Vec<u8>, TrustError> {
        self.key
            .to_armored_bytes(ArmorOptions::default())
            .map_err(|e| TrustError::MalformedKey(e.to_string()))
    }

    /// The component (primary key or subkey) that the signature says made it.
    pub(crate) fn signer(&self, sig: &Signature) -> Option<Signer<'_>> {
        let matches = |details: &dyn KeyDetails| {
            sig.issuer_fingerprint()
                .iter()
                .any(|fp| **fp == details.fingerprint())
                || sig
                    .issuer_key_id()
                    .iter()
                    .any(|id| **id == details.legacy_key_id())
        };
        if matches(&self.key.primary_key) {
            return Some(Signer::Primary);
        }
        self.key
            .public_subkeys
            .iter()
            .find(|sub| matches(&sub.key))
            .map(Signer::Subkey)
    }

    /// Checks that the primary key and, for a subkey, the subkey may sign data at `now`.
    pub(crate) fn usable(&self, signer: &Signer<'_>, now: Timestamp) -> Result<(), Unusable> {
        let primary = &self.key.primary_key;
        if let Some(revocation) = self.key.details.revocation_signatures.iter().find(|sig| {
            sig.typ() == Some(SignatureType::KeyRevocation) && sig.verify_key(primary).is_ok()
        }) {
            return Err(Unusable::Revoked {
                reason: revocation_reason(revocation),
            });
        }
        let binding = self.primary_binding().ok_or(Unusable::Unbound)?;
        check_expiry(primary.created_at(), binding, now)?;
        match signer {
            Signer::Primary => {
                // Keys without key flags predate them; gpg's primary keys sign by default.
                if has_key_flags(binding) && !binding.key_flags().sign() {
                    return Err(Unusable::NotForSigning);
                }
                Ok(())
            }
            Signer::Subkey(sub) => {
                if let Some(weak) = weakness(&sub.key) {
                    return Err(weak);
                }
                self.usable_subkey(sub, now)
            }
        }
    }

    fn usable_subkey(&self, sub: &SignedPublicSubKey, now: Timestamp) -> Result<(), Unusable> {
        let primary = &self.key.primary_key;
        let verified = |sig: &&Signature| sig.verify_subkey_binding(primary, &sub.key).is_ok();
        if let Some(revocation) = sub
            .signatures
            .iter()
            .filter(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation))
            .find(verified)
        {
            return Err(Unusable::Revoked {
                reason: revocation_reason(revocation),
            });
        }
        let binding = newest(
            sub.signatures
                .iter()
                .filter(|sig| sig.typ() == Some(SignatureType::SubkeyBinding))
                .filter(verified),
        )
        .ok_or(Unusable::Unbound)?;
        check_expiry(sub.key.created_at(), binding, now)?;
        if !binding.key_flags().sign() {
            return Err(Unusable::NotForSigning);
        }
        // A signing subkey must sign its primary back, or anyone could bind our subkey to
        // their own primary key.
        let back = binding.embedded_signature().ok_or(Unusable::Unbound)?;
        back.verify_primary_key_binding(&sub.key, primary)
            .map_err(|_| Unusable::Unbound)?;
        Ok(())
    }

    /// The newest valid self-signature over the primary key (user ID certification or direct
    /// key signature): it carries the key's current expiry and flags.
    fn primary_binding(&self) -> Option<&Signature> {
        let primary = &self.key.primary_key;
        let certifications = self.key.details.users.iter().flat_map(|user| {
            user.signatures.iter().filter(move |sig| {
                is_user_certification(sig)
                    && sig
                        .verify_certification(primary, Tag::UserId, &user.id)
                        .is_ok()
            })
        });
        let direct = self
            .key
            .details
            .direct_signatures
            .iter()
            .filter(|sig| sig.verify_key(primary).is_ok());
        newest(certifications.chain(direct))
    }
}

/// The part of a key that made a signature.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signer<'a> {
    Primary,
    Subkey(&'a SignedPublicSubKey),
}

impl Signer<'_> {
    /// Checks `sig` over `data` with this component's key material.
    pub(crate) fn verify(
        &self,
        key: &PublicKey,
        sig: &Signature,
        data: impl std::io::Read,
    ) -> pgp::errors::Result<()> {
        match self {
            Signer::Primary => sig.verify(&key.key.primary_key, data),
            Signer::Subkey(sub) => sig.verify(&sub.key, data),
        }
    }
}

/// RSA and DSA keys below this size can be factored or broken with public means (RFC 9580
/// §12.4 asks for at least 2048 too). Elliptic-curve keys have no weak sizes in OpenPGP.
pub(crate) const MIN_KEY_BITS: u16 = 2048;

fn weakness(key: &impl KeyDetails) -> Option<Unusable> {
    use pgp::ser::Serialize;
    use pgp::types::PublicParams;
    let mut bytes = Vec::new();
    let (algorithm, written) = match key.public_params() {
        PublicParams::RSA(params) => ("RSA", params.to_writer(&mut bytes)),
        PublicParams::DSA(params) => ("DSA", params.to_writer(&mut bytes)),
        PublicParams::Elgamal(params) => ("ElGamal", params.to_writer(&mut bytes)),
        _ => return None,
    };
    // The first MPI (RSA's modulus, DSA's and ElGamal's prime) starts with its bit count.
    let bits = match (written, bytes.get(..2)) {
        (Ok(()), Some(&[hi, lo])) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    };
    (bits < MIN_KEY_BITS).then_some(Unusable::Weak { algorithm, bits })
}

fn is_user_certification(sig: &Signature) -> bool {
    matches!(
        sig.typ(),
        Some(
            SignatureType::CertGeneric
                | SignatureType::CertPersona
                | SignatureType::CertCasual
                | SignatureType::CertPositive
        )
    )
}

fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|sig| sig.created().map(Timestamp::as_secs).unwrap_or(0))
}

fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|config| {
        config
            .hashed_subpackets()
            .any(|p| matches!(p.data, pgp::packet::SubpacketData::KeyFlags(_)))
    })
}

/// A zero key expiration time means "never", as RFC 9580 says.
fn check_expiry(created: Timestamp, binding: &Signature, now: Timestamp) -> Result<(), Unusable> {
    let Some(lifetime) = binding.key_expiration_time().filter(|d| d.as_secs() != 0) else {
        return Ok(());
    };
    let expires = u64::from(created.as_secs()).saturating_add(u64::from(lifetime.as_secs()));
    if u64::from(now.as_secs()) >= expires {
        let at = Timestamp::from_secs(u32::try_from(expires).unwrap_or(u32::MAX));
        return Err(Unusable::Expired { at });
    }
    Ok(())
}

fn revocation_reason(sig: &Signature) -> Option<String> {
    let text = sig
        .revocation_reason_string()
        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
        .filter(|s| !s.is_empty());
    let code = sig.revocation_reason_code().map(|c| format!("{c:?}"));
    match (code, text) {
        (Some(code), Some(text)) => Some(format!("{code}: {text}")),
        (code, text) => code.or(text),
    }
}
