//! A client for the OCI distribution (Docker registry v2) API: HTTP Basic and bearer-token
//! auth (anonymous, or with the registry's `dockerAuth` credentials from auth.d), manifests
//! and indexes by tag or digest, blobs (redirects followed) — over the one agent of
//! `crate::http`, so TLS, timeouts and `--insecure-options=http` are decided there.

use std::io::Read;

use ureq::http::{Response, StatusCode};
use ureq::{Body, Error as UreqError};

use super::archive::descend_from;
use super::{
    Descriptor, Digest, Document, FetchOptions, ImageSource, OciError, Reference, ResolvedImage,
    SourceError,
};
use crate::auth::RegistryCredentials;
use crate::http::{self, HttpPolicy};
use crate::trust::FoundSignature;
use rkt_store::oci::is_timeout;
use rkt_store::oci::spec::{MANIFEST_MEDIA_TYPES, MAX_DOCUMENT_BYTES};

/// A connection to one repository of a registry.
pub struct Registry {
    agent: ureq::Agent,
    reference: Reference,
    /// `https://host[:port]` (or `http://` when allowed and the server does not speak TLS).
    base: String,
    token: Option<String>,
    /// The registry's entry in auth.d, if any.
    credentials: Option<RegistryCredentials>,
    /// Send the credentials as HTTP Basic on every request (the registry asked for Basic).
    basic: bool,
    /// Where a credentials file would go, for the error when the registry asks for one.
    auth_dir: std::path::PathBuf,
    /// The digest of the manifest (or index) the reference named, once resolved: what a
    /// signature must claim.
    top_digest: Option<Digest>,
    /// The registry announced the signature extension (`X-Registry-Supports-Signatures: 1`).
    supports_signatures: bool,
}

impl Registry {
    /// Reaches the registry (`GET /v2/`) and gets an anonymous pull token if it asks for one.
    /// HTTPS is tried first; plain HTTP only when the policy allows it.
    pub fn connect(reference: &Reference, policy: HttpPolicy) -> Result<Registry, SourceError> {
        Registry::connect_with(reference, &FetchOptions::new(policy))
    }

    /// [`Registry::connect`] with the registry's credentials from `options.auth` (used only
    /// when the registry asks for them) and its idle timeout.
    pub fn connect_with(
        reference: &Reference,
        options: &FetchOptions,
    ) -> Result<Registry, SourceError> {
        let policy = options.policy;
        let agent = http::agent_with_idle_timeout(policy, options.idle_timeout)?;
        let mut registry = Registry {
            agent,
            reference: reference.clone(),
            base: format!("https://{}", reference.registry),
            token: None,
            credentials: options.auth.registry(&reference.registry).cloned(),
            basic: false,
            auth_dir: options.auth.local_dir(),
            top_digest: None,
            supports_signatures: false,
        };
        let ping = match registry.send(&format!("{}/v2/", registry.base), None) {
            Err(SourceError::Transport { .. }) if policy.allow_http => {
                registry.base = format!("http://{}", reference.registry);
                registry.send(&format!("{}/v2/", registry.base), None)?
            }
            // A server that answered but not with TLS may be plain http; say how to allow it.
            Err(SourceError::Transport { registry: r, error }) if !is_refused(&error) => {
                return Err(SourceError::Registry {
                    registry: r,
                    reason: format!(
                        "{error} (if it serves plain http, pass --insecure-options=http)"
                    ),
                });
            }
            other => other?,
        };
        registry.supports_signatures =
            header(&ping, "x-registry-supports-signatures").as_deref() == Some("1");
        if ping.status() == StatusCode::UNAUTHORIZED {
            registry.authenticate(&ping)?;
        }
        Ok(registry)
    }

    fn registry_err(&self, reason: impl Into<String>) -> SourceError {
        SourceError::Registry {
            registry: self.reference.registry.clone(),
            reason: reason.into(),
        }
    }

