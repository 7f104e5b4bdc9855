//! Hostile and careless input to the `rkt` command: every refusal is one line on stderr, exit
//! status 254, and the store and pods under --dir exactly as they were.

use rkt_test_support::aci;
use rkt_test_support::oci_layout;

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Output};

use aci::{AciBuilder, manifest_json};
use rkt_test_support::cli::Rkt;

fn new_rkt() -> Rkt {
    Rkt::new(env!("CARGO_BIN_EXE_rkt"))
}

/// What these tests ask of rkt beyond running it.
trait Refusals {
    /// Runs a command that must be refused: exit 254, one line on stderr, and nothing under
    /// --dir added, removed or resized. Returns the line.
    fn refused<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(&self, args: &[S]) -> String;
    fn refused_by(&self, cmd: Command, what: &dyn std::fmt::Debug) -> String;
    /// A store with one image and one prepared pod in it, so that refusals have something to
    /// leave alone.
    fn populated(&self) -> String;
}

impl Refusals for Rkt {
    /// Runs a command that must be refused: exit 254, one line on stderr, and nothing under
    /// --dir added, removed or resized. Returns the line.
    fn refused<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(&self, args: &[S]) -> String {
        self.refused_by(self.cmd(args), &args)
    }

    fn refused_by(&self, mut cmd: Command, what: &dyn std::fmt::Debug) -> String {
        let before = tree(&self.dir());
        let out: Output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(254), "rkt {what:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(stderr.starts_with("rkt: "), "{stderr:?}");
        assert!(stderr.len() < 600, "a short line: {stderr:?}");
        assert_eq!(tree(&self.dir()), before, "rkt {what:?} changed --dir");
        stderr
    }

