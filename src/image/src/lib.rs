//! Every way an image reaches rkt's store: ACI files and https:// URLs, appc discovery with
//! its HTTP cache, OCI registries and archives, with the credentials of auth.d and the trust
//! store that decides whose signatures count. What arrives is verified here and handed to
//! `rkt-store` as checked streams; the store itself knows nothing of networks.

pub mod auth;
pub mod fetch;
pub mod http;
pub mod oci;
pub mod trust;
