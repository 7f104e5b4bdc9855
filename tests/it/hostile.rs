//! Hostile and broken ACIs: each is refused with an error naming the problem, nothing is
//! written outside the store's temporary area, and the store is left exactly as it was.

use std::fs;

use crate::aci::{AciBuilder, manifest_json};
use crate::support::{Fixture, snapshot};

/// Imports `bytes` and checks the refusal: the error mentions `expect`, the directory outside
/// the store is untouched, no `pwned` file appeared anywhere, and the store did not change.
fn assert_refused(case: &str, bytes: &[u8], expect: &str) {
    let fx = Fixture::new();
    let outside = fx.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"keep me").unwrap();
    // One good image, so that "unchanged" covers an existing image too.
    fx.store
        .import_file(&fx.input("good.aci", &AciBuilder::valid("example.com/good").gzip()))
        .unwrap();
    let store_before = snapshot(&fx.data());
    let outside_before = snapshot(&outside);

    let input = fx.input("hostile.aci", bytes);
    let err = match fx.store.import_file(&input) {
        Ok(o) => panic!("{case}: imported as {}", o.info.id),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(expect),
        "{case}: error {err:?} does not mention {expect:?}"
    );
    assert!(!err.contains('\n'), "{case}: error is one line: {err:?}");
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "{case}: outside changed"
    );
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"keep me");
    let stray: Vec<_> = snapshot(fx.dir.path())
        .into_keys()
        .filter(|p| p.ends_with("pwned") && !p.starts_with("data"))
        .collect();
    assert!(
        stray.is_empty(),
        "{case}: written outside the store: {stray:?}"
    );
    let store_after = snapshot(&fx.data());
    let changed: Vec<_> = store_after
        .iter()
        .filter(|(p, d)| store_before.get(*p) != Some(*d) && !p.starts_with("cas/locks"))
        .collect();
    assert!(changed.is_empty(), "{case}: store changed: {changed:?}");
    assert_eq!(fx.store.list().unwrap().len(), 1, "{case}");
}

fn base() -> AciBuilder {
    AciBuilder::empty()
        .file(
            "manifest",
            manifest_json("example.com/hostile", "1").as_bytes(),
            0o644,
        )
        .dir("rootfs", 0o755)
}

/// A path far enough up to leave any temporary directory, then down to `outside`.
fn up_to(outside: &str) -> String {
    format!("{}{}", "../".repeat(12), outside.trim_start_matches('/'))
}

#[test]
fn names_with_dotdot_are_refused() {
    let target = format!("rootfs/{}/pwned", up_to("tmp"));
    assert_refused("dotdot", &base().file(&target, b"x", 0o644).tar(), "'..'");
    assert_refused(
        "dotdot-middle",
        &base().file("rootfs/a/../../pwned", b"x", 0o644).gzip(),
        "'..'",
    );
}

#[test]
fn absolute_names_are_refused() {
    assert_refused(
        "absolute",
        &base().file("/tmp/pwned", b"x", 0o644).tar(),
        "absolute",
    );
    assert_refused(
        "absolute-rootfs",
        &base().file("/rootfs/pwned", b"x", 0o644).tar(),
        "absolute",
    );
}

#[test]
fn writing_through_symlinks_is_refused() {
    // The absolute target is the test's own `outside` dir in every case: resolve it lazily by
    // pointing at a path that exists on every machine and at the relative escape.
    for (case, target) in [
        ("symlink-absolute", "/tmp".to_owned()),
        ("symlink-relative", up_to("tmp")),
        ("symlink-root", "/".to_owned()),
    ] {
        let aci = base()
            .symlink("rootfs/escape", &target)
            .file("rootfs/escape/pwned", b"x", 0o644);
        assert_refused(case, &aci.tar(), "symlink");
        let aci = base()
            .symlink("rootfs/escape", &target)
            .dir("rootfs/escape/sub", 0o755);
        assert_refused(&format!("{case}-dir"), &aci.tar(), "symlink");
    }
}

#[test]
fn a_symlink_replaced_by_a_file_of_the_same_name_is_a_duplicate() {
    let aci = base()
        .symlink("rootfs/x", "/tmp/pwned")
        .file("rootfs/x", b"x", 0o644);
    assert_refused("symlink-then-file", &aci.tar(), "duplicate");
}

