use rkt_store::oci::OciError;

use crate::http::HttpError;

/// Why a registry could not give an image: the reference, the server, the connection. Turned
/// into [`OciError::Source`] where the store asks for an image, so its message stays whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("invalid image reference {reference:?}: {rule}")]
    Reference { reference: String, rule: String },
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    // The cause is in the message and not linked as a source: `{:#}` would print it twice.
    #[error("registry {registry}: {error}")]
    Transport {
        registry: String,
        error: Box<ureq::Error>,
    },
    #[error(
        "registry {0} is plain http; pass --insecure-options=http to fetch from it without TLS"
    )]
    HttpNotAllowed(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Oci(#[from] OciError),
}

impl From<SourceError> for OciError {
    fn from(e: SourceError) -> OciError {
        match e {
            SourceError::Oci(e) => e,
            e => OciError::Source(Box::new(e)),
        }
    }
}