    /// A store with one image and one prepared pod in it, so that refusals have something to
    /// leave alone.
    fn populated(&self) -> String {
        let good = self.file("good.aci", &AciBuilder::valid("example.com/good").gzip());
        self.ok(&["--insecure-options=image", "fetch", path(&good)]);
        self.ok(&["prepare", "--net=none", "example.com/good"])
            .trim()
            .to_owned()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every path under `dir` with its kind and, for files, size; sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string();
            if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &entry.path(), out);
            } else {
                out.push(format!("{rel} {}", meta.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(aci::MTIME);
    header
}

/// A gzip-compressed ACI whose rootfs holds `size` zero bytes: a few KiB that expand to
/// `size`. Streamed through the compressor, so the test never holds the expanded bytes.
fn gzip_bomb(name: &str, size: u64) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let manifest = manifest_json(name, "1.0");
    let mut file = header(tar::EntryType::Regular, manifest.len() as u64);
    tar.append_data(&mut file, "manifest", manifest.as_bytes())
        .unwrap();
    let mut dir = header(tar::EntryType::Directory, 0);
    tar.append_data(&mut dir, "rootfs", io::empty()).unwrap();
    let mut zeros = header(tar::EntryType::Regular, size);
    tar.append_data(&mut zeros, "rootfs/zeros", io::repeat(0).take(size))
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// A layer holding `size` zero bytes, gzip-compressed.
fn gzip_bomb_layer(size: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    {
        let mut tar = tar::Builder::new(&mut gz);
        let mut zeros = header(tar::EntryType::Regular, size);
        tar.append_data(&mut zeros, "zeros", io::repeat(0).take(size))
            .unwrap();
        tar.finish().unwrap();
    }
    gz.finish().unwrap()
}

#[test]
fn a_gzip_bomb_is_refused_at_fetch_and_nothing_is_kept() {
    let rkt = new_rkt();
    rkt.populated();
    let bomb = gzip_bomb("example.com/bomb", 64 << 20);
    assert!(bomb.len() < 256 << 10, "the bomb is small: {}", bomb.len());
    let file = rkt.file("bomb.aci", &bomb);
    let err = rkt.refused(&[
        "--insecure-options=image",
        "fetch",
        "--max-image-size=4M",
        path(&file),
    ]);
    assert!(
        err.contains("4 MiB") && err.contains("--max-image-size") && err.contains("bomb.aci"),
        "{err}"
    );
    // The same through the environment, and through prepare (as run would, on a host with
    // systemd: this one may have none, and run says so first).
    let mut cmd = rkt.cmd(&["--insecure-options=image", "fetch", path(&file)]);
    cmd.env("RKT_MAX_IMAGE_SIZE", "8M");
    let err = rkt.refused_by(cmd, &"RKT_MAX_IMAGE_SIZE=8M fetch");
    assert!(err.contains("8 MiB"), "{err}");
    let err = rkt.refused(&[
        "--insecure-options=image",
        "prepare",
        "--max-image-size=4M",
        "--net=none",
        path(&file),
    ]);
    assert!(err.contains("4 MiB"), "{err}");
    // The signature check reads the archive up to its manifest under the same bound.
    let zeros_first = AciBuilder::empty()
        .dir("rootfs", 0o755)
        .file("rootfs/zeros", &vec![0; 8 << 20], 0o644)
        .file(
            "manifest",
            manifest_json("example.com/late", "1.0").as_bytes(),
            0o644,
        )
        .gzip();
    let file = rkt.file("late.aci", &zeros_first);
    let err = rkt.refused(&["fetch", "--max-image-size=1M", path(&file)]);
    assert!(err.contains("1 MiB"), "{err}");
    assert_eq!(rkt.image_count(), 1);
    // Allowed to be that large, the image is stored.
    let bomb = rkt.file("bomb.aci", &gzip_bomb("example.com/bomb", 4 << 20));
    rkt.ok(&[
        "--insecure-options=image",
        "fetch",
        "--max-image-size=5M",
        path(&bomb),
    ]);
    assert_eq!(rkt.image_count(), 2);
}

#[test]
fn an_oci_bomb_is_refused_when_it_is_first_unpacked() {
    let rkt = new_rkt();
    rkt.populated();
    // Two layers that are each under the limit and together over it.
    let layout = oci_layout::write_layout(
        &rkt.work().join("bomb"),
        &[gzip_bomb_layer(3 << 20), gzip_bomb_layer(3 << 20)],
    );
    let id = rkt
        .ok(&["--insecure-options=image", "fetch", path(&layout)])
        .trim()
        .to_owned();
    for args in [
        vec!["--max-image-size=4M", "prepare", "--net=none", id.as_str()],
        vec![
            "--max-image-size=4M",
            "image",
            "render",
            id.as_str(),
            path(&rkt.work().join("out")),
        ],
    ] {
        let err = rkt.refused(&args);
        assert!(
            err.contains("4 MiB") && err.contains("--max-image-size"),
            "{err}"
        );
    }
    assert!(!rkt.work().join("out").exists());
    assert!(
        !rkt.dir()
            .join("cas/images")
            .join(&id)
            .join("rootfs")
            .exists()
    );
    // With room for it, the tree is made.
    rkt.ok(&["--max-image-size=7M", "prepare", "--net=none", &id]);
    assert!(
        rkt.dir()
            .join("cas/images")
            .join(&id)
            .join("rootfs/zeros")
            .is_file()
    );
}

/// Filling the disk is said as such, not as the step it broke ("corrupt or truncated gzip
/// stream: No space left on device" when the copy of the ACI could not be written). Needs
/// root, for a small tmpfs in a mount namespace of its own.
#[test]
fn a_full_disk_says_no_space_left_on_device() {
    let unshare = Command::new("unshare").args(["-m", "true"]).status();
    if !unshare.is_ok_and(|s| s.success()) {
        eprintln!("skipped: needs root (unshare -m) for a small tmpfs");
        return;
    }
    let rkt = new_rkt();
    let mut random = vec![0u8; 3 << 20];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    let aci = AciBuilder::valid("example.com/big").file("rootfs/random", &random, 0o644);
    let file = rkt.file("big.aci", &aci.gzip());
    let report = rkt.work().join("report");
    // The store's filesystem holds 1 MiB; what rkt left in it is listed before it goes.
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs {dir} && {rkt} --dir {dir} --insecure-options=image \
         fetch {file} 2>{report}.err; echo $? >{report}.rc; \
         {rkt} --dir {dir} image list --no-legend >{report}.images; \
         find {dir}/cas/tmp -mindepth 1 >{report}.tmp",
        dir = path(&rkt.dir()),
        rkt = env!("CARGO_BIN_EXE_rkt"),
        file = path(&file),
        report = path(&report),
    );
    fs::create_dir(rkt.dir()).unwrap();
    let status = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
    let read = |ext: &str| fs::read_to_string(report.with_extension(ext)).unwrap();
    let err = read("err");
    assert_eq!(read("rc").trim(), "254", "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no space left on device"), "{err}");
    assert!(!err.contains("corrupt"), "{err}");
    assert_eq!(read("images"), "", "no image listed");
    assert_eq!(read("tmp"), "", "nothing left in cas/tmp");
}

