//! Fetching ACIs over HTTPS: by URL, or by appc name through discovery.
//!
//! ```text
//! Fetcher::fetch_url(url) / fetch_name(query)
//!   ├─ pull policy: use the stored image (new/never) or ask the server (update)
//!   ├─ discovery (names): meta tags → ACI, signature and key URLs
//!   ├─ HTTP cache (cas/remote/): fresh → the stored image, no request;
//!   │    stale → If-None-Match/If-Modified-Since, 304 → the stored image
//!   └─ 200 → Fetched::Downloaded: the ACI in a locked cas/tmp/ directory, its signature
//!        (URL + ".asc", None on 404); the caller verifies it, then Download::import
//!        checks the manifest against the query and stores it (or changes nothing)
//! ```

pub mod cache;
pub mod discovery;
mod download;
mod error;
pub mod meta;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use discovery::{AciEndpoint, AppQuery, Endpoints};
pub use download::TransferProgress;
pub use error::FetchError;

use crate::http::HttpPolicy;
use cache::{CacheRecord, HttpCache, Validators};
use download::Got;
use rkt_schema::ImageId;
use rkt_store::{ImportOutcome, Store, TempDir};

/// A signature is a few kilobytes; anything much larger is not one.
const MAX_SIGNATURE: u64 = 1 << 20;

/// When to ask the network (`--pull-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Use a stored image if there is one; fetch only what is missing (`rkt run`'s default).
    New,
    /// Ask the server whether there is something newer (HTTP caching still applies).
    Update,
    /// Never touch the network: the image must be stored.
    Never,
}

/// What a fetch gave.
#[derive(Debug)]
pub enum Fetched {
    /// An image already in the store (pull policy, a fresh cache record, or a 304).
    Stored(ImageId),
    /// A downloaded ACI, not stored yet: verify it, then [`Download::import`] it.
    Downloaded(Box<Download>),
}

/// A downloaded ACI waiting in the store's `tmp/` (removed when dropped).
#[derive(Debug)]
pub struct Download {
    url: String,
    aci: PathBuf,
    signature: Option<Vec<u8>>,
    pubkeys: Vec<String>,
    query: Option<AppQuery>,
    validators: Validators,
    previous: Option<CacheRecord>,
    cache: HttpCache,
    _dir: TempDirHandle,
}

/// Keeps the temporary directory (and its lock) alive as long as the download.
struct TempDirHandle(TempDir);

impl std::fmt::Debug for TempDirHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TempDir").field(&self.0.path()).finish()
    }
}

impl Download {
    /// Where the ACI came from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ACI file, byte for byte as served.
    pub fn aci_path(&self) -> &Path {
        &self.aci
    }

    /// The detached signature (`.aci.asc`), if one was asked for and the server had it.
    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }

    /// The publisher's key URLs that discovery found (empty for a plain URL).
    pub fn pubkeys(&self) -> &[String] {
        &self.pubkeys
    }

    /// The name and labels discovery was asked for (None for a plain URL).
    pub fn query(&self) -> Option<&AppQuery> {
        self.query.as_ref()
    }

    /// Stores the ACI, after checking (for a discovered image) that its manifest has the
    /// name and labels asked for; a mismatch is refused and stores nothing. Then records the
    /// URL in the HTTP cache.
    pub fn import(self, store: &Store, read: Arc<AtomicU64>) -> Result<ImportOutcome, FetchError> {
        let query = self.query.clone();
        let outcome = store.import_file_checked(&self.aci, read, &|manifest| match &query {
            Some(query) => query.check(manifest),
            None => Ok(()),
        })?;
        self.remember(outcome.info.id.as_str())?;
        Ok(outcome)
    }

    fn remember(&self, image_id: &str) -> Result<(), FetchError> {
        if self.validators.no_store {
            self.cache.remove(&self.url);
            return Ok(());
        }
        self.cache.save(
            &self
                .validators
                .record(&self.url, image_id, self.previous.as_ref()),
        )
    }
}

/// Fetches ACIs into a store over one HTTP agent.
pub struct Fetcher {
    store: Store,
    /// Made on first use: loading the CA store is wasted work when the store has the image.
    agent: std::cell::OnceCell<ureq::Agent>,
    policy: HttpPolicy,
    cache: HttpCache,
    signatures: bool,
    /// `Authorization` headers by host (auth.d `rktKind: auth`).
    auth: Option<crate::auth::AuthConfig>,
}

impl Fetcher {
    /// A fetcher for `store` whose connections follow `policy` (see [`crate::http::agent`]).
    /// Signatures are fetched unless turned off with [`Fetcher::fetch_signatures`].
    pub fn new(store: &Store, policy: HttpPolicy) -> Fetcher {
        Fetcher {
            store: store.clone(),
            agent: std::cell::OnceCell::new(),
            policy,
            cache: HttpCache::new(store.cas_dir()),
            signatures: true,
            auth: None,
        }
    }

    /// Sends the credentials configured for a host (see [`crate::http::agent_with_auth`]).
    pub fn credentials(mut self, auth: crate::auth::AuthConfig) -> Fetcher {
        self.auth = Some(auth);
        self
    }

    fn agent(&self) -> Result<&ureq::Agent, FetchError> {
        if let Some(agent) = self.agent.get() {
            return Ok(agent);
        }
        let agent = match &self.auth {
            Some(auth) => crate::http::agent_with_auth(self.policy, auth.clone())?,
            None => crate::http::agent(self.policy)?,
        };
        Ok(self.agent.get_or_init(|| agent))
    }

