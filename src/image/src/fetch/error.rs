use crate::http::HttpError;
use rkt_store::StoreError;

/// Why fetching an image over the network failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
    #[error("refusing to fetch {url} over plain HTTP; pass --insecure-options=http to allow it")]
    PlainHttp { url: String },
    #[error(
        "cannot fetch {url}: only https:// (and http:// with --insecure-options=http) URLs are supported"
    )]
    UnsupportedUrl { url: String },
    #[error(
        "TLS certificate of {url} is not trusted ({reason}); add its CA to the system store or \
         point SSL_CERT_FILE at it, or pass --insecure-options=tls to skip the check"
    )]
    Tls { url: String, reason: String },
    #[error("fetching {url}: {reason}")]
    Request { url: String, reason: String },
    #[error("fetching {url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "fetching {url}: the server answered HTTP {status} (credentials needed or refused); \
         put them for its host in an auth.d file of --local-config (rktKind auth, type basic)"
    )]
    Unauthorized { url: String, status: u16 },
    #[error(
        "download of {url} was cut short: got {received} of {expected} bytes; nothing was stored, try again"
    )]
    Truncated {
        url: String,
        expected: u64,
        received: u64,
    },
    #[error("{name:?} is not an image name: {reason}")]
    BadImageName { name: String, reason: String },
    #[error("appc discovery found no image for {query} (tried {tried})")]
    NotDiscovered { query: String, tried: String },
    #[error("{what} is not in the store and --pull-policy=never forbids fetching it")]
    NotStored { what: String },
}

/// Turns a ureq failure into one line that says what to do; TLS failures get their own
/// variant since the fix (trusting a CA) is the user's.
pub(crate) fn request_error(url: &str, err: ureq::Error) -> FetchError {
    let reason = err.to_string();
    let tls = matches!(err, ureq::Error::Rustls(_) | ureq::Error::Tls(_))
        || reason.contains("certificate")
        || reason.contains("UnknownIssuer");
    if tls {
        return FetchError::Tls {
            url: url.to_owned(),
            reason,
        };
    }
    if let ureq::Error::BadUri(_) = err
        && url.starts_with("http://")
    {
        return FetchError::PlainHttp {
            url: url.to_owned(),
        };
    }
    FetchError::Request {
        url: url.to_owned(),
        reason,
    }
}

pub(crate) use rkt_common::IoContext;
