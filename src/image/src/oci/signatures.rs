//! Admitting OCI images: every source is wrapped so that resolving an image also decides
//! whether it may be stored (signatures of registry images, the policy for archives and
//! layouts, or `--insecure-options=image`), and the decision goes into the store with it.
//!
//! Lookaside stores for simple signing are configured as containers' `registries.d` files
//! are (`<config>/registries.d/*.yaml`, local then system):
//!
//! ```yaml
//! docker:
//!   registry.example.com:
//!     lookaside: https://sigs.example.com/sigstore
//!   registry.example.com/team:          # the most specific entry wins
//!     lookaside: file:///srv/sigs
//! default-docker:
//!   lookaside: https://sigs.example.com/other
//! ```
//!
//! (`sigstore:` is read as the older name of `lookaside:`; `*-staging` and
//! `use-sigstore-attachments` are for writers and ignored: rkt always looks for sigstore
//! attachments.)

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rkt_store::Admission;

use super::{
    Descriptor, ImageSource, OciError, OciSource, Reference, Registry, ResolvedImage, SourceError,
};
use crate::trust::{SignedImage, TrustError, TrustStore, admit_insecure, docker_name};

/// How images are admitted: `--insecure-options=image`, or verified with a trust store.
#[derive(Debug, Clone)]
pub enum Verification {
    /// Only the digests are checked; the image is recorded as insecure.
    Insecure,
    Verify(SignatureConfig),
}

/// The trust store, and where registries.d files are.
#[derive(Debug, Clone)]
pub struct SignatureConfig {
    pub trust: TrustStore,
    /// `registries.d` directories, the first that configures a registry wins.
    pub registries_d: Vec<PathBuf>,
}

impl SignatureConfig {
    /// The trust store and registries.d of a local and a system config directory.
    pub fn new(local_config: &Path, system_config: &Path) -> SignatureConfig {
        SignatureConfig {
            trust: TrustStore::new(local_config, system_config),
            registries_d: vec![
                local_config.join("registries.d"),
                system_config.join("registries.d"),
            ],
        }
    }

    /// The lookaside store configured for a registry image, if any.
    pub fn lookaside_for(&self, reference: &Reference) -> Result<Option<String>, SourceError> {
        let name = format!("{}/{}", reference.registry, reference.repository);
        let normalized = docker_name(&name).unwrap_or(name);
        for dir in &self.registries_d {
            let config = RegistriesD::load(dir)?;
            if let Some(url) = config.lookaside_for(&normalized) {
                return Ok(Some(url));
            }
        }
        Ok(None)
    }
}

/// The lookaside entries of one registries.d directory.
#[derive(Debug, Default)]
pub struct RegistriesD {
    /// Namespace (`host[:port][/path]`) → lookaside URL.
    docker: BTreeMap<String, String>,
    default: Option<String>,
}

impl RegistriesD {
    /// Reads every `*.yaml` file of `dir` (a missing directory configures nothing). A file
    /// rkt cannot read is an error: a lookaside store silently dropped would refuse images.
    pub fn load(dir: &Path) -> Result<RegistriesD, SourceError> {
        let mut out = RegistriesD::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(config_error(dir, format!("listing it: {e}"))),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for path in files {
            let mut text = String::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
                .map_err(|e| config_error(&path, e.to_string()))?;
            out.parse(&text)
                .map_err(|(line, why)| config_error(&path, format!("line {line}: {why}")))?;
        }
        Ok(out)
    }

