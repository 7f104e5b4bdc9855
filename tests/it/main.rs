//! Library integration tests: the image store and the ACI importer on real files (run as root,
//! since images keep their owners and device nodes).

use rkt_test_support::aci;
use rkt_test_support::gpg;
mod error_chains;
mod hostile;
mod oci;
use rkt_test_support::oci_layout;
mod pods;
mod registry;
mod registry_fetch;
mod render;
mod store;
mod support;
mod trust;
