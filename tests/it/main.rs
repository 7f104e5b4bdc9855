//! Library integration tests: the image store and the ACI importer on real files (run as root,
//! since images keep their owners and device nodes).

#[path = "../common/aci.rs"]
mod aci;
#[path = "../common/gpg.rs"]
mod gpg;
mod hostile;
mod oci;
#[path = "../common/oci_layout.rs"]
mod oci_layout;
mod pods;
mod registry;
mod registry_fetch;
mod render;
mod store;
mod support;
mod trust;
