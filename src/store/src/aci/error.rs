use std::io;
use std::path::PathBuf;

use rkt_schema::SchemaError;

/// Why an ACI could not be read or unpacked. Each message names the archive entry at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AciError {
    #[error("not an ACI: the data is neither a tar archive nor gzip, bzip2 or xz compressed")]
    UnknownFormat,
    #[error("corrupt or truncated {compression} stream: {source}")]
    Decompress {
        compression: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("corrupt or truncated tar archive: {0}")]
    Tar(#[source] io::Error),
    #[error("invalid ACI layout: entry {entry:?}: {rule}")]
    Layout { entry: String, rule: &'static str },
    #[error("invalid ACI layout: {0}")]
    Missing(&'static str),
    #[error("invalid image manifest in ACI: {0}")]
    Manifest(#[from] SchemaError),
    #[error("cannot unpack entry {entry:?}: {source}")]
    Unpack {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl AciError {
    pub(crate) fn layout(entry: &[u8], rule: &'static str) -> Self {
        AciError::Layout {
            entry: String::from_utf8_lossy(entry).into_owned(),
            rule,
        }
    }

    pub(crate) fn unpack(entry: &[u8], source: impl Into<io::Error>) -> Self {
        AciError::Unpack {
            entry: String::from_utf8_lossy(entry).into_owned(),
            source: source.into(),
        }
    }
}
