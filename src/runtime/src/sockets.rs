//! Socket-activation passthrough: the listening sockets systemd gave `rkt run` (LISTEN_FDS)
//! reach the pod's app as its own LISTEN_FDS.
//!
//! The way there: `rkt run` hands the sockets to stage1 over a unix socket named after the pod
//! in a root-only directory (SCM_RIGHTS; StartTransientUnit cannot carry them); stage1 passes them to
//! systemd-nspawn as LISTEN_FDS, which gives them to the pod's systemd; that systemd adopts a
//! passed socket into a loaded `.socket` unit listening on the same address, and hands it to
//! the socket's service when it starts. So stage1 writes `<app>.socket` and the app's
//! `<app>.service` as unit files before the pod boots, and makes the root slice want the
//! socket: only units loaded before the sockets are handed out get them.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;

use rkt_schema::Port;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketType, recvmsg, sendmsg,
};

/// At most this many sockets are passed on (systemd's own limit for one unit is higher, but
/// a pod that listens on more than this is not what this is for).
pub const MAX_SOCKETS: usize = 16;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketsError {
    #[error("LISTEN_FDS={0:?} is not a number of sockets (1 to {MAX_SOCKETS})")]
    BadCount(String),
    #[error("the listening sockets passed to this process were taken already")]
    AlreadyTaken,
    #[error("handing the listening sockets to the pod: {0}")]
    Handoff(io::Error),
    #[error(
        "passed socket {name:?} is not a TCP, UDP or unix socket bound to an address ({reason}); only those can be passed to a pod"
    )]
    Unsupported { name: String, reason: String },
    #[error(
        "passed socket {name:?} ({address}) is on no port that an app of the pod declares as socket-activated; with several apps, each socket goes to the app whose image declares its port"
    )]
    NoApp { name: String, address: String },
    #[error("passed socket {name:?} ({address}) is on a port that apps {apps} all declare")]
    SeveralApps {
        name: String,
        address: String,
        apps: String,
    },
    #[error("writing {path}: {error}")]
    Write { path: String, error: io::Error },
}

/// A listening socket and its name (LISTEN_FDNAMES; `unknown` without one, as systemd says).
#[derive(Debug)]
pub struct ListenSocket {
    pub fd: OwnedFd,
    pub name: String,
}

/// Set by the first [`take_listen_fds`]: the descriptors have one owner.
static LISTEN_FDS_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The listening sockets systemd passed to this process (sd_listen_fds(3)): none unless
/// LISTEN_PID is this process. They are ours from then on (closed on exec). Only the first
/// call takes them; any later one fails with [`SocketsError::AlreadyTaken`].
#[allow(unsafe_code)]
pub fn take_listen_fds() -> Result<Vec<ListenSocket>, SocketsError> {
    if LISTEN_FDS_TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(SocketsError::AlreadyTaken);
    }
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(Vec::new());
    };
    if !for_us {
        return Ok(Vec::new());
    }
    let n: usize = count
        .parse()
        .ok()
        .filter(|n| (1..=MAX_SOCKETS).contains(n))
        .ok_or_else(|| SocketsError::BadCount(count.clone()))?;
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .unwrap_or_default()
        .split(':')
        .map(str::to_owned)
        .collect();
    let mut sockets = Vec::new();
    for i in 0..n {
        let raw = 3 + i as i32;
        // SAFETY: LISTEN_PID names this process, so systemd opened fds 3..3+LISTEN_FDS for us
        // before exec (sd_listen_fds(3)); nothing else in this process owns them, and
        // LISTEN_FDS_TAKEN lets only this one call make owners of them.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| SocketsError::Handoff(e.into()))?;
        let name = names
            .get(i)
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| "unknown".to_owned());
        sockets.push(ListenSocket { fd, name });
    }
    Ok(sockets)
}

/// Where `rkt run` hands each pod (`<uuid>`) its sockets: a root-only directory (see
/// [`super::rundir`]), so that no pod, not even a root app on the host's network, can take
/// them first.
pub const LISTEN_FDS_DIR: &str = "/run/rkt/listen-fds";

/// Offers `sockets` to pod `uuid`'s stage1 on a thread: the first root process to connect
/// gets them. Bound before the pod's unit starts, so stage1 cannot look too early; the socket
/// file goes once they are handed over (or with the pod, at gc).
pub fn offer_listen_fds(uuid: &str, sockets: Vec<ListenSocket>) -> Result<(), SocketsError> {
    offer_in(Path::new(LISTEN_FDS_DIR), uuid, sockets)
}

/// In stage1: the sockets `rkt run` offers pod `uuid`, or none when it offers none.
pub fn receive_listen_fds(uuid: &str) -> Result<Vec<ListenSocket>, SocketsError> {
    receive_in(Path::new(LISTEN_FDS_DIR), uuid)
}

