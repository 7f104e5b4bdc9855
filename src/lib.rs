//! rkt's shared library: the App Container schema, the content-addressed image store and the
//! safe ACI importer. The `rkt` command (stage0) and the stage1 binary are thin shells around it.
//! See ARCHITECTURE.md for the map and the invariants.

pub mod aci;
pub mod auth;
pub mod excerpt;
pub mod fetch;
pub mod http;
pub mod insecure;
pub mod lock;
pub mod mds;
pub mod oci;
pub mod pod;
pub mod schema;
pub mod stage1;
pub mod store;
pub mod systemd;
pub mod trust;

#[cfg(test)]
mod error_chains;
