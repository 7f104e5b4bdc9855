//! Blob downloads: each blob streams into its own file through a size and digest check, on
//! its own thread, so that several layers download at once.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::{Descriptor, OciError, VerifyingReader};

/// One blob on its way into a file.
#[derive(Default)]
pub struct Transfer {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// `Some` once the download ended: true when the blob matched its digest and size.
    ok: Option<bool>,
    error: Option<OciError>,
}

/// Chunk size of blob reads and writes.
const CHUNK: usize = 256 * 1024;

impl Transfer {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking thread fails the whole import anyway; the state stays readable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Ends the transfer with `error` (the blob could not be requested, or the import is
    /// being abandoned).
    pub fn fail(&self, error: OciError) {
        self.update(|s| {
            if s.ok.is_none() {
                s.ok = Some(false);
                s.error = Some(error);
            }
        });
    }

    /// Copies `blob` into `out` through a size and digest check, adding to `received` as bytes
    /// arrive; stops early when `abort` is set. The outcome is kept for [`Transfer::wait`].
    pub fn run(
        &self,
        blob: Box<dyn Read + Send>,
        mut out: File,
        desc: &Descriptor,
        what: &str,
        received: &AtomicU64,
        abort: &AtomicBool,
    ) {
        let mut verified = VerifyingReader::new(blob, desc.size);
        let mut buf = vec![0u8; CHUNK];
        let result = loop {
            if abort.load(Ordering::Relaxed) {
                break Err(OciError::Abandoned);
            }
            let n = match verified.read(&mut buf) {
                Ok(0) => break verified.finish(&desc.digest, desc.size, what),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(read_error(what, &e)),
            };
            if let Err(e) = out.write_all(&buf[..n]) {
                break Err(OciError::Store {
                    what: what.to_owned(),
                    error: e,
                });
            }
            received.fetch_add(n as u64, Ordering::Relaxed);
        };
        let result = result.and_then(|()| {
            out.sync_all().map_err(|e| OciError::Store {
                what: what.to_owned(),
                error: e,
            })
        });
        match result {
            Ok(()) => self.update(|s| s.ok = Some(true)),
            Err(e) => self.fail(e),
        }
    }

    /// True once the download ended in failure.
    pub fn failed(&self) -> bool {
        self.lock().ok == Some(false)
    }

    /// Waits until the download ended, however it ended.
    pub fn wait_finished(&self) {
        let mut state = self.lock();
        while state.ok.is_none() {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits for the outcome: `Ok` once the whole blob is in its file and matched its digest.
    /// The error is handed out once.
    pub fn wait(&self) -> Result<(), OciError> {
        self.wait_finished();
        let mut state = self.lock();
        match state.ok {
            Some(true) => Ok(()),
            _ => Err(state
                .error
                .take()
                .unwrap_or_else(|| OciError::invalid("a layer download", "it failed"))),
        }
    }
}

/// A read error from a server, said plainly when the server went quiet.
pub fn read_error(what: &str, e: &io::Error) -> OciError {
    if is_timeout(e) {
        OciError::Stalled {
            what: what.to_owned(),
        }
    } else {
        OciError::invalid(what, format!("reading it failed: {e}"))
    }
}

/// True for a read that ended because the server sent nothing within a timeout (sources
/// report their timeouts as `TimedOut`).
pub fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;

    fn desc(data: &[u8]) -> Descriptor {
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": Digest::of(data).to_string(),
            "size": data.len(),
        }))
        .unwrap()
    }

    #[test]
    fn a_transfer_stores_the_blob_and_refuses_a_wrong_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let received = AtomicU64::new(0);
        let abort = AtomicBool::new(false);
        let path = tmp.path().join("blob");
        let transfer = Transfer::default();
        transfer.run(
            Box::new(io::Cursor::new(data.clone())),
            File::create(&path).unwrap(),
            &desc(&data),
            "blob",
            &received,
            &abort,
        );
        transfer.wait().unwrap();
        assert!(!transfer.failed());
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(received.load(Ordering::Relaxed), data.len() as u64);

        // The same bytes announced with another digest: wait() says why.
        let transfer = Transfer::default();
        let mut d = desc(&data);
        d.digest = Digest::of(b"other");
        transfer.run(
            Box::new(io::Cursor::new(data.clone())),
            File::create(tmp.path().join("blob2")).unwrap(),
            &d,
            "blob",
            &received,
            &abort,
        );
        assert!(transfer.failed());
        let err = transfer.wait().unwrap_err().to_string();
        assert!(err.contains("does not match its digest"), "{err}");

        // An import being abandoned stops the download.
        let transfer = Transfer::default();
        abort.store(true, Ordering::Relaxed);
        transfer.run(
            Box::new(io::Cursor::new(data.clone())),
            File::create(tmp.path().join("blob3")).unwrap(),
            &desc(&data),
            "blob",
            &received,
            &abort,
        );
        assert!(matches!(transfer.wait(), Err(OciError::Abandoned)));
    }
}
