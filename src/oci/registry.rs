//! A client for the OCI distribution (Docker registry v2) API: anonymous bearer-token auth,
//! manifests and indexes by tag or digest, blobs (redirects followed) — over the one agent of
//! `crate::http`, so TLS and `--insecure-options=http` are decided there.

use std::io::Read;

use ureq::http::{Response, StatusCode};
use ureq::{Body, Error as UreqError};

use super::archive::descend_from;
use super::spec::{MANIFEST_MEDIA_TYPES, MAX_DOCUMENT_BYTES};
use super::{Descriptor, Digest, Document, ImageSource, OciError, Reference, ResolvedImage};
use crate::http::{self, HttpPolicy};

/// A connection to one repository of a registry.
pub struct Registry {
    agent: ureq::Agent,
    reference: Reference,
    /// `https://host[:port]` (or `http://` when allowed and the server does not speak TLS).
    base: String,
    token: Option<String>,
}

impl Registry {
    /// Reaches the registry (`GET /v2/`) and gets an anonymous pull token if it asks for one.
    /// HTTPS is tried first; plain HTTP only when the policy allows it.
    pub fn connect(reference: &Reference, policy: HttpPolicy) -> Result<Registry, OciError> {
        let agent = http::agent(policy)?;
        let mut registry = Registry {
            agent,
            reference: reference.clone(),
            base: format!("https://{}", reference.registry),
            token: None,
        };
        let ping = match registry.send(&format!("{}/v2/", registry.base), None) {
            Err(OciError::Transport { .. }) if policy.allow_http => {
                registry.base = format!("http://{}", reference.registry);
                registry.send(&format!("{}/v2/", registry.base), None)?
            }
            // A server that answered but not with TLS may be plain http; say how to allow it.
            Err(OciError::Transport { registry: r, error }) if !is_refused(&error) => {
                return Err(OciError::Registry {
                    registry: r,
                    reason: format!(
                        "{error} (if it serves plain http, pass --insecure-options=http)"
                    ),
                });
            }
            other => other?,
        };
        if ping.status() == StatusCode::UNAUTHORIZED {
            registry.authenticate(&ping)?;
        }
        Ok(registry)
    }

    fn registry_err(&self, reason: impl Into<String>) -> OciError {
        OciError::Registry {
            registry: self.reference.registry.clone(),
            reason: reason.into(),
        }
    }

    fn send(&self, url: &str, accept: Option<&str>) -> Result<Response<Body>, OciError> {
        let mut request = self.agent.get(url);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        request.call().map_err(|e| match e {
            UreqError::RequireHttpsOnly(_) => {
                OciError::HttpNotAllowed(self.reference.registry.clone())
            }
            e => OciError::Transport {
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
    ) -> Result<Response<Body>, OciError> {
        let mut response = self.send(url, accept)?;
        if response.status() == StatusCode::UNAUTHORIZED && self.token.is_none() {
            self.authenticate(&response)?;
            response = self.send(url, accept)?;
        }
        match response.status() {
            StatusCode::OK => Ok(response),
            StatusCode::NOT_FOUND => Err(self.registry_err(format!("{what} not found (HTTP 404)"))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(self.registry_err(format!(
                "access to {what} denied (HTTP {}); rkt pulls anonymously only",
                response.status().as_u16()
            ))),
            status => Err(self.registry_err(format!(
                "unexpected HTTP status {} for {what}",
                status.as_u16()
            ))),
        }
    }

    /// Follows a `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge to get an
    /// anonymous token.
    fn authenticate(&mut self, challenge: &Response<Body>) -> Result<(), OciError> {
        let header = challenge
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(params) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        else {
            return Err(self.registry_err(format!(
                "it asks for credentials ({}); rkt pulls anonymously only",
                if header.is_empty() {
                    "no challenge given"
                } else {
                    header
                }
            )));
        };
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
        let response = self.send(url.as_str(), None)?;
        if response.status() != StatusCode::OK {
            return Err(self.registry_err(format!(
                "its token service {} answered HTTP {}",
                url.host_str().unwrap_or(""),
                response.status().as_u16()
            )));
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
    ) -> Result<(Vec<u8>, Option<String>, Digest), OciError> {
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
                return Err(OciError::DigestMismatch {
                    what: format!("the manifest of {image}"),
                    expected: claimed,
                    actual: actual.to_string(),
                });
            }
        }
        Ok((bytes, content_type, actual))
    }
}

impl ImageSource for Registry {
    fn resolve(&mut self) -> Result<ResolvedImage, OciError> {
        let image = self.reference.to_string();
        let wanted = self.reference.digest.clone();
        let (bytes, content_type, digest) =
            self.fetch_manifest(&self.reference.manifest_reference(), wanted.as_ref())?;
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

    fn open_blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, OciError> {
        let url = self.repo_url("blobs", desc.digest.as_str());
        let response = self.get(&url, None, &format!("blob {}", desc.digest))?;
        Ok(Box::new(response.into_body().into_reader()))
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
        .map_err(|e| e.to_string())?;
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
