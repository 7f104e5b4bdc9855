//! Every image is verified by default: registry images signed the two ways found in the wild
//! (simple signing in a lookaside store, sigstore attachments), each way a signature can be
//! wrong, and archives, which carry no signatures.
//!
//! Real tools on loopback: Debian's docker-registry (HTTPS, a throwaway CA), filled by skopeo;
//! simple signing by `skopeo copy --sign-by` with GnuPG keys made here, the lookaside store
//! served by nginx over HTTPS. Debian's skopeo refuses `--sign-by-sigstore-private-key`
//! ("sigstore disabled") and Debian has no cosign, so sigstore signatures are made as `cosign
//! sign --key` makes them by `tests/system/tools/sigstore-sign.py` (python3-cryptography) and
//! pushed with skopeo. Signatures no tool makes on purpose (for another digest, by an expired
//! key) are made with gpg and copied into the lookaside store, as an attacker or a stale
//! mirror would leave them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::check;
use crate::gpg::{DAY, Gpg, PAST};
use crate::nginx::{Nginx, NginxConfig, TestCa, free_port};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "registry_images_run_only_with_a_trusted_signature",
        registry_images_run_only_with_a_trusted_signature,
    ),
    (
        "unsigned_archives_need_a_policy_or_insecure_options",
        unsigned_archives_need_a_policy_or_insecure_options,
    ),
];

const TOOLS: &[&str] = &[
    "docker-registry",
    "skopeo",
    "umoci",
    "gpg",
    "nginx",
    "openssl",
];
const SIGNER: &str = "tests/system/tools/sigstore-sign.py";

