//! `rkt image verify`: every stored image re-hashed against its ID, one line each.

use rkt_test_support::aci;

use std::fs;
use std::process::{Command, Output};

use aci::{AciBuilder, image_id};

fn rkt(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rkt"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("RKT_DIR")
        .output()
        .unwrap()
}

#[test]
fn image_verify_reports_each_image_and_fails_on_a_damaged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let a = AciBuilder::valid("example.com/a");
    let b = AciBuilder::valid("example.com/b");
    let (a_id, b_id) = (image_id(&a.tar()), image_id(&b.tar()));
    for (name, aci) in [("a.aci", &a), ("b.aci", &b)] {
        let file = tmp.path().join(name);
        fs::write(&file, aci.gzip()).unwrap();
        let out = rkt(
            &dir,
            &["--insecure-options=image", "fetch", file.to_str().unwrap()],
        );
        assert!(out.status.success(), "{out:?}");
    }

    let out = rkt(&dir, &["image", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.lines().all(|l| l.starts_with("ok ")), "{stdout}");

    // Damage a's kept ACI: the same bytes as b's, so it decompresses fine but hashes wrong.
    fs::write(dir.join("cas/images").join(&a_id).join("blob"), b.gzip()).unwrap();
    let out = rkt(&dir, &["image", "verify"]);
    assert_eq!(out.status.code(), Some(254));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line_for = |id: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap()
            .to_owned()
    };
    assert!(line_for(&a_id).starts_with("FAILED"), "{stdout}");
    assert!(line_for(&b_id).starts_with("ok "), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("1 of 2 images failed verification"),
        "{stderr}"
    );

    // Naming images checks only those.
    let out = rkt(&dir, &["image", "verify", "example.com/b"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
}
