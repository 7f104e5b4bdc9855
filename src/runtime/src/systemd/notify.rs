//! sd_notify(3) without libsystemd: one datagram to the socket systemd named in
//! `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `message` (e.g. `READY=1`) to the systemd that started this process, if it asked for
/// notifications; `Ok(false)` when it did not (no `$NOTIFY_SOCKET`).
pub fn sd_notify(message: &str) -> io::Result<bool> {
    match std::env::var("NOTIFY_SOCKET") {
        Ok(socket) if !socket.is_empty() => notify_socket(&socket, message).map(|()| true),
        _ => Ok(false),
    }
}

/// Sends `message` to the notification socket `socket`, as named in `$NOTIFY_SOCKET`.
pub fn notify_socket(socket: &str, message: &str) -> io::Result<()> {
    let address = match socket.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(socket)?,
    };
    UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &address)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn received(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn reaches_a_socket_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        notify_socket(path.to_str().unwrap(), "READY=1").unwrap();
        assert_eq!(received(&socket), "READY=1");
    }

    #[test]
    fn reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("rkt-test/notify/{}", std::process::id());
        let socket =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        notify_socket(&format!("@{name}"), "READY=1\nSTATUS=up").unwrap();
        assert_eq!(received(&socket), "READY=1\nSTATUS=up");
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(notify_socket(dir.path().join("none").to_str().unwrap(), "READY=1").is_err());
    }
}
