//! The `rkt` command as users run it: output, exit codes, one-line errors.

use rkt_test_support::aci;
use rkt_test_support::oci_layout;

use std::fs;
use std::path::Path;

use aci::{AciBuilder, image_id};
use rkt_test_support::cli::Rkt;

fn new_rkt() -> Rkt {
    Rkt::new(env!("CARGO_BIN_EXE_rkt"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn fetch_prints_the_id_list_shows_it_rm_removes_it() {
    let rkt = new_rkt();
    let aci = AciBuilder::valid("example.com/hello");
    let file = rkt.file("hello.aci", &aci.gzip());
    let out = rkt.ok(&["--insecure-options=image", "fetch", path(&file)]);
    assert_eq!(out.trim(), image_id(&aci.tar()));
    let id = out.trim().to_owned();

    let json: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["image", "list", "--format=json"])).unwrap();
    let image = &json[0];
    assert_eq!(image["id"], id.as_str());
    // The original rkt's ImageListEntry: name with its version, times in nanoseconds.
    assert_eq!(image["name"], "example.com/hello:1.0");
    assert_eq!(image["labels"]["version"], "1.0");
    assert!(image["size"].as_u64().unwrap() > 0);
    assert!(image["import_time"].as_i64().unwrap() > 1_000_000_000_000_000_000);
    assert!(image["last_used_time"].as_i64().is_some());

    let table = rkt.ok(&["image", "list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID"));
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id[..19]) && row.contains("example.com/hello:1.0"),
        "{row}"
    );

    // The original's --fields, and --full sizes in bytes.
    let fields = rkt.ok(&["image", "list", "--fields=name,size", "--full"]);
    let mut lines = fields.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SIZE"]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "example.com/hello:1.0");
    assert!(row[1].parse::<u64>().is_ok(), "{fields}");

    let manifest = rkt.ok(&["image", "cat-manifest", "example.com/hello:1.0"]);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["name"], "example.com/hello");

    let removed = rkt.ok(&["image", "rm", &id[..24]]);
    assert_eq!(removed.trim(), id);
    assert_eq!(rkt.image_count(), 0);
    assert!(!rkt.dir().join("cas/images").join(&id).exists());
    rkt.fails(&["image", "rm", &id]);
}

#[test]
fn image_list_sorts_as_asked() {
    let rkt = new_rkt();
    for name in ["example.com/b", "example.com/a", "example.com/c"] {
        let file = rkt.file("x.aci", &AciBuilder::valid(name).gzip());
        rkt.ok(&["--insecure-options=image", "fetch", path(&file)]);
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["image", "list", "--no-legend", "--fields=name"];
        all.extend_from_slice(args);
        rkt.ok(&all)
            .lines()
            .map(|l| l.trim_end_matches(":1.0").to_owned())
            .collect()
    };
    assert_eq!(
        names(&["--sort=name"]),
        ["example.com/a", "example.com/b", "example.com/c"]
    );
    assert_eq!(
        names(&["--sort=name", "--order=desc"]),
        ["example.com/c", "example.com/b", "example.com/a"]
    );
    rkt.fails(&["image", "list", "--sort=colour"]);
}

