//! `rkt image …`: list, inspect, remove and unpack stored images.

use std::io::Write;

use anyhow::{Context, Result, bail};
use rkt_store::{ImageInfo, Store, short_id};
use serde::Serialize;

use crate::cli::{Format, GlobalArgs, ImageCommand, ImageField, ImageListArgs, SortOrder};
use crate::output::{DynTable, format_size, format_time};

pub fn run(global: &GlobalArgs, cmd: ImageCommand) -> Result<()> {
    let store = global.store()?;
    match cmd {
        ImageCommand::List(args) => list(&store, &args),
        ImageCommand::CatManifest(args) => {
            let info = store.resolve(&args.image)?;
            let bytes = store.manifest_bytes(&info.id)?;
            let mut out = std::io::stdout().lock();
            if args.pretty_print {
                let value: serde_json::Value =
                    serde_json::from_slice(&bytes).context("stored manifest is not JSON")?;
                serde_json::to_writer_pretty(&mut out, &value)?;
                writeln!(out)?;
            } else {
                out.write_all(&bytes)?;
            }
            Ok(())
        }
        ImageCommand::Rm(args) if args.images.len() == 1 => {
            let id = remove(global, &store, &args.images[0])?;
            println!("{id}");
            Ok(())
        }
        ImageCommand::Rm(args) => {
            let mut failed = 0;
            for query in &args.images {
                match remove(global, &store, query) {
                    Ok(id) => println!("{id}"),
                    Err(e) => {
                        eprintln!("rkt: removing {query}: {e:#}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!(
                    "{failed} of {} images could not be removed",
                    args.images.len()
                );
            }
            Ok(())
        }
        ImageCommand::Export(args) => {
            let info = store.resolve(&args.image)?;
            store
                .export(&info.id, &args.output, args.overwrite)
                .with_context(|| format!("exporting {}", info.record.name))?;
            Ok(())
        }
        ImageCommand::Extract(args) => {
            let info = store.resolve(&args.image)?;
            store
                .extract(&info.id, &args.target, args.rootfs_only, args.overwrite)
                .with_context(|| format!("extracting {}", info.record.name))?;
            Ok(())
        }
        ImageCommand::Verify(args) => verify(global, &store, &args.images),
        ImageCommand::Gc(args) => gc(global, &store, args.grace_period.0),
        ImageCommand::Render(args) => {
            let info = store.resolve(&args.image)?;
            let rendered = if args.rootfs_only {
                store.render(&info.id, &args.target, args.overwrite)
            } else {
                store.render_with_manifest(&info.id, &args.target, args.overwrite)
            };
            rendered.with_context(|| format!("rendering {}", info.record.name))?;
            Ok(())
        }
    }
}

/// Re-hashes each image's kept ACI (or OCI manifest and layers) against its ID and checks
/// the signatures kept with it again, against today's trusted keys and policy; one line per
/// image; fails if any does not pass.
fn verify(global: &GlobalArgs, store: &Store, queries: &[String]) -> Result<()> {
    let images = if queries.is_empty() {
        store.list()?
    } else {
        queries
            .iter()
            .map(|q| store.resolve(q))
            .collect::<Result<Vec<_>, _>>()?
    };
    let verification = super::fetch::verification(global);
    let trust = global.trust_store();
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for image in &images {
        let checked = store
            .verify_blob(&image.id)
            .map_err(anyhow::Error::from)
            .and_then(|()| recheck_trust(store, &trust, &verification, image));
        match checked {
            Ok(trusted) => writeln!(
                out,
                "ok      {} {}: {trusted}",
                image.id,
                display_name(image)
            )?,
            Err(e) => {
                failed += 1;
                writeln!(out, "FAILED  {} {}: {e:#}", image.id, display_name(image))?;
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!(
            "{failed} of {} images failed verification; remove them with `rkt image rm` and fetch them again",
            images.len()
        );
    }
    Ok(())
}

/// Why the image is trusted today: OCI images through their kept signatures and the policy
/// (`readmit_stored`); ACIs through their kept `.asc`, checked over the kept file again.
fn recheck_trust(
    store: &Store,
    trust: &rkt_image::trust::TrustStore,
    verification: &rkt_image::oci::Verification,
    image: &ImageInfo,
) -> Result<String> {
    if image.record.oci.is_some() {
        let decision = rkt_image::oci::readmit_stored(store, &image.id, verification)?;
        return Ok(decision.summary());
    }
    let Some(decision) = store.trust_decision(&image.id)? else {
        return Ok("no trust decision recorded".to_owned());
    };
    if decision.kind != rkt_store::TrustKind::Signed {
        return Ok(decision.summary());
    }
    let signature = store
        .kept_signatures(&image.id)?
        .into_iter()
        .find(|s| s.name == "aci.asc")
        .map(|s| s.bytes)
        .unwrap_or_default();
    let name: rkt_schema::AcIdentifier = image.record.name.parse()?;
    let verified = trust.verify(
        &name,
        || {
            store
                .open_aci_blob(&image.id)
                .map_err(std::io::Error::other)
        },
        &signature,
    )?;
    let mut now = decision.clone();
    now.key = Some(verified.fingerprint.to_string());
    now.user_ids = verified.user_ids;
    Ok(now.summary())
}

/// Removes one image, unless a pod that is not done yet still uses it.
fn remove(global: &GlobalArgs, store: &Store, query: &str) -> Result<rkt_schema::ImageId> {
    let info = store.resolve(query)?;
    let pods = rkt_pod::Pods::open(&global.dir)?;
    // Decided under the store's image-users lock: a pod being made now is seen or refused.
    store.remove_unless(&info.id, || -> Result<()> {
        if let Some(pod) = pods.users_of(store, &info.id)?.first() {
            bail!(
                "image {} is used by pod {} ({}); remove the pod first (rkt stop, rkt rm)",
                info.record.name,
                pod.uuid,
                pod.state
            );
        }
        Ok(())
    })?;
    Ok(info.id)
}

/// Removes images that no pod still needs and that were last used before `grace`, then the
/// layers no remaining image lists.
fn gc(global: &GlobalArgs, store: &Store, grace: std::time::Duration) -> Result<()> {
    let pods = rkt_pod::Pods::open(&global.dir)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cutoff = now.saturating_sub(grace.as_secs());
    let mut failed = 0;
    /// Why gc keeps an image it looked at first.
    #[derive(Debug)]
    enum Kept {
        InUse,
        Failed(anyhow::Error),
    }
    impl From<rkt_store::StoreError> for Kept {
        fn from(e: rkt_store::StoreError) -> Kept {
            Kept::Failed(e.into())
        }
    }
    for image in store.list()? {
        if image.last_used > cutoff {
            continue;
        }
        // Checked again under the store's image-users lock, as `rkt image rm` does.
        let removed = store.remove_unless(&image.id, || match pods.users_of(store, &image.id) {
            Ok(users) if users.is_empty() => Ok(()),
            Ok(_) => Err(Kept::InUse),
            Err(e) => Err(Kept::Failed(e.into())),
        });
        match removed {
            Ok(()) => println!("removed image {}", image.id),
            Err(Kept::InUse) => {}
            Err(Kept::Failed(e)) => {
                eprintln!("rkt: image gc: removing {}: {e:#}", image.id);
                failed += 1;
            }
        }
    }
    for digest in store.remove_unused_layers()? {
        println!("removed layer {digest}");
    }
    // What a killed `rkt fetch` was downloading.
    store.remove_stale_temp_dirs();
    if failed > 0 {
        bail!("{failed} images could not be removed");
    }
    Ok(())
}

/// One image in `rkt image list --format=json`: the original rkt's `ImageListEntry` (`name`
/// with `:version` when the image has that label, times in nanoseconds since the epoch,
/// `size` in bytes), and `labels` besides. Fields are added here, never renamed.
#[derive(Serialize)]
struct ImageJson<'a> {
    id: &'a str,
    name: String,
    import_time: i64,
    last_used_time: i64,
    /// Bytes the image takes in the store.
    size: u64,
    labels: &'a std::collections::BTreeMap<String, String>,
    /// Why the image was let in: `{"kind": "signed"|"policy"|"insecure", …}` (trust.json),
    /// absent for images stored before rkt kept the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    trust: Option<rkt_store::TrustDecision>,
}

fn list(store: &Store, args: &ImageListArgs) -> Result<()> {
    let mut images = store.list()?;
    let key = |image: &ImageInfo, field: ImageField| -> (u64, String) {
        match field {
            ImageField::Id => (0, image.id.to_string()),
            ImageField::Name => (0, display_name(image)),
            ImageField::Size => (image.disk_size(), String::new()),
            ImageField::ImportTime => (image.record.import_time, String::new()),
            ImageField::LastUsed => (image.last_used, String::new()),
            ImageField::Trusted => (0, String::new()),
        }
    };
    images.sort_by(|a, b| {
        let order = args
            .sort
            .iter()
            .map(|f| key(a, *f).cmp(&key(b, *f)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal);
        match args.order {
            SortOrder::Asc => order,
            SortOrder::Desc => order.reverse(),
        }
    });
    let trust: Vec<Option<rkt_store::TrustDecision>> = images
        .iter()
        .map(|i| store.trust_decision(&i.id).ok().flatten())
        .collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json | Format::JsonPretty => {
            let rows: Vec<ImageJson<'_>> = images
                .iter()
                .zip(&trust)
                .map(|(image, trust)| to_json(image, trust.clone()))
                .collect();
            if args.format == Format::Json {
                serde_json::to_writer(&mut out, &rows)?;
            } else {
                serde_json::to_writer_pretty(&mut out, &rows)?;
            }
            writeln!(out)?;
        }
        Format::Table => {
            let header = args
                .fields
                .iter()
                .map(|f| match f {
                    ImageField::Id => "ID",
                    ImageField::Name => "NAME",
                    ImageField::Size => "SIZE",
                    ImageField::ImportTime => "IMPORT TIME",
                    ImageField::LastUsed => "LAST USED",
                    ImageField::Trusted => "TRUSTED",
                })
                .collect();
            let rows = images
                .iter()
                .zip(&trust)
                .map(|(image, trust)| {
                    args.fields
                        .iter()
                        .map(|f| match f {
                            ImageField::Id if args.full => image.id.to_string(),
                            ImageField::Id => short_id(&image.id),
                            ImageField::Name => display_name(image),
                            ImageField::Size if args.full => image.disk_size().to_string(),
                            ImageField::Size => format_size(image.disk_size()),
                            ImageField::ImportTime => {
                                format_time(image.record.import_time, args.full)
                            }
                            ImageField::LastUsed => format_time(image.last_used, args.full),
                            ImageField::Trusted => trust
                                .as_ref()
                                .map_or_else(|| "-".to_owned(), |t| trusted_column(t, args.full)),
                        })
                        .collect()
                })
                .collect();
            DynTable::new(header, rows).write(&mut out, !args.no_legend)?;
        }
    }
    Ok(())
}

/// Why an image was trusted, for the table: long fingerprints cut to a key ID (the last 16
/// hex digits, as gpg shows them) unless `--full`.
fn trusted_column(trust: &rkt_store::TrustDecision, full: bool) -> String {
    let mut trust = trust.clone();
    if !full && let Some(key) = &trust.key {
        trust.key = Some(match key.strip_prefix("SHA256:") {
            Some(hex) => format!("SHA256:{}", &hex[..hex.len().min(12)]),
            None => key[key.len().saturating_sub(16)..].to_owned(),
        });
    }
    trust.summary()
}

fn display_name(image: &ImageInfo) -> String {
    match image.record.labels.get("version") {
        Some(version) => format!("{}:{version}", image.record.name),
        None => image.record.name.clone(),
    }
}

fn to_json(image: &ImageInfo, trust: Option<rkt_store::TrustDecision>) -> ImageJson<'_> {
    ImageJson {
        id: image.id.as_str(),
        name: display_name(image),
        import_time: crate::output::unix_nanos(image.record.import_time),
        last_used_time: crate::output::unix_nanos(image.last_used),
        size: image.disk_size(),
        labels: &image.record.labels,
        trust,
    }
}
