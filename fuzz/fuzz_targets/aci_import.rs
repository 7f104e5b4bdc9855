//! Importing arbitrary bytes as an ACI never panics and never writes outside the rootfs: the
//! rootfs sits in a directory next to a sentinel that must stay alone and unchanged.
#![no_main]

use std::fs;
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = tmp.path().join("rootfs");
    fs::create_dir(&rootfs).expect("rootfs");
    fs::write(tmp.path().join("sentinel"), b"untouched").expect("sentinel");
    let _ = rkt_store::aci::unpack(Cursor::new(data.to_vec()), &rootfs);
    let mut names: Vec<_> = fs::read_dir(tmp.path())
        .expect("read tmp")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["rootfs", "sentinel"],
        "something was written next to rootfs"
    );
    assert_eq!(
        fs::read(tmp.path().join("sentinel")).expect("sentinel"),
        b"untouched"
    );
});
