//! OCI images through real tools on loopback: an image built with `umoci` (several layers, a
//! whiteout, an opaque directory), pushed by `skopeo` to Debian's `docker-registry` on
//! 127.0.0.1, fetched back as `docker://`, `oci-archive:` and `docker-archive:`; and fake
//! registries that answer garbage or a manifest that is not what was asked for.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rkt_image::http::HttpPolicy;
use rkt_image::oci::{Digest, OciSource, Reference};
use rkt_store::{OciImportOutcome, Store};

use crate::support::snapshot;

const HTTP_OK: HttpPolicy = HttpPolicy {
    allow_http: true,
    skip_tls_verify: false,
};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `None` (after printing why) when a tool the test needs is missing.
pub(crate) fn tools(names: &[&str]) -> Option<()> {
    let missing: Vec<_> = names.iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        Some(())
    } else {
        println!("skipped: {missing:?} not installed (tests/run-all installs them)");
        None
    }
}

pub(crate) fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds an OCI layout at `dir` with `umoci`: tag `t` has three layers (files, a symlink, a
/// hard link and a setuid file; then a whiteout, an opaque directory and a replaced file; then
/// one more file).
pub(crate) fn build_image(work: &Path) -> PathBuf {
    let layout = work.join("layout");
    let image = format!("{}:t", layout.display());
    run("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    run("umoci", &["new", "--image", &image]);
    let layer = |name: &str, build: &dyn Fn(&Path)| {
        let dir = work.join(name);
        fs::create_dir_all(&dir).unwrap();
        build(&dir);
        let tar = work.join(format!("{name}.tar"));
        run(
            "tar",
            &[
                "-C",
                dir.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ],
        );
        run(
            "umoci",
            &["raw", "add-layer", "--image", &image, tar.to_str().unwrap()],
        );
    };
    layer("l1", &|d| {
        for sub in ["etc", "bin", "gone", "opq/sub"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::write(d.join("etc/motd"), "one\n").unwrap();
        fs::write(d.join("gone/f"), "f\n").unwrap();
        fs::write(d.join("opq/old"), "old\n").unwrap();
        fs::write(d.join("opq/sub/deep"), "deep\n").unwrap();
        fs::write(d.join("bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
        fs::set_permissions(d.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(d.join("bin/tool"), d.join("bin/tool2")).unwrap();
        std::os::unix::fs::symlink("tool", d.join("bin/t")).unwrap();
    });
    layer("l2", &|d| {
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::create_dir_all(d.join("opq")).unwrap();
        fs::write(d.join("etc/motd"), "two\n").unwrap();
        fs::write(d.join(".wh.gone"), "").unwrap();
        fs::write(d.join("opq/.wh..wh..opq"), "").unwrap();
        fs::write(d.join("opq/new"), "new\n").unwrap();
    });
    layer("l3", &|d| {
        fs::write(d.join("hello"), "hello from layer 3\n").unwrap();
    });
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.entrypoint",
            "/bin/tool",
            "--config.env",
            "X=1",
        ],
    );
    layout
}

/// Debian's registry on 127.0.0.1 with storage in `dir`; killed on drop.
pub(crate) struct Registry {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        Registry::start_with(dir, "")
    }

    /// With `extra` appended to its configuration (an `auth:` section, say).
    pub(crate) fn start_with(dir: &Path, extra: &str) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("registry.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let log = dir.join("registry.log");
        let child = Command::new("docker-registry")
            .args(["serve", config.to_str().unwrap()])
            .stdout(fs::File::create(log.with_extension("out")).unwrap())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let registry = Registry { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn push(&self, layout: &Path, tag: &str, repo_tag: &str) {
        run(
            "skopeo",
            &[
                "copy",
                "--dest-tls-verify=false",
                &format!("oci:{}:{tag}", layout.display()),
                &format!("docker://127.0.0.1:{}/{repo_tag}", self.port),
            ],
        );
    }

    /// How many times rkt asked for each blob.
    fn blob_gets(&self, repo: &str) -> BTreeMap<String, usize> {
        // The access log goes to stdout, the rest to stderr.
        let log = fs::read_to_string(&self.log).unwrap_or_default()
            + &fs::read_to_string(self.log.with_extension("out")).unwrap_or_default();
        let prefix = format!("\"GET /v2/{repo}/blobs/");
        let mut counts = BTreeMap::new();
        for line in log.lines().filter(|l| l.contains("\"rkt/")) {
            if let Some(rest) = line.split_once(&prefix).map(|(_, r)| r) {
                let digest = rest.split(' ').next().unwrap().to_owned();
                *counts.entry(digest).or_default() += 1;
            }
        }
        counts
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fetch(store: &Store, source: &str) -> OciImportOutcome {
    let source = OciSource::parse(source).expect("an OCI source").unwrap();
    source
        .import(
            store,
            &rkt_image::oci::FetchOptions::new(HTTP_OK).insecure(),
        )
        .unwrap_or_else(|e| panic!("fetching {source}: {e}"))
}

#[test]
fn registry_and_archives_give_the_same_tree() {
    let Some(()) = tools(&["docker-registry", "skopeo", "umoci", "tar"]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let layout = build_image(work.path());
    let registry = Registry::start(work.path());
    registry.push(&layout, "t", "test/app:t");

    // From the registry.
    let store = Store::open(&work.path().join("store-registry")).unwrap();
    let url = format!("docker://127.0.0.1:{}/test/app:t", registry.port);
    let first = fetch(&store, &url);
    assert!(first.newly_stored);
    assert_eq!(first.layers_fetched, 3);
    let rootfs = store.rootfs(&first.info.id).unwrap();
    let read = |p: &str| fs::read_to_string(rootfs.join(p)).unwrap();
    assert_eq!(read("etc/motd"), "two\n");
    assert_eq!(read("hello"), "hello from layer 3\n");
    assert_eq!(read("opq/new"), "new\n");
    assert!(!rootfs.join("gone").exists(), "whiteout applied");
    assert!(
        !rootfs.join("opq/old").exists() && !rootfs.join("opq/sub").exists(),
        "opaque dir"
    );
    let tool = fs::metadata(rootfs.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        tool.ino(),
        fs::metadata(rootfs.join("bin/tool2")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(rootfs.join("bin/t")).unwrap(),
        Path::new("tool")
    );
    let manifest = store.manifest(&first.info.id).unwrap();
    assert_eq!(
        manifest.name.as_str(),
        format!("127.0.0.1-{}/test/app", registry.port)
    );
    assert_eq!(manifest.label("version"), Some("t"));
    assert_eq!(manifest.app.as_ref().unwrap().exec, ["/bin/tool"]);

    // Fetching again downloads nothing: the image is known by its manifest.
    let deadline = Instant::now() + Duration::from_secs(5);
    while registry.blob_gets("test/app").len() < 4 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let gets_before = registry.blob_gets("test/app");
    assert_eq!(gets_before.len(), 4, "3 layers + config: {gets_before:?}");
    let again = fetch(&store, &url);
    assert_eq!(again.info.id, first.info.id);
    assert!(!again.newly_stored);
    assert_eq!(again.layers_fetched, 0);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        registry.blob_gets("test/app"),
        gets_before,
        "no blob fetched twice"
    );

    // An image sharing its lower layers fetches only its own layer.
    run(
        "umoci",
        &["tag", "--image", &format!("{}:t", layout.display()), "t2"],
    );
    let extra = work.path().join("l4");
    fs::create_dir_all(&extra).unwrap();
    fs::write(extra.join("extra"), "4\n").unwrap();
    run(
        "tar",
        &[
            "-C",
            extra.to_str().unwrap(),
            "-cf",
            work.path().join("l4.tar").to_str().unwrap(),
            ".",
        ],
    );
    run(
        "umoci",
        &[
            "raw",
            "add-layer",
            "--image",
            &format!("{}:t2", layout.display()),
            work.path().join("l4.tar").to_str().unwrap(),
        ],
    );
    registry.push(&layout, "t2", "test/app:t2");
    let second = fetch(
        &store,
        &format!("docker://127.0.0.1:{}/test/app:t2", registry.port),
    );
    assert!(second.newly_stored);
    assert_eq!(
        second.layers_fetched, 1,
        "the three shared layers are reused"
    );
    assert_eq!(store.layers().unwrap().len(), 4);
    thread::sleep(Duration::from_millis(200));
    let gets = registry.blob_gets("test/app");
    assert!(
        gets.values().all(|&n| n == 1),
        "a blob was fetched twice: {gets:?}"
    );

    // The same image from an oci-archive and a docker-archive renders the same tree.
    let oci_archive = work.path().join("image-oci.tar");
    let docker_archive = work.path().join("image-docker.tar");
    let src = format!("oci:{}:t", layout.display());
    run(
        "skopeo",
        &[
            "copy",
            &src,
            &format!("oci-archive:{}:t", oci_archive.display()),
        ],
    );
    run(
        "skopeo",
        &[
            "copy",
            &src,
            &format!("docker-archive:{}:test/app:t", docker_archive.display()),
        ],
    );
    let expected = snapshot(&rootfs);
    for (name, source) in [
        (
            "oci-archive",
            format!("oci-archive:{}", oci_archive.display()),
        ),
        (
            "docker-archive",
            format!("docker-archive:{}", docker_archive.display()),
        ),
        ("layout", format!("{}:t", layout.display())),
    ] {
        let other = Store::open(&work.path().join(format!("store-{name}"))).unwrap();
        let outcome = fetch(&other, &source);
        assert_eq!(
            snapshot(&other.rootfs(&outcome.info.id).unwrap()),
            expected,
            "{name} renders differently"
        );
        let tmp: Vec<_> = fs::read_dir(work.path().join(format!("store-{name}/cas/tmp")))
            .unwrap()
            .collect();
        assert!(tmp.is_empty(), "{name}: scratch files left in tmp/");
        if name != "docker-archive" {
            assert_eq!(
                outcome.info.id, first.info.id,
                "{name}: same manifest, same ID"
            );
        }
    }
}

/// A fake registry on 127.0.0.1 that answers every request with `respond(path)`.
fn fake_registry(respond: impl Fn(&str) -> Vec<u8> + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
                // A TLS handshake (rkt tries https first): hang up, as a plain-http server would.
                if request.first() == Some(&0x16) {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split(' ').nth(1).unwrap_or("").to_owned();
            let _ = stream.write_all(&respond(&path));
        }
    });
    port
}

fn http_200(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Fetches from the fake registry and checks the error and that the store did not change.
pub(crate) fn assert_fetch_refused(port: u16, reference: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let before = snapshot(&dir.path().join("data"));
    let reference = Reference::parse(&format!("127.0.0.1:{port}/{reference}")).unwrap();
    let err = OciSource::Registry(reference)
        .import(
            &store,
            &rkt_image::oci::FetchOptions::new(HTTP_OK).insecure(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(expect),
        "error {err:?} does not mention {expect:?}"
    );
    assert!(!err.contains('\n'), "one line: {err:?}");
    let after = snapshot(&dir.path().join("data"));
    let changed: Vec<_> = after
        .iter()
        .filter(|(p, d)| before.get(*p) != Some(*d) && !p.starts_with("cas/locks"))
        .collect();
    assert!(changed.is_empty(), "store changed: {changed:?}");
}

#[test]
fn a_registry_answering_garbage_is_a_clear_error() {
    let port = fake_registry(|_| http_200("Content-Type: text/html\r\n", b"<html>junk</html>"));
    assert_fetch_refused(port, "app:1", "not a JSON manifest or index");
    let port = fake_registry(|_| b"\x00\xffnot http at all\r\n\r\n".to_vec());
    assert_fetch_refused(port, "app:1", "registry 127.0.0.1:");
}

#[test]
fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
        Digest::of(config),
        config.len()
    );
    let other = Digest::of(b"some other manifest");
    let body = manifest.clone();
    let port = fake_registry(move |path| {
        if path.contains("/manifests/") {
            http_200(
                "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                body.as_bytes(),
            )
        } else if path.contains("/blobs/") {
            http_200("", config)
        } else {
            http_200("", b"{}")
        }
    });
    // Asked by digest, answered with something else.
    assert_fetch_refused(port, &format!("app@{other}"), "does not match its digest");
    // Asked by tag, with a Docker-Content-Digest header that disagrees with the body.
    let body = manifest.clone();
    let port = fake_registry(move |path| {
        if path.contains("/manifests/") {
            http_200(
                &format!(
                    "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {other}\r\n"
                ),
                body.as_bytes(),
            )
        } else {
            http_200("", b"{}")
        }
    });
    assert_fetch_refused(port, "app:1", "does not match its digest");
}
