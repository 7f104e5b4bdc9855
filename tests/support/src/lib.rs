//! Fixtures shared by rkt's tests: ACI archives built in memory, GnuPG keys and signatures,
//! nginx serving files over HTTPS on loopback, and OCI layouts.

pub mod aci;
pub mod cli;
pub mod gpg;
pub mod nginx;
pub mod oci_layout;
