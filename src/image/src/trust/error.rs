use std::io;
use std::path::PathBuf;

use rkt_schema::SchemaError;

/// Why a key could not be trusted, or an image could not be verified. Each message says what
/// to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
    #[error("reading the image to verify it: {0}")]
    ReadImage(io::Error),
    #[error("invalid trust prefix: {0}")]
    Prefix(SchemaError),
    #[error(
        "invalid trust prefix {0:?}: give docker://HOST[:PORT][/REPOSITORY] (lowercase, no tag or digest)"
    )]
    DockerPrefix(String),
    #[error(
        "not a public key: {0} (give one ASCII-armored OpenPGP public key, as `gpg --armor --export` writes it)"
    )]
    MalformedKey(String),
    #[error(
        "the file holds {0} public keys; give one key per file (`gpg --armor --export FINGERPRINT`)"
    )]
    SeveralKeys(usize),
    #[error(
        "the file holds secret key material; never hand out a secret key: export the public key with `gpg --armor --export`"
    )]
    SecretKey,
    #[error(
        "key {fingerprint} is a {bits}-bit {algorithm} key, too weak to trust (at least 2048 bits, or an ed25519 key)"
    )]
    WeakKey {
        fingerprint: String,
        algorithm: &'static str,
        bits: u16,
    },
    #[error(
        "not a sigstore public key: {0} (give a PEM ECDSA P-256 public key, as `cosign generate-key-pair` writes cosign.pub)"
    )]
    MalformedSigstoreKey(String),
    #[error("trust policy {path}: {reason}")]
    BadPolicy { path: PathBuf, reason: String },
    #[error("image {image} is not signed ({looked}); {hint}")]
    Unsigned {
        image: String,
        /// Where signatures were looked for.
        looked: String,
        /// The command or option that would let it through.
        hint: String,
    },
    #[error(
        "the signature of image {image} by key {key} is for {what} {claimed}, not {expected}: it was made for another image; do not use it"
    )]
    ClaimMismatch {
        image: String,
        key: String,
        what: &'static str,
        claimed: String,
        expected: String,
    },
    #[error(
        "image {image} has a sigstore signature that no sigstore key trusted for it verifies{elsewhere}; if you trust its publisher's public key, run `rkt trust --prefix {prefix} KEY.pub`"
    )]
    UntrustedSigstore {
        image: String,
        prefix: String,
        /// `" (keys are trusted only for …)"` or empty.
        elsewhere: String,
    },
    #[error(
        "image {image} is signed only in formats the trust policy of {scope} does not accept ({formats}); it accepts {accepted}"
    )]
    FormatNotAccepted {
        image: String,
        scope: String,
        formats: String,
        accepted: String,
    },
    #[error("{0:?} is not a key fingerprint (40 or 64 hex digits, as `rkt trust --list` shows)")]
    BadFingerprint(String),
    #[error("no trusted key has fingerprint {0} (see `rkt trust --list`)")]
    KeyNotFound(String),
    #[error(
        "key {fingerprint} is a vendor key in {path}; rkt only changes the local config directory, remove the file there by hand or through the package that installed it"
    )]
    VendorKey { fingerprint: String, path: PathBuf },
    #[error(
        "image {image} has no signature; ask its publisher for the .asc file, or fetch with --insecure-options=image to skip verification"
    )]
    NoSignature { image: String },
    #[error("the signature of image {image} is malformed: {reason}")]
    MalformedSignature { image: String, reason: String },
    #[error(
        "image {image} is signed by key {key_id}, which is not trusted for it{elsewhere}; if you trust that key, run `rkt trust --prefix {image} KEYFILE`"
    )]
    UntrustedKey {
        image: String,
        key_id: String,
        /// `" (only for prefix example.com/app)"` when the key is trusted for other names.
        elsewhere: String,
    },
    #[error(
        "image {image} does not match its signature by key {fingerprint}: it was changed or damaged after signing; do not use it"
    )]
    BadSignature { image: String, fingerprint: String },
    #[error(
        "image {image} is signed by key {fingerprint}, which expired at {expired}; ask the publisher for an image signed by a current key"
    )]
    KeyExpired {
        image: String,
        fingerprint: String,
        expired: String,
    },
    #[error(
        "image {image} is signed by key {fingerprint}, which its owner revoked{reason}; do not use it, and remove the key with `rkt trust --remove {fingerprint}`"
    )]
    KeyRevoked {
        image: String,
        fingerprint: String,
        /// `": why"` or empty.
        reason: String,
    },
    #[error(
        "image {image} is signed by key {fingerprint}, which is not valid for signing (no signing capability, or no valid self-signature binds it)"
    )]
    NotASigningKey { image: String, fingerprint: String },
    #[error(
        "the signature of image {image} uses the weak hash {hash}, which can be forged; ask the publisher to sign with SHA-256 or better (gpg --digest-algo SHA512)"
    )]
    WeakSignature { image: String, hash: String },
    #[error(
        "the signature of image {image} was made at {created}, in the future; check this machine's clock"
    )]
    SignatureInFuture { image: String, created: String },
    #[error(
        "the signature of image {image} expired at {expired}; ask the publisher to sign the image again"
    )]
    SignatureExpired { image: String, expired: String },
}

pub(crate) use rkt_common::IoContext;
