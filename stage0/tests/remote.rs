//! `rkt fetch` from real servers on loopback: nginx over HTTPS with a CA made in the test, appc
//! discovery by name (in a private network namespace, where nginx owns port 443 and test host
//! names resolve to 127.0.0.1), HTTP caching, and bad servers. Needs root, nginx and openssl;
//! a test prints "skipped: <why>" and returns when one is missing (CI installs them all).

use rkt_test_support::aci;
use rkt_test_support::gpg;
use rkt_test_support::nginx;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use aci::{AciBuilder, image_id};
use nginx::{Netns, Nginx, NginxConfig, TestCa};

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

/// The appc arch label of this host, as rkt's discovery fills `{arch}`.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// A valid ACI named `name` with version `version` for this host; its tar's image ID.
fn image(name: &str, version: &str) -> (Vec<u8>, String) {
    let manifest = format!(
        r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"{name}","labels":[{{"name":"version","value":"{version}"}},{{"name":"os","value":"linux"}},{{"name":"arch","value":"{}"}}],"app":{{"exec":["/bin/true"],"user":"0","group":"0"}}}}"#,
        host_arch()
    );
    let aci = AciBuilder::empty()
        .file("manifest", manifest.as_bytes(), 0o644)
        .dir("rootfs", 0o755)
        .file(
            "rootfs/hello",
            format!("{name} {version}\n").as_bytes(),
            0o644,
        );
    (aci.gzip(), image_id(&aci.tar()))
}