#[test]
fn a_manifest_too_deep_to_read_back_is_refused_at_fetch() {
    let rkt = new_rkt();
    rkt.populated();
    let manifest = manifest_json("example.com/deep", "1.0");
    let nested = format!(
        "{}, \"x\": {}{}}}",
        manifest.strip_suffix('}').unwrap(),
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let aci = AciBuilder::empty()
        .file("manifest", nested.as_bytes(), 0o644)
        .dir("rootfs", 0o755)
        .gzip();
    let file = rkt.file("deep.aci", &aci);
    let err = rkt.refused(&["--insecure-options=image", "fetch", path(&file)]);
    assert!(err.contains("levels deep"), "{err}");
    // The signature check reads the manifest first, and says the same.
    let err = rkt.refused(&["fetch", path(&file)]);
    assert!(err.contains("levels deep"), "{err}");
    assert_eq!(rkt.image_count(), 1);
    // What is stored can be read back.
    let shown = rkt.ok(&["image", "cat-manifest", "example.com/good"]);
    assert!(shown.contains("example.com/good"), "{shown}");
}

/// A cause is printed once: "Not a directory (os error 20)", not twice over.
#[test]
fn an_error_prints_its_cause_once() {
    let rkt = new_rkt();
    let not_a_dir = rkt.file("plain-file", b"x");
    let out = Command::new(env!("CARGO_BIN_EXE_rkt"))
        .arg("--dir")
        .arg(not_a_dir.join("below"))
        .args(["image", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let cause = io::Error::from_raw_os_error(20).to_string();
    assert_eq!(err.matches(&cause).count(), 1, "{err}");
}

/// `--exec` names the program: empty, or a relative path (exec(3) searches PATH only for a
/// bare name), is refused while the command line is read; a name the image's PATH does not
/// have, or an image with nothing to execute, is refused before a pod is made.
#[test]
fn a_bad_exec_is_refused_before_a_pod_is_made() {
    let rkt = new_rkt();
    rkt.populated();
    for (exec, says) in [
        ("--exec=", "absolute path"),
        ("--exec= ", "absolute path"),
        ("--exec=bin/true", "/bin/true"),
        ("--exec=./true", "/true"),
    ] {
        for command in ["prepare", "run"] {
            let err = rkt.refused(&[command, "--net=none", "example.com/good", exec]);
            assert!(
                err.contains(says) && err.contains("--exec="),
                "{exec}: {err}"
            );
        }
    }
    // Looked up in the image (where run, on a host without systemd, would stop first).
    let err = rkt.refused(&["prepare", "--net=none", "example.com/good", "--exec=nosuch"]);
    assert!(err.contains("not in the image's PATH"), "{err}");
    let err = rkt.refused(&["prepare", "--net=none", "example.com/good", "--exec", ""]);
    assert!(err.contains("absolute path"), "{err}");
    // An image whose app has no exec, and a pod manifest that empties it.
    let manifest = manifest_json("example.com/idle", "1.0").replace(r#""exec":["/bin/true"],"#, "");
    assert!(!manifest.contains("exec"), "{manifest}");
    let aci = AciBuilder::empty()
        .file("manifest", manifest.as_bytes(), 0o644)
        .dir("rootfs", 0o755)
        .gzip();
    let file = rkt.file("idle.aci", &aci);
    rkt.ok(&["--insecure-options=image", "fetch", path(&file)]);
    let err = rkt.refused(&["prepare", "--net=none", "example.com/idle"]);
    assert!(err.contains("nothing to execute"), "{err}");
    let pod = rkt.file(
        "pod.json",
        br#"{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a",
            "image":{"name":"example.com/good"},
            "app":{"exec":[""],"user":"0","group":"0"}}]}"#,
    );
    let err = rkt.refused(&["prepare", "--net=none", "--pod-manifest", path(&pod)]);
    assert!(err.contains("nothing to execute"), "{err}");
    // A bare name the image has is fine.
    let sh = AciBuilder::valid("example.com/sh")
        .dir("rootfs/bin", 0o755)
        .file("rootfs/bin/sh", b"#!/bin/sh\n", 0o755);
    let file = rkt.file("sh.aci", &sh.gzip());
    rkt.ok(&[
        "--insecure-options=image",
        "prepare",
        "--net=none",
        path(&file),
        "--exec=sh",
    ]);
}

/// `--uuid-file` may name any file: what it holds is not printed back, and a file that never
/// ends (/dev/zero) or a large one is read only as far as a UUID could go.
#[test]
fn a_uuid_file_that_holds_no_uuid_is_not_quoted() {
    let rkt = new_rkt();
    let uuid = rkt.populated();
    let secret = rkt.file(
        "shadow",
        b"root:$y$j9T$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    );
    let big = rkt.file("big", &vec![b'a'; 8 << 20]);
    let no_uuid = rkt.file("almost", format!("{}x\n", &uuid[..35]).as_bytes());
    for file in [&secret, &big, &no_uuid, Path::new("/dev/zero")] {
        for command in ["status", "cat-manifest", "rm", "stop"] {
            let arg = format!("--uuid-file={}", path(file));
            let err = rkt.refused(&[command, arg.as_str()]);
            assert!(err.contains("does not hold a pod UUID"), "{command}: {err}");
            assert!(!err.contains("SECRET") && !err.contains("aaaa"), "{err}");
        }
    }
    // The file --uuid-file-save wrote still works.
    let saved = rkt.file("uuid", format!("{uuid}\n").as_bytes());
    let status = rkt.ok(&["status", "--uuid-file", path(&saved)]);
    assert!(status.contains("state=prepared"), "{status}");
}

/// Env files and pod manifests are named on the command line too: a line that is not an
/// assignment may be a secret (`export TOKEN=…`) and is not printed; a value a manifest has
/// wrong is quoted short; a file that never ends is refused.
#[test]
fn files_named_on_the_command_line_are_not_printed_back() {
    let rkt = new_rkt();
    rkt.populated();
    let env = rkt.file("env", b"A=1\nexport TOKEN=hunter2\n");
    let arg = format!("--set-env-file={}", path(&env));
    for args in [
        vec!["prepare", "--net=none", arg.as_str(), "example.com/good"],
        vec!["prepare", "--net=none", "example.com/good", arg.as_str()],
    ] {
        let err = rkt.refused(&args);
        assert!(err.contains("line 2") && !err.contains("hunter2"), "{err}");
    }
    for endless in [
        vec!["--set-env-file=/dev/zero", "example.com/good"],
        vec!["example.com/good", "--set-env-file=/dev/zero"],
        vec!["--pod-manifest=/dev/zero"],
    ] {
        let err = rkt.refused(&[&["prepare", "--net=none"][..], &endless].concat());
        assert!(err.contains("larger than"), "{err}");
    }
    let long = "s".repeat(100_000);
    let manifest = rkt.file(
        "pod.json",
        format!(
            r#"{{"acKind":"PodManifest","acVersion":"0.8.11","apps":[],
                "volumes":[{{"name":"v","kind":"{long}"}}]}}"#
        )
        .as_bytes(),
    );
    let err = rkt.refused(&["prepare", "--net=none", "--pod-manifest", path(&manifest)]);
    assert!(
        err.contains("volumes[0].kind") && err.contains("sss…"),
        "{err}"
    );
}

