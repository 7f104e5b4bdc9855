//! `rkt run` shows its apps' output: it follows the pod's journal (`journalctl -M rkt-<uuid>
//! --follow -o json`) and writes each app's lines to its own stdout or stderr. The apps write
//! to the pod's journald, never to `rkt run`: killing `rkt run` loses no line and stops no app,
//! and a terminal that stops reading only holds up `journalctl` (a pipe's worth), not the pod.
//!
//! An app's stderr is the journal stream stage1 opens with priority 3 (`err`); its stdout
//! has priority 6 (`info`). A line at `err` or more urgent goes to stderr (which is also
//! where a stdout line that says `<3>` or less, journald's level prefix, ends up).
//! With several apps each line starts with `APP: ` (an app name has no `:`).
//!
//! The end: once the pod's unit is inactive, stage1 has had journald write everything to the
//! pod's journal directory (the host's `/var/log/journal/<machine-id>`, or the pod's own when
//! the host keeps no persistent journal). The follower is stopped and what it had not yet
//! shown is read from that directory after its last cursor.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use serde_json::Value;

/// Which lines are shown, and how.
#[derive(Clone)]
pub struct Printer {
    /// The apps whose lines are shown (their `SYSLOG_IDENTIFIER`); empty: any app of the pod
    /// (a mutable pod, whose apps come and go).
    apps: Vec<String>,
    /// Prefix each line with its app's name.
    prefix: bool,
}

/// The pod's own services, whose output is not an app's (a mutable pod shows any stream).
const POD_SERVICES: &[&str] = &["dbus-daemon", "dbus", "systemd-journald", "systemd"];

use rkt_runtime::STDERR_PRIORITY;

impl Printer {
    pub fn new(apps: Vec<String>, mutable: bool) -> Printer {
        let prefix = mutable || apps.len() > 1;
        Printer {
            apps: if mutable { Vec::new() } else { apps },
            prefix,
        }
    }

    /// `journalctl` arguments that select the apps' output.
    fn matches(&self) -> Vec<String> {
        let mut args = vec!["_TRANSPORT=stdout".to_owned()];
        args.extend(self.apps.iter().map(|a| format!("SYSLOG_IDENTIFIER={a}")));
        args
    }

    /// Prints one entry (a line of `journalctl -o json`); returns its cursor.
    fn print(&self, line: &str) -> Option<String> {
        let entry: Value = serde_json::from_str(line).ok()?;
        let cursor = entry["__CURSOR"].as_str().map(str::to_owned);
        if let Some(text) = render(&entry, self.prefix) {
            let app = entry["SYSLOG_IDENTIFIER"].as_str().unwrap_or_default();
            if self.apps.is_empty() && POD_SERVICES.contains(&app) {
                return cursor;
            }
            let to_stderr = entry["PRIORITY"]
                .as_str()
                .and_then(|p| p.parse::<u8>().ok())
                .is_some_and(|p| p <= STDERR_PRIORITY);
            // A reader that went away (a closed pipe) stops nothing: the pod runs on.
            let _ = if to_stderr {
                let mut err = std::io::stderr().lock();
                err.write_all(text.as_bytes()).and_then(|_| err.flush())
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush())
            };
        }
        cursor
    }
}

/// The line shown for a journal entry: its message (bytes that are not UTF-8 replaced),
/// prefixed with `APP: ` when asked, ending in a newline.
fn render(entry: &Value, prefix: bool) -> Option<String> {
    let message = match &entry["MESSAGE"] {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => return None,
    };
    let app = entry["SYSLOG_IDENTIFIER"].as_str().unwrap_or("?");
    Some(if prefix {
        format!("{app}: {message}\n")
    } else {
        format!("{message}\n")
    })
}

/// A running `journalctl --follow` of the pod's journal, printing as it goes.
pub struct Follower {
    printer: Printer,
    child: Option<Child>,
    reader: Option<JoinHandle<Option<String>>>,
}