fn missing_tool() -> Option<String> {
    for tool in TOOLS {
        if !crate::nginx::have(tool) {
            return Some(format!(
                "{tool} is not installed (tests/run-all installs it)"
            ));
        }
    }
    let crypto = Command::new("/usr/bin/python3")
        .args(["-c", "import cryptography"])
        .stderr(Stdio::null())
        .status();
    if !crypto.is_ok_and(|s| s.success()) {
        return Some("python3-cryptography is not installed (tests/run-all installs it)".into());
    }
    None
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    check(out.status.success(), || {
        format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    Ok(out)
}

/// Debian's docker-registry with TLS on a free loopback port; killed on drop.
struct Registry {
    child: std::process::Child,
    host: String,
    data: PathBuf,
}

impl Registry {
    fn start(dir: &Path, ca: &TestCa) -> Result<Registry, String> {
        let port = free_port()?;
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let data = dir.join("data");
        let config = dir.join("registry.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
                data.display(),
                ca.server_cert.display(),
                ca.server_key.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("docker-registry: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            check(Instant::now() < deadline, || {
                "docker-registry did not start".to_owned()
            })?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            data,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything one test sets up: a registry, the lookaside store behind nginx, GnuPG, and rkt
/// with its own store and config under the checkout's target directory (which the sandboxed
/// systemd sees too).
struct World<'a> {
    ctx: &'a Ctx,
    _work: tempfile::TempDir,
    dir: PathBuf,
    store: PathBuf,
    config: PathBuf,
    www: PathBuf,
    ca: TestCa,
    gpg: Gpg,
    /// skopeo's registries.d: where it writes simple signatures (the lookaside staging dir).
    skopeo_config: PathBuf,
}

impl<'a> World<'a> {
    fn new(ctx: &'a Ctx) -> Result<World<'a>, String> {
        let gpg = Gpg::new().ok_or("gpg is missing")?;
        let work = tempfile::Builder::new()
            .prefix("systest-sig-")
            .tempdir_in(ctx.checkout.join("target"))
            .map_err(|e| e.to_string())?;
        let dir = work.path().to_owned();
        let ca = TestCa::new(&dir.join("ca"), &["localhost"])?;
        let www = dir.join("www");
        let skopeo_config = dir.join("skopeo-registries.d");
        for d in [&www.join("sigs"), &skopeo_config] {
            fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        Ok(World {
            ctx,
            store: dir.join("store"),
            config: dir.join("etc-rkt"),
            _work: work,
            dir,
            www,
            ca,
            gpg,
            skopeo_config,
        })
    }

    /// `rkt --dir STORE --local-config CONFIG ARGS` on the host, with the test CA.
    fn rkt(&self, args: &[&str]) -> Result<Output, String> {
        Command::new(&self.ctx.rkt)
            .arg("--dir")
            .arg(&self.store)
            .arg("--local-config")
            .arg(&self.config)
            .arg("--system-config")
            .arg(self.dir.join("no-system-config"))
            .args(args)
            .env("SSL_CERT_FILE", &self.ca.ca_cert)
            .output()
            .map_err(|e| e.to_string())
    }

    fn ok(&self, args: &[&str]) -> Result<Output, String> {
        let out = self.rkt(args)?;
        check(out.status.success(), || {
            format!(
                "rkt {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
        Ok(out)
    }

    /// `rkt ARGS` in the booted systemd (which shares the host's network), with the test CA
    /// and no insecure option.
    fn in_systemd(&self, args: &[&str]) -> Result<Output, String> {
        let cert = format!("SSL_CERT_FILE={}", self.ca.ca_cert.display());
        let rkt = self.ctx.rkt.display().to_string();
        let (store, config) = (
            self.store.display().to_string(),
            self.config.display().to_string(),
        );
        let no_system = self.dir.join("no-system-config").display().to_string();
        let mut all = vec![
            "env",
            &cert,
            &rkt,
            "--dir",
            &store,
            "--local-config",
            &config,
            "--system-config",
            &no_system,
        ];
        all.extend_from_slice(args);
        self.ctx.systemd.run(&all)
    }

    /// `rkt run --net=none IMAGE` in the booted systemd.
    fn run_in_systemd(&self, image: &str) -> Result<Output, String> {
        self.in_systemd(&["run", "--net=none", image])
    }

    /// The images and layers in the store (nothing else changes on a refused fetch).
    fn stored(&self) -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["cas/images", "cas/layers"] {
            if let Ok(entries) = fs::read_dir(self.store.join(sub)) {
                names.extend(
                    entries
                        .filter_map(|e| e.ok())
                        .map(|e| format!("{sub}/{}", e.file_name().to_string_lossy())),
                );
            }
        }
        names.sort();
        names
    }

    /// Runs `rkt fetch` (or `rkt run`, which fails at the same step) and checks that it is
    /// refused with exit 254 and one line holding every one of `expect`, storing nothing.
    fn refused(&self, args: &[&str], expect: &[&str]) -> TestResult {
        let before = self.stored();
        // `rkt run` needs systemd; it is refused before it asks for anything.
        let out = if args.first() == Some(&"run") {
            self.in_systemd(args)?
        } else {
            self.rkt(args)?
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(254)
                && stderr.trim().lines().count() == 1
                && expect.iter().all(|e| stderr.contains(e)),
            || {
                format!(
                    "rkt {args:?} should be refused with one line naming {expect:?}: exit {:?}: {stderr}",
                    out.status.code()
                )
            },
        )?;
        check(self.stored() == before, || {
            format!("rkt {args:?} was refused but changed the store")
        })
    }

    /// `skopeo copy` of the test image (the inspect-oci layout) to `repo:tag` of the
    /// registry, with extra options (`--sign-by FPR`); returns its manifest's digest.
    fn push(&self, registry: &Registry, repo_tag: &str, extra: &[&str]) -> Result<String, String> {
        self.push_variant(registry, 0, repo_tag, extra)
    }

    /// [`World::push`] of a variant of the test image: 0 is the image itself, others differ
    /// by a config label (so by manifest digest), made with umoci.
    fn push_variant(
        &self,
        registry: &Registry,
        variant: u32,
        repo_tag: &str,
        extra: &[&str],
    ) -> Result<String, String> {
        let layout = self.dir.join("layout");
        if !layout.exists() {
            run(Command::new("cp")
                .arg("-a")
                .arg(self.ctx.images.join("inspect-oci"))
                .arg(&layout))?;
        }
        let tag = if variant == 0 {
            "latest".to_owned()
        } else {
            let tag = format!("variant{variant}");
            run(Command::new("umoci")
                .arg("config")
                .arg("--image")
                .arg(format!("{}:latest", layout.display()))
                .args(["--tag", &tag])
                .arg(format!("--config.label=rkt.test.variant={variant}")))?;
            tag
        };
        let dest = format!("docker://{}/{repo_tag}", registry.host);
        run(Command::new("skopeo")
            .env("GNUPGHOME", self.gpg.home())
            .arg("--registries.d")
            .arg(&self.skopeo_config)
            .args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"])
            .args(extra)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(&dest))?;
        self.digest(registry, repo_tag)
    }

    /// The digest of the manifest at `repo:tag`, as the registry serves it.
    fn digest(&self, registry: &Registry, repo_tag: &str) -> Result<String, String> {
        let out = run(Command::new("sh").args([
            "-c",
            &format!(
                "skopeo inspect --tls-verify=false --raw docker://{}/{repo_tag} | sha256sum",
                registry.host
            ),
        ]))?;
        let hex = String::from_utf8_lossy(&out.stdout);
        Ok(format!(
            "sha256:{}",
            hex.split_whitespace().next().unwrap_or("")
        ))
    }

    /// Where the lookaside store keeps signature `n` of `repo`'s manifest `digest`.
    fn lookaside_path(&self, repo: &str, digest: &str, n: u32) -> PathBuf {
        self.www
            .join("sigs")
            .join(format!("{repo}@{}/signature-{n}", digest.replace(':', "=")))
    }

    fn put_signature(&self, repo: &str, digest: &str, bytes: &[u8]) -> TestResult {
        let path = self.lookaside_path(repo, digest, 1);
        fs::create_dir_all(path.parent().ok_or("path")?).map_err(|e| e.to_string())?;
        fs::write(&path, bytes).map_err(|e| e.to_string())
    }

    /// A simple-signing signature made with gpg itself (`gpg --sign` of the claim, as gpgme
    /// does for skopeo), at `at` if given.
    fn gpg_simple_signature(
        &self,
        fpr: &str,
        reference: &str,
        digest: &str,
        at: Option<u64>,
    ) -> Result<Vec<u8>, String> {
        let claim = self.dir.join("claim.json");
        fs::write(
            &claim,
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"atomic container signature"}},"optional":{{"creator":"rkt test"}}}}"#
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.gpg.home())
            .args(["--batch", "--yes", "--quiet", "--no-tty"])
            .args(["--pinentry-mode", "loopback", "--passphrase", ""]);
        if let Some(at) = at {
            cmd.arg("--faked-system-time").arg(format!("{at}!"));
        }
        let out = run(cmd
            .args(["--local-user", fpr, "--sign", "--output", "-"])
            .arg(&claim))?;
        Ok(out.stdout)
    }

    fn key_file(&self, fpr: &str, name: &str) -> Result<String, String> {
        let path = self.dir.join(name);
        fs::write(&path, self.gpg.export(fpr)).map_err(|e| e.to_string())?;
        Ok(path.display().to_string())
    }

    fn image_list(&self) -> Result<serde_json::Value, String> {
        let out = self.ok(&["image", "list", "--format=json"])?;
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }
}

/// The trust decision `rkt image list --format=json` shows for the image with this source
/// reference (or, for archives, this name).
fn trust_of(list: &serde_json::Value, reference: &str) -> serde_json::Value {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|i| {
            i["trust"]["reference"].as_str() == Some(reference)
                || i["name"].as_str() == Some(reference)
        })
        .map(|i| i["trust"].clone())
        .unwrap_or_default()
}

fn registry_images_run_only_with_a_trusted_signature(ctx: &Ctx) -> TestResult {
    if let Some(why) = missing_tool() {
        return crate::skip(&why);
    }
    let w = World::new(ctx)?;
    let registry = Registry::start(&w.dir.join("registry"), &w.ca)?;
    let host = registry.host.clone();
    let nginx = Nginx::start(NginxConfig::new(&w.www).tls(&w.ca))?;
    // skopeo writes simple signatures into the lookaside store nginx serves; rkt reads them
    // over HTTPS, configured the same way.
    fs::write(
        w.skopeo_config.join("test.yaml"),
        format!(
            "docker:\n  {host}:\n    lookaside-staging: file://{}\n",
            w.www.join("sigs").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    fs::create_dir_all(w.config.join("registries.d")).map_err(|e| e.to_string())?;
    fs::write(
        w.config.join("registries.d/test.yaml"),
        format!(
            "docker:\n  {host}:\n    lookaside: https://127.0.0.1:{}/sigs\n",
            nginx.port()
        ),
    )
    .map_err(|e| e.to_string())?;

    let gpg = &w.gpg;
    let good = gpg.gen_key("Good Signer <good@example.test>", "ed25519", "never", None);
    let stranger = gpg.gen_key("Stranger <stranger@example.test>", "ed25519", "never", None);
    let revoked = gpg.gen_key(
        "Revoked Signer <revoked@example.test>",
        "ed25519",
        "never",
        None,
    );
    // Valid for a day, long ago: its signatures were good then, its key is expired now.
    let expired = gpg.gen_key(
        "Expired Signer <expired@example.test>",
        "ed25519",
        "1d",
        Some(PAST),
    );

    // The images.
    let app = "team/app";
    w.push(&registry, &format!("{app}:1.0"), &["--sign-by", &good])?;
    w.push(&registry, "team/stranger:1.0", &["--sign-by", &stranger])?;
    w.push(&registry, "team/unsigned:1.0", &[])?;
    w.push(&registry, "team/revoked:1.0", &["--sign-by", &revoked])?;
    w.push(
        &registry,
        "team/otherref:1.0",
        &[
            "--sign-by",
            &good,
            "--sign-identity",
            &format!("{host}/team/elsewhere:1.0"),
        ],
    )?;
    // Re-tagged: signed as one image, then another put under the same tag;
    // the first image's signature copied to where the second's would be.
    let first = w.push(&registry, "team/retag:1.0", &["--sign-by", &good])?;
    let second = w.push_variant(&registry, 1, "team/retag:1.0", &[])?;
    check(first != second, || {
        "the re-tagged image has the same digest".into()
    })?;
    let copied = fs::read(w.lookaside_path("team/retag", &first, 1)).map_err(|e| e.to_string())?;
    w.put_signature("team/retag", &second, &copied)?;
    // An expired key's signature, made while it was valid.
    let digest = w.push(&registry, "team/expired:1.0", &[])?;
    let sig = w.gpg_simple_signature(
        &expired,
        &format!("{host}/team/expired:1.0"),
        &digest,
        Some(PAST + DAY / 2),
    )?;
    w.put_signature("team/expired", &digest, &sig)?;
    // A malformed signature blob.
    let digest = w.push(&registry, "team/malformed:1.0", &[])?;
    w.put_signature("team/malformed", &digest, b"\xa3\x01garbage, not OpenPGP")?;
    // A tampered manifest: signed, then its bytes changed in the registry's storage.
    // (An image of its own, so that no other image shares the manifest blob changed.)
    let tampered = w.push_variant(&registry, 2, "team/tampered:1.0", &["--sign-by", &good])?;
    let hex = tampered.trim_start_matches("sha256:");
    let blob = registry.data.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = fs::read(&blob).map_err(|e| format!("{}: {e}", blob.display()))?;
    bytes.push(b'\n');
    fs::write(&blob, bytes).map_err(|e| e.to_string())?;
    // A sigstore signature, as `cosign sign --key` makes it.
    let cos = "team/cos";
    // Not team/app's image, so that it is one of its own in the store.
    let cos_digest = w.push_variant(&registry, 3, &format!("{cos}:1.0"), &[])?;
    check(
        ![&first, &second, &cos_digest].contains(&&tampered) && cos_digest != first,
        || "the test images should differ".into(),
    )?;
    let (cos_key, cos_pub) = (w.dir.join("cosign.key"), w.dir.join("cosign.pub"));
    let signer = ctx.checkout.join(SIGNER);
    run(Command::new(&signer)
        .arg("keygen")
        .arg(&cos_key)
        .arg(&cos_pub))?;
    let artifact = w.dir.join("cosign-sig");
    run(Command::new(&signer)
        .arg("sign")
        .arg(&cos_key)
        .arg(format!("{host}/{cos}:1.0"))
        .arg(&cos_digest)
        .arg(&artifact))?;
    run(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:sig", artifact.display()))
        .arg(format!(
            "docker://{host}/{cos}:{}.sig",
            cos_digest.replace(':', "-")
        )))?;

    let image = |repo: &str| format!("docker://{host}/{repo}:1.0");
    let prefix = format!("docker://{host}/team");

    // Before any key is trusted: refused, saying which key signed and what to run.
    w.refused(
        &["fetch", &image(app)],
        &[
            &good.to_ascii_lowercase(),
            &format!("rkt trust --prefix docker://{host}/team/app"),
        ],
    )?;
    w.refused(&["run", &image(app)], &["not trusted"])?;
    w.refused(
        &["fetch", &image(cos)],
        &[
            "sigstore",
            &format!("rkt trust --prefix docker://{host}/team/cos"),
        ],
    )?;
    w.refused(
        &["fetch", &image("team/unsigned")],
        &[
            "is not signed",
            &format!(
                "rkt trust --prefix docker://{host}/team/unsigned --policy=insecureAcceptAnything"
            ),
            "--insecure-options=image",
        ],
    )?;

    // Trust the keys for the prefix (from files, without the terminal review).
    let good_file = w.key_file(&good, "good.asc")?;
    let expired_file = w.key_file(&expired, "expired.asc")?;
    let revoked_file = w.key_file(&revoked, "revoked-before.asc")?;
    w.ok(&[
        "trust",
        "--prefix",
        &prefix,
        "--skip-fingerprint-review",
        &good_file,
        &expired_file,
        &revoked_file,
        cos_pub.to_str().ok_or("path")?,
    ])?;
    // The revoked key is revoked after its signature was made; the trust store learns of it.
    gpg.revoke(&revoked);
    let revoked_file = w.key_file(&revoked, "revoked.asc")?;
    w.ok(&[
        "trust",
        "--prefix",
        &prefix,
        "--skip-fingerprint-review",
        &revoked_file,
    ])?;

    let fetched = w.ok(&["fetch", &image(app)])?;
    let said = String::from_utf8_lossy(&fetched.stderr);
    check(
        said.contains("Good Signer <good@example.test>")
            && said.contains(&good.to_ascii_lowercase())
            && said.contains("simple-signing"),
        || format!("rkt fetch should say who signed the image: {said}"),
    )?;
    let fetched = w.ok(&["fetch", &image(cos)])?;
    let said = String::from_utf8_lossy(&fetched.stderr);
    check(
        said.contains("SHA256:") && said.contains("sigstore"),
        || format!("rkt fetch should say which sigstore key signed: {said}"),
    )?;

    // Each way a signature can be wrong: one line, exit 254, nothing stored.
    w.refused(&["fetch", &image("team/unsigned")], &["is not signed"])?;
    w.refused(
        &["fetch", &image("team/stranger")],
        &[&stranger.to_ascii_lowercase(), "not trusted"],
    )?;
    w.refused(
        &["fetch", &image("team/retag")],
        &["manifest digest", &first, &second, "another image"],
    )?;
    w.refused(
        &["fetch", &image("team/otherref")],
        &["reference", "team/elsewhere:1.0", "another image"],
    )?;
    w.refused(&["fetch", &image("team/tampered")], &[&tampered])?;
    w.refused(&["fetch", &image("team/expired")], &["expired"])?;
    w.refused(&["fetch", &image("team/revoked")], &["revoked"])?;
    w.refused(&["fetch", &image("team/malformed")], &["malformed"])?;

    // What the store says about the images it holds, and why.
    let list = w.image_list()?;
    let app_trust = trust_of(&list, &image(app));
    check(
        app_trust["kind"] == "signed"
            && app_trust["format"] == "simple-signing"
            && app_trust["key"] == good.to_ascii_lowercase().as_str(),
        || format!("image list for {app}: {list}"),
    )?;
    let cos_trust = trust_of(&list, &image(cos));
    check(
        cos_trust["kind"] == "signed" && cos_trust["format"] == "sigstore",
        || format!("image list for {cos}: {list}"),
    )?;
    let table = String::from_utf8_lossy(&w.ok(&["image", "list"])?.stdout).into_owned();
    check(
        table.contains("TRUSTED") && table.contains("signed by Good Signer"),
        || format!("rkt image list: {table}"),
    )?;

    // Offline: the registry and the lookaside store are gone; the stored signatures are
    // enough to use the images and to verify them again.
    drop(nginx);
    drop(registry);
    w.ok(&["fetch", "--pull-policy=never", &image(app)])?;
    let verified = String::from_utf8_lossy(&w.ok(&["image", "verify"])?.stdout).into_owned();
    check(verified.matches("signed by").count() == 2, || {
        format!("rkt image verify: {verified}")
    })?;
    // In systemd, no insecure option: both run (the test image exits 7).
    for repo in [app, cos] {
        let out = w.run_in_systemd(&image(repo))?;
        check(out.status.code() == Some(7), || {
            format!(
                "rkt run of the signed {repo} exited {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    }
    // A key no longer trusted no longer vouches for what it signed.
    w.ok(&["trust", "--remove", &good.to_ascii_lowercase()])?;
    let out = w.rkt(&["image", "verify"])?;
    let verified = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.code() == Some(254)
            && verified.contains("FAILED")
            && verified.contains("not trusted"),
        || format!("rkt image verify after the key was removed: {verified}"),
    )?;
    w.refused(
        &["fetch", "--pull-policy=never", &image(app)],
        &["not trusted"],
    )?;
    let _ = w.ctx.systemd.run(&[
        &ctx.rkt.display().to_string(),
        "--dir",
        &w.store.display().to_string(),
        "gc",
        "--grace-period=0s",
    ]);
    Ok(())
}

fn unsigned_archives_need_a_policy_or_insecure_options(ctx: &Ctx) -> TestResult {
    if let Some(why) = missing_tool() {
        return crate::skip(&why);
    }
    let w = World::new(ctx)?;
    let oci_archive = format!(
        "oci-archive:{}",
        ctx.images.join("inspect-oci.tar").display()
    );
    // A docker-archive naming the image it holds, as `docker save` writes it.
    let saved = w.dir.join("saved.tar");
    run(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q"])
        .arg(format!("oci:{}", ctx.images.join("inspect-oci").display()))
        .arg(format!(
            "docker-archive:{}:registry.example.test/team/app:2",
            saved.display()
        )))?;
    let docker_archive = format!("docker-archive:{}", saved.display());

    w.refused(
        &["fetch", &oci_archive],
        &["is not signed", "--insecure-options=image"],
    )?;
    w.refused(
        &["fetch", &docker_archive],
        &[
            "is not signed",
            "rkt trust --prefix docker://registry.example.test/team/app --policy=insecureAcceptAnything",
        ],
    )?;
    w.refused(&["run", &docker_archive], &["is not signed"])?;

    w.ok(&["--insecure-options=image", "fetch", &oci_archive])?;
    let list = w.image_list()?;
    check(trust_of(&list, &oci_archive)["kind"] == "insecure", || {
        format!("an image fetched with --insecure-options=image: {list}")
    })?;

    w.ok(&[
        "trust",
        "--prefix",
        "docker://registry.example.test/team",
        "--policy=insecureAcceptAnything",
    ])?;
    let fetched = w.ok(&["fetch", &docker_archive])?;
    let said = String::from_utf8_lossy(&fetched.stderr);
    check(
        said.contains("digest-only by policy docker://registry.example.test/team"),
        || format!("rkt fetch should name the policy: {said}"),
    )?;
    let list = w.image_list()?;
    let trust = trust_of(&list, &docker_archive);
    check(trust["kind"] == "policy", || format!("image list: {list}"))?;
    // The policy lets it run, in systemd, without an insecure option.
    let out = w.run_in_systemd(&docker_archive)?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run of the docker-archive exited {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let _ = w.ctx.systemd.run(&[
        &ctx.rkt.display().to_string(),
        "--dir",
        &w.store.display().to_string(),
        "gc",
        "--grace-period=0s",
    ]);
    Ok(())
}
