//! The appc metadata service (spec/ace.md, "App Container Metadata Service"): what an app can
//! learn about its pod and itself at `$AC_METADATA_URL/acMetadata/v1/…`, and HMAC signatures
//! tied to its pod.
//!
//! This module is the router and its handlers only: a [`Request`] in, a [`Response`] out, with
//! pods looked up through a [`PodSource`]. Sockets, threads and the store live elsewhere
//! (`rkt metadata-service` in stage0, [`StorePods`]), so every path is unit-tested here.
//!
//! A pod is found by the token in the URL's first path segment, which `rkt prepare
//! --mds-register` wrote into the pod directory ([`rkt_pod::PodDir::mds_token`]).

mod signing;
mod source;

use std::io::Read;

use rkt_schema::{Annotation, ImageId, PodManifest};

pub use signing::HmacKey;
pub use source::{SourceError, StorePods};

/// The TCP port apps reach the service on (rkt's).
pub use rkt_pod::registration::MDS_PORT as DEFAULT_PORT;
/// The service's local socket.
pub const SOCKET_PATH: &str = "/run/rkt/metadata-svc.sock";

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=us-ascii";
/// Everything after the token.
const API_PREFIX: &str = "/acMetadata/v1/";

/// A pod as the service answers for it.
#[derive(Debug, Clone)]
pub struct PodData {
    pub uuid: uuid::Uuid,
    /// The pod manifest as stored (served byte for byte).
    pub manifest_json: Vec<u8>,
    pub manifest: PodManifest,
}

/// Where the service finds pods and images.
pub trait PodSource {
    /// The running pod registered with `token`, if any.
    fn pod_by_token(&self, token: &str) -> Option<PodData>;
    /// An image's manifest as the image held it.
    fn image_manifest(&self, id: &ImageId) -> Option<Vec<u8>>;
}

/// One HTTP request, as the server read it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target: path and optional `?query`.
    pub target: &'a str,
    /// The body (a form for the HMAC calls).
    pub body: &'a [u8],
}

/// The answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    fn json(body: Vec<u8>) -> Response {
        Response {
            status: 200,
            content_type: JSON,
            body,
        }
    }

    fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }

    fn error(status: u16, message: &str) -> Response {
        Response::text(status, format!("{message}\n"))
    }
}

/// The largest body read (content to sign); bigger requests get 413.
pub const MAX_BODY: u64 = 1 << 20;

/// Reads a request body of at most [`MAX_BODY`] bytes; `None` when it is bigger.
pub fn read_body(reader: impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    reader.take(MAX_BODY + 1).read_to_end(&mut body)?;
    Ok((body.len() as u64 <= MAX_BODY).then_some(body))
}

/// The metadata service: a key and where pods come from.
#[derive(Debug)]
pub struct Service<S> {
    source: S,
    key: HmacKey,
}

