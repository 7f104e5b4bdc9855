//! What every part of rkt shares and nothing in rkt's domain: `flock(2)` guards, and the
//! `--insecure-options` a user chose.

pub mod excerpt;
pub mod fs;
pub mod insecure;
mod io_error;
pub mod lock;

pub use io_error::{IoContext, IoError};
