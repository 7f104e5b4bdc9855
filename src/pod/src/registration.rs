//! A pod's registration with the metadata service (`--mds-register`): the random token that
//! names it to the service, and the URL its apps are given.

use std::io::Read;

/// The port the metadata service listens on, as in the original rkt.
pub const MDS_PORT: u16 = 18112;

/// A fresh registration token: 256 random bits, hex (it goes in a URL path).
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Fills `buf` from the kernel's random source.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// `AC_METADATA_URL` for an app whose pod reaches the service at `host`.
pub fn metadata_url(host: std::net::IpAddr, token: &str) -> String {
    format!(
        "http://{}/{token}",
        std::net::SocketAddr::new(host, MDS_PORT)
    )
}
