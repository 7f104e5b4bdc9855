//! What every part of rkt shares and nothing in rkt's domain: `flock(2)` guards, and the
//! `--insecure-options` a user chose.

pub mod excerpt;
pub mod fs;
pub mod insecure;
pub mod lock;
