//! OCI and Docker images: the image-spec documents, digests, the sources images come from
//! (OCI layout directories, `oci-archive:` and `docker-archive:` tarballs, registries speaking
//! the distribution v2 API), applying layers with whiteouts, and the appc manifest rkt makes
//! from an image's config.
//!
//! Every blob is checked against its SHA-256 digest while it is read; a source only hands out
//! bytes, the store decides what to keep (see `store::oci`).

mod archive;
mod convert;
mod digest;
mod download;
mod error;
mod layer;
mod reference;
mod registry;
mod spec;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use archive::{DockerArchive, LayoutDir, unpack_oci_archive};
pub use convert::appc_manifest;
pub use digest::{Digest, VerifyingReader};
pub use download::Transfer;
pub use error::OciError;
pub use layer::{Decoding, apply_layer, apply_layer_checked};
pub use reference::Reference;
pub use registry::Registry;
pub use spec::{
    ContainerConfig, Descriptor, Document, ImageConfig, Index, Manifest, Platform, appc_arch,
    choose_manifest, host_platform, oci_arch,
};

use std::time::Duration;

use crate::auth::AuthConfig;
use crate::fetch::TransferProgress;
use crate::http::HttpPolicy;

/// An image resolved at its source: manifest and config, both checked against their digests.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Where it came from, as the user would write it (`docker://…`, `oci-archive:…`).
    pub source: String,
    /// What the appc name is made from (`127.0.0.1:5000/app`, a file's stem).
    pub name: String,
    /// The tag, which becomes the `version` label.
    pub tag: Option<String>,
    /// The image manifest exactly as the source held it: the store's image ID hashes it.
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
}

impl ResolvedImage {
    /// Reads the image's config from `src`, checked against its digest. Kept apart from
    /// [`ImageSource::resolve`] so that an image already stored costs one manifest request.
    pub fn read_config(
        &self,
        src: &mut dyn ImageSource,
    ) -> Result<(Vec<u8>, ImageConfig), OciError> {
        let what = format!("the config of {}", self.source);
        let blob = src.open_blob(&self.manifest.config)?;
        let bytes = read_document(blob, &self.manifest.config, &what)?;
        let config = ImageConfig::parse(&bytes, &what)?;
        Ok((bytes, config))
    }
}

/// How images are fetched: the HTTP policy, credentials, progress and limits. `new` gives
/// the defaults (no credentials, 3 parallel blob downloads, 30 s idle timeout).
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub policy: HttpPolicy,
    /// Registry credentials (`dockerAuth` entries of auth.d).
    pub auth: AuthConfig,
    /// Bytes of layer blobs received, and their total once known, for a progress display.
    pub progress: TransferProgress,
    /// A server that sends nothing for this long while a request or body is pending fails the
    /// fetch.
    pub idle_timeout: Duration,
    /// How many layer blobs download at once (at least 1).
    pub parallel_downloads: usize,
}

impl FetchOptions {
    pub fn new(policy: HttpPolicy) -> FetchOptions {
        FetchOptions {
            policy,
            auth: AuthConfig::default(),
            progress: TransferProgress::default(),
            idle_timeout: crate::http::IDLE_TIMEOUT,
            parallel_downloads: 3,
        }
    }
}

/// Somewhere an OCI image can be read from. `Send`: blobs are requested from a thread of
/// their own while layers are applied.
pub trait ImageSource: Send {
    /// Finds the image (resolving an index to the host's platform) and reads its manifest.
    fn resolve(&mut self) -> Result<ResolvedImage, OciError>;
    /// Opens a blob named by `desc`. The bytes are not checked yet: the caller reads them
    /// through a [`VerifyingReader`].
    fn open_blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, OciError>;
}

/// The image arguments `rkt fetch` understands besides ACI files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciSource {
    /// `docker://HOST[:PORT]/REPO[:TAG|@sha256:…]`
    Registry(Reference),
    /// A directory with `oci-layout`, `index.json` and `blobs/`; optional `:TAG` picks by
    /// `org.opencontainers.image.ref.name`.
    Layout { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`: a tar of an OCI layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker-archive:PATH`: what `docker save` writes.
    DockerArchive { path: PathBuf },
}

