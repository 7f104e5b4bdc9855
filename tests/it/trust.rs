//! The trust store and signature checks against keys and signatures made by real GnuPG.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rkt_image::trust::{Fingerprint, KeyOrigin, KeyScope, TrustError, TrustStore};
use rkt_schema::AcIdentifier;

use crate::gpg::{DAY, Gpg, PAST, now};

/// A trust store in a temporary directory (local and system roots side by side), a GnuPG
/// home, and an "ACI" (any bytes: the signature covers the file as fetched).
struct Setup {
    dir: tempfile::TempDir,
    store: TrustStore,
    gpg: Gpg,
    aci: PathBuf,
}

impl Setup {
    fn new() -> Option<Setup> {
        let gpg = Gpg::new()?;
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(dir.path().join("etc/rkt"), dir.path().join("usr/lib/rkt"));
        let aci = dir.path().join("app.aci");
        fs::write(&aci, b"pretend this is a gzipped tar\n".repeat(1000)).unwrap();
        Some(Setup {
            dir,
            store,
            gpg,
            aci,
        })
    }

    /// An ed25519 key made now, never expiring.
    fn key(&self, uid: &str) -> String {
        self.gpg.gen_key(uid, "ed25519", "never", None)
    }

    fn trust(&self, scope: &str, fpr: &str) -> Fingerprint {
        let scope = if scope == "root" {
            KeyScope::Root
        } else {
            KeyScope::prefix(scope).unwrap()
        };
        self.store
            .add_key(&scope, &self.gpg.export(fpr))
            .unwrap()
            .key
            .fingerprint()
            .clone()
    }

    fn verify(&self, image: &str, sig: &[u8]) -> Result<rkt_image::trust::Verified, TrustError> {
        self.verify_file(image, &self.aci, sig)
    }

    fn verify_file(
        &self,
        image: &str,
        file: &Path,
        sig: &[u8],
    ) -> Result<rkt_image::trust::Verified, TrustError> {
        self.store
            .verify(&name(image), || fs::File::open(file), sig)
    }
}

fn name(s: &str) -> AcIdentifier {
    s.parse().unwrap()
}

fn lower(fpr: &str) -> String {
    fpr.to_ascii_lowercase()
}

#[test]
fn a_good_signature_by_a_prefix_key_verifies() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("App Signer <signer@example.com>");
    let trusted = s.trust("example.com/app", &fpr);
    assert_eq!(trusted.as_str(), lower(&fpr));
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);

    let verified = s.verify("example.com/app", &sig).unwrap();
    assert_eq!(verified.fingerprint.as_str(), lower(&fpr));
    assert_eq!(verified.user_ids, ["App Signer <signer@example.com>"]);
    assert_eq!(verified.scope, KeyScope::prefix("example.com/app").unwrap());
    // Names below the prefix are covered too.
    s.verify("example.com/app/worker", &sig).unwrap();
}

#[test]
fn the_default_gpg_key_rsa_verifies_too() {
    let Some(s) = Setup::new() else { return };
    let fpr = s
        .gpg
        .gen_key("Rsa Signer <rsa@example.com>", "default", "never", None);
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    assert_eq!(
        s.verify("example.com/app", &sig)
            .unwrap()
            .fingerprint
            .as_str(),
        lower(&fpr)
    );
}

#[test]
fn a_signing_subkey_vouches_for_its_primary_key() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Sub Signer <sub@example.com>");
    s.gpg.add_signing_subkey(&fpr);
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    let verified = s.verify("example.com/app", &sig).unwrap();
    assert_eq!(verified.fingerprint.as_str(), lower(&fpr));
}

#[test]
fn tampered_data_fails() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Signer <s@example.com>");
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    let mut bytes = fs::read(&s.aci).unwrap();
    bytes[500] ^= 1;
    fs::write(&s.aci, &bytes).unwrap();

    let err = s.verify("example.com/app", &sig).unwrap_err();
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains(&lower(&fpr)), "{err}");
    // One byte more at the end is tampering too.
    bytes[500] ^= 1;
    bytes.push(b'\n');
    fs::write(&s.aci, &bytes).unwrap();
    let err = s.verify("example.com/app", &sig).unwrap_err();
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
}

