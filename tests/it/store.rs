//! Importing valid ACIs: the image ID, what is kept of each entry, lookups, removal, export.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use rkt_store::StoreError;

use crate::aci::{AciBuilder, Kind, MTIME, image_id};
use crate::support::{Fixture, snapshot};

#[test]
fn image_id_is_the_sha512_of_the_decompressed_tar_for_every_compression() {
    let fx = Fixture::new();
    let aci = AciBuilder::valid("example.com/hello");
    let want = image_id(&aci.tar());
    for (name, bytes) in [
        ("plain.aci", aci.tar()),
        ("gz.aci", aci.gzip()),
        ("bz2.aci", aci.bzip2()),
        ("xz.aci", aci.xz()),
    ] {
        let outcome = fx.store.import_file(&fx.input(name, &bytes)).unwrap();
        assert_eq!(outcome.info.id.as_str(), want, "{name}");
        assert_eq!(outcome.newly_stored, name == "plain.aci", "{name}");
    }
    let images = fx.store.list().unwrap();
    assert_eq!(images.len(), 1, "one image, stored once");
    assert_eq!(images[0].record.name, "example.com/hello");
    assert_eq!(images[0].record.labels.get("version").unwrap(), "1.0");
    let hello = fx.store.rootfs_path(&images[0].id).join("hello");
    assert_eq!(fs::read(hello).unwrap(), b"hello\n");
    assert!(
        fs::read_dir(fx.data().join("cas/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn keeps_modes_owners_times_setuid_xattrs_links_and_devices() {
    let fx = Fixture::new();
    let aci = AciBuilder::empty()
        .dir("rootfs", 0o755)
        .dir("rootfs/etc", 0o750)
        .owner(0, 42)
        .mtime(MTIME + 7)
        .file("rootfs/etc/tool", b"#!/bin/sh\n", 0o4755)
        .owner(1000, 1000)
        .mtime(MTIME + 1)
        .xattr("user.origin", b"test")
        .symlink("rootfs/etc/link", "/etc/tool")
        .owner(1000, 1001)
        .hardlink("rootfs/etc/tool2", "rootfs/etc/tool")
        .entry("rootfs/null", Kind::CharDevice(1, 3), 0o666)
        .entry("rootfs/fifo", Kind::Fifo, 0o640)
        .file(
            "manifest",
            crate::aci::manifest_json("example.com/meta", "1").as_bytes(),
            0o644,
        );
    let id = fx
        .store
        .import_file(&fx.input("m.aci", &aci.gzip()))
        .unwrap()
        .info
        .id;
    let root = fx.store.rootfs_path(&id);

    let tool = fs::symlink_metadata(root.join("etc/tool")).unwrap();
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "setuid bit kept"
    );
    assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    assert_eq!(tool.mtime() as u64, MTIME + 1);
    let xattr = rustix::fs::getxattr(root.join("etc/tool"), "user.origin", &mut [0u8; 16]);
    assert_eq!(xattr.unwrap(), 4, "user.origin xattr restored");

    let tool2 = fs::symlink_metadata(root.join("etc/tool2")).unwrap();
    assert_eq!(tool2.ino(), tool.ino(), "hard link shares the inode");

    let link = fs::symlink_metadata(root.join("etc/link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        fs::read_link(root.join("etc/link")).unwrap().to_str(),
        Some("/etc/tool")
    );
    assert_eq!((link.uid(), link.gid()), (1000, 1001));

    let etc = fs::metadata(root.join("etc")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
    assert_eq!((etc.uid(), etc.gid()), (0, 42));
    assert_eq!(
        etc.mtime() as u64,
        MTIME + 7,
        "directory time set after its children"
    );

    let null = fs::symlink_metadata(root.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.permissions().mode() & 0o7777, 0o666);
    assert!(
        fs::symlink_metadata(root.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn resolves_by_id_prefix_and_by_name_and_version() {
    let fx = Fixture::new();
    let one = fx
        .store
        .import_file(&fx.input("1.aci", &AciBuilder::valid("example.com/a").gzip()))
        .unwrap();
    let aci2 = AciBuilder::valid("example.com/a").file("rootfs/other", b"x", 0o644);
    let two = fx
        .store
        .import_file(&fx.input("2.aci", &aci2.gzip()))
        .unwrap();
    let id = one.info.id.as_str();
    assert_eq!(fx.store.resolve(id).unwrap().id, one.info.id);
    assert_eq!(fx.store.resolve(&id[..20]).unwrap().id, one.info.id);
    assert!(matches!(
        fx.store.resolve("sha512-"),
        Err(StoreError::Ambiguous { count: 2, .. })
    ));
    assert!(
        matches!(
            fx.store.resolve("sha512-ffff0000"),
            Err(StoreError::NotFound(_))
        ) || id.starts_with("sha512-ffff0000")
    );
    let by_name = fx.store.resolve("example.com/a:1.0").unwrap();
    assert!(by_name.id == one.info.id || by_name.id == two.info.id);
    assert!(matches!(
        fx.store.resolve("example.com/a:2.0"),
        Err(StoreError::NotFound(_))
    ));
    let mut labels = BTreeMap::new();
    labels.insert("os".to_owned(), "linux".to_owned());
    assert!(
        fx.store
            .find_by_name("example.com/a", &labels)
            .unwrap()
            .is_some()
    );
}

#[test]
fn remove_deletes_the_image_and_all_its_files() {
    let fx = Fixture::new();
    let empty = snapshot(&fx.data());
    let id = fx
        .store
        .import_file(&fx.input("a.aci", &AciBuilder::valid("example.com/a").gzip()))
        .unwrap()
        .info
        .id;
    assert!(fx.store.rootfs_path(&id).join("hello").exists());
    fx.store.remove(&id).unwrap();
    assert!(fx.store.list().unwrap().is_empty());
    // The store-wide lock that removals take stays, as the store's other locks do.
    let after: Vec<_> = snapshot(&fx.data())
        .into_keys()
        .filter(|p| !empty.contains_key(p) && p != "cas/locks/image-users")
        .collect();
    assert!(after.is_empty(), "left behind: {after:?}");
    assert!(matches!(fx.store.remove(&id), Err(StoreError::NotFound(_))));
}

#[test]
fn export_gives_back_the_fetched_bytes_and_extract_the_same_tree() {
    let fx = Fixture::new();
    let bytes = AciBuilder::valid("example.com/a").xz();
    let id = fx
        .store
        .import_file(&fx.input("a.aci", &bytes))
        .unwrap()
        .info
        .id;
    let out = fx.dir.path().join("out.aci");
    fx.store.export(&id, &out, false).unwrap();
    assert_eq!(fs::read(&out).unwrap(), bytes);
    assert!(matches!(
        fx.store.export(&id, &out, false),
        Err(StoreError::DestinationExists(_))
    ));

    let dest = fx.dir.path().join("extracted");
    fx.store.extract(&id, &dest, false, false).unwrap();
    assert_eq!(
        snapshot(&dest.join("rootfs")),
        snapshot(&fx.store.rootfs_path(&id))
    );
    assert_eq!(
        fs::read(dest.join("manifest")).unwrap(),
        fx.store.manifest_bytes(&id).unwrap()
    );
    let rendered = fx.dir.path().join("rendered");
    fx.store.render(&id, &rendered, false).unwrap();
    assert_eq!(snapshot(&rendered), snapshot(&fx.store.rootfs_path(&id)));
}

#[test]
fn a_damaged_stored_image_is_detected_on_export_and_extract() {
    let fx = Fixture::new();
    let bytes = AciBuilder::valid("example.com/a").tar();
    let id = fx
        .store
        .import_file(&fx.input("a.aci", &bytes))
        .unwrap()
        .info
        .id;
    let blob = fx.data().join("cas/images").join(id.as_str()).join("blob");
    let mut damaged = fs::read(&blob).unwrap();
    let at = damaged.len() / 3;
    damaged[at] ^= 0x20;
    fs::write(&blob, damaged).unwrap();
    let err = fx
        .store
        .export(&id, &fx.dir.path().join("o.aci"), false)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Tampered { .. } | StoreError::Aci(_)),
        "{err}"
    );
    assert!(!fx.dir.path().join("o.aci").exists());
    assert!(
        fx.store
            .extract(&id, &fx.dir.path().join("x"), false, false)
            .is_err()
    );
    assert!(
        !fx.dir.path().join("x").exists(),
        "a failed extract leaves nothing"
    );
}

#[test]
fn concurrent_imports_of_one_image_both_succeed_and_store_it_once() {
    let fx = Fixture::new();
    let path = fx.input("a.aci", &AciBuilder::valid("example.com/a").gzip());
    let ids: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| fx.store.import_file(&path).map(|o| o.info.id)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(fx.store.list().unwrap().len(), 1);
    assert!(
        fs::read_dir(fx.data().join("cas/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn leftovers_of_a_killed_import_are_invisible_and_cleaned_up() {
    let fx = Fixture::new();
    // What an importer killed midway leaves: an unlocked directory in tmp/.
    let stale = fx.data().join("cas/tmp/12345-1-0");
    fs::create_dir_all(stale.join("rootfs/usr")).unwrap();
    fs::write(stale.join("manifest"), b"{}").unwrap();
    assert!(fx.store.list().unwrap().is_empty());
    fx.store
        .import_file(&fx.input("a.aci", &AciBuilder::valid("example.com/a").gzip()))
        .unwrap();
    assert!(!stale.exists(), "the next import removed the leftovers");
    assert_eq!(fx.store.list().unwrap().len(), 1);
}