impl OciSource {
    /// Recognizes an OCI image argument; `None` means it is something else (an ACI file, a
    /// stored image name).
    pub fn parse(arg: &str) -> Option<Result<OciSource, OciError>> {
        if let Some(rest) = arg.strip_prefix("docker://") {
            return Some(Reference::parse(rest).map(OciSource::Registry));
        }
        if let Some(rest) = arg.strip_prefix("oci-archive:") {
            let (path, tag) = split_path_tag(rest);
            return Some(Ok(OciSource::OciArchive { path, tag }));
        }
        if let Some(rest) = arg.strip_prefix("docker-archive:") {
            return Some(Ok(OciSource::DockerArchive {
                path: PathBuf::from(rest),
            }));
        }
        let rest = arg.strip_prefix("oci:").unwrap_or(arg);
        let (dir, tag) = split_path_tag(rest);
        if dir.join("oci-layout").is_file() {
            return Some(Ok(OciSource::Layout { dir, tag }));
        }
        None
    }

    /// Opens the source. Archives are first unpacked (only the files they should hold) into
    /// `scratch`, a directory that does not exist yet and that the caller removes afterwards.
    pub fn open(
        &self,
        scratch: &Path,
        policy: HttpPolicy,
    ) -> Result<Box<dyn ImageSource>, OciError> {
        self.open_with(scratch, &FetchOptions::new(policy))
    }

    /// [`OciSource::open`] with credentials and limits for registries.
    pub fn open_with(
        &self,
        scratch: &Path,
        options: &FetchOptions,
    ) -> Result<Box<dyn ImageSource>, OciError> {
        Ok(match self {
            OciSource::Registry(reference) => Box::new(Registry::connect_with(reference, options)?),
            OciSource::Layout { dir, tag } => Box::new(LayoutDir::new(
                dir.clone(),
                tag.clone(),
                format!("oci:{}", dir.display()),
            )?),
            OciSource::OciArchive { path, tag } => {
                unpack_oci_archive(path, scratch)?;
                let mut layout = LayoutDir::new(scratch.to_owned(), tag.clone(), self.to_string())?;
                layout.set_name_from(path);
                Box::new(layout)
            }
            OciSource::DockerArchive { path } => {
                Box::new(DockerArchive::open(path, scratch, self.to_string())?)
            }
        })
    }
}

impl std::fmt::Display for OciSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = |t: &Option<String>| t.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            OciSource::Registry(r) => write!(f, "{r}"),
            OciSource::Layout { dir, tag: t } => write!(f, "oci:{}{}", dir.display(), tag(t)),
            OciSource::OciArchive { path, tag: t } => {
                write!(f, "oci-archive:{}{}", path.display(), tag(t))
            }
            OciSource::DockerArchive { path } => write!(f, "docker-archive:{}", path.display()),
        }
    }
}

/// `PATH:TAG` → (PATH, TAG), but only when PATH alone exists, so paths with colons still work.
fn split_path_tag(s: &str) -> (PathBuf, Option<String>) {
    if !Path::new(s).exists()
        && let Some((path, tag)) = s.rsplit_once(':')
        && !tag.contains('/')
        && Path::new(path).exists()
    {
        return (PathBuf::from(path), Some(tag.to_owned()));
    }
    (PathBuf::from(s), None)
}

/// Reads a small JSON document (manifest, index, config) through a digest check.
pub(crate) fn read_document(
    input: impl Read,
    desc: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, OciError> {
    if desc.size > spec::MAX_DOCUMENT_BYTES {
        return Err(OciError::invalid(
            what,
            format!("{} bytes is larger than the 4 MiB allowed", desc.size),
        ));
    }
    let mut reader = VerifyingReader::new(input, desc.size);
    let mut bytes = Vec::with_capacity(desc.size as usize);
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| download::read_error(what, &e))?;
    reader.finish(&desc.digest, desc.size, what)?;
    Ok(bytes)
}
