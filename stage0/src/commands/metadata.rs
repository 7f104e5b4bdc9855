//! `rkt metadata-service`: serves the appc metadata API (rkt_mds) to the apps of pods
//! prepared with `--mds-register`, on TCP (what apps reach) and on a local unix socket, or on
//! whatever sockets systemd hands over (socket activation: LISTEN_FDS/LISTEN_PID).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use rkt_mds::{HmacKey, Request, Service, StorePods};
use rkt_pod::PodNet;

use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Apps of pods run with `rkt run --mds-register` get AC_METADATA_URL=http://HOST:18112/TOKEN:
HOST is 127.0.0.1 with --net=host and the host side (gateway) of the pod's CNI network
otherwise. The service finds pods by that token in --dir's running pods, so it can be started
before or after them. Under systemd, start rkt-metadata.socket (TCP 18112 and
/run/rkt/metadata-svc.sock) and the service is started on the first request.")]
pub struct MetadataServiceArgs {
    /// The TCP port to listen on (all addresses), when not socket-activated
    #[arg(long, default_value_t = rkt_mds::DEFAULT_PORT)]
    pub listen_port: u16,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

pub fn run(global: &GlobalArgs, args: &MetadataServiceArgs) -> Result<()> {
    let source = StorePods::open(&global.dir)?;
    let key = HmacKey::random().context("reading random bytes for the HMAC key")?;
    let service = Arc::new(Service::new(source, key));
    let listeners = match activated_listeners()? {
        Some(listeners) => listeners,
        None => own_listeners(args.listen_port)?,
    };
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let server = match listener {
                Listener::Tcp(l) => tiny_http::Server::from_listener(l, None),
                Listener::Unix(l) => tiny_http::Server::from_listener(l, None),
            }
            .map_err(|e| anyhow::anyhow!("starting the HTTP server: {e}"))?;
            let service = service.clone();
            Ok(std::thread::spawn(move || serve(&server, &service)))
        })
        .collect::<Result<_>>()?;
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

fn serve(server: &tiny_http::Server, service: &Arc<Service<StorePods>>) {
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(e) => {
                eprintln!("rkt: metadata service: {e}");
                continue;
            }
        };
        // A thread per request: one slow client must not hold up the others' 100 ms.
        let service = service.clone();
        std::thread::spawn(move || answer(request, &service));
    }
}

fn answer(mut request: tiny_http::Request, service: &Service<StorePods>) {
    let method = request.method().as_str().to_owned();
    let target = request.url().to_owned();
    let response = match rkt_mds::read_body(request.as_reader()) {
        Ok(Some(body)) => service.handle(&Request {
            method: &method,
            target: &target,
            body: &body,
        }),
        Ok(None) => {
            let _ = request.respond(tiny_http::Response::empty(413));
            return;
        }
        Err(_) => return,
    };
    tracing::debug!("{method} {} → {}", redact(&target), response.status);
    let header = tiny_http::Header::from_bytes("Content-Type", response.content_type)
        .expect("a valid header");
    let _ = request.respond(
        tiny_http::Response::from_data(response.body)
            .with_status_code(response.status)
            .with_header(header),
    );
}

/// The target without its token, for logs.
fn redact(target: &str) -> String {
    match target.trim_start_matches('/').split_once('/') {
        Some((_, rest)) => format!("/…/{rest}"),
        None => "/…".to_owned(),
    }
}

/// The sockets systemd passed (a .socket unit), if it passed any.
fn activated_listeners() -> Result<Option<Vec<Listener>>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        if let Ok(Some(l)) = fds.take_tcp_listener(i) {
            listeners.push(Listener::Tcp(l));
        } else if let Ok(Some(l)) = fds.take_unix_listener(i) {
            listeners.push(Listener::Unix(l));
        } else {
            bail!("socket {i} passed by systemd is neither a TCP nor a unix stream socket");
        }
    }
    Ok(Some(listeners))
}

fn own_listeners(port: u16) -> Result<Vec<Listener>> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let tcp = TcpListener::bind(addr).with_context(|| {
        format!("listening on TCP port {port} (is another metadata service running?)")
    })?;
    let path = Path::new(rkt_mds::SOCKET_PATH);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    // A socket nobody answers on is a leftover; one that answers is another service.
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!(
                "a metadata service already answers on {}; stop it first",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let unix =
        UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(vec![Listener::Tcp(tcp), Listener::Unix(unix)])
}

/// `--mds-register`: refuses a pod its apps could not reach the service from, or when no
/// service answers (connecting also starts a socket-activated one).
pub fn check_reachable(net: PodNet) -> Result<()> {
    if net == PodNet::None {
        bail!(
            "--mds-register needs a network to reach the metadata service on: use --net=host or a CNI network, not --net=none"
        );
    }
    let path = rkt_mds::SOCKET_PATH;
    UnixStream::connect(path).with_context(|| {
        format!(
            "--mds-register: no metadata service answers on {path}; start one with `rkt metadata-service` or `systemctl start rkt-metadata.socket`"
        )
    })?;
    Ok(())
}
