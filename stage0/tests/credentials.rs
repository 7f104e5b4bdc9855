//! `rkt fetch` with credentials from `--local-config`/auth.d, through the real binary: nginx
//! over HTTPS with `auth_basic` (an `auth` file, type basic) and Debian's docker-registry
//! with htpasswd auth (a `dockerAuth` file). Needs root, nginx, openssl, htpasswd,
//! docker-registry, skopeo and umoci; a test prints "skipped: <why>" when one is missing.

#[path = "../../tests/common/aci.rs"]
mod aci;
#[path = "../../tests/common/nginx.rs"]
mod nginx;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use aci::{AciBuilder, image_id};
use nginx::{Nginx, NginxConfig, TestCa, free_port, have};

macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => {
                println!("skipped: {why}");
                return;
            }
        }
    };
}

fn need(tools: &[&str]) -> Result<(), String> {
    match tools.iter().find(|t| !have(t)) {
        Some(t) => Err(format!("{t} is not installed (tests/run-all installs it)")),
        None => Ok(()),
    }
}

fn htpasswd(path: &Path, user: &str, password: &str) {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(path, out.stdout).unwrap();
}

struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// Writes `<local-config>/auth.d/NAME`, readable by its owner only.
    fn auth_file(&self, name: &str, json: &str) {
        let dir = self.path("etc-rkt/auth.d");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), json).unwrap();
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn rkt(&self, ca: Option<&Path>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkt"));
        cmd.arg("--dir")
            .arg(self.path("data"))
            .arg("--local-config")
            .arg(self.path("etc-rkt"))
            .arg("--system-config")
            .arg(self.path("usr-lib-rkt"))
            .args(args)
            .env_remove("RKT_DIR")
            .env_remove("SSL_CERT_DIR");
        if let Some(ca) = ca {
            cmd.env("SSL_CERT_FILE", ca);
        }
        cmd.output().unwrap()
    }

    /// exit 254, one line on stderr, nothing stored.
    fn fails(&self, ca: Option<&Path>, args: &[&str]) -> String {
        let out = self.rkt(ca, args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(254), "rkt {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        let images = fs::read_dir(self.path("data/cas/images"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(images, 0, "nothing stored");
        stderr
    }

    fn ok(&self, ca: Option<&Path>, args: &[&str]) -> String {
        let out = self.rkt(ca, args);
        assert!(
            out.status.success(),
            "rkt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn https_aci_behind_basic_auth_is_fetched_with_an_auth_file() {
    or_skip!(need(&["htpasswd"]));
    let world = World::new();
    let ca = or_skip!(TestCa::new(&world.path("ca"), &["localhost"]));
    let docroot = world.path("www");
    fs::create_dir_all(&docroot).unwrap();
    let aci =
        AciBuilder::valid("example.com/private").file("rootfs/secret", b"behind auth\n", 0o644);
    fs::write(docroot.join("app.aci"), aci.gzip()).unwrap();
    let users = world.path("htpasswd");
    htpasswd(&users, "bob", "ngx-pw");
    let server = or_skip!(Nginx::start(NginxConfig::new(&docroot).tls(&ca).extra(
        &format!(
            "auth_basic \"rkt\";\n        auth_basic_user_file {};",
            users.display()
        )
    )));
    let url = format!("{}/app.aci", server.base_url(true));
    let fetch = ["--insecure-options=image", "fetch", url.as_str()];

    let err = world.fails(Some(&ca.ca_cert), &fetch);
    assert!(err.contains("401") && err.contains("auth.d"), "{err}");

    let auth = |password: &str| {
        format!(
            r#"{{"rktKind":"auth","rktVersion":"v1","domains":["localhost"],"type":"basic","credentials":{{"user":"bob","password":"{password}"}}}}"#
        )
    };
    world.auth_file("web.json", &auth("wrong-pw"));
    let err = world.fails(Some(&ca.ca_cert), &fetch);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("wrong-pw"), "password printed: {err}");

    world.auth_file("web.json", &auth("ngx-pw"));
    let out = world.ok(Some(&ca.ca_cert), &fetch);
    assert_eq!(out.trim(), image_id(&aci.tar()));
}

/// An `auth` file of type oauth sends `Authorization: Bearer TOKEN` to its host: nginx over
/// HTTPS refuses any other header (and none).
#[test]
fn https_aci_behind_a_bearer_token_is_fetched_with_an_oauth_auth_file() {
    let world = World::new();
    let ca = or_skip!(TestCa::new(&world.path("ca"), &["localhost"]));
    let docroot = world.path("www");
    fs::create_dir_all(&docroot).unwrap();
    let aci =
        AciBuilder::valid("example.com/oauth").file("rootfs/secret", b"behind a token\n", 0o644);
    fs::write(docroot.join("app.aci"), aci.gzip()).unwrap();
    let server =
        or_skip!(Nginx::start(NginxConfig::new(&docroot).tls(&ca).extra(
            "if ($http_authorization != \"Bearer s3cr3t-t0ken\") { return 401; }"
        )));
    let url = format!("{}/app.aci", server.base_url(true));
    let fetch = ["--insecure-options=image", "fetch", url.as_str()];

    let err = world.fails(Some(&ca.ca_cert), &fetch);
    assert!(err.contains("401") && err.contains("auth.d"), "{err}");

    let auth = |token: &str| {
        format!(
            r#"{{"rktKind":"auth","rktVersion":"v1","domains":["localhost"],"type":"oauth","credentials":{{"token":"{token}"}}}}"#
        )
    };
    world.auth_file("web.json", &auth("stale-token"));
    let err = world.fails(Some(&ca.ca_cert), &fetch);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("stale-token"), "token printed: {err}");

    world.auth_file("web.json", &auth("s3cr3t-t0ken"));
    let out = world.ok(Some(&ca.ca_cert), &fetch);
    assert_eq!(out.trim(), image_id(&aci.tar()));
}

