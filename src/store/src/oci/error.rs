use std::io;
use std::path::PathBuf;

use crate::aci::AciError;
use rkt_schema::SchemaError;

/// Why an OCI or Docker image could not be read, fetched or converted. Each message names the
/// image, blob or server at fault. Causes are written into messages, never linked as a `source`
/// as well: `rkt` prints errors with their chain (`{:#}`), which would print them twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    #[error("invalid digest {0:?}: expected sha256: and 64 lowercase hex digits")]
    BadDigest(String),
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} has {actual} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{what}: the server stopped sending it (no data within the idle timeout); try again later"
    )]
    Stalled { what: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    /// A download stopped because another one of the same import failed (that one says why).
    #[error("the download was abandoned because another one failed")]
    Abandoned,
    #[error("unsupported media type {media_type:?} for {what}")]
    MediaType { what: String, media_type: String },
    #[error("no image for {wanted} in the index of {image} (it has: {available})")]
    NoPlatform {
        image: String,
        wanted: String,
        available: String,
    },
    #[error("layer {digest} is {compression}-compressed, which rkt cannot decompress yet")]
    UnsupportedCompression {
        digest: String,
        compression: &'static str,
    },
    #[error("layer {digest}: {error}")]
    Layer { digest: String, error: AciError },
    /// Where the image comes from failed (a registry, an archive): the source's own error.
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
    #[error("generated image manifest: {0}")]
    Manifest(SchemaError),
    #[error("storing {what}: {error}")]
    Store { what: String, error: io::Error },
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
}

impl From<SchemaError> for OciError {
    fn from(error: SchemaError) -> Self {
        OciError::Manifest(error)
    }
}

impl OciError {
    /// The system's error under this one, if it carries one (to tell a full disk apart).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            OciError::Io(rkt_common::IoError { error, .. }) | OciError::Store { error, .. } => {
                Some(error)
            }
            OciError::Layer { error, .. } => error.io_error(),
            _ => None,
        }
    }

    pub fn invalid(what: impl Into<String>, reason: impl ToString) -> Self {
        OciError::Invalid {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        OciError::Io(rkt_common::IoError::new(action, path.into(), error))
    }
}