impl Follower {
    /// Starts following machine `machine`'s journal from its first entry. If `journalctl`
    /// cannot run, [`Follower::finish`] still shows everything from the journal directory.
    pub fn start(machine: &str, printer: Printer) -> Follower {
        let child = Command::new("journalctl")
            .args(["--follow", "--no-tail", "--all", "--output=json", "--quiet"])
            .arg(format!("--machine={machine}"))
            .args(printer.matches())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                tracing::debug!("cannot follow the pod's journal: {e}");
                return Follower {
                    printer,
                    child: None,
                    reader: None,
                };
            }
        };
        let stdout = child.stdout.take();
        let shown = printer.clone();
        let reader = stdout.map(|stdout| std::thread::spawn(move || show_all(stdout, &shown)));
        Follower {
            printer,
            child: Some(child),
            reader,
        }
    }

    /// The pod ended: stops following and shows what the follower had not, from the pod's
    /// journal directory `dir` (if it has one).
    pub fn finish(mut self, dir: Option<&Path>) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
        let cursor = self.reader.take().and_then(|r| r.join().ok()).flatten();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let Some(dir) = dir.filter(|d| d.is_dir()) else {
            return;
        };
        let mut cmd = Command::new("journalctl");
        cmd.args(["--all", "--output=json", "--quiet"])
            .arg("--directory")
            .arg(dir);
        if let Some(cursor) = &cursor {
            cmd.arg(format!("--after-cursor={cursor}"));
        }
        let child = cmd
            .args(self.printer.matches())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(mut child) => {
                if let Some(stdout) = child.stdout.take() {
                    show_all(stdout, &self.printer);
                }
                let _ = child.wait();
            }
            Err(e) => tracing::debug!("cannot read the pod's journal: {e}"),
        }
    }
}

impl Drop for Follower {
    /// `rkt run` failed while the pod ran: no `journalctl` is left behind.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Prints every entry `journalctl` writes; returns the last cursor.
fn show_all(stdout: impl std::io::Read, printer: &Printer) -> Option<String> {
    let mut last = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(cursor) = printer.print(&line) {
            last = Some(cursor);
        }
    }
    last
}

/// The pod's journal directory once it has ended.
pub fn journal_dir(pod_dir: &Path, uuid: &str) -> PathBuf {
    rkt_runtime::pod_journal_dir(pod_dir, uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_only_when_asked() {
        let entry: Value =
            serde_json::from_str(r#"{"MESSAGE":"hello","SYSLOG_IDENTIFIER":"web","PRIORITY":"6"}"#)
                .unwrap();
        assert_eq!(render(&entry, false).as_deref(), Some("hello\n"));
        assert_eq!(render(&entry, true).as_deref(), Some("web: hello\n"));
    }

    #[test]
    fn binary_messages_are_shown_lossily() {
        let entry: Value =
            serde_json::from_str(r#"{"MESSAGE":[104,105,255],"SYSLOG_IDENTIFIER":"a"}"#).unwrap();
        assert_eq!(render(&entry, false).as_deref(), Some("hi\u{fffd}\n"));
        let entry: Value = serde_json::from_str(r#"{"MESSAGE":null}"#).unwrap();
        assert_eq!(render(&entry, false), None);
    }

    #[test]
    fn the_apps_output_is_selected() {
        let printer = Printer::new(vec!["a".into(), "b".into()], false);
        assert!(printer.prefix);
        assert_eq!(
            printer.matches(),
            [
                "_TRANSPORT=stdout",
                "SYSLOG_IDENTIFIER=a",
                "SYSLOG_IDENTIFIER=b"
            ]
        );
        let mutable = Printer::new(vec!["a".into()], true);
        assert!(mutable.prefix);
        assert_eq!(mutable.matches(), ["_TRANSPORT=stdout"]);
        assert!(!Printer::new(vec!["a".into()], false).prefix);
    }
}