    fn send(&self, url: &str, accept: Option<&str>) -> Result<Response<Body>, SourceError> {
        let mut request = self.agent.get(url);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        } else if self.basic
            && let Some(credentials) = &self.credentials
        {
            request = request.header("Authorization", &credentials.basic.header());
        }
        request.call().map_err(|e| match e {
            UreqError::RequireHttpsOnly(_) => {
                SourceError::HttpNotAllowed(self.reference.registry.clone())
            }
            UreqError::Timeout(t) => self.registry_err(timeout_reason(t).to_owned()),
            e => SourceError::Transport {
                registry: self.reference.registry.clone(),
                error: Box::new(e),
            },
        })
    }

    /// GET with one retry after authenticating if the registry answers 401; any other status
    /// than 200 is an error naming what was asked.
    fn get(
        &mut self,
        url: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Response<Body>, SourceError> {
        let mut response = self.send(url, accept)?;
        if response.status() == StatusCode::UNAUTHORIZED && self.token.is_none() && !self.basic {
            self.authenticate(&response)?;
            response = self.send(url, accept)?;
        }
        match response.status() {
            StatusCode::OK => Ok(response),
            StatusCode::NOT_FOUND => Err(self.registry_err(format!("{what} not found (HTTP 404)"))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let status = response.status().as_u16();
                Err(match &self.credentials {
                    Some(c) if self.basic || self.token.is_some() => {
                        self.refused(c, &format!("access to {what} denied (HTTP {status})"))
                    }
                    _ => {
                        self.needs_credentials(&format!("access to {what} denied (HTTP {status})"))
                    }
                })
            }
            status => Err(self.registry_err(format!(
                "unexpected HTTP status {} for {what}",
                status.as_u16()
            ))),
        }
    }

    /// Answers a `WWW-Authenticate` challenge: `Basic` with the registry's credentials, or
    /// `Bearer realm=…,service=…,scope=…` by getting a token (with the credentials as HTTP
    /// Basic on the token request when there are some, anonymously otherwise).
    fn authenticate(&mut self, challenge: &Response<Body>) -> Result<(), SourceError> {
        let header = challenge
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let scheme = header.split_whitespace().next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("basic") {
            if self.credentials.is_none() {
                return Err(self.needs_credentials("it asks for a user and password"));
            }
            self.basic = true;
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(self.needs_credentials(&format!(
                "it asks for credentials in a way rkt does not know ({})",
                if header.is_empty() {
                    "no challenge given"
                } else {
                    &header
                }
            )));
        }
        let params = &header[scheme.len()..];
        let params = parse_challenge(params);
        let realm = params
            .get("realm")
            .ok_or_else(|| self.registry_err("its bearer challenge names no realm"))?;
        let mut url = url::Url::parse(realm).map_err(|e| {
            self.registry_err(format!("its token realm {realm:?} is not a URL: {e}"))
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = params.get("service") {
                query.append_pair("service", service);
            }
            let scope = params
                .get("scope")
                .cloned()
                .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
            query.append_pair("scope", &scope);
        }
        let mut request = self.agent.get(url.as_str());
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", &credentials.basic.header());
        }
        let response = request.call().map_err(|e| match e {
            UreqError::Timeout(t) => {
                self.registry_err(format!("its token service: {}", timeout_reason(t)))
            }
            e => SourceError::Transport {
                registry: self.reference.registry.clone(),
                error: Box::new(e),
            },
        })?;
        let status = response.status().as_u16();
        if status != 200 {
            let what = format!(
                "its token service {} answered HTTP {status}",
                url.host_str().unwrap_or("")
            );
            return Err(match (&self.credentials, status) {
                (Some(c), 401 | 403) => self.refused(c, &what),
                (None, 401 | 403) => self.needs_credentials(&what),
                _ => self.registry_err(what),
            });
        }
        let body = read_limited(response, MAX_DOCUMENT_BYTES)
            .map_err(|e| self.registry_err(format!("reading a token: {e}")))?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = serde_json::from_slice(&body)
            .map_err(|e| self.registry_err(format!("its token answer is not JSON: {e}")))?;
        self.token = Some(
            token
                .token
                .or(token.access_token)
                .ok_or_else(|| self.registry_err("its token answer holds no token"))?,
        );
        Ok(())
    }

    /// The registry wants credentials rkt does not have: say where to put them.
    fn needs_credentials(&self, why: &str) -> SourceError {
        self.registry_err(format!(
            "{why}; rkt has no credentials for it: add a file to {} such as \
             {{\"rktKind\": \"dockerAuth\", \"rktVersion\": \"v1\", \"registries\": [\"{}\"], \
             \"credentials\": {{\"user\": \"…\", \"password\": \"…\"}}}}",
            self.auth_dir.display(),
            self.reference.registry
        ))
    }

    /// The registry refused the configured credentials (never shown: only user and file).
    fn refused(&self, credentials: &RegistryCredentials, why: &str) -> SourceError {
        self.registry_err(format!(
            "{why}: the credentials of user {:?} from {} were refused; check them",
            credentials.basic.user,
            credentials.file.display()
        ))
    }

    fn repo_url(&self, kind: &str, reference: &str) -> String {
        format!(
            "{}/v2/{}/{kind}/{reference}",
            self.base, self.reference.repository
        )
    }

    /// Fetches a manifest or index by tag or digest; returns its bytes, content type, and
    /// digest (checked against the one asked for, and against `Docker-Content-Digest`).
    fn fetch_manifest(
        &mut self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, Option<String>, Digest), SourceError> {
        let url = self.repo_url("manifests", reference);
        let what = format!("manifest {}:{reference}", self.reference.repository);
        let response = self.get(&url, Some(&MANIFEST_MEDIA_TYPES.join(", ")), &what)?;
        let content_type = header(&response, "content-type");
        let announced = header(&response, "docker-content-digest");
        let bytes = read_limited(response, MAX_DOCUMENT_BYTES)
            .map_err(|e| self.registry_err(format!("reading {what}: {e}")))?;
        let actual = Digest::of(&bytes);
        let image = self.reference.to_string();
        for claimed in expected.map(|d| d.to_string()).into_iter().chain(announced) {
            if claimed != actual.as_str() {
                return Err(SourceError::Oci(OciError::DigestMismatch {
                    what: format!("the manifest of {image}"),
                    expected: claimed,
                    actual: actual.to_string(),
                }));
            }
        }
        Ok((bytes, content_type, actual))
    }
}