    /// Whether to download `.aci.asc` signatures (not needed with `--insecure-options=image`).
    pub fn fetch_signatures(mut self, yes: bool) -> Fetcher {
        self.signatures = yes;
        self
    }

    /// Fetches the ACI at an `https://` (or, if allowed, `http://`) URL; its signature is
    /// `URL.asc`.
    pub fn fetch_url(
        &self,
        url: &str,
        pull: PullPolicy,
        progress: &TransferProgress,
    ) -> Result<Fetched, FetchError> {
        self.check_url(url)?;
        self.fetch_endpoint(url, &format!("{url}.asc"), pull, progress)
    }

    /// Downloads a public key (`rkt trust URL`, or one that `ac-discovery-pubkeys` names);
    /// keys are small, so at most 1 MiB is read.
    pub fn fetch_key(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.check_url(url)?;
        download::get_optional(self.agent()?, url, 1 << 20)?.ok_or_else(|| FetchError::Status {
            url: url.to_owned(),
            status: 404,
        })
    }

    /// Runs discovery for `query` (no download).
    pub fn discover(&self, query: &AppQuery) -> Result<Endpoints, FetchError> {
        discovery::discover(self.agent()?, query, self.policy.allow_http)
    }

    /// Fetches an image by name: from the store when the pull policy allows and it is there,
    /// else through discovery, trying the best endpoints in turn.
    pub fn fetch_name(
        &self,
        query: &AppQuery,
        pull: PullPolicy,
        progress: &TransferProgress,
    ) -> Result<Fetched, FetchError> {
        if pull != PullPolicy::Update
            && let Some(found) = self
                .store
                .find_by_name(query.name.as_str(), &query.labels)?
        {
            return Ok(Fetched::Stored(found.id));
        }
        if pull == PullPolicy::Never {
            return Err(FetchError::NotStored {
                what: query.to_string(),
            });
        }
        let endpoints = self.discover(query)?;
        let mut last_error = None;
        for endpoint in &endpoints.aci {
            match self.fetch_endpoint(&endpoint.aci, &endpoint.signature, pull, progress) {
                Ok(Fetched::Stored(id)) => {
                    // The cache is keyed by URL; make sure that URL still gives what was asked.
                    let manifest = self.store.manifest(&id)?;
                    query.check(&manifest).map_err(|reason| {
                        FetchError::Store(rkt_store::StoreError::Refused(reason))
                    })?;
                    return Ok(Fetched::Stored(id));
                }
                Ok(Fetched::Downloaded(mut download)) => {
                    download.query = Some(query.clone());
                    download.pubkeys = endpoints.pubkeys.clone();
                    return Ok(Fetched::Downloaded(download));
                }
                Err(e @ (FetchError::Tls { .. } | FetchError::Truncated { .. })) => return Err(e),
                Err(e) => {
                    tracing::debug!("{e}; trying the next endpoint");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(FetchError::NotDiscovered {
            query: query.to_string(),
            tried: endpoints.page,
        }))
    }

    fn check_url(&self, url: &str) -> Result<(), FetchError> {
        let parsed = url::Url::parse(url).map_err(|_| FetchError::UnsupportedUrl {
            url: url.to_owned(),
        })?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if self.policy.allow_http => Ok(()),
            "http" => Err(FetchError::PlainHttp {
                url: url.to_owned(),
            }),
            _ => Err(FetchError::UnsupportedUrl {
                url: url.to_owned(),
            }),
        }
    }

    fn fetch_endpoint(
        &self,
        url: &str,
        signature_url: &str,
        pull: PullPolicy,
        progress: &TransferProgress,
    ) -> Result<Fetched, FetchError> {
        // A record is only worth something while its image is stored.
        let record = self.cache.load(url).and_then(|r| {
            let id = ImageId::parse(&r.image_id).ok()?;
            self.store.info(&id).ok().map(|_| (r, id))
        });
        match (&record, pull) {
            (Some((_, id)), PullPolicy::New | PullPolicy::Never) => {
                return Ok(Fetched::Stored(id.clone()));
            }
            (None, PullPolicy::Never) => {
                return Err(FetchError::NotStored {
                    what: url.to_owned(),
                });
            }
            (Some((r, id)), PullPolicy::Update) if r.is_fresh() => {
                tracing::debug!("{url}: fresh in the HTTP cache");
                return Ok(Fetched::Stored(id.clone()));
            }
            _ => {}
        }
        let dir = self.store.temp_dir()?;
        let aci = dir.path().join("aci");
        let previous = record.as_ref().map(|(r, _)| r);
        match download::get_to_file(self.agent()?, url, previous, &aci, progress)? {
            Got::NotModified(validators) => {
                let (previous, id) = record.expect("304 only for a conditional request");
                tracing::debug!("{url}: not modified");
                if validators.no_store {
                    self.cache.remove(url);
                } else {
                    self.cache
                        .save(&validators.record(url, id.as_str(), Some(&previous)))?;
                }
                Ok(Fetched::Stored(id))
            }
            Got::Body(validators) => {
                let signature = if self.signatures {
                    download::get_optional(self.agent()?, signature_url, MAX_SIGNATURE)?
                } else {
                    None
                };
                Ok(Fetched::Downloaded(Box::new(Download {
                    url: url.to_owned(),
                    aci,
                    signature,
                    pubkeys: Vec::new(),
                    query: None,
                    validators,
                    previous: record.map(|(r, _)| r),
                    cache: self.cache.clone(),
                    _dir: TempDirHandle(dir),
                })))
            }
        }
    }
}
