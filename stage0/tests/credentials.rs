//! `rkt fetch` with credentials from `--local-config`/auth.d, through the real binary: nginx
//! over HTTPS with `auth_basic` (an `auth` file, type basic) and Debian's docker-registry
//! with htpasswd auth or with bearer-token auth (a `dockerAuth` file; nginx hands out the
//! registry's signed token). Needs root, nginx, openssl, htpasswd, docker-registry, skopeo and
//! umoci; a test prints "skipped: <why>" when one is missing.

use rkt_test_support::aci;
use rkt_test_support::nginx;

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

/// Starts Debian's registry on 127.0.0.1 with the `auth:` section `auth` (YAML, indented
/// two spaces) and waits until it listens; returns it and `127.0.0.1:PORT`.
fn start_registry(world: &World, auth: &str) -> (Registry, String) {
    let port = free_port().unwrap();
    let config = world.path("registry.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n{auth}",
            world.path("registry").display(),
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let registry = Registry(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        thread::sleep(Duration::from_millis(50));
    }
    (registry, format!("127.0.0.1:{port}"))
}

/// Builds a one-layer image holding `/motd` with umoci and pushes it to
/// `docker://HOST/private/app:t` with skopeo, as `user:password`.
fn push_private_image(world: &World, host: &str, creds: &str) {
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
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            &format!("oci:{image}"),
            &format!("docker://{host}/private/app:t"),
        ],
    );
}

/// The same checks for either kind of registry auth: no auth file says where to put one, a
/// wrong password is refused (and not printed), the right one fetches the image.
fn fetch_needs_credentials(world: &World, host: &str) {
    let url = format!("docker://{host}/private/app:t");
    let fetch = ["--insecure-options=http,image", "fetch", url.as_str()];

    let err = world.fails(None, &fetch);
    assert!(
        err.contains("no credentials") && err.contains("etc-rkt/auth.d") && err.contains(host),
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
        fs::read_to_string(out.join("rootfs/motd")).unwrap(),
        "from a private registry\n"
    );
}

#[test]
fn registry_with_htpasswd_needs_a_docker_auth_file() {
    or_skip!(need(&["htpasswd", "docker-registry", "skopeo", "umoci"]));
    let world = World::new();
    let users = world.path("htpasswd");
    htpasswd(&users, "carol", "reg-pw");
    let (_registry, host) = start_registry(
        &world,
        &format!(
            "  htpasswd:\n    realm: rkt\n    path: {}\n",
            users.display()
        ),
    );
    push_private_image(&world, &host, "carol:reg-pw");
    fetch_needs_credentials(&world, &host);
}

/// A JWT the registry's token auth accepts: RS256, signed by `key` with `cert` in `x5c`,
/// granting pull and push on `private/app` for an hour.
fn registry_token(dir: &Path, issuer: &str, service: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let key = dir.join("token-key.pem");
    let cert = dir.join("token-cert.pem");
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=rkt test token issuer",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    let der = Command::new("openssl")
        .args(["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"])
        .output()
        .unwrap()
        .stdout;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [STANDARD.encode(der)]});
    let claims = serde_json::json!({
        "iss": issuer, "sub": "carol", "aud": service, "jti": "rkt-test",
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "access": [{"type": "repository", "name": "private/app", "actions": ["pull", "push"]}],
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let input = dir.join("token-input");
    fs::write(&input, &signed).unwrap();
    let signature = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", key.to_str().unwrap()])
        .arg(&input)
        .output()
        .unwrap();
    assert!(signature.status.success());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.stdout))
}

/// Bearer-token auth end to end with real servers: Debian's registry with `auth: token`
/// checks a signed JWT, and nginx is its token service, handing that JWT out behind HTTP
/// Basic. rkt must get the token with the auth.d credentials and present it.
#[test]
fn registry_with_token_auth_gets_a_token_with_the_docker_auth_file() {
    or_skip!(need(&[
        "htpasswd",
        "docker-registry",
        "skopeo",
        "umoci",
        "openssl"
    ]));
    let world = World::new();
    let users = world.path("htpasswd");
    htpasswd(&users, "carol", "reg-pw");
    let docroot = world.path("token-www");
    fs::create_dir_all(&docroot).unwrap();
    let (issuer, service) = ("rkt-test-issuer", "rkt-test-registry");
    let token = registry_token(&world.path(""), issuer, service);
    fs::write(
        docroot.join("token"),
        serde_json::json!({"token": token, "expires_in": 3600}).to_string(),
    )
    .unwrap();
    let token_server = or_skip!(Nginx::start(NginxConfig::new(&docroot).extra(&format!(
        "location = /token {{ auth_basic \"rkt\"; auth_basic_user_file {}; default_type application/json; }}",
        users.display()
    ))));
    let (_registry, host) = start_registry(
        &world,
        &format!(
            "  token:\n    realm: {}/token\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
            token_server.base_url(false),
            world.path("token-cert.pem").display()
        ),
    );
    push_private_image(&world, &host, "carol:reg-pw");
    let pushes = token_server.requests_for("/token").len();
    assert!(pushes > 0, "skopeo took a token");

    fetch_needs_credentials(&world, &host);
    // rkt asked the token service for pull access to the repository, for the registry.
    let asked: Vec<String> = token_server.requests_for("/token")[pushes..].to_vec();
    assert!(
        asked.iter().any(|l| l.contains(" 200 ")
            && l.contains("scope=repository%3Aprivate%2Fapp%3Apull")
            && l.contains(&format!("service={service}"))),
        "{asked:?}"
    );
    assert!(asked.iter().any(|l| l.contains(" 401 ")), "{asked:?}");
}