impl ImageSource for Registry {
    fn resolve(&mut self) -> Result<ResolvedImage, OciError> {
        Ok(self.resolve_image()?)
    }

    fn open_blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, OciError> {
        Ok(self.blob(desc)?)
    }
}

impl Registry {
    fn resolve_image(&mut self) -> Result<ResolvedImage, SourceError> {
        let image = self.reference.to_string();
        let wanted = self.reference.digest.clone();
        let (bytes, content_type, digest) =
            self.fetch_manifest(&self.reference.manifest_reference(), wanted.as_ref())?;
        self.top_digest = Some(digest.clone());
        let what = format!("the manifest of {image}");
        let (manifest_bytes, manifest, manifest_digest) =
            match Document::parse(&bytes, content_type.as_deref(), &what)? {
                Document::Manifest(m) => (bytes, m, digest),
                Document::Index(index) => {
                    let chosen = super::spec::choose_manifest(
                        &index,
                        &super::spec::host_platform(),
                        &image,
                    )?
                    .clone();
                    descend_from(&chosen, &image, |d| {
                        let (bytes, _, _) =
                            self.fetch_manifest(d.digest.as_str(), Some(&d.digest))?;
                        Ok(bytes)
                    })?
                }
            };
        Ok(ResolvedImage {
            source: image,
            name: format!("{}/{}", self.reference.registry, self.reference.repository),
            tag: self.reference.tag.clone(),
            manifest_bytes,
            manifest_digest,
            manifest,
        })
    }

    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, SourceError> {
        let url = self.repo_url("blobs", desc.digest.as_str());
        let response = self.get(&url, None, &format!("blob {}", desc.digest))?;
        Ok(Box::new(TimeoutAsTimedOut(
            response.into_body().into_reader(),
        )))
    }
}

/// The most signatures read from one place: a registry that offers more is not serving
/// signatures.
const MAX_SIGNATURES: usize = 16;
/// The most bytes of one signature.
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;
/// The layer media type of a sigstore signature's payload, and the annotation with its
/// signature.
const SIGSTORE_PAYLOAD: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGSTORE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

