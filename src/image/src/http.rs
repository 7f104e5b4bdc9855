//! The one HTTP(S) client configuration every network fetch uses (discovery, ACI downloads,
//! registries), so that TLS roots, timeouts and the insecure options are decided in one place.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::auth::AuthConfig;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// How a client may talk to servers; both default to the safe choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Allow plain `http://` (`--insecure-options=http`).
    pub allow_http: bool,
    /// Accept any TLS certificate (`--insecure-options=tls`).
    pub skip_tls_verify: bool,
}

#[derive(Debug, Error)]
pub enum HttpError {
    #[error(
        "no trusted TLS root certificates found (install ca-certificates, or point SSL_CERT_FILE at a bundle)"
    )]
    NoRoots,
}

/// The user agent servers see.
pub const USER_AGENT: &str = concat!("rkt/", env!("CARGO_PKG_VERSION"));

/// Builds an agent that trusts the system's CA store (or `SSL_CERT_FILE`/`SSL_CERT_DIR` when
/// set), refuses plain HTTP unless the policy allows it, and leaves status codes to the caller
/// (a 304 or 401 is an answer, not an error).
pub fn agent(policy: HttpPolicy) -> Result<ureq::Agent, HttpError> {
    agent_with_idle_timeout(policy, IDLE_TIMEOUT)
}

/// How long a server may stay silent while rkt waits for its answer or the rest of a body:
/// a stalled server fails the fetch instead of hanging it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// [`agent`] with another idle timeout (each read from the server must make progress
/// within it).
pub fn agent_with_idle_timeout(
    policy: HttpPolicy,
    idle_timeout: Duration,
) -> Result<ureq::Agent, HttpError> {
    Ok(config(policy, idle_timeout)?.build().into())
}

/// [`agent`] that sends the `Authorization` header configured for a host (`rktKind: auth` in
/// auth.d) with every request to that host. ureq drops the header when a redirect leads
/// elsewhere, so credentials reach only the hosts they were configured for.
pub fn agent_with_auth(policy: HttpPolicy, auth: AuthConfig) -> Result<ureq::Agent, HttpError> {
    let add_auth = move |mut request: ureq::http::Request<ureq::SendBody>,
                         next: ureq::middleware::MiddlewareNext|
          -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let uri = request.uri();
        let host = uri.host().unwrap_or("");
        // `host:port` first, then the host alone (as most files name it).
        let configured = uri
            .port_u16()
            .and_then(|port| auth.host(&format!("{host}:{port}")))
            .or_else(|| auth.host(host));
        if !request.headers().contains_key("authorization")
            && let Some(value) =
                configured.and_then(|a| ureq::http::HeaderValue::from_str(&a.header()).ok())
        {
            request.headers_mut().insert("authorization", value);
        }
        next.handle(request)
    };
    Ok(config(policy, IDLE_TIMEOUT)?
        .middleware(add_auth)
        .build()
        .into())
}

fn config(
    policy: HttpPolicy,
    idle_timeout: Duration,
) -> Result<ureq::config::ConfigBuilder<ureq::typestate::AgentScope>, HttpError> {
    let tls = if policy.skip_tls_verify {
        TlsConfig::builder().disable_verification(true).build()
    } else {
        TlsConfig::builder().root_certs(system_roots()?).build()
    };
    let config = ureq::Agent::config_builder()
        .https_only(!policy.allow_http)
        .http_status_as_error(false)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(idle_timeout))
        .tls_config(tls);
    Ok(config)
}

fn system_roots() -> Result<RootCerts, HttpError> {
    // Unreadable entries in the store are skipped: one bad file must not stop every fetch.
    let loaded = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> = loaded
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        return Err(HttpError::NoRoots);
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}
