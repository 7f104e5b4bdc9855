//! Rules that need no keys; everything with real keys is in tests/it/trust.rs (GnuPG).

use super::*;
use rkt_schema::AcIdentifier;

fn id(s: &str) -> AcIdentifier {
    s.parse().unwrap()
}

#[test]
fn a_prefix_covers_itself_and_names_below_it_only() {
    let scope = KeyScope::prefix("example.com/app").unwrap();
    assert!(scope.covers(&id("example.com/app")));
    assert!(scope.covers(&id("example.com/app/sub")));
    assert!(!scope.covers(&id("example.com/apple")));
    assert!(!scope.covers(&id("example.com")));
    assert!(!scope.covers(&id("other.com/example.com/app")));
    assert!(KeyScope::Root.covers(&id("anything.org/x")));
}

#[test]
fn prefixes_must_be_image_names() {
    for bad in [
        "",
        "../etc",
        "example.com/",
        "/abs",
        "Example.com",
        "a/b/",
        "a%2Fb",
    ] {
        assert!(
            matches!(KeyScope::prefix(bad), Err(TrustError::Prefix(_))),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn escaped_prefixes_are_one_component_and_decode_back() {
    let prefix = ImagePrefix::Appc(id("example.com/app/sub-1_x~y"));
    let escaped = escape_prefix(&prefix);
    assert_eq!(escaped, "example.com%2Fapp%2Fsub-1_x~y");
    assert!(!escaped.contains('/'));
    assert_eq!(unescape_prefix(&escaped), Some(prefix));
    for junk in [
        "..",
        ".",
        "a%2fb",
        "a%2Eb",
        "a%",
        "%2Fa",
        "A",
        "docker:%2F%2FA",
    ] {
        assert_eq!(unescape_prefix(junk), None, "{junk:?}");
    }
    let docker = ImagePrefix::parse("docker://127.0.0.1:5000/team").unwrap();
    let escaped = escape_prefix(&docker);
    assert_eq!(escaped, "docker:%2F%2F127.0.0.1:5000%2Fteam");
    assert_eq!(unescape_prefix(&escaped), Some(docker));
}

#[test]
fn docker_prefixes_cover_their_repositories_only() {
    let scope = KeyScope::prefix("docker://127.0.0.1:5000/team").unwrap();
    let covers = |name: &str| scope.covers_subject(&ImageSubject::Docker(name));
    assert!(covers("127.0.0.1:5000/team"));
    assert!(covers("127.0.0.1:5000/team/app"));
    assert!(!covers("127.0.0.1:5000/teamx/app"));
    assert!(!covers("127.0.0.1:5001/team/app"));
    // An appc prefix never covers a registry image, nor the other way round.
    assert!(!scope.covers(&id("team/app")));
    let appc = KeyScope::prefix("example.com/app").unwrap();
    assert!(!appc.covers_subject(&ImageSubject::Docker("example.com/app")));
    assert!(KeyScope::Root.covers_subject(&ImageSubject::Docker("x.org/y")));
    // Docker Hub's spellings are one.
    assert_eq!(docker_name("busybox").unwrap(), "docker.io/library/busybox");
    assert_eq!(
        docker_name("registry-1.docker.io/library/busybox").unwrap(),
        "docker.io/library/busybox"
    );
    for bad in [
        "docker://",
        "docker://Reg.example",
        "docker://r.example/a:tag",
        "docker://r.example//a",
    ] {
        assert!(KeyScope::prefix(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn fingerprints_accept_gpg_spellings_and_print_lowercase() {
    let fp: Fingerprint = "06A7 A689 027E FD75 21CB  A38F B3D0 7A43 619F BDCF"
        .parse()
        .unwrap();
    assert_eq!(fp.as_str(), "06a7a689027efd7521cba38fb3d07a43619fbdcf");
    assert_eq!(
        "0x06a7a689027efd7521cba38fb3d07a43619fbdcf"
            .parse::<Fingerprint>()
            .unwrap(),
        fp
    );
    for bad in ["", "b3d07a43619fbdcf", "../../etc/passwd", &"g".repeat(40)] {
        assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?}");
    }
}

#[test]
fn key_files_must_hold_one_public_key() {
    let secret =
        b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n";
    assert!(matches!(
        PublicKey::from_armored(secret),
        Err(TrustError::SecretKey)
    ));
    assert!(matches!(
        PublicKey::from_armored(b"hello"),
        Err(TrustError::MalformedKey(_))
    ));
    let garbage =
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n";
    assert!(matches!(
        PublicKey::from_armored(garbage),
        Err(TrustError::MalformedKey(_))
    ));
    let two = [&garbage[..], &garbage[..]].concat();
    assert!(matches!(
        PublicKey::from_armored(&two),
        Err(TrustError::SeveralKeys(2))
    ));
}

#[test]
fn an_empty_signature_is_no_signature_and_garbage_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let store = TrustStore::new(dir.path().join("etc"), dir.path().join("usr"));
    let image = id("example.com/app");
    let err = store
        .verify(&image, || Ok(&b"data"[..]), b" \n")
        .unwrap_err();
    assert!(matches!(err, TrustError::NoSignature { .. }), "{err}");
    let err = store
        .verify(&image, || Ok(&b"data"[..]), b"not a signature")
        .unwrap_err();
    assert!(
        matches!(err, TrustError::MalformedSignature { .. }),
        "{err}"
    );
}
