//! `rkt fetch`, and the image arguments of `prepare`/`run`: files, https:// URLs and names
//! found by appc discovery, into the store.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use rkt_common::insecure::Insecure;
use rkt_image::fetch::{AppQuery, Fetched, Fetcher, PullPolicy, TransferProgress};
use rkt_image::oci::{FetchOptions, OciSource, SignatureConfig, Verification};
use rkt_image::trust::{ImageSubject, KeyScope, Requirement, TrustError, admit_insecure};
use rkt_schema::{AcIdentifier, ImageId};
use rkt_store::{Admission, KeptSignature, Store, TrustDecision, TrustKind};

use crate::cli::{FetchArgs, GlobalArgs};
use crate::progress::Progress;

pub fn run(global: &GlobalArgs, args: &FetchArgs) -> Result<()> {
    let sources = args
        .images
        .iter()
        .map(|arg| Source::parse(arg))
        .collect::<Result<Vec<_>>>()?;
    // Local files are refused before anything is written.
    for source in &sources {
        if let Source::File(path) = source {
            check_file(path)?;
            verify(global, None, path, read_signature_beside(path)?)?;
        }
    }
    let store = global.store()?;
    for source in &sources {
        println!(
            "{}",
            fetch_source(global, &store, source, args.pull_policy().into())?
        );
    }
    Ok(())
}