/// A test's temporary world: a store, a document root, a CA.
struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let world = World {
            tmp: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(world.docroot()).unwrap();
        world
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn docroot(&self) -> PathBuf {
        self.tmp.path().join("www")
    }

    /// Puts a file under the document root.
    fn serve(&self, path: &str, bytes: &[u8]) {
        let path = self.docroot().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn ca(&self, name: &str, hosts: &[&str]) -> Result<TestCa, String> {
        TestCa::new(&self.tmp.path().join(name), hosts)
    }

    /// `rkt --dir DATA ARGS` trusting only `ca` (through SSL_CERT_FILE), optionally inside a
    /// network namespace.
    fn rkt(&self, ca: &Path, netns: Option<&Netns>, args: &[&str]) -> Output {
        let bin = env!("CARGO_BIN_EXE_rkt");
        let mut cmd = match netns {
            Some(netns) => netns.command(bin),
            None => Command::new(bin),
        };
        // Its own trust store: the host's /etc/rkt must not decide a test.
        cmd.arg("--dir")
            .arg(self.dir())
            .arg("--local-config")
            .arg(self.tmp.path().join("etc-rkt"))
            .arg("--system-config")
            .arg(self.tmp.path().join("usr-lib-rkt"))
            .args(args)
            .env_remove("RKT_DIR")
            .env_remove("SSL_CERT_DIR")
            .env("SSL_CERT_FILE", ca);
        cmd.output().unwrap()
    }

    fn ok(&self, ca: &Path, netns: Option<&Netns>, args: &[&str]) -> String {
        let out = self.rkt(ca, netns, args);
        assert!(
            out.status.success(),
            "rkt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A failure as rkt reports its own: exit 254 and one line on stderr.
    fn fails(&self, ca: &Path, netns: Option<&Netns>, args: &[&str]) -> String {
        let out = self.rkt(ca, netns, args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(254), "rkt {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        stderr
    }

    /// What a user sees in the store: image IDs (`rkt image list` reads the same directory).
    fn stored_ids(&self) -> Vec<String> {
        let images = self.dir().join("cas/images");
        let mut ids: Vec<String> = fs::read_dir(images)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Left-over downloads or imports in the store's scratch space.
    fn temp_entries(&self) -> usize {
        fs::read_dir(self.dir().join("cas/tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

#[test]
fn https_fetch_stores_the_image_and_honours_http_caching() {
    let world = World::new();
    let ca = or_skip!(world.ca("ca", &["localhost"]));
    let (bytes, id) = image("example.com/app", "1.0");
    world.serve("app.aci", &bytes);
    let server = or_skip!(Nginx::start(
        NginxConfig::new(&world.docroot()).tls(&ca).max_age(3)
    ));
    let url = format!("{}/app.aci", server.base_url(true));

    // Without --insecure-options=image the signature is asked for, and nothing is stored.
    let err = world.fails(&ca.ca_cert, None, &["fetch", &url]);
    assert!(err.contains("--insecure-options=image"), "{err}");
    assert_eq!(server.requests_for("/app.aci.asc").len(), 1);
    assert!(world.stored_ids().is_empty());
    assert_eq!(world.temp_entries(), 0);

    let out = world.ok(
        &ca.ca_cert,
        None,
        &["--insecure-options=image", "fetch", &url],
    );
    assert_eq!(out.trim(), id);
    assert_eq!(world.stored_ids(), std::slice::from_ref(&id));
    let gets = server.requests_for("/app.aci").len();

    // Within max-age: the stored image, and no request at all.
    let out = world.ok(
        &ca.ca_cert,
        None,
        &["--insecure-options=image", "fetch", &url],
    );
    assert_eq!(out.trim(), id);
    assert_eq!(server.requests_for("/app.aci").len(), gets);

    // After max-age: a conditional request, answered 304, and still one image.
    let expired = Instant::now() + Duration::from_millis(3200);
    while Instant::now() < expired {
        thread::sleep(Duration::from_millis(100));
    }
    let out = world.ok(
        &ca.ca_cert,
        None,
        &["--insecure-options=image", "fetch", &url],
    );
    assert_eq!(out.trim(), id);
    let requests = server.requests_for("/app.aci");
    assert_eq!(requests.len(), gets + 1, "{requests:?}");
    assert!(requests.last().unwrap().contains(" 304 "), "{requests:?}");
    assert_eq!(world.stored_ids(), [id]);
}

#[test]
fn plain_http_needs_the_insecure_option() {
    let world = World::new();
    let ca = or_skip!(world.ca("ca", &["localhost"]));
    let (bytes, id) = image("example.com/app", "1.0");
    world.serve("app.aci", &bytes);
    let server = or_skip!(Nginx::start(NginxConfig::new(&world.docroot())));
    let url = format!("{}/app.aci", server.base_url(false));

    let err = world.fails(
        &ca.ca_cert,
        None,
        &["--insecure-options=image", "fetch", &url],
    );
    assert!(err.contains("--insecure-options=http"), "{err}");
    assert!(server.access_log().is_empty(), "{:?}", server.access_log());
    assert!(world.stored_ids().is_empty());

    let out = world.ok(
        &ca.ca_cert,
        None,
        &["--insecure-options=image,http", "fetch", &url],
    );
    assert_eq!(out.trim(), id);
}

#[test]
fn a_server_signed_by_an_unknown_ca_is_refused_with_a_way_out() {
    let world = World::new();
    let ca = or_skip!(world.ca("ca", &["localhost"]));
    let other = or_skip!(world.ca("other", &["localhost"]));
    let (bytes, id) = image("example.com/app", "1.0");
    world.serve("app.aci", &bytes);
    let server = or_skip!(Nginx::start(NginxConfig::new(&world.docroot()).tls(&ca)));
    let url = format!("{}/app.aci", server.base_url(true));

    let err = world.fails(
        &other.ca_cert,
        None,
        &["--insecure-options=image", "fetch", &url],
    );
    assert!(
        err.contains("not trusted")
            && err.contains("SSL_CERT_FILE")
            && err.contains("--insecure-options=tls"),
        "{err}"
    );
    assert!(world.stored_ids().is_empty());

    let out = world.ok(
        &other.ca_cert,
        None,
        &["--insecure-options=image,tls", "fetch", &url],
    );
    assert_eq!(out.trim(), id);
}

#[test]
fn a_truncated_download_is_an_error_and_stores_nothing() {
    let world = World::new();
    let ca = or_skip!(world.ca("ca", &["localhost"]));
    let (bytes, _) = image("example.com/app", "1.0");
    // A server that promises the whole ACI and closes the connection halfway.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&bytes[..bytes.len() / 2]).unwrap();
    });
    let url = format!("http://127.0.0.1:{port}/app.aci");
    let err = world.fails(
        &ca.ca_cert,
        None,
        &["--insecure-options=image,http", "fetch", &url],
    );
    server.join().unwrap();
    assert!(err.contains("cut short"), "{err}");
    assert!(world.stored_ids().is_empty());
    assert_eq!(world.temp_entries(), 0);
}

/// nginx inside a network namespace on port 443 for `example.test`, and the CA to trust.
struct Discovery {
    world: World,
    ca: TestCa,
    server: Nginx,
    netns: Netns,
}

impl Discovery {
    fn start(world: World) -> Result<Discovery, String> {
        let ca = world.ca("ca", &["example.test", "cdn.test"])?;
        let netns = Netns::new(&["example.test", "cdn.test"])?;
        let server = Nginx::start(NginxConfig::new(&world.docroot()).tls(&ca).netns(&netns))?;
        Ok(Discovery {
            world,
            ca,
            server,
            netns,
        })
    }

    fn ok(&self, args: &[&str]) -> String {
        self.world.ok(&self.ca.ca_cert, Some(&self.netns), args)
    }

    fn fails(&self, args: &[&str]) -> String {
        self.world.fails(&self.ca.ca_cert, Some(&self.netns), args)
    }
}

fn page(tags: &[(&str, &str)]) -> Vec<u8> {
    let mut html = String::from("<!DOCTYPE html>\n<html><head>\n");
    for (name, content) in tags {
        html.push_str(&format!("<meta name=\"{name}\" content=\"{content}\">\n"));
    }
    html.push_str("</head><body></body></html>\n");
    html.into_bytes()
}

#[test]
fn fetch_by_name_finds_the_image_through_discovery() {
    let world = World::new();
    // The page for example.test/app points at another host for the files (allowed).
    world.serve(
        "app/index.html",
        &page(&[
            (
                "ac-discovery",
                "example.test/app https://cdn.test/images/{name}-{version}-{os}-{arch}.{ext}",
            ),
            (
                "ac-discovery-pubkeys",
                "example.test https://example.test/keys.gpg",
            ),
            (
                "ac-discovery",
                "elsewhere.test https://cdn.test/evil/{name}.{ext}",
            ),
        ]),
    );
    let arch = host_arch();
    let (app, app_id) = image("example.test/app", "1.0");
    world.serve(
        &format!("images/example.test/app-1.0-linux-{arch}.aci"),
        &app,
    );
    let (sub, sub_id) = image("example.test/app/sub", "2.0");
    world.serve(
        &format!("images/example.test/app/sub-2.0-linux-{arch}.aci"),
        &sub,
    );
    let d = or_skip!(Discovery::start(world));

    let out = d.ok(&["--insecure-options=image", "fetch", "example.test/app:1.0"]);
    assert_eq!(out.trim(), app_id);
    assert_eq!(d.server.requests_for("/app").len(), 1);

    // Walk-up: nothing at /app/sub, so the page of its parent is used.
    let out = d.ok(&[
        "--insecure-options=image",
        "fetch",
        "example.test/app/sub:2.0",
    ]);
    assert_eq!(out.trim(), sub_id);
    let sub_page = d.server.requests_for("/app/sub");
    assert!(
        sub_page.len() == 1 && sub_page[0].contains(" 404 "),
        "{sub_page:?}"
    );
    assert_eq!(d.world.stored_ids().len(), 2);

    // Stored images are used without the network where the pull policy says so.
    let requests = d.server.access_log().len();
    let out = d.ok(&[
        "--insecure-options=image",
        "fetch",
        "--pull-policy=never",
        "example.test/app:1.0",
    ]);
    assert_eq!(out.trim(), app_id);
    // `prepare` (as `run`) defaults to --pull-policy=new: not even CA certificates are needed.
    let out = d.world.ok(
        Path::new("/nonexistent/ca.pem"),
        Some(&d.netns),
        &[
            "--insecure-options=image",
            "prepare",
            "example.test/app:1.0",
        ],
    );
    assert_eq!(out.trim().len(), 36, "a pod UUID: {out}");
    let err = d.fails(&[
        "--insecure-options=image",
        "fetch",
        "--pull-policy=never",
        "example.test/app:3.0",
    ]);
    assert!(err.contains("--pull-policy=never"), "{err}");
    assert_eq!(d.server.access_log().len(), requests);
}

#[test]
fn discovery_giving_another_image_is_refused_and_stores_nothing() {
    let world = World::new();
    world.serve(
        "app/index.html",
        &page(&[(
            "ac-discovery",
            "example.test https://example.test/images/{name}-{version}.{ext}",
        )]),
    );
    let (evil, _) = image("example.test/evil", "1.0");
    world.serve("images/example.test/app-1.0.aci", &evil);
    // A page whose only tag is for another name: ignored, as if there were none.
    world.serve(
        "lonely/index.html",
        &page(&[(
            "ac-discovery",
            "other.test/lonely https://example.test/images/{name}.{ext}",
        )]),
    );
    let d = or_skip!(Discovery::start(world));

    let err = d.fails(&["--insecure-options=image", "fetch", "example.test/app:1.0"]);
    assert!(
        err.contains("discovery for example.test/app:1.0 returned image named example.test/evil"),
        "{err}"
    );
    assert!(d.world.stored_ids().is_empty());
    assert_eq!(d.world.temp_entries(), 0);

    let err = d.fails(&["--insecure-options=image", "fetch", "example.test/lonely"]);
    assert!(
        err.contains("found no image for example.test/lonely"),
        "{err}"
    );
    assert!(
        d.server
            .requests_for("/images/other.test/lonely.aci")
            .is_empty()
    );
    assert!(d.world.stored_ids().is_empty());
}

#[test]
fn discovery_over_plain_http_only_with_the_insecure_option() {
    let world = World::new();
    world.serve(
        "app/index.html",
        &page(&[(
            "ac-discovery",
            "example.test http://example.test/images/{name}-{version}.{ext}",
        )]),
    );
    let (app, app_id) = image("example.test/app", "1.0");
    world.serve("images/example.test/app-1.0.aci", &app);
    let ca = or_skip!(world.ca("ca", &["example.test"]));
    let netns = or_skip!(Netns::new(&["example.test"]));
    let server = or_skip!(Nginx::start(
        NginxConfig::new(&world.docroot()).netns(&netns)
    ));

    let err = world.fails(
        &ca.ca_cert,
        Some(&netns),
        &["--insecure-options=image", "fetch", "example.test/app:1.0"],
    );
    assert!(
        err.contains("https://example.test/app?ac-discovery=1"),
        "{err}"
    );
    assert!(server.access_log().is_empty());
    assert!(world.stored_ids().is_empty());

    let out = world.ok(
        &ca.ca_cert,
        Some(&netns),
        &[
            "--insecure-options=image,http",
            "fetch",
            "example.test/app:1.0",
        ],
    );
    assert_eq!(out.trim(), app_id);
}

/// The appc trust flow end to end: a signed image found by name is refused until its key is
/// trusted; `rkt trust --prefix NAME` finds the key through discovery (ac-discovery-pubkeys),
/// and then the image is fetched and verified without any insecure option.
#[test]
fn a_signed_image_is_trusted_through_its_discovered_key() {
    let Some(gpg) = gpg::Gpg::new() else { return };
    let world = World::new();
    let fpr = gpg.gen_key(
        "Example Publisher <keys@example.test>",
        "ed25519",
        "never",
        None,
    );
    world.serve("keys.gpg", &gpg.export(&fpr));
    world.serve(
        "signed/index.html",
        &page(&[
            (
                "ac-discovery",
                "example.test/signed https://example.test/files/{name}-{version}.{ext}",
            ),
            (
                "ac-discovery-pubkeys",
                "example.test/signed https://example.test/keys.gpg",
            ),
        ]),
    );
    let (aci, id) = image("example.test/signed", "1.0");
    let signed = world.tmp.path().join("signed.aci");
    fs::write(&signed, &aci).unwrap();
    world.serve("files/example.test/signed-1.0.aci", &aci);
    world.serve(
        "files/example.test/signed-1.0.aci.asc",
        &gpg.sign_file(&fpr, &signed, None),
    );
    let d = or_skip!(Discovery::start(world));

    let err = d.fails(&["fetch", "example.test/signed:1.0"]);
    assert!(err.contains("rkt trust --prefix"), "{err}");
    assert!(d.world.stored_ids().is_empty());

    // A script must say it checked the fingerprint itself.
    let err = d.fails(&["trust", "--prefix", "example.test/signed"]);
    assert!(err.contains("--skip-fingerprint-review"), "{err}");
    let out = d.ok(&[
        "trust",
        "--prefix",
        "example.test/signed",
        "--skip-fingerprint-review",
    ]);
    assert!(
        out.to_ascii_lowercase().contains(&fpr.to_ascii_lowercase()),
        "{out}"
    );
    // The key came from where discovery pointed (fetched by each of the two trust commands).
    assert_eq!(d.server.requests_for("/keys.gpg").len(), 2);

    let out = d.ok(&["fetch", "example.test/signed:1.0"]);
    assert_eq!(out.trim(), id);
    assert_eq!(d.world.stored_ids(), vec![id]);
}