#[test]
fn a_key_nobody_trusted_fails_and_says_how_to_trust_it() {
    let Some(s) = Setup::new() else { return };
    let trusted = s.key("Trusted <t@example.com>");
    s.trust("example.com/app", &trusted);
    let stranger = s.key("Stranger <x@example.com>");
    let sig = s.gpg.sign_file(&stranger, &s.aci, None);

    let err = s.verify("example.com/app", &sig).unwrap_err();
    let TrustError::UntrustedKey { key_id, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(key_id, &lower(&stranger));
    let message = err.to_string();
    assert!(
        message.contains("rkt trust --prefix example.com/app KEYFILE"),
        "{message}"
    );
}

#[test]
fn a_prefix_key_does_not_vouch_for_other_names() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Signer <s@example.com>");
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    for other in [
        "example.com/apple",
        "example.com",
        "evil.com/example.com/app",
    ] {
        let err = s.verify(other, &sig).unwrap_err();
        assert!(
            matches!(err, TrustError::UntrustedKey { .. }),
            "{other}: {err}"
        );
        // Saying where the key is trusted helps spot a mistyped prefix.
        assert!(
            err.to_string().contains("only for prefix example.com/app"),
            "{err}"
        );
    }
}

#[test]
fn a_root_key_vouches_for_every_name() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Root Signer <root@example.com>");
    s.trust("root", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    for image in ["example.com/app", "other.org/thing", "x"] {
        let verified = s.verify(image, &sig).unwrap();
        assert_eq!(verified.scope, KeyScope::Root);
    }
}

#[test]
fn an_expired_key_fails() {
    let Some(s) = Setup::new() else { return };
    // Made and used in 2020, then set to expire a day later: expired long ago.
    let fpr = s
        .gpg
        .gen_key("Old <old@example.com>", "ed25519", "never", Some(PAST));
    let sig = s.gpg.sign_file(&fpr, &s.aci, Some(PAST + 60));
    s.gpg.set_expire(&fpr, "1d", Some(PAST + 120));
    s.trust("example.com/app", &fpr);

    let err = s.verify("example.com/app", &sig).unwrap_err();
    assert!(matches!(err, TrustError::KeyExpired { .. }), "{err}");
    assert!(err.to_string().contains("2020-01-02"), "{err}");
}

/// One `.asc` holding two signatures (`gpg -u OLD -u NEW`): the first by a key revoked since,
/// and the good one beside it still vouches for the image. While only the revoked key is
/// trusted, its reason is given.
#[test]
fn a_good_signature_beside_one_by_a_revoked_key_verifies() {
    let Some(s) = Setup::new() else { return };
    let old = s.key("Old <old@example.com>");
    let new = s.key("New <new@example.com>");
    let both = s.gpg.sign_with(&old, &s.aci, None, &["--local-user", &new]);
    let armor = String::from_utf8_lossy(&both)
        .matches("BEGIN PGP SIGNATURE")
        .count();
    assert_eq!(armor, 1, "one armor block");
    s.gpg.revoke(&old);
    s.trust("example.com/app", &old);
    let err = s.verify("example.com/app", &both).unwrap_err();
    assert!(matches!(err, TrustError::KeyRevoked { .. }), "{err}");
    let new_fpr = s.trust("example.com/app", &new);
    let verified = s.verify("example.com/app", &both).unwrap();
    assert_eq!(verified.fingerprint, new_fpr);
    // The good signature still covers only these bytes.
    let other = s.dir.path().join("other.aci");
    fs::write(&other, b"something else").unwrap();
    let err = s.verify_file("example.com/app", &other, &both).unwrap_err();
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
}

/// Two armored signatures in one `.asc`, both by trusted keys: the first over other bytes
/// (a stale signature left beside a new one), the second over the image. The image is
/// verified by the second; either alone gives its own answer.
#[test]
fn a_good_signature_after_one_over_other_bytes_verifies() {
    let Some(s) = Setup::new() else { return };
    let stale = s.key("Stale <stale@example.com>");
    let good = s.key("Good <good@example.com>");
    let stale_fpr = s.trust("example.com/app", &stale);
    let good_fpr = s.trust("example.com/app", &good);
    let other = s.dir.path().join("other.aci");
    fs::write(&other, b"an older image").unwrap();
    let over_other = s.gpg.sign_file(&stale, &other, None);
    let over_image = s.gpg.sign_file(&good, &s.aci, None);

    let err = s.verify("example.com/app", &over_other).unwrap_err();
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
    let both = [over_other.as_slice(), over_image.as_slice()].concat();
    let verified = s.verify("example.com/app", &both).unwrap();
    assert_eq!(verified.fingerprint, good_fpr);
    assert_ne!(verified.fingerprint, stale_fpr);
    // Over the other bytes, it is the first signature that holds.
    let verified = s.verify_file("example.com/app", &other, &both).unwrap();
    assert_eq!(verified.fingerprint, stale_fpr);
    // Over bytes neither signed, the first failure is the answer.
    let third = s.dir.path().join("third.aci");
    fs::write(&third, b"neither").unwrap();
    let err = s.verify_file("example.com/app", &third, &both).unwrap_err();
    assert!(
        err.to_string().contains(&stale_fpr.to_string()),
        "names the first signature's key: {err}"
    );
}