/// What an image argument names, tried in this order (as the original rkt): a stored image by
/// ID, a local file, a URL, an image name.
#[derive(Debug)]
enum Source<'a> {
    Id(&'a str),
    /// docker://, oci-archive:, docker-archive: or an OCI layout directory.
    Oci(OciSource),
    File(&'a Path),
    Url(&'a str),
    Name(AppQuery),
}

impl<'a> Source<'a> {
    fn parse(arg: &'a str) -> Result<Source<'a>> {
        let path = Path::new(arg);
        if arg.starts_with("sha512-") {
            return Ok(Source::Id(arg));
        }
        // Before URLs: `docker://` is a registry, not a URL to download.
        if let Some(oci) = OciSource::parse(arg) {
            return Ok(Source::Oci(oci?));
        }
        if path.is_file() {
            return Ok(Source::File(path));
        }
        if let Some(file) = arg.strip_prefix("file://") {
            return Ok(Source::File(Path::new(file)));
        }
        if arg.contains("://") {
            return Ok(Source::Url(arg));
        }
        // Paths are not valid names (no leading `/` or `.`); say the file is missing.
        if arg.starts_with(['/', '.']) || arg.ends_with(".aci") {
            return Ok(Source::File(path));
        }
        Ok(Source::Name(AppQuery::parse(arg)?))
    }
}

fn fetch_source(
    global: &GlobalArgs,
    store: &Store,
    source: &Source<'_>,
    pull: PullPolicy,
) -> Result<ImageId> {
    let id = match source {
        Source::Id(id) => store.resolve(id)?.id,
        Source::Oci(oci) => fetch_oci_with_policy(global, store, oci, pull)?,
        Source::File(path) => {
            check_file(path)?;
            let admission = verify(global, None, path, read_signature_beside(path)?)?;
            let id = fetch_file(store, path)?;
            store.record_admission(&id, &admission)?;
            id
        }
        Source::Url(url) => fetch_remote(global, store, Remote::Url(url), pull)?,
        Source::Name(query) => fetch_remote(global, store, Remote::Name(query), pull)?,
    };
    fetch_dependencies(global, store, &id, pull, 0)?;
    Ok(id)
}

/// Fetches the appc dependencies of a stored image that are not stored yet, by name and labels
/// through discovery (each verified like any image), and theirs in turn.
fn fetch_dependencies(
    global: &GlobalArgs,
    store: &Store,
    id: &ImageId,
    pull: PullPolicy,
    depth: u32,
) -> Result<()> {
    if depth > 32 {
        bail!("the dependencies of image {id} nest too deep or loop");
    }
    for dep in store.manifest(id)?.dependencies {
        let labels: BTreeMap<String, String> = dep
            .labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.clone()))
            .collect();
        let stored = match &dep.image_id {
            Some(dep_id) => store.info(dep_id).ok().map(|i| i.id),
            None => store
                .find_by_name(dep.image_name.as_str(), &labels)?
                .map(|i| i.id),
        };
        let dep_id = match stored {
            Some(dep_id) => dep_id,
            None => {
                let query = AppQuery {
                    name: dep.image_name.clone(),
                    labels,
                };
                let fetched = fetch_remote(global, store, Remote::Name(&query), pull)
                    .with_context(|| format!("fetching {query}, a dependency of {id}"))?;
                if dep.image_id.as_ref().is_some_and(|want| want != &fetched) {
                    bail!(
                        "dependency {query} of {id} was fetched as {fetched}, but the manifest asks for {}",
                        dep.image_id
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    );
                }
                fetched
            }
        };
        fetch_dependencies(global, store, &dep_id, pull, depth + 1)?;
    }
    Ok(())
}

/// A registry image as `--pull-policy` says: `new` and `never` take the newest stored image
/// fetched from the same reference without asking the registry; `update` always asks (one
/// manifest request when nothing changed). Archives and layouts are local: always read.
fn fetch_oci_with_policy(
    global: &GlobalArgs,
    store: &Store,
    source: &OciSource,
    pull: PullPolicy,
) -> Result<ImageId> {
    if matches!(source, OciSource::Registry(_)) && pull != PullPolicy::Update {
        let wanted = source.to_string();
        let stored = store
            .list()?
            .into_iter()
            .filter(|i| i.record.oci.as_ref().is_some_and(|o| o.source == wanted))
            .max_by_key(|i| i.record.import_time);
        match stored {
            Some(info) => {
                tracing::debug!("{wanted}: using the stored {}", info.id);
                // Offline: the signatures kept with it, against today's keys and policy.
                let decision =
                    rkt_image::oci::readmit_stored(store, &info.id, &verification(global))
                        .with_context(|| format!("using the stored {wanted}"))?;
                tracing::debug!("{wanted}: {}", decision.summary());
                return Ok(info.id);
            }
            None if pull == PullPolicy::Never => {
                bail!("{wanted} is not in the store and --pull-policy=never forbids fetching it")
            }
            None => {}
        }
    }
    fetch_oci(global, store, source)
}

/// How OCI images are admitted: signatures and the trust policy of --local-config and
/// --system-config, unless `--insecure-options=image`.
pub fn verification(global: &GlobalArgs) -> Verification {
    if global.insecure_options.allows(Insecure::Image) {
        Verification::Insecure
    } else {
        Verification::Verify(SignatureConfig::new(
            &global.local_config,
            &global.system_config,
        ))
    }
}

/// Fetches an OCI/Docker image. It is stored only once admitted (a good signature by a key
/// trusted for it, a policy that accepts it unsigned, or `--insecure-options=image`), and its
/// blobs are checked against the digests of its manifest. Says on stderr why it was trusted.
pub fn fetch_oci(global: &GlobalArgs, store: &Store, source: &OciSource) -> Result<ImageId> {
    let mut options = FetchOptions::new(global.http_policy());
    options.verification = verification(global);
    if matches!(source, OciSource::Registry(_)) {
        options.auth = global.auth_config()?;
    }
    let outcome = {
        // Total bytes of the layer blobs still to fetch, across layers, on a terminal.
        let _bar = Progress::start_transfer(
            format!("fetching {source}"),
            options.progress.received.clone(),
            options.progress.total.clone(),
        );
        source
            .import(store, &options)
            .with_context(|| format!("fetching {source}"))?
    };
    tracing::debug!(
        "{} {} ({}), {} layers fetched",
        if outcome.newly_stored {
            "stored"
        } else {
            "already had"
        },
        outcome.info.record.name,
        outcome.info.id,
        outcome.layers_fetched
    );
    if let Some(decision) = store.trust_decision(&outcome.info.id)? {
        // On stderr: stdout is the image ID, for scripts.
        eprintln!("rkt: {source}: {}", describe_decision(&decision));
    }
    Ok(outcome.info.id)
}

/// Why an image was trusted, for `rkt fetch`'s line on stderr.
pub fn describe_decision(decision: &TrustDecision) -> String {
    let mut line = decision.summary();
    if let Some(format) = &decision.format {
        line.push_str(&format!(" [{format}]"));
    }
    if decision.kind == TrustKind::Signed
        && let Some(scope) = &decision.scope
    {
        line.push_str(&format!(", trusted for {scope}"));
    }
    line
}

enum Remote<'a> {
    Url(&'a str),
    Name(&'a AppQuery),
}

fn fetch_remote(
    global: &GlobalArgs,
    store: &Store,
    remote: Remote<'_>,
    pull: PullPolicy,
) -> Result<ImageId> {
    let policy = global.http_policy();
    let fetcher = Fetcher::new(store, policy)
        .fetch_signatures(!global.insecure_options.allows(Insecure::Image))
        .credentials(global.auth_config()?);
    let transfer = TransferProgress::default();
    let (label, fetched) = {
        let label = match &remote {
            Remote::Url(url) => url.to_string(),
            Remote::Name(query) => query.to_string(),
        };
        let _bar = Progress::start_transfer(
            format!("downloading {label}"),
            transfer.received.clone(),
            transfer.total.clone(),
        );
        let fetched = match remote {
            Remote::Url(url) => fetcher.fetch_url(url, pull, &transfer),
            Remote::Name(query) => fetcher.fetch_name(query, pull, &transfer),
        };
        (label, fetched)
    };
    let download = match fetched? {
        Fetched::Stored(id) => {
            tracing::debug!("{label}: using the stored {id}");
            return Ok(id);
        }
        Fetched::Downloaded(download) => download,
    };
    let admission = verify(
        global,
        download.query().map(|q| q.name.as_str()),
        download.aci_path(),
        download.signature().map(<[u8]>::to_vec),
    )?;
    let read = Arc::new(AtomicU64::new(0));
    let total = std::fs::metadata(download.aci_path())
        .map(|m| m.len())
        .unwrap_or(0);
    let url = download.url().to_owned();
    let _bar = Progress::start(format!("importing {label}"), read.clone(), total);
    let outcome = download
        .import(store, read)
        .with_context(|| format!("storing {url}"))?;
    store.record_admission(&outcome.info.id, &admission)?;
    Ok(outcome.info.id)
}

/// The one place where an ACI is admitted into the store, before anything of it is unpacked:
/// its detached signature must be good and made by a key trusted for its name (`rkt trust`),
/// unless `--insecure-options=image` or the trust policy for its name accepts unsigned
/// images. `name` is what discovery asked for (the import then checks the manifest says the
/// same); for files and URLs it is the manifest's own name. Returns the decision to keep
/// with the image, and the signature it rests on.
fn verify(
    global: &GlobalArgs,
    name: Option<&str>,
    aci: &Path,
    signature: Option<Vec<u8>>,
) -> Result<Admission> {
    if global.insecure_options.allows(Insecure::Image) {
        return Ok(admit_insecure(&aci.display().to_string()));
    }
    let open = || File::open(aci).with_context(|| format!("opening {}", aci.display()));
    let name: AcIdentifier = match name {
        Some(name) => name.parse()?,
        None => {
            let file = open()?;
            let compressed = file.metadata().map(|m| m.len()).unwrap_or(0);
            rkt_store::aci::read_manifest(file, Some(global.size_limit().bound(compressed)))
                .with_context(|| format!("reading the manifest of {}", aci.display()))?
                .name
        }
    };
    let trust = global.trust_store();
    let bytes = signature.unwrap_or_default();
    let verified = match trust.verify(&name, || File::open(aci), &bytes) {
        Ok(verified) => verified,
        Err(e @ (TrustError::NoSignature { .. } | TrustError::UntrustedKey { .. })) => {
            // A policy may accept this name's images unsigned.
            let applied = trust.policy_for(&ImageSubject::Appc(&name))?;
            if !applied.policy.accepts(Requirement::InsecureAcceptAnything) {
                return Err(e.into());
            }
            let scope = applied.scope.map(|s| match s {
                KeyScope::Root => "root".to_owned(),
                KeyScope::Prefix(p) => p.to_string(),
            });
            eprintln!(
                "rkt: {name}: digest-only by policy {}",
                scope.as_deref().unwrap_or("(default)")
            );
            let mut admission = admit_insecure(name.as_str());
            admission.decision.kind = TrustKind::Policy;
            admission.decision.scope = scope;
            return Ok(admission);
        }
        Err(e) => return Err(e.into()),
    };
    // On stderr: stdout is the image ID, for scripts.
    eprintln!(
        "rkt: signature of {name} verified: signed by {} ({})",
        if verified.user_ids.is_empty() {
            "a key with no user ID".to_owned()
        } else {
            verified.user_ids.join(", ")
        },
        verified.fingerprint
    );
    let kept = KeptSignature {
        name: "aci.asc".to_owned(),
        bytes,
    };
    Ok(Admission {
        decision: TrustDecision {
            kind: TrustKind::Signed,
            format: Some("openpgp".to_owned()),
            key: Some(verified.fingerprint.to_string()),
            user_ids: verified.user_ids,
            scope: Some(match verified.scope {
                KeyScope::Root => "root".to_owned(),
                KeyScope::Prefix(p) => p.to_string(),
            }),
            identity: Some(name.to_string()),
            manifest_digest: None,
            reference: None,
            signatures: vec![kept.name.clone()],
            decided_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        },
        signatures: vec![kept],
    })
}

/// `FILE.asc`, the detached signature next to a local ACI, if there is one.
fn read_signature_beside(aci: &Path) -> Result<Option<Vec<u8>>> {
    let mut asc = aci.as_os_str().to_owned();
    asc.push(".asc");
    match std::fs::read(&asc) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", Path::new(&asc).display())),
    }
}

fn check_file(image: &Path) -> Result<()> {
    if !image.is_file() {
        bail!("{}: no such image file", image.display());
    }
    Ok(())
}

/// Imports one local ACI file, with progress on a terminal.
pub fn fetch_file(store: &Store, image: &Path) -> Result<ImageId> {
    let read = Arc::new(AtomicU64::new(0));
    let total = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    let progress = Progress::start(
        format!("importing {}", image.display()),
        read.clone(),
        total,
    );
    let outcome = store.import_file_with_progress(image, read);
    drop(progress);
    let outcome = outcome.with_context(|| format!("fetching {}", image.display()))?;
    tracing::debug!(
        "{} {} ({})",
        if outcome.newly_stored {
            "stored"
        } else {
            "already had"
        },
        outcome.info.record.name,
        outcome.info.id
    );
    Ok(outcome.info.id)
}

/// An image argument of `prepare`/`run`: a stored image by ID, a file or URL (fetched first),
/// or a name (from the store, or by discovery, as `pull` says). A name that is not a valid
/// appc name is looked up in the store only.
pub fn resolve_image(
    global: &GlobalArgs,
    store: &Store,
    arg: &str,
    pull: PullPolicy,
) -> Result<ImageId> {
    match Source::parse(arg) {
        Ok(source) => fetch_source(global, store, &source, pull),
        Err(_) => Ok(store.resolve(arg)?.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_arguments_are_told_apart() {
        assert!(matches!(
            Source::parse("sha512-abc").unwrap(),
            Source::Id(_)
        ));
        assert!(matches!(
            Source::parse("https://example.com/a.aci").unwrap(),
            Source::Url(_)
        ));
        assert!(matches!(
            Source::parse("/nonexistent.aci").unwrap(),
            Source::File(_)
        ));
        assert!(matches!(Source::parse("./x").unwrap(), Source::File(_)));
        match Source::parse("example.com/app:1.0").unwrap() {
            Source::Name(q) => assert_eq!(q.to_string(), "example.com/app:1.0"),
            other => panic!("{other:?}"),
        }
        assert!(Source::parse("Not A Name").is_err());
    }
}