impl Registry {
    /// The image this connection is for.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The digest the reference named, once [`ImageSource::resolve`] ran.
    pub fn top_digest(&self) -> Option<&Digest> {
        self.top_digest.as_ref()
    }

    /// Every signature of the resolved image: simple signing from the lookaside store
    /// (`lookaside`: an `https://`, `http://` or `file://` URL, as registries.d configures
    /// it) and from the registry's signature extension if it announced one, and sigstore
    /// signatures from the `sha256-<hex>.sig` artifact. Returns them with a description of
    /// where they were looked for.
    pub fn signatures(
        &mut self,
        lookaside: Option<&str>,
    ) -> Result<(Vec<FoundSignature>, String), SourceError> {
        let digest = self
            .top_digest
            .clone()
            .ok_or_else(|| self.registry_err("signatures asked for before the image"))?;
        let mut found = Vec::new();
        let mut looked = Vec::new();
        if let Some(base) = lookaside {
            looked.push(format!("lookaside {base}"));
            found.extend(self.lookaside_signatures(base, &digest)?);
        }
        if self.supports_signatures {
            looked.push("the registry's signature extension".to_owned());
            found.extend(self.extension_signatures(&digest)?);
        }
        let tag = format!("{}.sig", digest.file_name());
        looked.push(format!("sigstore {tag}"));
        found.extend(self.sigstore_signatures(&tag)?);
        Ok((found, looked.join(", ")))
    }

    /// `<base>/<repository>@sha256=<hex>/signature-<n>`, n = 1, 2, … until one is missing.
    fn lookaside_signatures(
        &mut self,
        base: &str,
        digest: &Digest,
    ) -> Result<Vec<FoundSignature>, SourceError> {
        let base = base.trim_end_matches('/');
        let mut found = Vec::new();
        for n in 1..=MAX_SIGNATURES {
            let url = format!(
                "{base}/{}@sha256={}/signature-{n}",
                self.reference.repository,
                digest.hex()
            );
            let bytes = if let Some(path) = url.strip_prefix("file://") {
                match std::fs::File::open(path) {
                    Ok(file) => {
                        let mut bytes = Vec::new();
                        file.take(MAX_SIGNATURE_BYTES + 1)
                            .read_to_end(&mut bytes)
                            .map_err(|e| self.registry_err(format!("reading {url}: {e}")))?;
                        bytes
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) => return Err(self.registry_err(format!("reading {url}: {e}"))),
                }
            } else {
                // The lookaside store is a plain web server: no registry credentials.
                let response = self.agent.get(&url).call().map_err(|e| {
                    self.registry_err(format!("its lookaside signature store {url}: {e}"))
                })?;
                match response.status() {
                    StatusCode::OK => read_limited(response, MAX_SIGNATURE_BYTES)
                        .map_err(|e| self.registry_err(format!("reading {url}: {e}")))?,
                    StatusCode::NOT_FOUND => break,
                    status => {
                        return Err(self.registry_err(format!(
                            "its lookaside signature store answered HTTP {} for {url}",
                            status.as_u16()
                        )));
                    }
                }
            };
            found.push(FoundSignature::SimpleSigning { bytes, origin: url });
        }
        Ok(found)
    }

