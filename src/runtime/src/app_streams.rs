//! An app's stderr as a journal stream of its own. systemd connects a unit's stdout and stderr
//! to journald as one stream when both go to the journal, at one priority: nothing in the
//! journal would tell them apart. stage1 opens the stderr stream itself, with the header
//! systemd writes (identifier, unit, priority, level prefix, forwarding) and priority `err`,
//! and passes it as the unit's `StandardErrorFileDescriptor`; stdout stays systemd's, at
//! `info`. `rkt run` shows lines at `err` or more urgent on its stderr.
//!
//! journald refuses a stream whose peer is outside its PID namespace (it could not name the
//! writer), so the streams are opened by a helper entered into the pod's PID namespace
//! (`rkt-stage1 --journal-streams LEADER APP…` under nsenter) and handed back. The helper is
//! gone when the app writes: journald then files the lines under the unit the header names.

use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// The journal priority of every app's stderr lines (`LOG_ERR`).
pub const STDERR_PRIORITY: u8 = 3;

/// The header of a journald stdout stream: identifier, unit, priority, whether lines may
/// carry a `<N>` level prefix, and no forwarding to syslog, kmsg or the console.
fn stream_header(app: &str, priority: u8) -> String {
    format!("{app}\n{app}.service\n{priority}\n1\n0\n0\n0\n")
}

/// Opens a journal stream for app `app`'s stderr to the journald of the pod whose PID 1 is
/// `leader` (a host PID). Only from inside the pod's PID namespace (see the module's text).
pub(crate) fn open_stderr_stream(leader: u32, app: &str) -> io::Result<OwnedFd> {
    let path = format!("/proc/{leader}/root/run/systemd/journal/stdout");
    let stream = UnixStream::connect(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("connecting to {path}: {e}")))?;
    stream.shutdown(Shutdown::Read)?;
    (&stream).write_all(stream_header(app, STDERR_PRIORITY).as_bytes())?;
    Ok(stream.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_one_systemd_writes() {
        assert_eq!(stream_header("web", 3), "web\nweb.service\n3\n1\n0\n0\n0\n");
    }
}
