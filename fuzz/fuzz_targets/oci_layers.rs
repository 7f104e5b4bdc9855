//! Applying two arbitrary OCI layers in order (the second can white out, or write through
//! symlinks, what the first made) never panics and never touches anything outside the root:
//! beside the root sits a directory with a file that must stay as it is, and nothing else.
//! Input: one byte choosing where the first layer ends, then both layers' bytes (gzip, zstd
//! or plain tar, as layer blobs are).
#![no_main]

use std::fs;

use libfuzzer_sys::fuzz_target;
use rkt_store::aci::Extractor;
use rkt_store::oci::{Digest, apply_layer};

fuzz_target!(|data: &[u8]| {
    let Some((&split, layers)) = data.split_first() else {
        return;
    };
    let at = layers.len() * usize::from(split) / 256;
    let (lower, upper) = layers.split_at(at);
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = tmp.path().join("rootfs");
    let outside = tmp.path().join("outside");
    fs::create_dir(&rootfs).expect("rootfs");
    fs::create_dir(&outside).expect("outside");
    fs::write(outside.join("victim"), b"untouched").expect("victim");
    let digest = Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("digest");
    if let Ok(mut extractor) = Extractor::for_layers(&rootfs) {
        for layer in [lower, upper] {
            if apply_layer(&mut extractor, &mut &layer[..], &digest).is_err() {
                break;
            }
        }
    }
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<_> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        listing(tmp.path()),
        ["outside", "rootfs"],
        "something was written beside the root"
    );
    assert_eq!(listing(&outside), ["victim"], "the directory beside the root changed");
    assert_eq!(
        fs::read(outside.join("victim")).expect("victim"),
        b"untouched"
    );
});