#[test]
fn unverified_images_are_refused_unless_the_user_opts_out() {
    let rkt = new_rkt();
    let file = rkt.file("a.aci", &AciBuilder::valid("example.com/a").gzip());
    let err = rkt.fails(&["fetch", path(&file)]);
    assert!(err.contains("--insecure-options=image"), "{err}");
    assert_eq!(rkt.image_count(), 0);
    let err = rkt.fails(&["--insecure-options=imgae", "fetch", path(&file)]);
    assert!(err.contains("imgae"), "{err}");
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_254() {
    let rkt = new_rkt();
    let err = rkt.fails(&["--insecure-options=image", "fetch", "/nonexistent.aci"]);
    assert!(err.contains("no such image file"), "{err}");
    let hostile = AciBuilder::valid("example.com/h").file("rootfs/../../pwned", b"x", 0o644);
    let file = rkt.file("h.aci", &hostile.gzip());
    let err = rkt.fails(&["--insecure-options=image", "fetch", path(&file)]);
    assert!(err.contains("'..'") && err.contains("h.aci"), "{err}");
    rkt.fails(&["image", "cat-manifest", "example.com/nothing"]);
    rkt.fails(&["image", "no-such-subcommand"]);
    assert_eq!(rkt.image_count(), 0);
}

#[test]
fn export_extract_and_render_write_what_was_fetched() {
    let rkt = new_rkt();
    let bytes = AciBuilder::valid("example.com/a").bzip2();
    let file = rkt.file("a.aci", &bytes);
    let id = rkt
        .ok(&["--insecure-options=image", "fetch", path(&file)])
        .trim()
        .to_owned();
    let out = rkt.work().join("out.aci");
    rkt.ok(&["image", "export", &id, path(&out)]);
    assert_eq!(fs::read(&out).unwrap(), bytes);
    rkt.fails(&["image", "export", &id, path(&out)]);
    rkt.ok(&["image", "export", "--overwrite", &id, path(&out)]);

    let ex = rkt.work().join("ex");
    rkt.ok(&["image", "extract", &id, path(&ex)]);
    assert_eq!(fs::read(ex.join("rootfs/hello")).unwrap(), b"hello\n");
    assert!(ex.join("manifest").is_file());
    let rootfs_only = rkt.work().join("ro");
    rkt.ok(&["image", "extract", "--rootfs-only", &id, path(&rootfs_only)]);
    assert!(rootfs_only.join("hello").is_file() && !rootfs_only.join("manifest").exists());
    let rendered = rkt.work().join("r");
    rkt.ok(&["image", "render", "example.com/a", path(&rendered)]);
    assert_eq!(fs::read(rendered.join("rootfs/hello")).unwrap(), b"hello\n");
    assert!(rendered.join("manifest").is_file());
    let rendered = rkt.work().join("r2");
    rkt.ok(&[
        "image",
        "render",
        "--rootfs-only",
        "example.com/a",
        path(&rendered),
    ]);
    assert_eq!(fs::read(rendered.join("hello")).unwrap(), b"hello\n");
    assert!(!rendered.join("manifest").exists());
}

#[test]
fn a_fetch_killed_midway_leaves_no_image_and_the_next_one_cleans_up() {
    let rkt = new_rkt();
    // Big enough that the import is still running when it is killed.
    let mut aci = AciBuilder::valid("example.com/big");
    for i in 0..64 {
        aci = aci.file(&format!("rootfs/f{i}"), &vec![i as u8; 1 << 20], 0o644);
    }
    let tar = aci.tar();
    let want = image_id(&tar);
    let file = rkt.file("big.aci", &tar);
    rkt.ok(&["image", "list"]);
    let mut child = rkt
        .cmd(&["--insecure-options=image", "fetch", path(&file)])
        .spawn()
        .unwrap();
    // Wait (bounded) until the import has started writing, then kill it.
    let tmp = rkt.dir().join("cas/tmp");
    for _ in 0..500 {
        if fs::read_dir(&tmp).unwrap().next().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        rkt.image_count(),
        0,
        "a killed fetch must not leave an image (status {status})"
    );
    let id = rkt.ok(&["--insecure-options=image", "fetch", path(&file)]);
    assert_eq!(id.trim(), want);
    assert!(
        fs::read_dir(&tmp).unwrap().next().is_none(),
        "leftovers were cleaned up"
    );
    assert_eq!(rkt.image_count(), 1);
}

#[test]
fn version_and_help_explain_themselves() {
    let rkt = new_rkt();
    let v = rkt.ok(&["version"]);
    assert!(
        v.contains("rkt Version:") && v.contains("appc Version: 0.8.11"),
        "{v}"
    );
    let help = rkt.ok(&["--help"]);
    for word in ["fetch", "image", "--dir", "--insecure-options", "254"] {
        assert!(help.contains(word), "help lacks {word}: {help}");
    }
}

#[test]
fn prepare_list_status_rm_and_gc_agree_with_the_disk() {
    let rkt = new_rkt();
    let file = rkt.file("a.aci", &AciBuilder::valid("example.com/app-one").gzip());
    let uuid_file = rkt.work().join("uuid");
    let err = rkt.fails(&["prepare", path(&file)]);
    assert!(err.contains("--insecure-options=image"), "{err}");
    let uuid = rkt.ok(&[
        "--insecure-options=image",
        "prepare",
        path(&file),
        "--uuid-file-save",
        path(&uuid_file),
    ]);
    let uuid = uuid.trim().to_owned();
    assert_eq!(fs::read_to_string(&uuid_file).unwrap().trim(), uuid);
    assert!(
        rkt.dir()
            .join("pods/prepared")
            .join(&uuid)
            .join("pod")
            .is_file()
    );

    let list = rkt.ok(&["list", "--no-legend"]);
    assert!(
        list.starts_with(&uuid[..8]) && list.contains("app-one") && list.contains("prepared"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["list", "--format=json"])).unwrap();
    assert_eq!(json[0]["name"], uuid.as_str());
    assert_eq!(json[0]["state"], "prepared");
    assert_eq!(json[0]["app_names"][0], "app-one");
    assert_eq!(json[0]["apps"][0]["name"], "app-one");
    assert_eq!(json[0]["apps"][0]["state"], "created");
    assert!(json[0]["created_at"].as_i64().is_some());
    let status = rkt.ok(&["status", &uuid[..8]]);
    assert!(status.contains("state=prepared"), "{status}");
    let manifest: serde_json::Value =
        serde_json::from_str(&rkt.ok(&["cat-manifest", "--uuid-file", path(&uuid_file)])).unwrap();
    assert_eq!(manifest["acKind"], "PodManifest");
    rkt.fails(&["status", "ffffffff-no-such-pod"]);

    // The prepared pod still needs its image.
    let err = rkt.fails(&["image", "rm", "example.com/app-one"]);
    assert!(err.contains("used by pod") && err.contains(&uuid), "{err}");

    // By name, from the store this time.
    let second = rkt
        .ok(&["prepare", "example.com/app-one:1.0"])
        .trim()
        .to_owned();
    assert_eq!(rkt.ok(&["rm", &second]).trim(), second);
    assert!(!rkt.dir().join("pods/prepared").join(&second).exists());

    assert_eq!(
        rkt.ok(&["gc", "--grace-period=0s"]),
        "",
        "a fresh prepared pod is kept"
    );
    let out = rkt.ok(&["gc", "--expire-prepared=0s", "--grace-period=0s"]);
    assert!(out.contains(&format!("removed {uuid}")), "{out}");
    assert_eq!(rkt.ok(&["list", "--no-legend"]), "");
    rkt.fails(&["gc", "--grace-period=soon"]);
    // With its pods gone, the image can go.
    rkt.ok(&["image", "rm", "example.com/app-one"]);
}

#[test]
fn run_without_systemd_says_so_and_makes_no_pod() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipped: this host runs systemd; the system tests cover rkt run here");
        return;
    }
    let rkt = new_rkt();
    let file = rkt.file("a.aci", &AciBuilder::valid("example.com/a").gzip());
    let err = rkt.fails(&["--insecure-options=image", "run", path(&file)]);
    assert!(err.contains("systemd"), "{err}");
    assert_eq!(rkt.ok(&["list", "--no-legend"]), "");
}

