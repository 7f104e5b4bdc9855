//! `rkt trust` as users run it, with keys made by real GnuPG: the fingerprint review on a
//! terminal (through `script`, which gives rkt a pty), scripts, listing and removal.

use rkt_test_support::aci;
use rkt_test_support::gpg;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use gpg::Gpg;

struct Trust {
    tmp: tempfile::TempDir,
    gpg: Gpg,
}

impl Trust {
    fn new() -> Option<Trust> {
        Some(Trust {
            gpg: Gpg::new()?,
            tmp: tempfile::tempdir().unwrap(),
        })
    }

    fn local(&self) -> PathBuf {
        self.tmp.path().join("etc-rkt")
    }

    fn system(&self) -> PathBuf {
        self.tmp.path().join("usr-lib-rkt")
    }

    /// A new key, exported to `<name>.asc`; returns (lowercase fingerprint, key file).
    fn key(&self, name: &str) -> (String, PathBuf) {
        let fpr = self.gpg.gen_key(
            &format!("{name} <{name}@example.com>"),
            "ed25519",
            "never",
            None,
        );
        let file = self
            .gpg
            .export_to(&fpr, &self.tmp.path().join(format!("{name}.asc")));
        (fpr.to_ascii_lowercase(), file)
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--local-config".into(),
            self.local().display().to_string(),
            "--system-config".into(),
            self.system().display().to_string(),
        ]
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rkt"))
            .args(self.args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rkt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// rkt's own failure: exit 254, one line on stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(254), "rkt {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(stderr.starts_with("rkt: "), "{stderr:?}");
        stderr
    }

