//! OCI images from layout directories built here byte for byte: layer order, whiteouts,
//! opaque directories, and hostile layers refused with the store left as it was.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rkt_image::http::HttpPolicy;
use rkt_image::oci::{Digest, OciSource};
use rkt_store::StoreError;

use crate::aci::AciBuilder;
use crate::oci_layout::write_layout;
use crate::support::{Fixture, snapshot};

fn layout_source(dir: PathBuf) -> OciSource {
    OciSource::Layout { dir, tag: None }
}

fn import(fx: &Fixture, layers: &[Vec<u8>]) -> Result<rkt_store::OciImportOutcome, StoreError> {
    let dir = fx.dir.path().join(format!("layout-{}", rand_suffix()));
    write_layout(&dir, layers);
    layout_source(dir).import(
        &fx.store,
        &rkt_image::oci::FetchOptions::new(HttpPolicy::default()).insecure(),
    )
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The rendered tree as `path → kind [content]`, for exact comparisons.
fn tree(root: &Path) -> Vec<String> {
    snapshot(root)
        .into_iter()
        .map(|(p, d)| format!("{} {}", p.display(), d.split(' ').next().unwrap()))
        .collect()
}

#[test]
fn later_layers_replace_whiteouts_remove_opaque_dirs_empty() {
    let fx = Fixture::new();
    let lower = AciBuilder::empty()
        .dir("etc", 0o755)
        .file("etc/a", b"one\n", 0o644)
        .file("etc/keep", b"k\n", 0o644)
        .dir("gone", 0o755)
        .file("gone/f", b"f\n", 0o644)
        .dir("opq", 0o755)
        .file("opq/old", b"old\n", 0o644)
        .dir("opq/sub", 0o755)
        .file("opq/sub/deep", b"deep\n", 0o644)
        .dir("dir2file", 0o755)
        .file("dir2file/x", b"x\n", 0o644)
        .file("file2dir", b"f\n", 0o644)
        .file("rmfile", b"r\n", 0o644)
        .symlink("lnk", "etc")
        .tar();
    let upper = AciBuilder::empty()
        .file("etc/a", b"two\n", 0o600)
        .file(".wh.gone", b"", 0o644)
        .file(".wh.rmfile", b"", 0o644)
        // The layer's own entry comes before its opaque marker: it must survive it.
        .file("opq/new", b"new\n", 0o644)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("dir2file", b"now a file\n", 0o644)
        .dir("file2dir", 0o755)
        .file("file2dir/y", b"y\n", 0o644)
        .file("lnk/through", b"via link\n", 0o644)
        .gzip();
    let outcome = import(&fx, &[lower, upper]).unwrap();
    assert!(outcome.newly_stored);
    assert_eq!(outcome.layers_fetched, 2);
    // Fetching stores the layers; the tree is made at first use, by one caller at a time.
    assert!(!fx.store.rootfs_path(&outcome.info.id).exists());
    assert_eq!(
        fx.store.info(&outcome.info.id).unwrap().record.rootfs_size,
        0
    );
    let rootfs = std::thread::scope(|s| {
        let first = s.spawn(|| fx.store.rootfs(&outcome.info.id).unwrap());
        let second = s.spawn(|| fx.store.rootfs(&outcome.info.id).unwrap());
        let (a, b) = (first.join().unwrap(), second.join().unwrap());
        assert_eq!(a, b);
        a
    });
    let record = fx.store.info(&outcome.info.id).unwrap().record;
    // At least the content of the final tree (files later whited out may count too).
    assert!(record.rootfs_size >= 11 + 4 + 2 + 9 + 2 + 4, "{record:?}");
    assert!(record.tar_size > record.rootfs_size);
    assert_eq!(
        tree(&rootfs),
        [
            "dir2file file",
            "etc dir",
            "etc/a file",
            "etc/keep file",
            "etc/through file",
            "file2dir dir",
            "file2dir/y file",
            "lnk link",
            "opq dir",
            "opq/new file",
        ]
    );
    assert_eq!(fs::read(rootfs.join("etc/a")).unwrap(), b"two\n");
    assert_eq!(
        fs::metadata(rootfs.join("etc/a"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The appc manifest says what the config said.
    let manifest = fx.store.manifest(&outcome.info.id).unwrap();
    let app = manifest.app.clone().unwrap();
    assert_eq!(app.exec, ["/bin/app"]);
    assert_eq!((app.user.as_str(), app.group.as_str()), ("1000", "100"));
    assert_eq!(app.env("A"), Some("1"));
    assert_eq!(manifest.label("version"), Some("1.0"));
    assert_eq!(manifest.label("arch"), Some("amd64"));
    // Rendering again from the stored layers gives the same tree.
    let rendered = fx.dir.path().join("render");
    fx.store.render(&outcome.info.id, &rendered, false).unwrap();
    assert_eq!(snapshot(&rendered), snapshot(&rootfs));
    // No ACI to export.
    let err = fx
        .store
        .export(&outcome.info.id, &fx.dir.path().join("x.aci"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("OCI image"), "{err}");
}

#[test]
fn shared_layers_are_stored_once_and_collected_when_unused() {
    let fx = Fixture::new();
    let base = AciBuilder::empty().file("base", b"b\n", 0o644).gzip();
    let a = import(
        &fx,
        &[
            base.clone(),
            AciBuilder::empty().file("a", b"a", 0o644).tar(),
        ],
    )
    .unwrap();
    let b = import(
        &fx,
        &[
            base.clone(),
            AciBuilder::empty().file("b", b"b", 0o644).tar(),
        ],
    )
    .unwrap();
    assert_eq!(a.layers_fetched, 2);
    assert_eq!(b.layers_fetched, 1, "the base layer is reused");
    assert_eq!(fx.store.layers().unwrap().len(), 3);
    fx.store.remove(&a.info.id).unwrap();
    let removed = fx.store.remove_unused_layers().unwrap();
    assert_eq!(removed.len(), 1, "only a's own layer goes");
    assert!(
        fx.store
            .layers()
            .unwrap()
            .iter()
            .any(|(d, _)| *d == Digest::of(&base))
    );
    assert!(fx.store.rootfs(&b.info.id).unwrap().join("base").exists());
}

/// Fetches the layers (stored as they are: they match their digests) and checks that their
/// first use refuses them as `hostile.rs` does for ACIs: the error names the problem on one
/// line, nothing outside changed, no half-made tree is left in the store, and asking again
/// gives the same refusal.
fn assert_refused(case: &str, layers: &[Vec<u8>], expect: &str) {
    let fx = Fixture::new();
    let outside = fx.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"keep me").unwrap();
    let good = import(&fx, &[AciBuilder::empty().file("good", b"g", 0o644).tar()]).unwrap();
    fx.store.rootfs(&good.info.id).unwrap();
    let outside_before = snapshot(&outside);
    let hostile = import(&fx, layers).unwrap();
    let store_before = snapshot(&fx.data());
    for attempt in 0..2 {
        let err = match fx.store.rootfs(&hostile.info.id) {
            Ok(p) => panic!("{case}: rendered into {}", p.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(expect),
            "{case} ({attempt}): error {err:?} does not mention {expect:?}"
        );
        assert!(!err.contains('\n'), "{case}: error is one line: {err:?}");
    }
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "{case}: outside changed"
    );
    let stray: Vec<_> = snapshot(fx.dir.path())
        .into_keys()
        .filter(|p| p.ends_with("pwned") && !p.starts_with("data"))
        .collect();
    assert!(
        stray.is_empty(),
        "{case}: written outside the store: {stray:?}"
    );
    let changed: Vec<_> = snapshot(&fx.data())
        .into_iter()
        .filter(|(p, d)| store_before.get(p) != Some(d) && !p.starts_with("cas/locks"))
        .collect();
    assert!(changed.is_empty(), "{case}: store changed: {changed:?}");
    assert!(
        !fx.store.rootfs_path(&hostile.info.id).exists(),
        "{case}: a tree was left"
    );
    // The good image is untouched and still renders.
    assert!(
        fx.store
            .rootfs(&good.info.id)
            .unwrap()
            .join("good")
            .exists()
    );
}

fn layer() -> AciBuilder {
    AciBuilder::empty()
        .dir("etc", 0o755)
        .file("etc/f", b"f", 0o644)
}

#[test]
fn hostile_layers_are_refused() {
    let up = "../".repeat(12);
    assert_refused(
        "dotdot",
        &[layer().file(&format!("{up}tmp/pwned"), b"x", 0o644).tar()],
        "'..'",
    );
    assert_refused(
        "absolute",
        &[layer().file("/tmp/pwned", b"x", 0o644).tar()],
        "absolute",
    );
    assert_refused(
        "hardlink-out",
        &[layer().hardlink("pwned", &format!("{up}etc/passwd")).tar()],
        "'..'",
    );
    assert_refused(
        "hardlink-absolute",
        &[layer().hardlink("pwned", "/etc/passwd").tar()],
        "absolute",
    );
    assert_refused(
        "whiteout-dotdot-name",
        &[
            layer().tar(),
            AciBuilder::empty().file("etc/.wh..", b"", 0o644).tar(),
        ],
        "whiteout must name an entry",
    );
    assert_refused(
        "whiteout-dotdot-path",
        &[
            layer().tar(),
            AciBuilder::empty()
                .file("etc/../../.wh.etc", b"", 0o644)
                .tar(),
        ],
        "'..'",
    );
    assert_refused(
        "whiteout-through-symlink",
        &[
            layer().symlink("lnk", "/etc").tar(),
            AciBuilder::empty().file("lnk/.wh.f", b"", 0o644).tar(),
        ],
        "whiteout may not go through a symlink",
    );
}

#[test]
fn symlinks_cannot_carry_writes_out_of_the_root() {
    // A symlink pointing far up is resolved inside the root: the write lands in the image or
    // fails, never outside.
    let fx = Fixture::new();
    let outside = fx.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let target = format!(
        "{}{}",
        "../".repeat(12),
        outside.display().to_string().trim_start_matches('/')
    );
    let outcome = import(
        &fx,
        &[
            layer().symlink("esc", &target).symlink("abs", "/").tar(),
            AciBuilder::empty()
                .file("esc/pwned", b"x", 0o644)
                .file("abs/pwned", b"x", 0o644)
                .tar(),
        ],
    )
    .unwrap();
    let result = fx.store.rootfs(&outcome.info.id);
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "written outside"
    );
    if let Ok(rootfs) = result {
        assert!(rootfs.join("pwned").exists());
    }
}

#[test]
fn tampered_blobs_are_refused() {
    let fx = Fixture::new();
    let dir = fx.dir.path().join("layout");
    let layer = layer().tar();
    write_layout(&dir, std::slice::from_ref(&layer));
    let mut bad = layer.clone();
    bad[600] ^= 1;
    fs::write(
        dir.join("blobs/sha256").join(Digest::of(&layer).hex()),
        &bad,
    )
    .unwrap();
    let before = snapshot(&fx.data());
    let err = layout_source(dir)
        .import(
            &fx.store,
            &rkt_image::oci::FetchOptions::new(HttpPolicy::default()).insecure(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match its digest"), "{err}");
    assert_eq!(
        snapshot(&fx.data())
            .into_iter()
            .filter(|(p, _)| !p.starts_with("cas/locks"))
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .filter(|(p, _)| !p.starts_with("cas/locks"))
            .collect::<Vec<_>>()
    );
    assert!(
        fx.store.layers().unwrap().is_empty(),
        "a bad layer is not kept"
    );
}

#[test]
fn a_stored_layer_damaged_on_disk_is_dropped_and_fetched_again() {
    let fx = Fixture::new();
    let base = AciBuilder::empty().file("base", b"base\n", 0o644).tar();
    let other = || {
        [
            base.clone(),
            AciBuilder::empty().file("b", b"b", 0o644).tar(),
        ]
    };
    import(&fx, std::slice::from_ref(&base)).unwrap();
    let b = import(&fx, &other()).unwrap();
    assert_eq!(b.layers_fetched, 1, "the base layer is shared");
    let stored = fx
        .data()
        .join("cas/layers")
        .join(Digest::of(&base).file_name());
    let mut bytes = fs::read(&stored).unwrap();
    bytes[600] ^= 1;
    fs::write(&stored, &bytes).unwrap();
    // The damage shows at first use: the layer is dropped, and no tree is made.
    let err = fx.store.rootfs(&b.info.id).unwrap_err().to_string();
    assert!(err.contains("is damaged"), "{err}");
    assert!(!stored.exists(), "the damaged layer is removed");
    assert!(!fx.store.rootfs_path(&b.info.id).exists());
    let err = fx.store.rootfs(&b.info.id).unwrap_err().to_string();
    assert!(
        err.contains("is missing") && err.contains("fetch the image again"),
        "{err}"
    );
    let err = fx.store.verify_blob(&b.info.id).unwrap_err().to_string();
    assert!(err.contains("is missing"), "image verify: {err}");
    // Fetching the stored image again brings back just the missing layer.
    let again = import(&fx, &other()).unwrap();
    assert!(!again.newly_stored);
    assert_eq!(again.layers_fetched, 1);
    assert_eq!(fs::read(&stored).unwrap(), base);
    let rootfs = fx.store.rootfs(&b.info.id).unwrap();
    assert_eq!(fs::read(rootfs.join("base")).unwrap(), b"base\n");
    assert_eq!(fs::read(rootfs.join("b")).unwrap(), b"b");
}

/// A layout carries no signature: refused by default with the store left as it was, admitted
/// by a root policy that accepts unsigned images (and recorded so), and not weakened by a
/// later `--insecure-options=image` import of the same image.
#[test]
fn unsigned_layouts_are_admitted_only_by_a_policy_or_insecure() {
    use rkt_image::oci::{FetchOptions, SignatureConfig, Verification};
    use rkt_image::trust::{KeyScope, Policy, Requirement, TrustStore};
    use rkt_store::TrustKind;

    let fx = Fixture::new();
    let dir = fx.dir.path().join("layout-unsigned");
    write_layout(&dir, &[AciBuilder::empty().file("f", b"x\n", 0o644).tar()]);
    let (local, system) = (fx.dir.path().join("etc-rkt"), fx.dir.path().join("lib-rkt"));
    let verified = || {
        let mut options = FetchOptions::new(HttpPolicy::default());
        options.verification = Verification::Verify(SignatureConfig::new(&local, &system));
        options
    };
    let before = snapshot(&fx.data());
    let err = layout_source(dir.clone())
        .import(&fx.store, &verified())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not signed") && err.contains("--insecure-options=image"),
        "{err}"
    );
    assert_eq!(snapshot(&fx.data()), before, "a refused image left files");

    TrustStore::new(&local, &system)
        .set_policy(
            &KeyScope::Root,
            &Policy {
                accept: vec![Requirement::InsecureAcceptAnything],
                identity: Default::default(),
            },
        )
        .unwrap();
    let id = layout_source(dir.clone())
        .import(&fx.store, &verified())
        .unwrap()
        .info
        .id;
    let decision = fx.store.trust_decision(&id).unwrap().unwrap();
    assert_eq!(decision.kind, TrustKind::Policy);
    assert_eq!(decision.summary(), "digest-only by policy root");

    layout_source(dir)
        .import(
            &fx.store,
            &FetchOptions::new(HttpPolicy::default()).insecure(),
        )
        .unwrap();
    let decision = fx.store.trust_decision(&id).unwrap().unwrap();
    assert_eq!(
        decision.kind,
        TrustKind::Policy,
        "weakened by an insecure fetch"
    );
}
