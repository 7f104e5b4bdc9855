//! Messages to the journal. A generator's own stderr goes to systemd's console, where nobody
//! looks: messages go to journald's socket when it listens (every `daemon-reload`), else to the
//! kernel log, which journald reads once it starts (early boot), and to stderr as well.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::net::UnixDatagram;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
const IDENTIFIER: &str = "rkt-pod-generator";

/// Logs `message` at priority err (3).
pub fn error(message: &str) {
    // One line: the journal's simple field format ends a field at a newline.
    let line = message.replace('\n', " ");
    eprintln!("{IDENTIFIER}: {line}");
    let entry = format!("PRIORITY=3\nSYSLOG_IDENTIFIER={IDENTIFIER}\nMESSAGE={line}\n");
    let sent = UnixDatagram::unbound().and_then(|s| s.send_to(entry.as_bytes(), JOURNAL_SOCKET));
    if sent.is_err()
        && let Ok(mut kmsg) = OpenOptions::new().write(true).open("/dev/kmsg")
    {
        let _ = kmsg.write_all(format!("<3>{IDENTIFIER}: {line}\n").as_bytes());
    }
}