    /// Runs rkt on a terminal (a pty from `script`) and types `answer`; `None` without script.
    fn on_terminal(&self, args: &[&str], answer: &str) -> Option<(i32, String)> {
        if Command::new("script").arg("--version").output().is_err() {
            eprintln!("skipped: script (util-linux) is not installed");
            return None;
        }
        let mut words = vec![env!("CARGO_BIN_EXE_rkt").to_owned()];
        words.extend(self.args());
        words.extend(args.iter().map(|a| a.to_string()));
        let command_line = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("timeout")
            .args(["60", "script", "-qec", &command_line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Some((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    fn listed(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["trust", "--list", "--format=json"])).unwrap()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `06A7 A689 …`: how the review shows a fingerprint.
fn grouped(fpr: &str) -> String {
    let upper = fpr.to_ascii_uppercase();
    let groups: Vec<String> = upper
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    // As gpg and the original rkt print it: two spaces between the halves.
    let half = groups.len() / 2;
    format!("{}  {}", groups[..half].join(" "), groups[half..].join(" "))
}

#[test]
fn a_script_trusts_a_prefix_key_lists_it_and_removes_it() {
    let Some(t) = Trust::new() else { return };
    let (fpr, file) = t.key("alice");
    let out = t.ok(&[
        "trust",
        "--prefix",
        "example.com/app",
        "--skip-fingerprint-review",
        path(&file),
    ]);
    assert!(out.contains(&fpr), "{out}");
    let stored = t
        .local()
        .join("trustedkeys/prefix.d/example.com%2Fapp")
        .join(&fpr);
    assert!(stored.is_file(), "{out}");

    let listed = t.listed();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["fingerprint"], fpr.as_str());
    assert_eq!(listed[0]["scope"], "prefix");
    assert_eq!(listed[0]["prefix"], "example.com/app");
    assert_eq!(listed[0]["userIds"][0], "alice <alice@example.com>");
    assert_eq!(listed[0]["origin"], "local");
    let table = t.ok(&["trust", "--list"]);
    assert!(
        table.contains("example.com/app") && table.contains(&fpr),
        "{table}"
    );

    // gpg's spelling of the fingerprint works too.
    let out = t.ok(&["trust", "--remove", &grouped(&fpr)]);
    assert!(out.contains(path(&stored)), "{out}");
    assert!(!stored.exists());
    assert!(t.listed().is_empty());
    let err = t.fails(&["trust", "--remove", &fpr]);
    assert!(err.contains("no trusted key"), "{err}");
}

#[test]
fn without_a_terminal_the_review_flag_is_required() {
    let Some(t) = Trust::new() else { return };
    let (_, file) = t.key("bob");
    let err = t.fails(&["trust", "--root", path(&file)]);
    assert!(err.contains("--skip-fingerprint-review"), "{err}");
    assert!(!t.local().exists(), "nothing may be written");
    // As in the original rkt, --insecure-options=pubkey takes keys without review.
    let (fpr, _) = t.key("dave");
    let other = t.tmp.path().join("dave.asc");
    t.ok(&["--insecure-options=pubkey", "trust", "--root", path(&other)]);
    assert!(t.local().join("trustedkeys/root.d").join(&fpr).exists());
}

#[test]
fn on_a_terminal_the_fingerprint_is_shown_and_only_yes_trusts() {
    let Some(t) = Trust::new() else { return };
    let (fpr, file) = t.key("carol");
    let Some((code, screen)) = t.on_terminal(&["trust", "--root", path(&file)], "no") else {
        return;
    };
    assert_eq!(code, 254, "{screen}");
    assert!(
        screen.contains(&format!("GPG key fingerprint is: {}", grouped(&fpr))),
        "{screen}"
    );
    assert!(screen.contains("carol <carol@example.com>"), "{screen}");
    assert!(
        screen.contains("Are you sure you want to trust this key (yes/no)?"),
        "{screen}"
    );
    assert!(t.listed().is_empty(), "{screen}");
    // As in the original rkt, only "yes" or "no" answers; anything else asks again.
    let (code, screen) = t
        .on_terminal(&["trust", "--root", path(&file)], "y")
        .unwrap();
    assert_eq!(code, 254, "{screen}");
    assert!(screen.contains("Please enter 'yes' or 'no'"), "{screen}");
    assert!(t.listed().is_empty(), "{screen}");

    let (code, screen) = t
        .on_terminal(&["trust", "--root", path(&file)], "yes")
        .unwrap();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("after fingerprint review"), "{screen}");
    let listed = t.listed();
    assert_eq!(listed.len(), 1, "{screen}");
    assert_eq!(listed[0]["scope"], "root");
    assert_eq!(listed[0]["fingerprint"], fpr.as_str());
}

#[test]
fn bad_keys_and_prefixes_are_refused_with_one_line_and_nothing_written() {
    let Some(t) = Trust::new() else { return };
    let (fpr, good) = t.key("dave");
    let secret = t.tmp.path().join("secret.asc");
    fs::write(&secret, t.gpg.export_secret(&fpr)).unwrap();
    let err = t.fails(&[
        "trust",
        "--root",
        "--skip-fingerprint-review",
        path(&secret),
    ]);
    assert!(err.contains("secret key"), "{err}");

    let not_a_key = t.tmp.path().join("notes.txt");
    fs::write(&not_a_key, "hello").unwrap();
    // A bad file among good ones: none of them is trusted.
    let err = t.fails(&[
        "trust",
        "--root",
        "--skip-fingerprint-review",
        path(&good),
        path(&not_a_key),
    ]);
    assert!(err.contains("notes.txt"), "{err}");

    for prefix in ["../etc", "example.com/", "Example.com"] {
        let err = t.fails(&[
            "trust",
            "--prefix",
            prefix,
            "--skip-fingerprint-review",
            path(&good),
        ]);
        assert!(err.contains("prefix"), "{err}");
    }
    let err = t.fails(&["trust", path(&good)]);
    assert!(err.contains("--prefix") && err.contains("--root"), "{err}");
    assert!(!t.local().exists(), "nothing may be written");
}

#[test]
fn vendor_keys_are_listed_and_never_removed() {
    let Some(t) = Trust::new() else { return };
    let (fpr, file) = t.key("vendor");
    // A package's key, installed under the system config dir.
    let dir = t.system().join("trustedkeys/root.d");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(&file, dir.join(&fpr)).unwrap();

    let listed = t.listed();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["origin"], "system");
    let err = t.fails(&["trust", "--remove", &fpr]);
    assert!(err.contains("vendor key"), "{err}");
    assert!(dir.join(&fpr).is_file());
}

/// `rkt fetch` of a signed ACI: refused until its publisher's key is trusted for its name, then
/// stored; a file that does not match its signature is refused and the store stays as it was.
#[test]
fn fetch_verifies_signatures_against_trusted_keys() {
    let Some(t) = Trust::new() else { return };
    let store = t.tmp.path().join("store");
    let store = path(&store).to_owned();
    let signer = t
        .gpg
        .gen_key("signer <signer@example.com>", "ed25519", "never", None);
    let signer_key = t.gpg.export_to(&signer, &t.tmp.path().join("signer.asc"));
    let aci = t.tmp.path().join("app.aci");
    fs::write(&aci, aci::AciBuilder::valid("example.com/app").gzip()).unwrap();
    fs::write(
        t.tmp.path().join("app.aci.asc"),
        t.gpg.sign_file(&signer, &aci, None),
    )
    .unwrap();
    let images = |t: &Trust| {
        let list = t.ok(&["--dir", &store, "image", "list", "--format=json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&list)
            .unwrap()
            .len()
    };

    let err = t.fails(&["--dir", &store, "fetch", path(&aci)]);
    assert!(err.contains("rkt trust --prefix"), "{err}");
    assert_eq!(images(&t), 0);

    // A key trusted for another prefix does not vouch for example.com/app.
    t.ok(&[
        "trust",
        "--skip-fingerprint-review",
        "--prefix",
        "example.com/apple",
        path(&signer_key),
    ]);
    t.fails(&["--dir", &store, "fetch", path(&aci)]);
    assert_eq!(images(&t), 0);

    t.ok(&[
        "trust",
        "--skip-fingerprint-review",
        "--prefix",
        "example.com/app",
        path(&signer_key),
    ]);
    let out = t.run(&["--dir", &store, "fetch", path(&aci)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sha512-"));
    assert!(
        stderr.contains("verified") && stderr.contains("signer@example.com"),
        "{stderr}"
    );
    assert_eq!(images(&t), 1);

    // Same signature, other bytes: tampered.
    let tampered = t.tmp.path().join("tampered.aci");
    fs::write(
        &tampered,
        aci::AciBuilder::valid("example.com/app")
            .file("rootfs/evil", b"x", 0o755)
            .gzip(),
    )
    .unwrap();
    fs::copy(
        t.tmp.path().join("app.aci.asc"),
        t.tmp.path().join("tampered.aci.asc"),
    )
    .unwrap();
    let err = t.fails(&["--dir", &store, "fetch", path(&tampered)]);
    assert!(err.to_lowercase().contains("signature"), "{err}");
    assert_eq!(images(&t), 1);

    // No signature at all.
    let unsigned = t.tmp.path().join("unsigned.aci");
    fs::write(
        &unsigned,
        aci::AciBuilder::valid("example.com/app/sub").gzip(),
    )
    .unwrap();
    let err = t.fails(&["--dir", &store, "fetch", path(&unsigned)]);
    assert!(err.contains("no signature"), "{err}");
    assert_eq!(images(&t), 1);
}

/// A registry prefix takes OpenPGP and sigstore (PEM P-256) keys and a policy; `--list` shows
/// them all, `--remove SHA256:…` removes a sigstore key, `--policy=default` the policy.
#[test]
fn docker_prefixes_take_sigstore_keys_and_policies() {
    let Some(t) = Trust::new() else { return };
    let (fpr, file) = t.key("erin");
    let private = t.tmp.path().join("cosign.key");
    let public = t.tmp.path().join("cosign.pub");
    for args in [
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            path(&private),
        ],
        vec![
            "ec",
            "-in",
            path(&private),
            "-pubout",
            "-out",
            path(&public),
        ],
    ] {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}");
    }
    let prefix = "docker://registry.example.test:5000/team";
    t.ok(&[
        "trust",
        "--prefix",
        prefix,
        "--skip-fingerprint-review",
        path(&file),
        path(&public),
    ]);
    t.ok(&[
        "trust",
        "--prefix",
        prefix,
        "--policy=sigstoreSigned,signedBy",
        "--match-repository",
    ]);
    let dir = t
        .local()
        .join("trustedkeys/prefix.d/docker:%2F%2Fregistry.example.test:5000%2Fteam");
    assert!(dir.join(&fpr).is_file() && dir.join("policy.json").is_file());
    let listed = t.listed();
    let kinds: Vec<&str> = listed.iter().map(|k| k["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["openpgp", "sigstore", "policy"], "{listed:?}");
    assert!(listed.iter().all(|k| k["prefix"] == prefix));
    let sigstore = listed[1]["fingerprint"].as_str().unwrap().to_owned();
    assert!(
        sigstore.starts_with("SHA256:") && sigstore.len() == 71,
        "{sigstore}"
    );
    assert_eq!(listed[2]["policy"]["accept"][0], "sigstoreSigned");
    assert_eq!(listed[2]["policy"]["identity"], "matchRepository");
    let table = t.ok(&["trust", "--list"]);
    assert!(
        table.contains(&sigstore) && table.contains("sigstoreSigned,signedBy (matchRepository)"),
        "{table}"
    );

    t.ok(&["trust", "--remove", &sigstore]);
    t.ok(&["trust", "--prefix", prefix, "--policy=default"]);
    let listed = t.listed();
    assert_eq!(listed.len(), 1, "{listed:?}");

    // Bad policies and prefixes: one line, nothing written.
    let err = t.fails(&["trust", "--prefix", prefix, "--policy=signedByAnyone"]);
    assert!(err.contains("signedByAnyone"), "{err}");
    let err = t.fails(&[
        "trust",
        "--prefix",
        "docker://registry.example.test/team:tag",
        "--policy=signedBy",
    ]);
    assert!(err.contains("docker://HOST"), "{err}");
}