/// Removes the socket `rkt run` offered pod `uuid` its sockets on, if no stage1 took them.
pub fn remove_listen_fds_socket(uuid: &str) -> io::Result<()> {
    super::rundir::remove_socket(&Path::new(LISTEN_FDS_DIR).join(uuid))
}

fn offer_in(dir: &Path, uuid: &str, sockets: Vec<ListenSocket>) -> Result<(), SocketsError> {
    super::rundir::private_dir(dir).map_err(SocketsError::Handoff)?;
    let path = dir.join(uuid);
    super::rundir::remove_socket(&path).map_err(SocketsError::Handoff)?;
    let listener = UnixListener::bind(&path).map_err(SocketsError::Handoff)?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // Only root (stage1 runs as root) gets them; anything else is turned away.
            match rustix::net::sockopt::socket_peercred(&stream) {
                Ok(cred) if cred.uid.is_root() => {}
                _ => continue,
            }
            let _ = std::fs::remove_file(&path);
            if let Err(e) = send_sockets(&stream, &sockets) {
                eprintln!("rkt: handing the listening sockets to the pod: {e}");
            }
            return;
        }
    });
    Ok(())
}

fn receive_in(dir: &Path, uuid: &str) -> Result<Vec<ListenSocket>, SocketsError> {
    let stream = match UnixStream::connect(dir.join(uuid)) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(SocketsError::Handoff(e)),
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(SocketsError::Handoff)?;
    recv_sockets(&stream).map_err(SocketsError::Handoff)
}

/// One message: the names, newline-separated, with the sockets as SCM_RIGHTS.
pub fn send_sockets(stream: &UnixStream, sockets: &[ListenSocket]) -> io::Result<()> {
    let names: Vec<&str> = sockets.iter().map(|s| s.name.as_str()).collect();
    let payload = names.join("\n");
    let fds: Vec<_> = sockets.iter().map(|s| s.fd.as_fd()).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("too many sockets for one message"));
    }
    // A payload of at least one byte: a message of none carries no rights.
    let data = format!("{payload}\n");
    sendmsg(
        stream,
        &[IoSlice::new(data.as_bytes())],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// The sockets of one [`send_sockets`] message.
pub fn recv_sockets(stream: &UnixStream) -> io::Result<Vec<ListenSocket>> {
    let mut buf = vec![0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    let text = String::from_utf8_lossy(&buf[..received.bytes]).into_owned();
    let names: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    if names.len() != fds.len() {
        return Err(io::Error::other(format!(
            "{} socket names for {} sockets",
            names.len(),
            fds.len()
        )));
    }
    Ok(fds
        .into_iter()
        .zip(names)
        .map(|(fd, name)| ListenSocket {
            fd,
            name: name.to_owned(),
        })
        .collect())
}

/// The `.socket` unit setting that listens where `socket` does, e.g.
/// `ListenStream=127.0.0.1:8080`: the pod's systemd adopts the passed socket that matches it.
pub fn listen_directive(socket: &ListenSocket) -> Result<String, SocketsError> {
    let unsupported = |reason: String| SocketsError::Unsupported {
        name: socket.name.clone(),
        reason,
    };
    let kind = match rustix::net::sockopt::socket_type(&socket.fd) {
        Ok(SocketType::STREAM) => "ListenStream",
        Ok(SocketType::DGRAM) => "ListenDatagram",
        Ok(SocketType::SEQPACKET) => "ListenSequentialPacket",
        Ok(other) => return Err(unsupported(format!("socket type {}", other.as_raw()))),
        Err(e) => return Err(unsupported(e.to_string())),
    };
    // Accept=yes passes one accepted connection, not a socket to listen on.
    if kind != "ListenDatagram"
        && !rustix::net::sockopt::socket_acceptconn(&socket.fd).unwrap_or(false)
    {
        return Err(unsupported(
            "a connection, not a listening socket: use Accept=no in the .socket unit".into(),
        ));
    }
    let address = rustix::net::getsockname(&socket.fd).map_err(|e| unsupported(e.to_string()))?;
    let address = if let Ok(inet) = std::net::SocketAddr::try_from(address.clone()) {
        inet.to_string()
    } else if let Ok(unix) = rustix::net::SocketAddrUnix::try_from(address) {
        match (unix.path(), unix.abstract_name()) {
            (Some(path), _) => path.to_string_lossy().into_owned(),
            (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
            _ => return Err(unsupported("an unnamed unix socket".into())),
        }
    } else {
        return Err(unsupported("not an IP or unix address".into()));
    };
    Ok(format!("{kind}={address}"))
}

/// Which app gets which passed socket (one list per app, in the order of `apps`): all of them
/// for a pod of one app; otherwise each goes to the one app that declares its port and
/// protocol as socket-activated (appc `ports`, `socketActivated`).
pub fn route_sockets(
    sockets: Vec<ListenSocket>,
    apps: &[(&str, &[Port])],
) -> Result<Vec<Vec<ListenSocket>>, SocketsError> {
    let mut routed: Vec<Vec<ListenSocket>> = apps.iter().map(|_| Vec::new()).collect();
    if let [_] = apps {
        routed[0] = sockets;
        return Ok(routed);
    }
    for socket in sockets {
        let directive = listen_directive(&socket)?;
        let address = directive.split_once('=').map_or("", |(_, a)| a).to_owned();
        let protocol = if directive.starts_with("ListenStream=") {
            "tcp"
        } else {
            "udp"
        };
        let port = address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u32>().ok());
        let takers: Vec<usize> = apps
            .iter()
            .enumerate()
            .filter(|(_, (_, ports))| {
                ports.iter().any(|p| {
                    p.socket_activated
                        && p.protocol == protocol
                        && port.is_some_and(|n| (u32::from(p.port)..=p.last()).contains(&n))
                })
            })
            .map(|(i, _)| i)
            .collect();
        match takers.as_slice() {
            [one] => routed[*one].push(socket),
            [] => {
                return Err(SocketsError::NoApp {
                    name: socket.name,
                    address,
                });
            }
            several => {
                let names: Vec<&str> = several.iter().map(|i| apps[*i].0).collect();
                return Err(SocketsError::SeveralApps {
                    name: socket.name,
                    address,
                    apps: names.join(", "),
                });
            }
        }
    }
    Ok(routed)
}

/// Writes, in the pod's unit directory, `<app>.socket` (listening where the passed sockets
/// do), the app's unit `<app>.service` (`service_unit`, see [`super::AppUnit::unit_file`]) and
/// the root slice's wish for the socket, which loads it before the pod's systemd gives out the
/// sockets it was passed.
pub fn write_socket_units(
    unit_dir: &Path,
    app: &str,
    sockets: &[ListenSocket],
    service_unit: &str,
) -> Result<(), SocketsError> {
    let mut socket_unit = format!(
        "[Unit]\nDescription=rkt app {app}: the sockets passed to the pod\n\n[Socket]\nService={app}.service\n"
    );
    for socket in sockets {
        socket_unit.push_str(&listen_directive(socket)?);
        socket_unit.push('\n');
    }
    // A socket unit names all its fds alike: the first passed socket's name (if systemd
    // would take it) names them all.
    if let Some(name) = sockets.first().map(|s| s.name.as_str())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        socket_unit.push_str(&format!("FileDescriptorName={name}\n"));
    }
    let write = |path: &Path, text: &str| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SocketsError::Write {
                path: parent.display().to_string(),
                error: source,
            })?;
        }
        std::fs::write(path, text).map_err(|source| SocketsError::Write {
            path: path.display().to_string(),
            error: source,
        })
    };
    write(&unit_dir.join(format!("{app}.socket")), &socket_unit)?;
    write(&unit_dir.join(format!("{app}.service")), service_unit)?;
    write(
        &unit_dir.join(format!("-.slice.d/rkt-sockets-{app}.conf")),
        &format!("[Unit]\nWants={app}.socket\n"),
    )?;
    Ok(())
}