#[test]
fn a_key_that_expires_later_still_verifies() {
    let Some(s) = Setup::new() else { return };
    let fpr = s
        .gpg
        .gen_key("Current <c@example.com>", "ed25519", "1y", None);
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    s.verify("example.com/app", &sig).unwrap();
}

#[test]
fn a_revoked_key_fails() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Revoked <r@example.com>");
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    s.trust("example.com/app", &fpr);
    s.verify("example.com/app", &sig).unwrap();

    // The owner revokes it; the trust store learns of it when the key is added again.
    s.gpg.revoke(&fpr);
    s.trust("example.com/app", &fpr);
    let err = s.verify("example.com/app", &sig).unwrap_err();
    assert!(matches!(err, TrustError::KeyRevoked { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("rkt trust --remove {}", lower(&fpr))),
        "{err}"
    );
}

#[test]
fn a_signature_from_the_future_fails() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Signer <s@example.com>");
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, Some(now() + 2 * DAY));
    let err = s.verify("example.com/app", &sig).unwrap_err();
    assert!(matches!(err, TrustError::SignatureInFuture { .. }), "{err}");
}

#[test]
fn an_expired_signature_fails() {
    let Some(s) = Setup::new() else { return };
    let fpr = s
        .gpg
        .gen_key("Signer <s@example.com>", "ed25519", "never", Some(PAST));
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_with(
        &fpr,
        &s.aci,
        Some(PAST + 60),
        &["--default-sig-expire", "1d"],
    );
    let err = s.verify("example.com/app", &sig).unwrap_err();
    assert!(matches!(err, TrustError::SignatureExpired { .. }), "{err}");
}

#[test]
fn a_1024_bit_rsa_key_is_refused() {
    let Some(s) = Setup::new() else { return };
    let fpr = s
        .gpg
        .gen_key("Weak <w@example.com>", "rsa1024", "never", None);
    let err = s
        .store
        .add_key(&KeyScope::Root, &s.gpg.export(&fpr))
        .unwrap_err();
    assert!(
        matches!(err, TrustError::WeakKey { bits: 1024, .. }),
        "{err}"
    );
    assert!(!s.dir.path().join("etc/rkt").exists());
}

#[test]
fn a_sha1_signature_fails_as_weak() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Signer <s@example.com>");
    s.trust("example.com/app", &fpr);
    let sig = s
        .gpg
        .sign_with(&fpr, &s.aci, None, &["--digest-algo", "SHA1"]);
    let err = s.verify("example.com/app", &sig).unwrap_err();
    assert!(matches!(err, TrustError::WeakSignature { .. }), "{err}");
    assert!(err.to_string().contains("SHA1"), "{err}");
}

#[test]
fn missing_and_malformed_signatures_fail() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Signer <s@example.com>");
    s.trust("example.com/app", &fpr);
    let err = s.verify("example.com/app", b"").unwrap_err();
    assert!(matches!(err, TrustError::NoSignature { .. }), "{err}");

    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    let text = String::from_utf8(sig).unwrap();
    // Damage the base64 body (not the header): the armor checksum or the packet breaks.
    let broken = text.replacen("\n\n", "\n\nAAAA", 1);
    let err = s.verify("example.com/app", broken.as_bytes()).unwrap_err();
    assert!(
        matches!(err, TrustError::MalformedSignature { .. }),
        "{err}"
    );
    // A key where a signature should be.
    let err = s
        .verify("example.com/app", &s.gpg.export(&fpr))
        .unwrap_err();
    assert!(
        matches!(err, TrustError::MalformedSignature { .. }),
        "{err}"
    );
}

#[test]
fn a_vendor_key_is_read_and_a_local_key_shadows_nothing_else() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Vendor <vendor@example.com>");
    // What a distribution package installs: the same layout under /usr/lib/rkt.
    let vendor = TrustStore::new(s.dir.path().join("usr/lib/rkt"), s.dir.path().join("none"));
    vendor
        .add_key(
            &KeyScope::prefix("example.com").unwrap(),
            &s.gpg.export(&fpr),
        )
        .unwrap();
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);

    let verified = s.verify("example.com/app", &sig).unwrap();
    assert_eq!(verified.fingerprint.as_str(), lower(&fpr));
    let listed = s.store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].origin, KeyOrigin::System);
    // Nothing was written to the local root by reading.
    assert!(!s.dir.path().join("etc/rkt").exists());
    // rkt never deletes the vendor's file, and says where it is.
    let err = s.store.remove(&lower(&fpr).parse().unwrap()).unwrap_err();
    assert!(matches!(err, TrustError::VendorKey { .. }), "{err}");
}

