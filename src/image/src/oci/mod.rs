//! OCI and Docker images: the image-spec documents, digests, the sources images come from
//! (OCI layout directories, `oci-archive:` and `docker-archive:` tarballs, registries speaking
//! the distribution v2 API), applying layers with whiteouts, and the appc manifest rkt makes
//! from an image's config.
//!
//! Every blob is checked against its SHA-256 digest while it is read; a source only hands out
//! bytes, the store decides what to keep (see `store::oci`).

mod archive;
mod error;
mod reference;
mod registry;
mod signatures;

use std::path::{Path, PathBuf};

pub use archive::{DockerArchive, LayoutDir, unpack_oci_archive};
pub use error::SourceError;
pub use reference::Reference;
pub use registry::Registry;
pub use rkt_store::oci::{
    ContainerConfig, Descriptor, Digest, Document, ImageConfig, ImageSource, Index, Manifest,
    OciError, Platform, ResolvedImage, VerifyingReader, appc_arch, appc_manifest, choose_manifest,
    host_platform, oci_arch, read_document, spec,
};
pub use signatures::{ReadmitError, RegistriesD, SignatureConfig, Verification, readmit_stored};

use std::time::Duration;

use crate::auth::AuthConfig;
use crate::http::HttpPolicy;
use rkt_store::{OciImportOptions, OciImportOutcome, Store, StoreError, TransferProgress};

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
    /// How an image is admitted: signatures and policy, or `--insecure-options=image`.
    pub verification: Verification,
}

impl FetchOptions {
    pub fn new(policy: HttpPolicy) -> FetchOptions {
        FetchOptions {
            policy,
            auth: AuthConfig::default(),
            progress: TransferProgress::default(),
            idle_timeout: crate::http::IDLE_TIMEOUT,
            parallel_downloads: 3,
            verification: Verification::Verify(SignatureConfig::new(
                Path::new(crate::trust::DEFAULT_LOCAL_CONFIG),
                Path::new(crate::trust::DEFAULT_SYSTEM_CONFIG),
            )),
        }
    }

    /// These options with digests checked only (`--insecure-options=image`).
    pub fn insecure(mut self) -> FetchOptions {
        self.verification = Verification::Insecure;
        self
    }

    /// What the store needs of these options while it takes the image in.
    fn import_options(&self) -> OciImportOptions {
        OciImportOptions {
            progress: self.progress.clone(),
            parallel_downloads: self.parallel_downloads,
        }
    }
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
            return Some(
                Reference::parse(rest)
                    .map(OciSource::Registry)
                    .map_err(Into::into),
            );
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

    /// Takes the image into `store` (see [`Store::import_oci`]): each layer the store lacks is
    /// fetched once and checked against its digest, after the image was admitted as
    /// `options.verification` says (nothing is stored otherwise); the decision is kept with
    /// the image.
    pub fn import(
        &self,
        store: &Store,
        options: &FetchOptions,
    ) -> Result<OciImportOutcome, StoreError> {
        store.import_oci(
            |scratch| self.open_with(scratch, options),
            &options.import_options(),
        )
    }

    /// [`OciSource::open`] with credentials and limits for registries.
    pub fn open_with(
        &self,
        scratch: &Path,
        options: &FetchOptions,
    ) -> Result<Box<dyn ImageSource>, OciError> {
        let verification = options.verification.clone();
        let source: Box<dyn ImageSource> = match self {
            OciSource::Registry(reference) => {
                let registry = Registry::connect_with(reference, options)?;
                return Ok(Box::new(signatures::Admitted::registry(
                    registry,
                    verification,
                    self,
                )));
            }
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
        };
        Ok(Box::new(signatures::Admitted::local(
            source,
            verification,
            self,
        )))
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