    /// The subset of YAML these files use: nested `key:` maps by indentation, `key: value`
    /// scalars, comments.
    fn parse(&mut self, text: &str) -> Result<(), (usize, String)> {
        // (indent, key) of the maps enclosing the current line.
        let mut path: Vec<(usize, String)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = strip_comment(raw);
            if line.trim().is_empty() || line.trim() == "---" {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let line = line.trim();
            let (key, value) =
                split_key(line).ok_or((n + 1, "expected `key:` or `key: value`".into()))?;
            while path.last().is_some_and(|(i, _)| *i >= indent) {
                path.pop();
            }
            let keys: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
            match value {
                None => path.push((indent, key)),
                Some(value) => {
                    let lookaside = matches!(key.as_str(), "lookaside" | "sigstore");
                    match (keys.as_slice(), lookaside) {
                        (["docker", namespace], true) => {
                            self.docker.entry((*namespace).to_owned()).or_insert(value);
                        }
                        (["default-docker"], true) => {
                            self.default.get_or_insert(value);
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// The most specific namespace covering `name` (`HOST[:PORT]/REPOSITORY`).
    fn lookaside_for(&self, name: &str) -> Option<String> {
        self.docker
            .iter()
            .filter(|(ns, _)| {
                let ns = docker_name(ns).unwrap_or_else(|| (*ns).clone());
                name == ns || name.strip_prefix(&ns).is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|(ns, _)| ns.len())
            .map(|(_, url)| url.clone())
            .or_else(|| self.default.clone())
    }
}

fn config_error(path: &Path, reason: String) -> SourceError {
    SourceError::Registry {
        registry: format!("configuration {}", path.display()),
        reason,
    }
}

fn strip_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => &line[..i],
        None if line.trim_start().starts_with('#') => "",
        None => line,
    }
}

/// `key:` → (key, None); `key: value` → (key, Some(value)); quotes removed.
fn split_key(line: &str) -> Option<(String, Option<String>)> {
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
    if let Some(key) = line.strip_suffix(':') {
        return Some((unquote(key), None));
    }
    let i = line.find(": ")?;
    let value = unquote(&line[i + 2..]);
    Some((unquote(&line[..i]), (!value.is_empty()).then_some(value)))
}

/// Why a stored image could not be admitted again.
#[derive(Debug, thiserror::Error)]
pub enum ReadmitError {
    #[error(transparent)]
    Store(#[from] rkt_store::StoreError),
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// Decides again, offline, whether a stored OCI image may be used, from what was kept with it:
/// its signatures are checked against today's trusted keys and policy (a key removed since no
/// longer vouches for it); an image admitted by policy needs that policy still; one fetched
/// with `--insecure-options=image` (or before rkt kept decisions) needs the option again or
/// a policy that accepts unsigned images. Returns the decision that holds now.
pub fn readmit_stored(
    store: &rkt_store::Store,
    id: &rkt_schema::ImageId,
    verification: &Verification,
) -> Result<rkt_store::TrustDecision, ReadmitError> {
    use rkt_store::TrustKind;
    let info = store.info(id)?;
    let source = info
        .record
        .oci
        .as_ref()
        .map_or_else(|| info.record.name.clone(), |o| o.source.clone());
    let decision = store.trust_decision(id)?;
    let config = match verification {
        Verification::Insecure => {
            return Ok(decision.unwrap_or_else(|| admit_insecure(&source).decision));
        }
        Verification::Verify(config) => config,
    };
    // A decision names the reference it was made for (one image may be stored from several).
    let source = decision
        .as_ref()
        .and_then(|d| d.reference.clone())
        .unwrap_or(source);
    let registry = source
        .strip_prefix("docker://")
        .and_then(|r| Reference::parse(r).ok());
    let repository = registry
        .as_ref()
        .and_then(|r| docker_name(&format!("{}/{}", r.registry, r.repository)));
    match decision {
        Some(d) if d.kind == TrustKind::Signed => {
            let found: Vec<_> = store
                .kept_signatures(id)?
                .iter()
                .filter_map(crate::trust::FoundSignature::from_kept)
                .collect();
            let (Some(reference), Some(repository)) = (&registry, &repository) else {
                return Err(TrustError::Unsigned {
                    image: source,
                    looked: "no stored signature this version can check".into(),
                    hint: "fetch it again".into(),
                }
                .into());
            };
            let admission = config.trust.admit_signed_image(
                &SignedImage {
                    repository,
                    tag: reference.tag.as_deref(),
                    digest: d.manifest_digest.as_deref().unwrap_or_default(),
                    source: &source,
                },
                &found,
                "the signatures stored with it",
            )?;
            Ok(admission.decision)
        }
        other => {
            // Unsigned: the policy that let it in must still say so.
            let carried = match other.as_ref().and_then(|d| d.scope.as_deref()) {
                Some(scope) => scope.strip_prefix("docker://").map(str::to_owned),
                None => repository.clone(),
            };
            let admission = config.trust.admit_unsigned(carried.as_deref(), &source);
            let looked = match &other {
                Some(d) if d.kind == TrustKind::Insecure => {
                    "it was stored with --insecure-options=image"
                }
                Some(_) => "it was stored by a policy that no longer accepts it",
                None => "it was stored before rkt kept signatures with images",
            };
            admission.map(|a| a.decision).map_err(|e| match e {
                TrustError::Unsigned { hint, .. } => TrustError::Unsigned {
                    image: source,
                    looked: looked.to_owned(),
                    hint,
                }
                .into(),
                e => e.into(),
            })
        }
    }
}

/// A source whose `resolve` also admits the image.
pub(super) struct Admitted {
    inner: Inner,
    verification: Verification,
    source_name: String,
    admission: Option<Admission>,
}

enum Inner {
    Registry(Box<Registry>),
    Local {
        source: Box<dyn ImageSource>,
        docker_archive: bool,
    },
}

impl Admitted {
    pub(super) fn registry(
        registry: Registry,
        verification: Verification,
        source: &OciSource,
    ) -> Admitted {
        Admitted {
            inner: Inner::Registry(Box::new(registry)),
            verification,
            source_name: source.to_string(),
            admission: None,
        }
    }

    pub(super) fn local(
        inner: Box<dyn ImageSource>,
        verification: Verification,
        source: &OciSource,
    ) -> Admitted {
        Admitted {
            inner: Inner::Local {
                source: inner,
                docker_archive: matches!(source, OciSource::DockerArchive { .. }),
            },
            verification,
            source_name: source.to_string(),
            admission: None,
        }
    }

    fn admit(&mut self, image: &ResolvedImage) -> Result<Admission, OciError> {
        let config = match &self.verification {
            Verification::Insecure => return Ok(admit_insecure(&self.source_name)),
            Verification::Verify(config) => config,
        };
        let trusted = match &mut self.inner {
            Inner::Registry(registry) => {
                let reference = registry.reference().clone();
                let lookaside = config.lookaside_for(&reference)?;
                let (found, looked) = registry.signatures(lookaside.as_deref())?;
                let name = format!("{}/{}", reference.registry, reference.repository);
                let repository = docker_name(&name).unwrap_or(name);
                let digest = registry
                    .top_digest()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                config.trust.admit_signed_image(
                    &SignedImage {
                        repository: &repository,
                        tag: reference.tag.as_deref(),
                        digest: &digest,
                        source: &self.source_name,
                    },
                    &found,
                    &looked,
                )
            }
            Inner::Local { docker_archive, .. } => config.trust.admit_unsigned(
                carried_name(image, *docker_archive).as_deref(),
                &self.source_name,
            ),
        };
        trusted.map_err(trust_error)
    }
}

/// The registry name an archive or layout carries: a docker-archive's `RepoTags`, or an OCI
/// `ref.name` that is a whole reference (`host/repo:tag`), not only a tag.
fn carried_name(image: &ResolvedImage, docker_archive: bool) -> Option<String> {
    let name = if docker_archive {
        image.name.as_str()
    } else {
        let tag = image.tag.as_deref()?;
        if !tag.contains('/') {
            return None;
        }
        let without_digest = tag.split('@').next()?;
        match without_digest.rsplit_once(':') {
            Some((name, t)) if !t.contains('/') => name,
            _ => without_digest,
        }
    };
    docker_name(name)
}

fn trust_error(e: TrustError) -> OciError {
    OciError::Source(Box::new(e))
}

impl ImageSource for Admitted {
    fn resolve(&mut self) -> Result<ResolvedImage, OciError> {
        let image = match &mut self.inner {
            Inner::Registry(registry) => registry.resolve()?,
            Inner::Local { source, .. } => source.resolve()?,
        };
        self.admission = Some(self.admit(&image)?);
        Ok(image)
    }

    fn open_blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send + 'static>, OciError> {
        match &mut self.inner {
            Inner::Registry(registry) => registry.open_blob(desc),
            Inner::Local { source, .. } => source.open_blob(desc),
        }
    }

    fn admission(&mut self) -> Option<Admission> {
        self.admission.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_d_names_lookaside_stores() {
        let mut config = RegistriesD::default();
        config
            .parse(
                "# comment\n\
                 docker:\n  \
                   127.0.0.1:5000:\n    \
                     lookaside: https://127.0.0.1:8443/sigs   # trailing\n    \
                     lookaside-staging: file:///tmp/x\n  \
                   \"127.0.0.1:5000/team\":\n    \
                     sigstore: file:///srv/team\n\
                 default-docker:\n  \
                   lookaside: https://default.example/s\n",
            )
            .unwrap();
        assert_eq!(
            config.lookaside_for("127.0.0.1:5000/other/app").as_deref(),
            Some("https://127.0.0.1:8443/sigs")
        );
        assert_eq!(
            config.lookaside_for("127.0.0.1:5000/team/app").as_deref(),
            Some("file:///srv/team")
        );
        assert_eq!(
            config.lookaside_for("elsewhere.example/a").as_deref(),
            Some("https://default.example/s")
        );
        assert!(RegistriesD::default().parse("docker\n").is_err());
    }
}
