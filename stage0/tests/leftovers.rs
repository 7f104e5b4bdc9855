//! What failed or killed commands leave behind, and who cleans it up: a killed `rkt fetch`'s
//! partial download goes with the next `rkt gc` or `rkt image gc`; a `--uuid-file-save` that
//! cannot be written leaves no pod.

use rkt_test_support::aci;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use aci::AciBuilder;
use rkt_test_support::cli::Rkt;

fn new_rkt() -> Rkt {
    Rkt::new(env!("CARGO_BIN_EXE_rkt"))
}

/// Where a killed or refused command could leave something behind.
trait Leftovers {
    /// What is in the store's `cas/tmp/` (imports in progress, or left by killed ones).
    fn temps(&self) -> Vec<PathBuf>;
    /// Every pod directory, whatever its phase.
    fn pod_dirs(&self) -> Vec<PathBuf>;
}

impl Leftovers for Rkt {
    /// What is in the store's `cas/tmp/` (imports in progress, or left by killed ones).
    fn temps(&self) -> Vec<PathBuf> {
        match fs::read_dir(self.dir().join("cas/tmp")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Every pod directory, whatever its phase.
    fn pod_dirs(&self) -> Vec<PathBuf> {
        let Ok(phases) = fs::read_dir(self.dir().join("pods")) else {
            return Vec::new();
        };
        phases
            .flat_map(|phase| fs::read_dir(phase.unwrap().path()).unwrap())
            .map(|pod| pod.unwrap().path())
            .collect()
    }
}

/// Bytes below `dir`, files only.
fn size_below(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_below(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// A server on loopback that promises a big ACI, sends its first part and then stalls
/// (until the test ends), as a slow or hung mirror would: the fetch is then killed midway.
fn stalling_server() -> (String, thread::JoinHandle<()>) {
    // Incompressible, so that what was received shows as bytes on disk.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..2 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let bytes = AciBuilder::valid("example.com/big")
        .file("rootfs/noise", &noise, 0o644)
        .gzip();
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
        let _ = conn.write_all(&bytes[..bytes.len() / 2]);
        // Holds the connection open until the client is gone.
        let _ = conn.read(&mut request);
    });
    (format!("http://127.0.0.1:{port}/big.aci"), server)
}

/// Starts `rkt fetch` of a download that stalls halfway, waits (bounded) until its partial
/// download is in the store's `tmp/`, and returns the running fetch.
fn start_stalled_fetch(rkt: &Rkt) -> (std::process::Child, thread::JoinHandle<()>) {
    let (url, server) = stalling_server();
    let child = rkt
        .cmd(&["--insecure-options=image,http", "fetch", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while size_below(&rkt.dir().join("cas/tmp")) < 1 << 20 {
        assert!(
            Instant::now() < deadline,
            "the fetch wrote no partial download into cas/tmp"
        );
        thread::sleep(Duration::from_millis(20));
    }
    (child, server)
}

fn kill(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn gc_and_image_gc_remove_what_a_killed_fetch_left() {
    for gc in [&["gc"][..], &["image", "gc"][..]] {
        let rkt = new_rkt();
        let (fetch, server) = start_stalled_fetch(&rkt);
        // A fetch still going keeps its download.
        rkt.ok(gc);
        assert_eq!(
            rkt.temps().len(),
            1,
            "rkt {gc:?} took a live fetch's download"
        );
        kill(fetch);
        server.join().unwrap();
        // Commands that only read leave it (they clean nothing up).
        rkt.ok(&["image", "list"]);
        assert_eq!(rkt.temps().len(), 1, "the killed fetch left nothing");
        rkt.ok(gc);
        assert_eq!(
            rkt.temps(),
            Vec::<PathBuf>::new(),
            "rkt {gc:?} left the killed fetch's download"
        );
    }
}

#[test]
fn a_uuid_file_that_cannot_be_written_leaves_no_pod() {
    let rkt = new_rkt();
    let image = rkt.work().join("a.aci");
    fs::write(&image, AciBuilder::valid("example.com/app").gzip()).unwrap();
    let image = image.to_str().unwrap();
    let nowhere = rkt.work().join("no/such/dir/uuid");
    let out = rkt.run(&[
        "--insecure-options=image",
        "prepare",
        "--uuid-file-save",
        nowhere.to_str().unwrap(),
        image,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains("--uuid-file-save"), "{stderr}");
    assert_eq!(rkt.pod_dirs(), Vec::<PathBuf>::new(), "a pod was left");
    let images = rkt.ok(&["image", "list", "--format=json"]);
    assert_eq!(images.trim(), "[]", "the store changed: {images}");
    // A directory is no file to write the UUID to either; an existing file is kept as it was.
    let out = rkt.run(&[
        "--insecure-options=image",
        "prepare",
        "--uuid-file-save",
        rkt.work().to_str().unwrap(),
        image,
    ]);
    assert_eq!(out.status.code(), Some(254));
    assert_eq!(rkt.pod_dirs(), Vec::<PathBuf>::new(), "a pod was left");
    let existing = rkt.work().join("uuid");
    fs::write(&existing, "old\n").unwrap();
    let uuid = rkt.ok(&[
        "--insecure-options=image",
        "prepare",
        "--uuid-file-save",
        existing.to_str().unwrap(),
        image,
    ]);
    assert_eq!(fs::read_to_string(&existing).unwrap(), uuid);
    assert_eq!(rkt.pod_dirs().len(), 1);
}
