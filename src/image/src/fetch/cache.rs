//! The HTTP cache of remote ACIs: one JSON record per URL under `cas/remote/`, naming the image
//! that URL gave and the validators to ask the server whether it changed.
//!
//! A record is only a pointer: the image itself is in the store, and a record whose image is
//! gone is ignored.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{FetchError, IoContext};

/// What the cache knows about one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRecord {
    pub url: String,
    pub image_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Seconds the answer stays fresh after `fetched_at_ms` (Cache-Control max-age; 0 when
    /// absent or `no-cache`).
    pub max_age: u64,
    /// When the server last confirmed the image, in milliseconds since the Unix epoch.
    pub fetched_at_ms: u64,
}

impl CacheRecord {
    /// Whether the server's answer may be reused without asking it again.
    pub fn is_fresh(&self) -> bool {
        now_ms()
            < self
                .fetched_at_ms
                .saturating_add(self.max_age.saturating_mul(1000))
    }
}

/// The caching headers of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub max_age: u64,
    /// `Cache-Control: no-store`: keep no record.
    pub no_store: bool,
}

impl Validators {
    pub fn from_headers(headers: &ureq::http::HeaderMap) -> Validators {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut validators = Validators {
            etag: text("etag"),
            last_modified: text("last-modified"),
            ..Validators::default()
        };
        let mut no_cache = false;
        for directive in headers
            .get_all("cache-control")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let directive = directive.trim().to_ascii_lowercase();
            if let Some(secs) = directive.strip_prefix("max-age=") {
                validators.max_age = secs.trim_matches('"').parse().unwrap_or(0);
            } else if directive == "no-cache" {
                no_cache = true;
            } else if directive == "no-store" {
                validators.no_store = true;
            }
        }
        if no_cache {
            validators.max_age = 0;
        }
        validators
    }

    /// The record for an image the server just gave or confirmed. A 304 may leave out
    /// validators; those of the previous answer still hold then.
    pub fn record(&self, url: &str, image_id: &str, previous: Option<&CacheRecord>) -> CacheRecord {
        CacheRecord {
            url: url.to_owned(),
            image_id: image_id.to_owned(),
            etag: self
                .etag
                .clone()
                .or_else(|| previous.and_then(|p| p.etag.clone())),
            last_modified: self
                .last_modified
                .clone()
                .or_else(|| previous.and_then(|p| p.last_modified.clone())),
            max_age: self.max_age,
            fetched_at_ms: now_ms(),
        }
    }
}

/// `cas/remote/`: records keyed by the SHA-256 of their URL.
#[derive(Debug, Clone)]
pub struct HttpCache {
    dir: PathBuf,
}

impl HttpCache {
    pub fn new(cas: &std::path::Path) -> HttpCache {
        HttpCache {
            dir: cas.join("remote"),
        }
    }

    fn path(&self, url: &str) -> PathBuf {
        let key = hex::encode(Sha256::digest(url.as_bytes()));
        self.dir.join(format!("{key}.json"))
    }

    /// The record for `url`, if there is a readable one.
    pub fn load(&self, url: &str) -> Option<CacheRecord> {
        let bytes = fs::read(self.path(url)).ok()?;
        let record: CacheRecord = serde_json::from_slice(&bytes).ok()?;
        (record.url == url).then_some(record)
    }

    /// Replaces the record for its URL (write a temporary file, then rename: readers see the
    /// old record or the new one).
    pub fn save(&self, record: &CacheRecord) -> Result<(), FetchError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .ctx("creating", &self.dir)?;
        let path = self.path(&record.url);
        let json = serde_json::to_vec_pretty(record).expect("record serializes");
        rkt_common::fs::write_atomic(&path, &json, 0o600)
            .ctx("writing", &path)
            .map_err(Into::into)
    }

    /// Forgets `url` (a `no-store` answer).
    pub fn remove(&self, url: &str) {
        let _ = fs::remove_file(self.path(url));
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn reads_validators_and_max_age() {
        let v = Validators::from_headers(&headers(&[
            ("etag", "\"abc\""),
            ("last-modified", "Mon, 23 Nov 2026 08:00:00 GMT"),
            ("cache-control", "public, max-age=60"),
        ]));
        assert_eq!(v.etag.as_deref(), Some("\"abc\""));
        assert_eq!(v.max_age, 60);
        assert!(!v.no_store);
        let v = Validators::from_headers(&headers(&[
            ("cache-control", "max-age=60"),
            ("cache-control", "no-cache"),
        ]));
        assert_eq!(v.max_age, 0);
        assert!(Validators::from_headers(&headers(&[("cache-control", "no-store")])).no_store);
    }

    #[test]
    fn records_round_trip_and_expire() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HttpCache::new(tmp.path());
        assert_eq!(cache.load("https://a/x.aci"), None);
        let fresh = Validators {
            etag: Some("\"1\"".into()),
            max_age: 3600,
            ..Validators::default()
        }
        .record("https://a/x.aci", "sha512-00", None);
        cache.save(&fresh).unwrap();
        assert_eq!(cache.load("https://a/x.aci"), Some(fresh.clone()));
        assert!(fresh.is_fresh());
        // A 304 without an ETag keeps the one known; max-age 0 is stale at once.
        let revalidated =
            Validators::default().record("https://a/x.aci", "sha512-00", Some(&fresh));
        assert_eq!(revalidated.etag.as_deref(), Some("\"1\""));
        assert!(!revalidated.is_fresh());
        cache.remove("https://a/x.aci");
        assert_eq!(cache.load("https://a/x.aci"), None);
    }
}
