//! Registry fetches beyond the anonymous happy path: credentials from auth.d against Debian's
//! `docker-registry` with htpasswd auth, a server that stalls mid-blob, a layer whose blob
//! does not match its digest while others download in parallel, and zstd-compressed layers
//! made by the `zstd` tool.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rkt_image::auth::AuthConfig;
use rkt_image::http::HttpPolicy;
use rkt_image::oci::{Digest, FetchOptions, OciSource, Reference};
use rkt_store::Store;

use crate::registry::{Registry, build_image, run, tools};
use crate::support::snapshot;

fn options() -> FetchOptions {
    // These tests are about transfers, not trust (see tests/system/src/tests/signatures.rs).
    FetchOptions::new(HttpPolicy {
        allow_http: true,
        skip_tls_verify: false,
    })
    .insecure()
}

/// The store's files, without locks (taking a lock creates its file).
fn store_files(dir: &Path) -> Vec<std::path::PathBuf> {
    snapshot(dir)
        .into_keys()
        .filter(|p| !p.starts_with("cas/locks"))
        .collect()
}

/// An auth.d with one dockerAuth file for `registry`, mode 0600 as a user should make it.
fn auth_dir(root: &Path, registry: &str, user: &str, password: &str) -> AuthConfig {
    use std::os::unix::fs::PermissionsExt;
    let local = root.join("etc-rkt");
    fs::create_dir_all(local.join("auth.d")).unwrap();
    let file = local.join("auth.d/registry.json");
    fs::write(
        &file,
        format!(
            r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["{registry}"],"credentials":{{"user":"{user}","password":"{password}"}}}}"#
        ),
    )
    .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    AuthConfig::load(&local, &root.join("usr-lib-rkt")).unwrap()
}

#[test]
fn a_registry_with_htpasswd_auth_needs_the_credentials_from_auth_d() {
    let Some(()) = tools(&["docker-registry", "skopeo", "umoci", "tar", "htpasswd"]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let layout = build_image(work.path());
    let htpasswd = work.path().join("htpasswd");
    let out = std::process::Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret-pw"])
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(&htpasswd, &out.stdout).unwrap();
    let registry = Registry::start_with(
        work.path(),
        &format!(
            "auth:\n  htpasswd:\n    realm: rkt-test\n    path: {}\n",
            htpasswd.display()
        ),
    );
    let host = format!("127.0.0.1:{}", registry.port);
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:s3cret-pw",
            &format!("oci:{}:t", layout.display()),
            &format!("docker://{host}/private/app:t"),
        ],
    );
    let source = OciSource::Registry(Reference::parse(&format!("{host}/private/app:t")).unwrap());
    let store_dir = work.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let before = store_files(&store_dir);

    // No credentials: one line saying where to put them.
    let err = source.import(&store, &options()).unwrap_err().to_string();
    assert!(
        err.contains("no credentials") && err.contains("auth.d") && err.contains(&host),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err:?}");
    assert_eq!(store_files(&store_dir), before, "store unchanged");

    // Wrong password: refused, the password not shown, the store unchanged.
    let mut wrong = options();
    wrong.auth = auth_dir(&work.path().join("wrong"), &host, "alice", "not-it");
    let err = source.import(&store, &wrong).unwrap_err().to_string();
    assert!(
        err.contains("refused") && err.contains("alice") && err.contains("registry.json"),
        "{err}"
    );
    assert!(!err.contains("not-it"), "password printed: {err}");
    assert!(!err.contains('\n'), "one line: {err:?}");
    assert_eq!(store_files(&store_dir), before, "store unchanged");

    // The right ones: fetched.
    let mut right = options();
    right.auth = auth_dir(&work.path().join("right"), &host, "alice", "s3cret-pw");
    let outcome = source.import(&store, &right).unwrap();
    assert_eq!(outcome.layers_fetched, 3);
    let rootfs = store.rootfs(&outcome.info.id).unwrap();
    assert_eq!(
        fs::read_to_string(rootfs.join("hello")).unwrap(),
        "hello from layer 3\n"
    );
    // The progress counter saw every blob byte.
    assert_eq!(
        right
            .progress
            .received
            .load(std::sync::atomic::Ordering::Relaxed),
        right
            .progress
            .total
            .load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// What a fake registry does with one request.
enum Answer {
    Bytes(Vec<u8>),
    /// Sends these bytes, then nothing more, keeping the connection open.
    Stall(Vec<u8>),
}

/// A registry on 127.0.0.1 answering by path (and request head), one thread per connection (a stalled answer
/// must not hold up the others).
fn fake_registry(respond: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let respond = std::sync::Arc::new(respond);
    thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let respond = respond.clone();
            thread::spawn(move || {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                    // A TLS handshake (rkt tries https first): hang up like a plain server.
                    if request.first() == Some(&0x16) {
                        return;
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                match respond(&path, &text) {
                    Answer::Bytes(bytes) => {
                        let _ = stream.write_all(&bytes);
                    }
                    Answer::Stall(bytes) => {
                        let _ = stream.write_all(&bytes);
                        let _ = stream.flush();
                        // Long past any idle timeout the test sets; the test ends first.
                        thread::sleep(Duration::from_secs(120));
                    }
                }
            });
        }
    });
    port
}

