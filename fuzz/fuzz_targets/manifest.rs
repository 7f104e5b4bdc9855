//! Manifest parsing never panics, and whatever parses and validates survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkt_schema::{ImageManifest, PodManifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ImageManifest::from_json(data) {
        let again = ImageManifest::from_json(m.to_json_pretty().as_bytes())
            .expect("a valid image manifest stays valid after serialization");
        assert_eq!(m, again);
    }
    if let Ok(p) = PodManifest::from_json(data) {
        let again = PodManifest::from_json(p.to_json_pretty().as_bytes())
            .expect("a valid pod manifest stays valid after serialization");
        assert_eq!(p, again);
    }
});