#[test]
fn hard_links_to_outside_are_refused() {
    assert_refused(
        "hardlink-absolute",
        &base().hardlink("rootfs/pwned", "/etc/passwd").tar(),
        "absolute",
    );
    assert_refused(
        "hardlink-dotdot",
        &base()
            .hardlink("rootfs/pwned", &format!("rootfs/{}", up_to("etc/passwd")))
            .tar(),
        "'..'",
    );
    assert_refused(
        "hardlink-through-symlink",
        &base()
            .symlink("rootfs/etc", "/etc")
            .hardlink("rootfs/pwned", "rootfs/etc/passwd")
            .tar(),
        "earlier entry",
    );
    assert_refused(
        "hardlink-outside-rootfs",
        &base().hardlink("rootfs/pwned", "manifest").tar(),
        "inside rootfs",
    );
}

#[test]
fn duplicates_and_extra_top_level_entries_are_refused() {
    let dup = base()
        .file("rootfs/a", b"1", 0o644)
        .file("rootfs/./a", b"2", 0o644);
    assert_refused("duplicate-file", &dup.tar(), "duplicate");
    let dup_manifest = base().file("manifest", b"{}", 0o644);
    assert_refused("duplicate-manifest", &dup_manifest.tar(), "duplicate");
    assert_refused(
        "extra-file",
        &base().file("README", b"x", 0o644).tar(),
        "only 'manifest'",
    );
    assert_refused(
        "extra-prefix",
        &base().file("rootfsextra/pwned", b"x", 0o644).tar(),
        "only 'manifest'",
    );
}

#[test]
fn broken_layouts_and_manifests_are_refused() {
    let no_manifest = AciBuilder::empty()
        .dir("rootfs", 0o755)
        .file("rootfs/a", b"1", 0o644);
    assert_refused("no-manifest", &no_manifest.tar(), "no 'manifest'");
    let no_rootfs = AciBuilder::empty().file(
        "manifest",
        manifest_json("example.com/x", "1").as_bytes(),
        0o644,
    );
    assert_refused("no-rootfs", &no_rootfs.tar(), "no 'rootfs'");
    let rootfs_file = AciBuilder::empty()
        .file(
            "manifest",
            manifest_json("example.com/x", "1").as_bytes(),
            0o644,
        )
        .file("rootfs", b"x", 0o644);
    assert_refused("rootfs-file", &rootfs_file.tar(), "must be a directory");
    let manifest_link = AciBuilder::empty()
        .symlink("manifest", "/etc/passwd")
        .dir("rootfs", 0o755);
    assert_refused("manifest-symlink", &manifest_link.tar(), "regular file");
    let bad_json = AciBuilder::empty()
        .file("manifest", b"{not json", 0o644)
        .dir("rootfs", 0o755);
    assert_refused("manifest-not-json", &bad_json.tar(), "manifest");
    let bad_name = AciBuilder::empty()
        .file(
            "manifest",
            manifest_json("Example.com/UPPER", "1").as_bytes(),
            0o644,
        )
        .dir("rootfs", 0o755);
    assert_refused("manifest-bad-name", &bad_name.tar(), "name");
}

#[test]
fn corrupt_truncated_and_foreign_data_is_refused() {
    let good = AciBuilder::valid("example.com/x").file("rootfs/big", &[7u8; 300_000], 0o644);
    let gz = good.gzip();
    assert_refused("gzip-truncated", &gz[..gz.len() / 2], "gzip");
    let mut corrupt = gz.clone();
    let at = corrupt.len() / 2;
    for b in &mut corrupt[at..at + 16] {
        *b ^= 0x55;
    }
    assert_refused("gzip-corrupt", &corrupt, "gzip");
    let tar = good.tar();
    assert_refused("tar-truncated", &tar[..tar.len() / 2 + 100], "truncated");
    let xz = good.xz();
    assert_refused("xz-truncated", &xz[..xz.len() - 40], "xz");
    assert_refused(
        "random",
        b"this is not an image at all, just text",
        "not an ACI",
    );
    assert_refused("empty", b"", "not an ACI");
}