fn http_200(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A tar with one file.
fn tar_with(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(&mut file_header(content.len()), name, content)
        .unwrap();
    builder.into_inner().unwrap()
}

fn file_header(size: usize) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// Manifest and config naming `layers` (plain tar media type; compression is detected).
fn image_documents(layers: &[(&[u8], &str)]) -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layers: Vec<String> = layers
        .iter()
        .map(|(blob, media_type)| {
            format!(
                r#"{{"mediaType":"{media_type}","digest":"{}","size":{}}}"#,
                Digest::of(blob),
                blob.len()
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        Digest::of(&config),
        config.len(),
        layers.join(",")
    );
    (manifest.into_bytes(), config)
}

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Where a fake registry goes quiet.
#[derive(Clone, Copy, Debug, PartialEq)]
enum StallAt {
    ManifestHeaders,
    ManifestBody,
    ConfigBody,
    LayerBody,
}

/// A server that stops sending, wherever it stops, fails the fetch within the idle timeout
/// with a message saying so (not ureq's bare "timeout"), and leaves the store as it was.
#[test]
fn a_server_that_stalls_fails_the_fetch_within_the_idle_timeout() {
    let blob = tar_with("big", &vec![7u8; 1 << 20]);
    let (manifest, config) = image_documents(&[(&blob, TAR)]);
    let blob_digest = Digest::of(&blob).to_string();
    let config_digest = Digest::of(&config).to_string();
    for stall in [
        StallAt::ManifestHeaders,
        StallAt::ManifestBody,
        StallAt::ConfigBody,
        StallAt::LayerBody,
    ] {
        let (manifest, config, blob) = (manifest.clone(), config.clone(), blob.clone());
        let (blob_digest, config_digest) = (blob_digest.clone(), config_digest.clone());
        let port = fake_registry(move |path, _| {
            // The headers and a third of the body, then silence.
            let partly = |full: Vec<u8>| Answer::Stall(full[..full.len() / 3].to_vec());
            let manifest = http_200("application/vnd.oci.image.manifest.v1+json", &manifest);
            let config = http_200("application/octet-stream", &config);
            let blob = http_200("application/octet-stream", &blob);
            if path.contains("/manifests/") {
                match stall {
                    StallAt::ManifestHeaders => Answer::Stall(Vec::new()),
                    StallAt::ManifestBody => partly(manifest),
                    _ => Answer::Bytes(manifest),
                }
            } else if path.ends_with(&config_digest) {
                match stall {
                    StallAt::ConfigBody => partly(config),
                    _ => Answer::Bytes(config),
                }
            } else if path.ends_with(&blob_digest) {
                partly(blob)
            } else {
                Answer::Bytes(http_200("application/json", b"{}"))
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = Store::open(&store_dir).unwrap();
        let before = store_files(&store_dir);
        let source =
            OciSource::Registry(Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap());
        let mut opts = options();
        opts.idle_timeout = Duration::from_secs(2);
        let started = Instant::now();
        let err = source.import(&store, &opts).unwrap_err().to_string();
        // Generous: the timeout is 2 s; only a hang would take this long.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{stall:?}: took {:?}",
            started.elapsed()
        );
        assert!(err.contains("stopped sending"), "{stall:?}: {err}");
        assert!(err.contains("try again later"), "{stall:?}: {err}");
        assert!(!err.contains('\n'), "{stall:?}: one line: {err:?}");
        assert_eq!(
            store_files(&store_dir),
            before,
            "{stall:?}: store unchanged"
        );
    }
}

#[test]
fn a_bad_blob_among_parallel_downloads_is_refused_and_nothing_is_kept() {
    let layers: Vec<Vec<u8>> = (0..5)
        .map(|i| tar_with(&format!("f{i}"), &vec![i as u8; 300_000]))
        .collect();
    let refs: Vec<(&[u8], &str)> = layers.iter().map(|l| (l.as_slice(), TAR)).collect();
    let (manifest, config) = image_documents(&refs);
    let digests: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let served = layers.clone();
    let port = fake_registry(move |path, _| {
        if path.contains("/manifests/") {
            return Answer::Bytes(http_200(
                "application/vnd.oci.image.manifest.v1+json",
                &manifest,
            ));
        }
        if let Some(i) = digests.iter().position(|d| path.ends_with(d.as_str())) {
            let mut blob = served[i].clone();
            if i == 3 {
                // Same size, one byte changed.
                blob[1000] ^= 1;
            }
            return Answer::Bytes(http_200("application/octet-stream", &blob));
        }
        if path.contains("/blobs/") {
            return Answer::Bytes(http_200("application/octet-stream", &config));
        }
        Answer::Bytes(http_200("application/json", b"{}"))
    });
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let before = store_files(&store_dir);
    let source = OciSource::Registry(Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap());
    let err = source.import(&store, &options()).unwrap_err().to_string();
    assert!(
        err.contains("does not match its digest")
            && err.contains(&Digest::of(&layers[3]).to_string()),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err:?}");
    assert_eq!(store_files(&store_dir), before, "store unchanged");
}

#[test]
fn zstd_layers_made_by_the_zstd_tool_are_applied() {
    let Some(()) = tools(&["zstd"]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let compress = |tar: &[u8]| -> Vec<u8> {
        let path = work.path().join("layer.tar");
        fs::write(&path, tar).unwrap();
        run("zstd", &["-q", "-f", "-3", path.to_str().unwrap()]);
        fs::read(work.path().join("layer.tar.zst")).unwrap()
    };
    // A big enough file for several zstd blocks, and a second layer replacing a file.
    let big: Vec<u8> = (0..2_000_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let l1 = compress(&tar_with("data/big", &big));
    let mut l2_tar = tar::Builder::new(Vec::new());
    for (name, content) in [("data/motd", &b"zstd\n"[..]), ("data/.wh.big", &b""[..])] {
        l2_tar
            .append_data(&mut file_header(content.len()), name, content)
            .unwrap();
    }
    let l1_keep = tar_with("data/keep", &big[..1000]);
    let l2 = compress(&l2_tar.into_inner().unwrap());
    let l3 = compress(&l1_keep);
    assert!(
        l1.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "zstd made a zstd frame"
    );
    const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    let (manifest, config) = image_documents(&[(&l1, ZSTD), (&l3, ZSTD), (&l2, ZSTD)]);

    // An OCI layout holding it.
    let layout = work.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    for blob in [&l1, &l2, &l3, &config, &manifest] {
        fs::write(blobs.join(Digest::of(blob).hex()), blob).unwrap();
    }
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"z"}}}}]}}"#,
            Digest::of(&manifest),
            manifest.len()
        ),
    )
    .unwrap();

    let store = Store::open(&work.path().join("store")).unwrap();
    let source = OciSource::parse(&format!("{}:z", layout.display()))
        .expect("an OCI layout")
        .unwrap();
    let outcome = source.import(&store, &options()).unwrap();
    let rootfs = store.rootfs(&outcome.info.id).unwrap();
    assert_eq!(
        fs::read_to_string(rootfs.join("data/motd")).unwrap(),
        "zstd\n"
    );
    assert_eq!(fs::read(rootfs.join("data/keep")).unwrap(), &big[..1000]);
    assert!(
        !rootfs.join("data/big").exists(),
        "whiteout in a zstd layer"
    );
    // Rendering again from the stored (zstd) layers gives the same tree.
    store.verify_blob(&outcome.info.id).unwrap();
    let again = work.path().join("again");
    store
        .extract(&outcome.info.id, &again, true, false)
        .unwrap();
    assert_eq!(snapshot(&again), snapshot(&rootfs));
}

