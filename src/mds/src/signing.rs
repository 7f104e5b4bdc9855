//! The metadata service's HMAC: HMAC-SHA512 with the service's key over the pod UUID's 16 raw
//! bytes followed by the content, base64 (standard alphabet, padded), as rkt computed it, so
//! that a signature made by one pod can be checked by anyone who asks the same service.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha512;

/// The service's secret: 64 random bytes (SHA-512's block size), made when it starts.
#[derive(Clone)]
pub struct HmacKey([u8; 64]);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

impl HmacKey {
    pub fn from_bytes(bytes: [u8; 64]) -> HmacKey {
        HmacKey(bytes)
    }

    /// A fresh key from the kernel's random source.
    pub fn random() -> std::io::Result<HmacKey> {
        let mut bytes = [0u8; 64];
        super::random_bytes(&mut bytes)?;
        Ok(HmacKey(bytes))
    }

    fn mac(&self, uuid: &uuid::Uuid, content: &[u8]) -> Hmac<Sha512> {
        let mut mac = Hmac::<Sha512>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(uuid.as_bytes());
        mac.update(content);
        mac
    }

    /// The base64 signature of `content` for the pod `uuid`.
    pub fn sign(&self, uuid: &uuid::Uuid, content: &[u8]) -> String {
        STANDARD.encode(self.mac(uuid, content).finalize().into_bytes())
    }

    /// Whether `signature` (base64) is this key's signature of `content` for `uuid`; compared in
    /// constant time. `None` when the signature is not base64 at all.
    pub fn verify(&self, uuid: &uuid::Uuid, content: &[u8], signature: &str) -> Option<bool> {
        let raw = STANDARD.decode(signature).ok()?;
        Some(self.mac(uuid, content).verify_slice(&raw).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid() -> uuid::Uuid {
        "6e9c4ad4-6f5a-4b84-9bfa-5f1c5f8f0a11".parse().unwrap()
    }

    #[test]
    fn known_answers_from_openssl() {
        // `printf '<16 uuid bytes>hello' | openssl dgst -sha512 -mac HMAC -macopt hexkey:0707…
        // -binary | base64`: the uuid's raw bytes, then the content, as rkt signed.
        let key = HmacKey::from_bytes([7u8; 64]);
        assert_eq!(
            key.sign(&uuid(), b"hello"),
            "fIqwULi1u27YrK2LkZPy2RCBtfFK43iDmQBt3DHhoBcFYhfVOZIX4VbiBlWaFt52kaKu1pke3d81ModACwMSbw=="
        );
        // A zero key over the nil uuid and no content (16 zero bytes).
        let zero = HmacKey::from_bytes([0u8; 64]);
        let raw = STANDARD.decode(zero.sign(&uuid::Uuid::nil(), b"")).unwrap();
        assert_eq!(
            hex::encode(raw),
            "65e879d47df1def0af378d32e9f4fe3a824fb51e2143c03322def229361af3b1\
             7a724a3d653d05cb9f41f4b90d09e8e2886a78da48537d1cfa62977a82e7374e"
        );
    }

    #[test]
    fn verify_accepts_its_signature_and_nothing_else() {
        let key = HmacKey::from_bytes([1u8; 64]);
        let sig = key.sign(&uuid(), b"content");
        assert_eq!(key.verify(&uuid(), b"content", &sig), Some(true));
        assert_eq!(key.verify(&uuid(), b"content!", &sig), Some(false));
        assert_eq!(
            key.verify(&uuid::Uuid::nil(), b"content", &sig),
            Some(false)
        );
        let other = HmacKey::from_bytes([2u8; 64]);
        assert_eq!(other.verify(&uuid(), b"content", &sig), Some(false));
        assert_eq!(key.verify(&uuid(), b"content", "not base64!"), None);
    }
}