/// Debian's registry with htpasswd auth on 127.0.0.1; killed on drop.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn registry_with_htpasswd_needs_a_docker_auth_file() {
    or_skip!(need(&["htpasswd", "docker-registry", "skopeo", "umoci"]));
    let world = World::new();
    let users = world.path("htpasswd");
    htpasswd(&users, "carol", "reg-pw");
    let port = free_port().unwrap();
    let config = world.path("registry.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: rkt\n    path: {}\n",
            world.path("registry").display(),
            users.display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _registry = Registry(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        thread::sleep(Duration::from_millis(50));
    }

    // A one-layer image, pushed with the registry's credentials.
    let layout = world.path("layout");
    let image = format!("{}:t", layout.display());
    run("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    run("umoci", &["new", "--image", &image]);
    let files = world.path("files");
    fs::create_dir_all(&files).unwrap();
    fs::write(files.join("motd"), "from a private registry\n").unwrap();
    let tar = world.path("layer.tar");
    run(
        "tar",
        &[
            "-C",
            files.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    run(
        "umoci",
        &["raw", "add-layer", "--image", &image, tar.to_str().unwrap()],
    );
    let host = format!("127.0.0.1:{port}");
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "carol:reg-pw",
            &format!("oci:{image}"),
            &format!("docker://{host}/private/app:t"),
        ],
    );
    let url = format!("docker://{host}/private/app:t");
    let fetch = ["--insecure-options=http", "fetch", url.as_str()];

    let err = world.fails(None, &fetch);
    assert!(
        err.contains("no credentials") && err.contains("etc-rkt/auth.d") && err.contains(&host),
        "{err}"
    );

    let docker_auth = |password: &str| {
        format!(
            r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["{host}"],"credentials":{{"user":"carol","password":"{password}"}}}}"#
        )
    };
    world.auth_file("registry.json", &docker_auth("bad-pw"));
    let err = world.fails(None, &fetch);
    assert!(err.contains("refused") && err.contains("carol"), "{err}");
    assert!(!err.contains("bad-pw"), "password printed: {err}");

    world.auth_file("registry.json", &docker_auth("reg-pw"));
    let id = world.ok(None, &fetch);
    assert!(id.trim().starts_with("sha512-"), "{id}");
    let out = world.path("rendered");
    world.ok(None, &["image", "render", id.trim(), out.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(out.join("motd")).unwrap(),
        "from a private registry\n"
    );
}
