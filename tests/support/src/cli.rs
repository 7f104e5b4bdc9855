//! The `rkt` binary run against a throwaway `--dir`, as the command-line tests run it.

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A temporary directory holding rkt's `--dir` (`data/`) and the tests' input files.
pub struct Rkt {
    tmp: tempfile::TempDir,
    bin: PathBuf,
}

impl Rkt {
    /// `bin` is the `rkt` binary under test (`env!("CARGO_BIN_EXE_rkt")`).
    pub fn new(bin: &str) -> Rkt {
        Rkt {
            tmp: tempfile::tempdir().unwrap(),
            bin: PathBuf::from(bin),
        }
    }

    /// The temporary directory: `--dir` and the input files are in it.
    pub fn work(&self) -> &std::path::Path {
        self.tmp.path()
    }

    /// rkt's `--dir`.
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// Writes `bytes` as an input file beside `--dir` and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    /// `rkt --dir DIR ARGS…`, with none of rkt's settings taken from the test's environment.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--dir")
            .arg(self.dir())
            .args(args)
            .env_remove("RKT_DIR")
            .env_remove("RKT_MAX_IMAGE_SIZE");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs a command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rkt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail as rkt's own failure: exit 254, one line on stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(254), "rkt {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(stderr.starts_with("rkt: "), "{stderr:?}");
        stderr
    }

    /// How many images `rkt image list` shows.
    pub fn image_count(&self) -> usize {
        let json = self.ok(&["image", "list", "--format=json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&json)
            .unwrap()
            .len()
    }
}