    /// The signature extension: `GET /extensions/v2/<repository>/signatures/<digest>`.
    fn extension_signatures(
        &mut self,
        digest: &Digest,
    ) -> Result<Vec<FoundSignature>, SourceError> {
        let url = format!(
            "{}/extensions/v2/{}/signatures/{digest}",
            self.base, self.reference.repository
        );
        let Some(response) = self.get_optional(&url, None, "signatures")? else {
            return Ok(Vec::new());
        };
        let body = read_limited(response, MAX_DOCUMENT_BYTES)
            .map_err(|e| self.registry_err(format!("reading its signatures: {e}")))?;
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            signatures: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(rename = "type", default)]
            kind: String,
            content: String,
        }
        let list: List = serde_json::from_slice(&body)
            .map_err(|e| self.registry_err(format!("its signature list is not JSON: {e}")))?;
        use base64::Engine as _;
        Ok(list
            .signatures
            .into_iter()
            .filter(|e| e.kind.is_empty() || e.kind == "atomic")
            .take(MAX_SIGNATURES)
            .filter_map(|e| {
                base64::engine::general_purpose::STANDARD
                    .decode(e.content)
                    .ok()
                    .map(|bytes| FoundSignature::SimpleSigning {
                        bytes,
                        origin: url.clone(),
                    })
            })
            .collect())
    }

    /// The layers of the sigstore artifact tagged `tag` that carry a signature.
    fn sigstore_signatures(&mut self, tag: &str) -> Result<Vec<FoundSignature>, SourceError> {
        let url = self.repo_url("manifests", tag);
        let what = format!("sigstore signatures {}:{tag}", self.reference.repository);
        let Some(response) =
            self.get_optional(&url, Some(&MANIFEST_MEDIA_TYPES.join(", ")), &what)?
        else {
            return Ok(Vec::new());
        };
        let bytes = read_limited(response, MAX_DOCUMENT_BYTES)
            .map_err(|e| self.registry_err(format!("reading {what}: {e}")))?;
        // Not `Document::parse`: its layers are not filesystem layers.
        let manifest: super::Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| self.registry_err(format!("{what}: not an image manifest: {e}")))?;
        let mut found = Vec::new();
        for layer in manifest.layers.iter().take(MAX_SIGNATURES) {
            let Some(signature) = layer.annotations.get(SIGSTORE_ANNOTATION) else {
                continue;
            };
            if layer.media_type != SIGSTORE_PAYLOAD {
                continue;
            }
            let blob = self.blob(layer)?;
            let payload = rkt_store::oci::read_document(
                blob,
                layer,
                &format!("sigstore payload {}", layer.digest),
            )?;
            found.push(FoundSignature::Sigstore {
                payload,
                signature: signature.clone(),
                origin: format!("{url} layer {}", layer.digest),
            });
        }
        Ok(found)
    }

    /// GET that returns `None` for 404 (what was asked for does not exist).
    fn get_optional(
        &mut self,
        url: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Option<Response<Body>>, SourceError> {
        match self.get(url, accept, what) {
            Ok(response) => Ok(Some(response)),
            Err(SourceError::Registry { reason, .. }) if reason.ends_with("(HTTP 404)") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A body reader whose idle timeouts read as `io::ErrorKind::TimedOut`, which is how the store
/// tells a server that went quiet from a broken one.
struct TimeoutAsTimedOut<R>(R);

impl<R: Read> Read for TimeoutAsTimedOut<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| match is_ureq_timeout(&e) {
            true => std::io::Error::new(std::io::ErrorKind::TimedOut, e),
            false => e,
        })
    }
}

fn is_refused(error: &UreqError) -> bool {
    matches!(error, UreqError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn read_limited(response: Response<Body>, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| match is_timeout(&e) || is_ureq_timeout(&e) {
            true => timeout_reason(ureq::Timeout::PerRead).to_owned(),
            false => e.to_string(),
        })?;
    if bytes.len() as u64 > limit {
        return Err(format!("the answer is larger than {limit} bytes"));
    }
    Ok(bytes)
}

/// `realm="https://a/token",service="reg",scope="repository:x:pull"` → map.
fn parse_challenge(params: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((v, a)) => (v.to_owned(), a),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((v, a)) => (v.trim().to_owned(), a),
                None => (after.trim().to_owned(), ""),
            }
        };
        out.insert(key, value);
        rest = after.trim_start_matches([',', ' ']);
    }
    out
}

fn is_ureq_timeout(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<UreqError>())
        .is_some_and(|u| matches!(u, UreqError::Timeout(_)))
}

/// What a ureq timeout means, in words a user can act on.
fn timeout_reason(timeout: ureq::Timeout) -> &'static str {
    match timeout {
        ureq::Timeout::Resolve | ureq::Timeout::Connect => {
            "no connection could be made in time; check the address, or try again later"
        }
        ureq::Timeout::RecvResponse => "the server did not answer in time; try again later",
        ureq::Timeout::PerRead | ureq::Timeout::RecvBody => {
            "the server stopped sending (no data within the idle timeout); try again later"
        }
        _ => "the request timed out; try again later",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let p = parse_challenge(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
    }
}