/// What an attacker types: bytes that are not UTF-8, values with newlines and terminal escapes,
/// huge values, empty strings, names too long to be a unit.
#[test]
fn hostile_command_lines_get_one_short_line() {
    use std::os::unix::ffi::OsStrExt;
    let rkt = new_rkt();
    rkt.populated();
    let not_utf8 = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let err = rkt.refused(&[std::ffi::OsStr::new("status"), not_utf8]);
    assert!(err.contains("UTF-8"), "{err}");
    let err = rkt.refused(&["--max-image-size=1\n2", "image", "list"]);
    assert!(
        err.contains(r"1\n2") && err.contains("--max-image-size"),
        "{err}"
    );
    let err = rkt.refused(&["image", "list", "--format=\u{1b}[2Jx"]);
    assert!(
        err.contains(r"\u{1b}[2Jx") && !err.contains('\u{1b}'),
        "{err}"
    );
    let huge = "a".repeat(100_000);
    for args in [
        vec!["status", huge.as_str()],
        vec!["rm", huge.as_str()],
        vec!["image", "cat-manifest", huge.as_str()],
        vec!["image", "rm", huge.as_str()],
        vec!["prepare", "--net=none", huge.as_str()],
        vec!["gc", "--grace-period", huge.as_str()],
    ] {
        let err = rkt.refused(&args);
        assert!(err.contains("aaaa…"), "{:?}: {err}", &args[..1]);
    }
    let err = rkt.refused(&["status", "ab\ncd"]);
    assert!(err.contains(r"ab\ncd"), "{err}");
    for args in [
        vec!["status", ""],
        vec!["image", "rm", ""],
        vec!["fetch", ""],
        vec!["prepare", "--net=none", ""],
        vec!["prepare", "--net=none", "--hostname=", "example.com/good"],
        vec!["prepare", "--net=none", "--volume=", "example.com/good"],
        vec!["prepare", "--net=none", "example.com/good", "--memory="],
        vec!["prepare", "--net=none", "example.com/good", "--name="],
        vec![
            "prepare",
            "--net=none",
            "example.com/good",
            "--cpu=99999999999999999999",
        ],
        vec!["gc", "--grace-period=99999999999999999999d"],
    ] {
        rkt.refused(&args);
    }
    // An app name must fit a unit name and a directory name.
    let long_name = "a".repeat(300);
    let name = format!("--name={long_name}");
    let err = rkt.refused(&["prepare", "--net=none", "example.com/good", name.as_str()]);
    assert!(
        err.contains("longer than") && err.contains("aaaa…"),
        "{err}"
    );
}

/// `--overwrite` empties the target first: a directory that holds the store (or is part of
/// it) is refused, with everything left in place. (`/`, top-level directories and mount
/// points are refused too; the library's unit test checks those without removing anything.)
#[test]
fn overwrite_refuses_to_empty_the_store_or_what_holds_it() {
    let rkt = new_rkt();
    rkt.populated();
    let holder = path(rkt.work()).to_owned();
    let store = path(&rkt.dir()).to_owned();
    for command in ["extract", "render"] {
        for target in [&holder, &store] {
            let err = rkt.refused(&["image", command, "--overwrite", "example.com/good", target]);
            assert!(err.contains("refusing to empty"), "{err}");
        }
    }
    assert!(rkt.work().join("good.aci").is_file());
    // A directory of its own is replaced as asked.
    let out = rkt.work().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("old"), b"x").unwrap();
    rkt.ok(&[
        "image",
        "render",
        "--overwrite",
        "example.com/good",
        path(&out),
    ]);
    assert!(out.join("rootfs/hello").is_file() && !out.join("old").exists());
}
