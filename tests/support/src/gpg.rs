//! Real GnuPG in a throwaway GNUPGHOME: keys, detached signatures, expiry and revocation, made
//! exactly as a publisher would make them. `--faked-system-time` puts key creation and
//! signatures in the past or the future (gpg's own switch; no clock is touched).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Gpg {
    home: tempfile::TempDir,
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A moment well in the past (2020-01-01), for keys that have long expired.
pub const PAST: u64 = 1_577_836_800;
pub const DAY: u64 = 86_400;

impl Gpg {
    /// A fresh GnuPG home, or `None` (after printing why) when gpg is not installed.
    pub fn new() -> Option<Gpg> {
        if Command::new("gpg").arg("--version").output().is_err() {
            eprintln!("skipped: gpg is not installed (apt-get install gnupg)");
            return None;
        }
        Some(Gpg {
            home: tempfile::tempdir().unwrap(),
        })
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    fn command(&self, at: Option<u64>) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--quiet", "--no-tty"])
            .args(["--pinentry-mode", "loopback", "--passphrase", ""]);
        if let Some(at) = at {
            // The trailing `!` freezes gpg's clock at that moment.
            cmd.arg("--faked-system-time").arg(format!("{at}!"));
        }
        cmd
    }

    fn run(&self, at: Option<u64>, args: &[&str]) -> Output {
        let out = self.command(at).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Makes a key (`algo` as `--quick-gen-key` takes it: `ed25519`, `rsa3072`, `default`), at
    /// `at` or now; returns its fingerprint (uppercase hex, as gpg prints it).
    pub fn gen_key(&self, uid: &str, algo: &str, expire: &str, at: Option<u64>) -> String {
        let out = self.run(
            at,
            &[
                "--status-fd",
                "1",
                "--quick-gen-key",
                uid,
                algo,
                "default",
                expire,
            ],
        );
        let status = String::from_utf8(out.stdout).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("[GNUPG:] KEY_CREATED ")?.split(' ').nth(1))
            .expect("gpg printed no KEY_CREATED")
            .to_owned()
    }

    /// A signing subkey of `fpr`; gpg signs with the newest signing subkey from then on.
    pub fn add_signing_subkey(&self, fpr: &str) {
        self.run(None, &["--quick-add-key", fpr, "ed25519", "sign", "never"]);
    }

    /// Sets when the key expires, computed from `at` (`1d` at PAST: expired long ago).
    pub fn set_expire(&self, fpr: &str, expire: &str, at: Option<u64>) {
        self.run(at, &["--quick-set-expire", fpr, expire]);
    }

    /// Revokes the key with the revocation certificate gpg made along with it.
    pub fn revoke(&self, fpr: &str) {
        let cert = self
            .home
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{fpr}.rev"));
        // gpg stores it with a leading ':' so that it is not imported by accident.
        let text = fs::read_to_string(&cert)
            .unwrap()
            .replace(":-----BEGIN", "-----BEGIN");
        let unlocked = self.home.path().join("revoke.asc");
        fs::write(&unlocked, text).unwrap();
        self.run(None, &["--import", unlocked.to_str().unwrap()]);
    }

    /// The ASCII-armored public key, as `gpg --armor --export` writes it.
    pub fn export(&self, fpr: &str) -> Vec<u8> {
        self.run(None, &["--armor", "--export", fpr]).stdout
    }

    /// The ASCII-armored secret key (which rkt must refuse to trust).
    pub fn export_secret(&self, fpr: &str) -> Vec<u8> {
        self.run(None, &["--armor", "--export-secret-keys", fpr])
            .stdout
    }

    /// Writes the public key to a file and returns its path.
    pub fn export_to(&self, fpr: &str, path: &Path) -> PathBuf {
        fs::write(path, self.export(fpr)).unwrap();
        path.to_owned()
    }

    /// `gpg --armor --detach-sign` of `file` by `fpr`, at `at` or now.
    pub fn sign_file(&self, fpr: &str, file: &Path, at: Option<u64>) -> Vec<u8> {
        self.sign_with(fpr, file, at, &[])
    }

    /// As [`sign_file`], with extra gpg options (`--default-sig-expire 1d`).
    pub fn sign_with(&self, fpr: &str, file: &Path, at: Option<u64>, extra: &[&str]) -> Vec<u8> {
        let mut args = vec![
            "--armor",
            "--detach-sign",
            "--local-user",
            fpr,
            "--output",
            "-",
        ];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        self.run(at, &args).stdout
    }

    /// Signs `len` bytes produced by `fill`, fed through a pipe so that nothing big is kept.
    pub fn sign_stream(&self, fpr: &str, len: u64, fill: fn(u64, &mut [u8])) -> Vec<u8> {
        let mut child = self
            .command(None)
            .args([
                "--armor",
                "--detach-sign",
                "--local-user",
                fpr,
                "--output",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut offset = 0;
            while offset < len {
                let n = buf.len().min((len - offset) as usize);
                fill(offset, &mut buf[..n]);
                stdin.write_all(&buf[..n]).unwrap();
                offset += n as u64;
            }
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}
