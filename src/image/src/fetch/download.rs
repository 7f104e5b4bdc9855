//! GET requests: a conditional download into a file, with a byte counter and the
//! Content-Length checked, and a small GET for signatures.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::cache::{CacheRecord, Validators};
use super::error::{FetchError, IoContext, request_error};

pub use rkt_store::TransferProgress;

/// The outcome of [`get_to_file`].
#[derive(Debug)]
pub enum Got {
    /// 304: what the cache record names is still current.
    NotModified(Validators),
    /// 200: the body is in the file.
    Body(Validators),
}

/// GETs `url` into `dest` (a new file). With `previous`, asks only for a changed resource
/// (If-None-Match / If-Modified-Since). A body shorter than its Content-Length is an error.
pub fn get_to_file(
    agent: &ureq::Agent,
    url: &str,
    previous: Option<&CacheRecord>,
    dest: &Path,
    progress: &TransferProgress,
) -> Result<Got, FetchError> {
    // The ACI must arrive byte for byte as published: its signature covers those bytes.
    let mut request = agent.get(url).header("Accept-Encoding", "identity");
    if let Some(previous) = previous {
        if let Some(etag) = &previous.etag {
            request = request.header("If-None-Match", etag);
        }
        if let Some(date) = &previous.last_modified {
            request = request.header("If-Modified-Since", date);
        }
    }
    tracing::debug!("GET {url}");
    let mut response = request.call().map_err(|e| request_error(url, e))?;
    let validators = Validators::from_headers(response.headers());
    match response.status().as_u16() {
        304 if previous.is_some() => return Ok(Got::NotModified(validators)),
        200 => {}
        status @ (401 | 403) => {
            return Err(FetchError::Unauthorized {
                url: url.to_owned(),
                status,
            });
        }
        status => {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
    }
    let expected = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    progress
        .total
        .store(expected.unwrap_or(0), Ordering::Relaxed);
    progress.received.store(0, Ordering::Relaxed);

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .ctx("creating", dest)?;
    let mut body = response.body_mut().as_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    let truncated = |received| FetchError::Truncated {
        url: url.to_owned(),
        expected: expected.unwrap_or(0),
        received,
    };
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ureq reports a connection closed before Content-Length bytes as an error.
            Err(_) if expected.is_some_and(|len| received < len) => {
                return Err(truncated(received));
            }
            Err(e) => {
                return Err(FetchError::Request {
                    url: url.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        file.write_all(&buf[..n]).ctx("writing", dest)?;
        received += n as u64;
        progress.received.store(received, Ordering::Relaxed);
    }
    if expected.is_some_and(|len| len != received) {
        return Err(truncated(received));
    }
    file.flush().ctx("writing", dest)?;
    Ok(Got::Body(validators))
}

/// GETs a small resource (a signature) into memory; `None` when the server has none (404,
/// 410). At most `limit` bytes are accepted.
pub fn get_optional(
    agent: &ureq::Agent,
    url: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, FetchError> {
    tracing::debug!("GET {url}");
    let mut response = agent.get(url).call().map_err(|e| request_error(url, e))?;
    match response.status().as_u16() {
        200 => {}
        404 | 410 => return Ok(None),
        status => {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
    }
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FetchError::Request {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 > limit {
        return Err(FetchError::Request {
            url: url.to_owned(),
            reason: format!("larger than {limit} bytes; not a signature"),
        });
    }
    Ok(Some(bytes))
}