#[test]
fn keys_are_stored_by_fingerprint_with_public_modes_and_listed_back() {
    let Some(s) = Setup::new() else { return };
    let a = s.key("A <a@example.com>");
    let b = s.key("B <b@example.com>");
    s.trust("example.com/app", &a);
    s.trust("root", &b);
    let keys = s.dir.path().join("etc/rkt/trustedkeys");
    let a_file = keys.join("prefix.d/example.com%2Fapp").join(lower(&a));
    let b_file = keys.join("root.d").join(lower(&b));
    for file in [&a_file, &b_file] {
        let text = fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
            "{text}"
        );
        assert_eq!(
            fs::metadata(file).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    for dir in [keys.join("root.d"), keys.join("prefix.d/example.com%2Fapp")] {
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }
    // No temporary files left beside them.
    let names: Vec<_> = fs::read_dir(keys.join("root.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [lower(&b).as_str()]);

    let listed: Vec<(String, String, Vec<String>)> = s
        .store
        .list()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k.scope.to_string(),
                k.key.fingerprint().to_string(),
                k.key.user_ids().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "root".into(),
                lower(&b),
                vec!["B <b@example.com>".to_owned()]
            ),
            (
                "prefix example.com/app".into(),
                lower(&a),
                vec!["A <a@example.com>".to_owned()]
            ),
        ]
    );

    // Removing stops the trust and tidies the empty prefix directory.
    let removed = s.store.remove(&a.parse().unwrap()).unwrap();
    assert_eq!(removed, [a_file]);
    assert!(!keys.join("prefix.d/example.com%2Fapp").exists());
    let sig = s.gpg.sign_file(&a, &s.aci, None);
    assert!(matches!(
        s.verify("example.com/app", &sig),
        Err(TrustError::UntrustedKey { .. })
    ));
    let err = s.store.remove(&a.parse().unwrap()).unwrap_err();
    assert!(matches!(err, TrustError::KeyNotFound(_)), "{err}");
}

#[test]
fn bad_key_files_are_refused_and_change_nothing() {
    let Some(s) = Setup::new() else { return };
    let a = s.key("A <a@example.com>");
    let b = s.key("B <b@example.com>");
    let scope = KeyScope::Root;
    let secret = s.gpg.export_secret(&a);
    assert!(matches!(
        s.store.add_key(&scope, &secret),
        Err(TrustError::SecretKey)
    ));
    // `gpg --export A B` puts both keys in one armor block.
    let both = {
        let out = std::process::Command::new("gpg")
            .env("GNUPGHOME", s.gpg.home())
            .args(["--batch", "--armor", "--export", &a, &b])
            .output()
            .unwrap();
        out.stdout
    };
    assert!(matches!(
        s.store.add_key(&scope, &both),
        Err(TrustError::SeveralKeys(2))
    ));
    assert!(matches!(
        s.store.add_key(&scope, b"garbage"),
        Err(TrustError::MalformedKey(_))
    ));
    assert!(!s.dir.path().join("etc/rkt").exists());
}

/// 64 MiB that exist only as they stream past: verification must not hold the image.
#[test]
fn a_big_image_is_streamed_not_loaded() {
    let Some(s) = Setup::new() else { return };
    const LEN: u64 = 64 << 20;
    fn fill(offset: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            *b = (at ^ (at >> 11)) as u8;
        }
    }
    let fpr = s.key("Big <big@example.com>");
    s.trust("example.com/big", &fpr);
    let sig = s.gpg.sign_stream(&fpr, LEN, fill);

    let before = peak_rss_kib();
    let reader = || {
        Ok(Generated {
            len: LEN,
            offset: 0,
            fill,
        })
    };
    s.store
        .verify(&name("example.com/big"), reader, &sig)
        .unwrap();
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(grown_mib < 32, "peak memory grew by {grown_mib} MiB");
}

/// A download that breaks off is a read error, not a "tampered image".
#[test]
fn a_failing_read_is_reported_as_such() {
    let Some(s) = Setup::new() else { return };
    let fpr = s.key("Signer <s@example.com>");
    s.trust("example.com/app", &fpr);
    let sig = s.gpg.sign_file(&fpr, &s.aci, None);
    let broken = || Ok(fs::File::open(&s.aci)?.take(100).chain(FailingReader));
    let err = s
        .store
        .verify(&name("example.com/app"), broken, &sig)
        .unwrap_err();
    assert!(matches!(err, TrustError::ReadImage(_)), "{err}");
    assert!(err.to_string().contains("connection reset"), "{err}");
}

struct FailingReader;

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        ))
    }
}

struct Generated {
    len: u64,
    offset: u64,
    fill: fn(u64, &mut [u8]),
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.len - self.offset) as usize);
        (self.fill)(self.offset, &mut buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// The process's peak resident set (VmHWM) in KiB.
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