/// `command` run with `sockets` as its LISTEN_FDS (fds 3…, LISTEN_PID its own PID), through
/// bash (which places the fds and execs it, keeping its PID; dash cannot name fds above 9). The returned fds must stay open
/// until the command is spawned.
pub fn with_listen_fds(
    command: &Command,
    sockets: &[ListenSocket],
) -> Result<(Command, Vec<OwnedFd>), SocketsError> {
    // Copies above any fd the shell could place, inherited (no close-on-exec).
    const ABOVE: i32 = 100;
    let mut copies = Vec::new();
    for socket in sockets {
        let copy = rustix::io::fcntl_dupfd_cloexec(&socket.fd, ABOVE)
            .map_err(|e| SocketsError::Handoff(e.into()))?;
        rustix::io::fcntl_setfd(&copy, rustix::io::FdFlags::empty())
            .map_err(|e| SocketsError::Handoff(e.into()))?;
        copies.push(copy);
    }
    let mut script = String::new();
    for (i, copy) in copies.iter().enumerate() {
        script.push_str(&format!(
            "exec {}<&{} {}<&-; ",
            3 + i,
            copy.as_raw_fd(),
            copy.as_raw_fd()
        ));
    }
    let names: Vec<&str> = sockets.iter().map(|s| s.name.as_str()).collect();
    script.push_str(&format!(
        "LISTEN_PID=$$ LISTEN_FDS={} LISTEN_FDNAMES='{}' exec \"$@\"",
        sockets.len(),
        names.join(":").replace('\'', "")
    ));
    let mut wrapped = Command::new("bash");
    wrapped
        .arg("-c")
        .arg(script)
        .arg("bash")
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    Ok((wrapped, copies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sockets_cross_the_handoff_with_their_names() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let uuid = format!("test-{}", std::process::id());
        let run = tempfile::tempdir().unwrap();
        let dir = run.path().join("listen-fds");
        offer_in(
            &dir,
            &uuid,
            vec![ListenSocket {
                fd: tcp.into(),
                name: "web".into(),
            }],
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "only root may reach the offer");
        let got = receive_in(&dir, &uuid).unwrap();
        assert_eq!(got.len(), 1);
        // Handed over: the socket file is gone.
        assert!(!dir.join(&uuid).exists());
        assert_eq!(got[0].name, "web");
        assert_eq!(
            listen_directive(&got[0]).unwrap(),
            format!("ListenStream=127.0.0.1:{port}")
        );
        // The received socket is the same listening socket: a client reaches it.
        let listener = TcpListener::from(got.into_iter().next().unwrap().fd);
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        served.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn an_accepted_connection_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let connection = ListenSocket {
            fd: client.into(),
            name: "conn".into(),
        };
        let err = listen_directive(&connection).unwrap_err().to_string();
        assert!(err.contains("Accept=no"), "{err}");
    }

    fn port(json: &str) -> Port {
        serde_json::from_str(json).unwrap()
    }

    fn tcp_socket(name: &str) -> (ListenSocket, u16) {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let socket = ListenSocket {
            fd: tcp.into(),
            name: name.into(),
        };
        (socket, port)
    }

    #[test]
    fn sockets_go_to_the_app_that_declares_their_port() {
        let (web, web_port) = tcp_socket("web");
        let (api, api_port) = tcp_socket("api");
        let front = [port(&format!(
            r#"{{"name":"http","protocol":"tcp","port":{web_port},"socketActivated":true}}"#
        ))];
        let back = [
            port(&format!(
                r#"{{"name":"api","protocol":"tcp","port":{api_port},"socketActivated":true}}"#
            )),
            // The same port, but not socket-activated: not a taker.
            port(&format!(
                r#"{{"name":"other","protocol":"tcp","port":{web_port}}}"#
            )),
        ];
        let routed = route_sockets(
            vec![web, api],
            &[("front", &front[..]), ("back", &back[..])],
        )
        .unwrap();
        let names: Vec<Vec<&str>> = routed
            .iter()
            .map(|r| r.iter().map(|s| s.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["web"], vec!["api"]]);
    }

    #[test]
    fn a_socket_no_app_declares_is_refused_but_one_app_takes_all() {
        let (web, _) = tcp_socket("web");
        let err = route_sockets(vec![web], &[("a", &[][..]), ("b", &[][..])]).unwrap_err();
        assert!(matches!(err, SocketsError::NoApp { .. }), "{err}");
        let (web, _) = tcp_socket("web");
        let routed = route_sockets(vec![web], &[("only", &[][..])]).unwrap();
        assert_eq!(routed[0].len(), 1);
    }

    #[test]
    fn no_offer_means_no_sockets() {
        let run = tempfile::tempdir().unwrap();
        assert!(
            receive_in(run.path(), "nobody-offers-this")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn socket_units_listen_where_the_passed_sockets_do() {
        let dir = tempfile::tempdir().unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let sockets = [ListenSocket {
            fd: udp.into(),
            name: "dns".into(),
        }];
        write_socket_units(dir.path(), "app", &sockets, "[Service]\n").unwrap();
        let unit = std::fs::read_to_string(dir.path().join("app.socket")).unwrap();
        assert!(
            unit.contains(&format!("\nListenDatagram=127.0.0.1:{port}\n")),
            "{unit}"
        );
        assert!(unit.contains("\nService=app.service\n"), "{unit}");
        assert!(unit.contains("\nFileDescriptorName=dns\n"), "{unit}");
        let wants =
            std::fs::read_to_string(dir.path().join("-.slice.d/rkt-sockets-app.conf")).unwrap();
        assert_eq!(wants, "[Unit]\nWants=app.socket\n");
        assert!(dir.path().join("app.service").is_file());
    }

    #[test]
    fn a_command_gets_the_sockets_as_listen_fds() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let sockets = [ListenSocket {
            fd: tcp.into(),
            name: "web".into(),
        }];
        let mut inner = Command::new("sh");
        inner.args([
            "-c",
            r#"echo "$LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES"; test -S /proc/self/fd/3 || readlink /proc/self/fd/3"#,
        ]);
        let (mut command, _copies) = with_listen_fds(&inner, &sockets).unwrap();
        let out = command.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words.len(), 4, "{text}");
        assert_eq!(
            words[0], words[1],
            "LISTEN_PID is the command's own PID: {text}"
        );
        assert_eq!(&words[2..], ["1", "web"]);
    }
}
