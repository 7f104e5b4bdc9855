//! Registry images in a real systemd: an image with zstd layers fetched from a registry that
//! wants a password, with the credentials from `--local-config`'s auth.d, then run.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{PodTest, check};
use crate::{Ctx, TestResult};

pub(crate) const TESTS: &[(&str, super::Test)] = &[(
    "a_zstd_image_from_a_password_protected_registry_runs",
    a_zstd_image_from_a_password_protected_registry_runs,
)];

/// Debian's docker-registry on the host's 127.0.0.1 (the sandbox shares the host network);
/// killed on drop.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn host(cmd: &str, args: &[&str]) -> TestResult {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    check(out.status.success(), || {
        format!(
            "{cmd} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The inspect-oci test image, pushed with its layers recompressed as zstd to a registry
/// with htpasswd auth, fetched with a dockerAuth file (none → refused with a way out), run:
/// its output and exit status as from the oci-archive.
fn a_zstd_image_from_a_password_protected_registry_runs(ctx: &Ctx) -> TestResult {
    for tool in ["docker-registry", "skopeo", "htpasswd"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            return crate::skip(&format!(
                "{tool} is not installed (tests/run-all installs it)"
            ));
        }
    }
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let users = work.path().join("htpasswd");
    let hashed = Command::new("htpasswd")
        .args(["-Bbn", "dave", "pod-pw"])
        .output()
        .map_err(|e| e.to_string())?;
    fs::write(&users, hashed.stdout).map_err(|e| e.to_string())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let config = work.path().join("registry.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: rkt\n    path: {}\n",
            work.path().join("data").display(),
            users.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let _registry = Registry(
        Command::new("docker-registry")
            .args(["serve", config.to_str().ok_or("path")?])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("docker-registry: {e}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        check(Instant::now() < deadline, || {
            "docker-registry did not start".to_owned()
        })?;
        thread::sleep(Duration::from_millis(50));
    }
    let host_port = format!("127.0.0.1:{port}");
    let layout = ctx.images.join("inspect-oci");
    host(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            "--dest-creds",
            "dave:pod-pw",
            "--dest-compress-format",
            "zstd",
            &format!("oci:{}", layout.display()),
            &format!("docker://{host_port}/private/inspect:zstd"),
        ],
    )?;

    let t = PodTest::new(ctx)?;
    let local_config = format!("{}/etc-rkt", t.dir);
    let image = format!("docker://{host_port}/private/inspect:zstd");
    // `rkt --dir DIR --local-config DIR/etc-rkt --insecure-options=image,http ARGS…`
    let rkt = |args: &[&str]| {
        let mut all = vec![
            t.rkt.as_str(),
            "--dir",
            &t.dir,
            "--local-config",
            &local_config,
            "--insecure-options=image,http",
        ];
        all.extend_from_slice(args);
        ctx.systemd.run(&all)
    };
    let refused = rkt(&["fetch", &image])?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    check(
        refused.status.code() == Some(254)
            && stderr.contains("no credentials")
            && stderr.contains(&format!("{local_config}/auth.d")),
        || format!("fetch without credentials: {} {stderr}", refused.status),
    )?;

    let auth = format!(
        r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["{host_port}"],"credentials":{{"user":"dave","password":"pod-pw"}}}}"#
    );
    ctx.systemd.ok(&[
        "sh",
        "-c",
        &format!(
            "mkdir -p {local_config}/auth.d && umask 077 && printf '%s' '{auth}' > {local_config}/auth.d/registry.json"
        ),
    ])?;
    let fetched = rkt(&["fetch", &image])?;
    check(fetched.status.success(), || {
        format!(
            "fetch with credentials: {} {}",
            fetched.status,
            String::from_utf8_lossy(&fetched.stderr)
        )
    })?;
    let id = String::from_utf8_lossy(&fetched.stdout).trim().to_owned();
    // The stored layers are the zstd blobs as fetched.
    let magics = ctx.systemd.ok(&[
        "sh",
        "-c",
        &format!(
            "for f in {}/cas/layers/*; do head -c 4 \"$f\" | od -An -tx1; done",
            t.dir
        ),
    ])?;
    check(
        magics.lines().count() == 2 && magics.lines().all(|l| l.trim() == "28 b5 2f fd"),
        || format!("stored layers should be 2 zstd blobs: {magics:?}"),
    )?;
    let manifest = t.ok(&["image", "cat-manifest", &id])?;
    check(manifest.contains("inspect"), || {
        format!("the fetched image's manifest: {manifest}")
    })?;
    let uuid_file = t.uuid_file();
    let out = rkt(&["run", "--uuid-file-save", &uuid_file, &image])?;
    let uuid = t.read_uuid().ok_or("no UUID saved")?;
    check(out.status.code() == Some(7), || {
        format!(
            "rkt run of the registry image exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    // The app is named after the repository's last component.
    let log = t.journal(&["-m", "-t", "inspect"]);
    check(
        log.contains("hello from an OCI image") && log.contains("from the second layer"),
        || format!("the app's output: {log:?}"),
    )?;
    t.gc_leaves_nothing(&uuid)
}
