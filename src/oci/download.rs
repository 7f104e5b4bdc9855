//! Blob downloads that run ahead of layer application: each blob streams into a file through
//! a digest check on its own thread, while the applier reads the same file as it grows
//! ([`Transfer::follow`]). So the next layers download while the current one is unpacked,
//! and a layer is unpacked while it is still arriving.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
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
    /// The file the blob goes to, once created.
    path: Option<PathBuf>,
    written: u64,
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

    /// Names the file the blob goes to (created already); call before [`Transfer::run`].
    pub fn start(&self, path: PathBuf) {
        self.update(|s| s.path = Some(path));
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
                break Err(OciError::invalid(what, "abandoned"));
            }
            let n = match verified.read(&mut buf) {
                Ok(0) => break verified.finish(&desc.digest, desc.size, what),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(read_error(what, &e)),
            };
            if let Err(e) = out.write_all(&buf[..n]) {
                break Err(OciError::invalid(what, format!("storing it failed: {e}")));
            }
            received.fetch_add(n as u64, Ordering::Relaxed);
            self.update(|s| s.written += n as u64);
        };
        let result = result.and_then(|()| {
            out.sync_all()
                .map_err(|e| OciError::invalid(what, format!("storing it failed: {e}")))
        });
        match result {
            Ok(()) => self.update(|s| s.ok = Some(true)),
            Err(e) => self.fail(e),
        }
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

    /// A reader of the blob's bytes as they arrive: it blocks until more are written, ends
    /// when the download succeeded and fails when it failed (see [`Transfer::wait`] for why).
    pub fn follow(&self) -> Follower<'_> {
        Follower {
            transfer: self,
            file: None,
            pos: 0,
        }
    }
}

/// See [`Transfer::follow`].
pub struct Follower<'a> {
    transfer: &'a Transfer,
    file: Option<File>,
    pos: u64,
}

impl Read for Follower<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.transfer.lock();
        loop {
            if self.file.is_none()
                && let Some(path) = &state.path
            {
                self.file = Some(File::open(path)?);
            }
            if state.ok == Some(false) {
                return Err(io::Error::other("the download failed"));
            }
            if let Some(file) = self.file.as_mut()
                && self.pos < state.written
            {
                let available = state.written - self.pos;
                drop(state);
                let want = buf
                    .len()
                    .min(usize::try_from(available).unwrap_or(usize::MAX));
                let n = file.read(&mut buf[..want])?;
                self.pos += n as u64;
                return Ok(n);
            }
            if state.ok == Some(true) {
                return Ok(0);
            }
            state = self
                .transfer
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A read error from a server, said plainly when the server went quiet.
pub(crate) fn read_error(what: &str, e: &io::Error) -> OciError {
    let timed_out = e.kind() == io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
    if timed_out {
        OciError::Stalled {
            what: what.to_owned(),
        }
    } else {
        OciError::invalid(what, format!("reading it failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;
    use std::sync::Arc;

    fn desc(data: &[u8]) -> Descriptor {
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": Digest::of(data).to_string(),
            "size": data.len(),
        }))
        .unwrap()
    }

    #[test]
    fn follower_reads_while_the_blob_arrives_and_sees_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let path = tmp.path().join("blob");
        let transfer = Arc::new(Transfer::default());
        let received = AtomicU64::new(0);
        let abort = AtomicBool::new(false);
        std::thread::scope(|s| {
            let follower = s.spawn(|| {
                let mut out = Vec::new();
                transfer.follow().read_to_end(&mut out).map(|_| out)
            });
            let file = File::create(&path).unwrap();
            transfer.start(path.clone());
            let d = desc(&data);
            transfer.run(
                Box::new(io::Cursor::new(data.clone())),
                file,
                &d,
                "blob",
                &received,
                &abort,
            );
            assert_eq!(follower.join().unwrap().unwrap(), data);
        });
        transfer.wait().unwrap();
        assert_eq!(received.load(Ordering::Relaxed), data.len() as u64);

        // The same bytes announced with another digest: the follower fails, wait() says why.
        let transfer = Transfer::default();
        let path = tmp.path().join("blob2");
        let file = File::create(&path).unwrap();
        transfer.start(path.clone());
        let mut d = desc(&data);
        d.digest = Digest::of(b"other");
        transfer.run(
            Box::new(io::Cursor::new(data.clone())),
            file,
            &d,
            "blob",
            &received,
            &abort,
        );
        assert!(io::copy(&mut transfer.follow(), &mut io::sink()).is_err());
        let err = transfer.wait().unwrap_err().to_string();
        assert!(err.contains("does not match its digest"), "{err}");
    }
}
