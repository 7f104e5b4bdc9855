use std::io;

use super::SizeBound;
use rkt_schema::SchemaError;

/// Why an ACI could not be read or unpacked. Each message names the archive entry at fault.
///
/// A cause is written into the message and not linked as a `source`: `rkt` prints errors with
/// their chain (`{:#}`), which would print it twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AciError {
    #[error("not an ACI: the data is neither a tar archive nor gzip, bzip2 or xz compressed")]
    UnknownFormat,
    #[error("corrupt or truncated {compression} stream: {error}")]
    Decompress {
        compression: &'static str,
        error: io::Error,
    },
    /// The decompressed image passed its size bound (see `limit.rs`).
    #[error("{0}")]
    TooLarge(SizeBound),
    #[error("corrupt or truncated tar archive: {0}")]
    Tar(io::Error),
    #[error("invalid ACI layout: entry {entry:?}: {rule}")]
    Layout { entry: String, rule: &'static str },
    #[error("invalid ACI layout: {0}")]
    Missing(&'static str),
    #[error("invalid image manifest in ACI: {0}")]
    Manifest(SchemaError),
    #[error("cannot unpack entry {entry:?}: {error}")]
    Unpack { entry: String, error: io::Error },
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
}

impl From<SchemaError> for AciError {
    fn from(error: SchemaError) -> Self {
        AciError::Manifest(error)
    }
}

impl AciError {
    /// The system's error under this one, if it carries one (to tell a full disk apart).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            AciError::Decompress { error, .. }
            | AciError::Tar(error)
            | AciError::Unpack { error, .. }
            | AciError::Io(rkt_common::IoError { error, .. }) => Some(error),
            _ => None,
        }
    }

    pub(crate) fn layout(entry: &[u8], rule: &'static str) -> Self {
        AciError::Layout {
            entry: String::from_utf8_lossy(entry).into_owned(),
            rule,
        }
    }

    pub(crate) fn unpack(entry: &[u8], source: impl Into<io::Error>) -> Self {
        AciError::Unpack {
            entry: String::from_utf8_lossy(entry).into_owned(),
            error: source.into(),
        }
    }
}