/// `--pull-policy=never` never asks a registry: an image not stored is an error that says so
/// (not a connection error: nothing listens on port 1).
#[test]
fn pull_policy_never_does_not_touch_a_registry() {
    let rkt = new_rkt();
    let err = rkt.fails(&[
        "--insecure-options=http",
        "fetch",
        "--pull-policy=never",
        "docker://127.0.0.1:1/nothing/here:1.0",
    ]);
    assert!(err.contains("--pull-policy=never"), "{err}");
    assert_eq!(rkt.image_count(), 0);
}

/// `--mds-register` with `--net=none` could never reach the service: refused, no pod made.
#[test]
fn mds_register_without_a_network_is_refused() {
    let rkt = new_rkt();
    let file = rkt.file("a.aci", &AciBuilder::valid("example.com/app-one").gzip());
    let err = rkt.fails(&[
        "--insecure-options=image",
        "prepare",
        "--net=none",
        "--mds-register",
        path(&file),
    ]);
    assert!(
        err.contains("--mds-register") && err.contains("--net=none"),
        "{err}"
    );
    let list = rkt.ok(&["list", "--no-legend"]);
    assert!(list.trim().is_empty(), "{list}");
}

/// An OCI image's layers are stored at fetch and unpacked at the image's first use: its tree
/// appears at `prepare`, and a hostile layer is refused then, with one line and exit 254, no
/// pod, nothing written outside and no tree left in the store.
#[test]
fn oci_images_are_unpacked_at_first_use_and_hostile_layers_refused_then() {
    let rkt = new_rkt();
    let app = AciBuilder::empty()
        .dir("bin", 0o755)
        .file("bin/app", b"#!/bin/sh\n", 0o755)
        .gzip();
    let good = oci_layout::write_layout(&rkt.work().join("good"), &[app]);
    let id = rkt
        .ok(&["--insecure-options=image", "fetch", path(&good)])
        .trim()
        .to_owned();
    let tree = rkt.dir().join("cas/images").join(&id).join("rootfs");
    assert!(!tree.exists(), "fetch stores layers only");
    let size = || {
        let list: serde_json::Value =
            serde_json::from_str(&rkt.ok(&["image", "list", "--format=json"])).unwrap();
        assert_eq!(list[0]["id"], id.as_str(), "{list}");
        list[0]["size"].as_u64().unwrap()
    };
    // Before its first use, the image's size is its stored layer's.
    let layers: Vec<_> = fs::read_dir(rkt.dir().join("cas/layers"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(layers.len(), 1);
    assert_eq!(size(), layers[0]);
    rkt.ok(&["prepare", "--net=none", &id]);
    assert!(tree.join("bin/app").is_file(), "prepare renders the tree");
    // Rendered, the tree's 10 bytes are added.
    assert_eq!(size(), layers[0] + 10);

    let outside = rkt.work().join("outside");
    fs::create_dir(&outside).unwrap();
    let up = "../".repeat(16);
    let hostile = AciBuilder::empty()
        .file(
            &format!("{up}{}/pwned", path(&outside).trim_start_matches('/')),
            b"x",
            0o644,
        )
        .tar();
    let bad = oci_layout::write_layout(&rkt.work().join("bad"), &[hostile]);
    let bad_id = rkt
        .ok(&["--insecure-options=image", "fetch", path(&bad)])
        .trim()
        .to_owned();
    let pods_before = rkt.ok(&["list", "--no-legend"]);
    let err = rkt.fails(&["prepare", "--net=none", &bad_id]);
    assert!(err.contains("'..'"), "{err}");
    assert_eq!(rkt.ok(&["list", "--no-legend"]), pods_before, "no pod made");
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "written outside"
    );
    assert!(
        !rkt.dir()
            .join("cas/images")
            .join(&bad_id)
            .join("rootfs")
            .exists(),
        "no tree left"
    );
    // Removing the image takes its layers' last user away: gc drops them.
    rkt.ok(&["image", "rm", &bad_id]);
    let out = rkt.ok(&["image", "gc", "--grace-period=0s"]);
    assert!(out.contains("layer"), "{out}");
}