/// The value of a request header (names are matched without case).
fn request_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A registry that wants bearer tokens from a token service that wants a password: rkt asks
/// the realm of the 401 challenge for a token with the auth.d credentials as Basic (scope
/// and service passed on), then sends only the token to the registry. Without credentials
/// the token service refuses and the error says to add them; with wrong ones, that they were
/// refused, without printing the password.
#[test]
fn a_bearer_token_is_requested_with_the_credentials_from_auth_d() {
    use base64::Engine as _;
    use std::sync::{Arc, Mutex, OnceLock};
    let blob = tar_with("hello", b"from behind a token\n");
    let (manifest, config) = image_documents(&[(&blob, TAR)]);
    let (blob_digest, config_digest) = (
        Digest::of(&blob).to_string(),
        Digest::of(&config).to_string(),
    );
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("dave:tok-pw")
    );
    let own_port = Arc::new(OnceLock::<u16>::new());
    let token_requests = Arc::new(Mutex::new(Vec::<(String, Option<String>)>::new()));
    let registry_auth = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let (port_seen, tokens_seen, auth_seen, wanted) = (
        own_port.clone(),
        token_requests.clone(),
        registry_auth.clone(),
        good.clone(),
    );
    let port = fake_registry(move |path, head| {
        let auth = request_header(head, "authorization").map(str::to_owned);
        if path.starts_with("/token") {
            tokens_seen
                .lock()
                .unwrap()
                .push((path.to_owned(), auth.clone()));
            return match auth.as_deref() == Some(wanted.as_str()) {
                true => Answer::Bytes(http_200("application/json", br#"{"token":"T0K3N"}"#)),
                false => Answer::Bytes(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec(),
                ),
            };
        }
        auth_seen.lock().unwrap().push(auth.clone());
        if auth.as_deref() != Some("Bearer T0K3N") {
            let port = port_seen.get().copied().unwrap_or(0);
            return Answer::Bytes(format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:private/app:pull\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ).into_bytes());
        }
        if path.contains("/manifests/") {
            Answer::Bytes(http_200(
                "application/vnd.oci.image.manifest.v1+json",
                &manifest,
            ))
        } else if path.ends_with(&config_digest) {
            Answer::Bytes(http_200("application/octet-stream", &config))
        } else if path.ends_with(&blob_digest) {
            Answer::Bytes(http_200("application/octet-stream", &blob))
        } else {
            Answer::Bytes(http_200("application/json", b"{}"))
        }
    });
    own_port.set(port).unwrap();
    let host = format!("127.0.0.1:{port}");
    let source = OciSource::Registry(Reference::parse(&format!("{host}/private/app:1")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let before = store_files(&store_dir);

    let err = source.import(&store, &options()).unwrap_err().to_string();
    assert!(err.contains("auth.d"), "no credentials: {err}");
    let mut opts = options();
    opts.auth = auth_dir(&dir.path().join("wrong"), &host, "dave", "bad-pw");
    let err = source.import(&store, &opts).unwrap_err().to_string();
    assert!(err.contains("refused") && err.contains("dave"), "{err}");
    assert!(!err.contains("bad-pw"), "password printed: {err}");
    assert_eq!(store_files(&store_dir), before, "store unchanged");

    opts.auth = auth_dir(&dir.path().join("right"), &host, "dave", "tok-pw");
    let outcome = source.import(&store, &opts).unwrap();
    let rootfs = store.rootfs(&outcome.info.id).unwrap();
    assert_eq!(
        fs::read_to_string(rootfs.join("hello")).unwrap(),
        "from behind a token\n"
    );
    let tokens = token_requests.lock().unwrap();
    let (path, auth) = tokens.last().unwrap();
    assert_eq!(auth.as_deref(), Some(good.as_str()));
    assert!(
        path.contains("service=fake") && path.contains("scope=repository%3Aprivate%2Fapp%3Apull"),
        "{path}"
    );
    // The registry itself never saw the password: only no header, or the token.
    for auth in registry_auth.lock().unwrap().iter().flatten() {
        assert_eq!(auth, "Bearer T0K3N");
    }
}
