//! A one-line progress display on stderr, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::output::format_size;

/// Redraws `label: done / total` a few times a second until dropped.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress of `counter` out of `total` bytes; does nothing when stderr is
    /// not a terminal, so scripts and logs stay clean.
    pub fn start(label: String, counter: Arc<AtomicU64>, total: u64) -> Progress {
        Progress::start_transfer(label, counter, Arc::new(AtomicU64::new(total)))
    }

    /// Like [`Progress::start`], for a download whose size is learnt later (`total` stays 0
    /// while unknown, and then only the bytes so far are shown).
    pub fn start_transfer(
        label: String,
        counter: Arc<AtomicU64>,
        total: Arc<AtomicU64>,
    ) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let done = done.clone();
            thread::spawn(move || {
                let mut shown = false;
                // Short imports finish before the first redraw and print nothing.
                while !done.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(200));
                    let n = counter.load(Ordering::Relaxed);
                    let total = total.load(Ordering::Relaxed);
                    if total == 0 {
                        eprint!("\r\x1b[K{label}: {}", format_size(n));
                    } else {
                        let pct = (n * 100).checked_div(total).unwrap_or(100);
                        eprint!(
                            "\r\x1b[K{label}: {} / {} ({pct}%)",
                            format_size(n),
                            format_size(total)
                        );
                    }
                    shown = true;
                }
                if shown {
                    eprint!("\r\x1b[K");
                    let _ = std::io::stderr().flush();
                }
            })
        });
        Progress { done, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