impl<S: PodSource> Service<S> {
    pub fn new(source: S, key: HmacKey) -> Service<S> {
        Service { source, key }
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Response {
        let (path, query) = match req.target.split_once('?') {
            Some((path, query)) => (path, query),
            None => (req.target, ""),
        };
        let Some((token, route)) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .and_then(|(token, rest)| Some((token, rest.strip_prefix(&API_PREFIX[1..])?)))
        else {
            return Response::error(
                404,
                "not found: metadata paths are /TOKEN/acMetadata/v1/...",
            );
        };
        let Some(pod) = self.source.pod_by_token(token) else {
            return Response::error(401, "unknown token: no running pod registered with it");
        };
        let segments: Vec<&str> = route.split('/').collect();
        let method = req.method;
        match segments.as_slice() {
            ["pod", "annotations"] => get(method, || {
                Response::json(to_json(&pod.manifest.annotations))
            }),
            ["pod", "manifest"] => get(method, || Response::json(pod.manifest_json.clone())),
            ["pod", "uuid"] => get(method, || {
                Response::text(200, pod.uuid.hyphenated().to_string())
            }),
            ["pod", "hmac", "sign"] => post(method, || {
                let form = Form::parse(query, req.body);
                match form.get("content") {
                    Some(content) if !content.is_empty() => {
                        Response::text(200, self.key.sign(&pod.uuid, content.as_bytes()))
                    }
                    _ => Response::error(400, "content field missing"),
                }
            }),
            ["pod", "hmac", "verify"] => post(method, || self.verify(query, req.body)),
            ["apps", app, "annotations"] => get(method, || {
                self.with_app(&pod, app, |image| {
                    Response::json(to_json(&merged_annotations(&pod.manifest, app, image)))
                })
            }),
            ["apps", app, "image", "manifest"] => get(method, || {
                self.with_app(&pod, app, |image| Response::json(image.to_vec()))
            }),
            ["apps", app, "image", "id"] => get(method, || match app_image_id(&pod, app) {
                Some(id) => Response::text(200, id.as_str().to_owned()),
                None => no_such_app(app),
            }),
            _ => Response::error(404, "not found: no such metadata path"),
        }
    }

    /// `/pod/hmac/verify`: 200 when `signature` is this service's signature of `content` by
    /// the pod `uuid` (any pod, not only the caller's), 403 when it is not.
    fn verify(&self, query: &str, body: &[u8]) -> Response {
        let form = Form::parse(query, body);
        let Some(uuid) = form
            .get("uuid")
            .and_then(|u| uuid::Uuid::parse_str(&u).ok())
        else {
            return Response::error(400, "uuid field missing or malformed");
        };
        let Some(content) = form.get("content").filter(|c| !c.is_empty()) else {
            return Response::error(400, "content field missing");
        };
        let signature = form.get("signature").unwrap_or_default();
        match self.key.verify(&uuid, content.as_bytes(), &signature) {
            None => Response::error(400, "signature field missing or corrupt"),
            Some(true) => Response::text(200, ""),
            Some(false) => Response::error(403, "signature does not match"),
        }
    }

    fn with_app(
        &self,
        pod: &PodData,
        app: &str,
        answer: impl FnOnce(&[u8]) -> Response,
    ) -> Response {
        let Some(id) = app_image_id(pod, app) else {
            return no_such_app(app);
        };
        match self.source.image_manifest(id) {
            Some(manifest) => answer(&manifest),
            None => Response::error(500, "the app's image is no longer in the store"),
        }
    }
}

fn get(method: &str, answer: impl FnOnce() -> Response) -> Response {
    match method {
        "GET" | "HEAD" => answer(),
        _ => Response::error(405, "method not allowed: use GET"),
    }
}

fn post(method: &str, answer: impl FnOnce() -> Response) -> Response {
    match method {
        "POST" => answer(),
        _ => Response::error(405, "method not allowed: use POST"),
    }
}

fn no_such_app(app: &str) -> Response {
    Response::error(404, &format!("the pod has no app {app:?}"))
}

fn app_image_id<'a>(pod: &'a PodData, app: &str) -> Option<&'a ImageId> {
    pod.manifest
        .apps
        .iter()
        .find(|a| a.name.as_str() == app)?
        .image
        .id
        .as_ref()
}

/// The image's annotations with the pod app's over them (same name: the pod's value, in the
/// image's place), as rkt merged them.
fn merged_annotations(pod: &PodManifest, app: &str, image_manifest: &[u8]) -> Vec<Annotation> {
    #[derive(serde::Deserialize)]
    struct ImageAnnotations {
        #[serde(default)]
        annotations: Option<Vec<Annotation>>,
    }
    let mut merged = serde_json::from_slice::<ImageAnnotations>(image_manifest)
        .ok()
        .and_then(|m| m.annotations)
        .unwrap_or_default();
    let app = pod.apps.iter().find(|a| a.name.as_str() == app);
    for annotation in app.map(|a| a.annotations.as_slice()).unwrap_or_default() {
        match merged.iter_mut().find(|a| a.name == annotation.name) {
            Some(existing) => existing.value = annotation.value.clone(),
            None => merged.push(annotation.clone()),
        }
    }
    merged
}

fn to_json(annotations: &[Annotation]) -> Vec<u8> {
    serde_json::to_vec(annotations).expect("annotations serialize")
}

/// `application/x-www-form-urlencoded` fields from the body, then the query (as Go's
/// `FormValue`, which rkt used: the body wins).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(query: &str, body: &[u8]) -> Form {
        let pairs = url::form_urlencoded::parse(body)
            .chain(url::form_urlencoded::parse(query.as_bytes()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Form(pairs)
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

pub use rkt_pod::registration::{new_token, random_bytes};

/// Compares secrets without stopping at the first difference.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub use rkt_pod::registration::metadata_url;

#[cfg(test)]
mod tests;
