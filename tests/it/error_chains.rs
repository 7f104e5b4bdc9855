//! rkt prints an error with its chain of causes (`rkt: {:#}`, each `source()` after a colon).
//! A cause written into a message and also linked as its `source` is printed twice
//! ("Not a directory (os error 20): Not a directory (os error 20)"); these tests walk the
//! chains of the library's errors and fail when a message holds the text of the next cause.

use std::error::Error;
use std::io;
use std::path::PathBuf;

use rkt_image::fetch::FetchError;
use rkt_pod::PodError;
use rkt_pod::SysctlError;
use rkt_pod::plan::PlanError as UnitError;
use rkt_runtime::systemd::SystemdError;
use rkt_runtime::{AppSetupError, CniError, SocketsError, Stage1Error};
use rkt_schema::{ImageManifest, SchemaError};
use rkt_store::StoreError;
use rkt_store::aci::AciError;
use rkt_store::oci::OciError;

fn os_error() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOTDIR)
}

fn schema_error() -> SchemaError {
    ImageManifest::from_json(b"{not json").unwrap_err()
}

fn store_io() -> StoreError {
    StoreError::Io(rkt_common::IoError::new(
        "creating",
        PathBuf::from("/x/cas"),
        os_error(),
    ))
}

fn aci_errors() -> Vec<AciError> {
    vec![
        AciError::Decompress {
            compression: "gzip",
            error: os_error(),
        },
        AciError::Tar(os_error()),
        AciError::Manifest(schema_error()),
        AciError::Unpack {
            entry: "rootfs/a".into(),
            error: os_error(),
        },
        AciError::Io(rkt_common::IoError::new("reading", "/x", os_error())),
    ]
}

/// One of each error that carries a cause, alone and wrapped as the library wraps them.
fn representative() -> Vec<Box<dyn Error + Send + Sync>> {
    let mut all: Vec<Box<dyn Error + Send + Sync>> = Vec::new();
    for aci in aci_errors() {
        all.push(Box::new(StoreError::Aci(aci)));
    }
    all.extend(aci_errors().into_iter().map(|e| Box::new(e) as _));
    all.push(Box::new(store_io()));
    all.push(Box::new(PodError::Store(store_io())));
    all.push(Box::new(FetchError::Store(store_io())));
    all.push(Box::new(PodError::Io(rkt_common::IoError::new(
        "writing",
        "/x",
        os_error(),
    ))));
    all.push(Box::new(FetchError::Io(rkt_common::IoError::new(
        "writing",
        "/x",
        os_error(),
    ))));
    all.push(Box::new(schema_error()));
    all.push(Box::new(OciError::Manifest(schema_error())));
    all.push(Box::new(StoreError::Oci(OciError::Layer {
        digest: "sha256:00".into(),
        error: AciError::Tar(os_error()),
    })));
    all.push(Box::new(Stage1Error::Io(rkt_common::IoError::new(
        "mounting",
        "/x",
        os_error(),
    ))));
    all.push(Box::new(Stage1Error::Volume {
        mount: "app a: mounting volume v at /v".into(),
        error: os_error(),
    }));
    all.push(Box::new(Stage1Error::Overlay {
        app: "a".into(),
        target: "/x".into(),
        error: os_error(),
    }));
    all.push(Box::new(AppSetupError::Store {
        app: "a".into(),
        error: store_io(),
    }));
    all.push(Box::new(UnitError::Identity {
        app: "a".into(),
        what: "user",
        name: "u".into(),
        error: Box::new(PodError::Io(rkt_common::IoError::new(
            "reading",
            "/etc/passwd",
            os_error(),
        ))),
    }));
    all.push(Box::new(CniError::Io(rkt_common::IoError::new(
        "reading",
        "/x",
        os_error(),
    ))));
    all.push(Box::new(SocketsError::Handoff(os_error())));
    all.push(Box::new(SocketsError::Write {
        path: "/x".into(),
        error: os_error(),
    }));
    all.push(Box::new(SysctlError::Apply {
        name: "net.ipv4.ip_forward".into(),
        error: os_error(),
    }));
    let zbus_io = || Box::new(zbus::Error::InputOutput(os_error().into()));
    all.push(Box::new(SystemdError::NoSystemBus(zbus_io())));
    all.push(Box::new(SystemdError::NoPodBus {
        path: "/x".into(),
        error: os_error(),
    }));
    all.push(Box::new(SystemdError::PodBus {
        path: "/x".into(),
        error: zbus_io(),
    }));
    all.push(Box::new(SystemdError::Call {
        what: "starting a.service".into(),
        error: zbus_io(),
    }));
    all
}

/// Each error's message, then its causes' in order.
fn chain(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        out.push(cause.to_string());
        next = cause.source();
    }
    out
}

#[test]
fn no_message_repeats_its_cause() {
    for error in representative() {
        let chain = chain(error.as_ref());
        for pair in chain.windows(2) {
            assert!(
                !pair[0].contains(&pair[1]),
                "{error:?}: {:?} repeats its cause {:?}; printed: {}",
                pair[0],
                pair[1],
                chain.join(": ")
            );
        }
        // The cause is still said, once.
        let printed = chain.join(": ");
        let os = os_error().to_string();
        if printed.contains(&os) {
            assert_eq!(printed.matches(&os).count(), 1, "{printed}");
        }
        assert!(!printed.contains('\n'), "{printed}");
    }
}

#[test]
fn the_check_catches_a_repeated_cause() {
    #[derive(Debug, thiserror::Error)]
    #[error("reading /x: {source}")]
    struct Repeats {
        source: io::Error,
    }
    let chain = chain(&Repeats { source: os_error() });
    assert!(chain[0].contains(&chain[1]), "{chain:?}");
}
