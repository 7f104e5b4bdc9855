//! Pods on disk, under `<dir>/pods/<phase>/<uuid>/`, with the original rkt's life cycle.
//!
//! A pod's state is the directory it is in plus whether its directory is locked (`flock` on
//! the directory itself):
//!
//! | directory         | locked           | not locked        |
//! |-------------------|------------------|-------------------|
//! | `embryo/`         | being created    | abandoned         |
//! | `prepare/`        | preparing        | aborted prepare   |
//! | `prepared/`       | (being started)  | prepared          |
//! | `run/`            | running          | exited            |
//! | `exited-garbage/` | being deleted    | exited, marked    |
//! | `garbage/`        | being deleted    | garbage           |
//!
//! Every change of phase is one `rename(2)` done while holding the pod's exclusive lock, so a
//! concurrent `rkt gc`, `rkt rm` or start of the same pod sees either the old or the new
//! phase, and a crash between two steps leaves a pod that `rkt gc` knows how to finish off.
//! "Running" means the pod's stage1 holds the lock for the pod's whole life: the kernel drops
//! it when stage1 dies, whatever the way.

mod apps;
mod error;
mod gc;
mod layout;
mod net;
mod overrides;
pub mod plan;
mod ports;
mod prepare;
pub mod registration;
mod sysctl;
mod volumes;

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use apps::{AppState, MANIFEST_LOCK_FILE};

/// The longest app name a pod takes: it names the app's unit (`NAME.service`) and directories,
/// which must fit in a file name (255 bytes).
pub const MAX_APP_NAME: usize = 200;
pub use error::PodError;
pub use gc::{GcOptions, GcReport, Release};
pub use layout::{NotAPodUuid, PodDir, PodUuid};
pub use net::{DnsOptions, HostsOptions, NetOptionError, PodNet, default_hostname, pod_hostname};
pub use overrides::{AppOverrides, parse_env_assignment, parse_env_file};
pub use ports::PortMapping;
pub use ports::{PortError, parse_port_flag, port_mappings};
pub use prepare::PodLevel;
pub use sysctl::{SysctlError, check_sysctl, parse_sysctl, pod_sysctls};
pub use volumes::{VolumeError, check_volumes, complete_app_mounts, parse_mount, parse_volume};

use rkt_common::lock::{FileLock, LockKind};
use rkt_schema::PodManifest;

/// How stage1 is to set the pod up, chosen at prepare time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodOptions {
    /// Copy each app's root filesystem instead of mounting an overlay on the store's tree,
    /// for filesystems that cannot be an overlay's lower layer.
    #[serde(default)]
    pub no_overlay: bool,
    /// The pod's network namespace.
    #[serde(default)]
    pub net: PodNet,
    /// With [`PodNet::Cni`]: the network's configuration, read from net.d at prepare time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<serde_json::Value>,
    /// The pod's hostname; `rkt-<uuid>` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The apps' /etc/resolv.conf.
    #[serde(default)]
    pub dns: DnsOptions,
    /// The apps' /etc/hosts.
    #[serde(default)]
    pub hosts: HostsOptions,
    /// `--insecure-options=capabilities`: apps keep every capability (no bounding set).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_capabilities: bool,
    /// `--insecure-options=seccomp`: no syscall filter, whatever the isolators say.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_seccomp: bool,
    /// `--insecure-options=paths`: apps may write the kernel's tunables and the cgroup tree
    /// (see `stage1::Limits::open_kernel_paths`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_kernel_paths: bool,
    /// `--private-users`: the pod runs in a user namespace of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private_users: bool,
    /// `--mds-register`: the pod gets a metadata service token ([`PodDir::mds_token`]) and its
    /// apps `AC_METADATA_URL`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mds_register: bool,
    /// `rkt run --mutable`: the pod stays up when its apps end (until `rkt stop`), and apps
    /// can be added to it and removed while it runs (`rkt app ...`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mutable: bool,
}

/// The parts of a pod directory that only root may enter, made with the pod (0700): the pod's
/// root with its apps' roots mounted in it, the apps' writable layers, and `kind=empty`
/// volumes. They can hold setuid binaries and the apps' data; the rest of the pod directory
/// (manifest, options, pid, exit statuses) is readable by the store's group.
pub const PRIVATE_DIRS: [&str; 3] = ["stage1", "overlay", "sharedVolumes"];

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodState {
    Embryo,
    Preparing,
    AbortedPrepare,
    Prepared,
    Running,
    Exited,
    ExitedGarbage,
    Garbage,
    Deleting,
}

impl PodState {
    /// The word `rkt list` and `rkt status` show.
    pub fn as_str(self) -> &'static str {
        match self {
            PodState::Embryo => "embryo",
            PodState::Preparing => "preparing",
            PodState::AbortedPrepare => "aborted prepare",
            PodState::Prepared => "prepared",
            PodState::Running => "running",
            PodState::Exited => "exited",
            PodState::ExitedGarbage => "exited garbage",
            PodState::Garbage => "garbage",
            PodState::Deleting => "deleting",
        }
    }
}

impl std::fmt::Display for PodState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phase directories, in life-cycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Embryo,
    Prepare,
    Prepared,
    Run,
    ExitedGarbage,
    Garbage,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::Embryo,
        Phase::Prepare,
        Phase::Prepared,
        Phase::Run,
        Phase::ExitedGarbage,
        Phase::Garbage,
    ];

    fn dir_name(self) -> &'static str {
        match self {
            Phase::Embryo => "embryo",
            Phase::Prepare => "prepare",
            Phase::Prepared => "prepared",
            Phase::Run => "run",
            Phase::ExitedGarbage => "exited-garbage",
            Phase::Garbage => "garbage",
        }
    }

    fn state(self, locked: bool) -> PodState {
        match (self, locked) {
            (Phase::Embryo, _) => PodState::Embryo,
            (Phase::Prepare, true) => PodState::Preparing,
            (Phase::Prepare, false) => PodState::AbortedPrepare,
            (Phase::Prepared, _) => PodState::Prepared,
            (Phase::Run, true) => PodState::Running,
            (Phase::Run, false) => PodState::Exited,
            (Phase::ExitedGarbage | Phase::Garbage, true) => PodState::Deleting,
            (Phase::ExitedGarbage, false) => PodState::ExitedGarbage,
            (Phase::Garbage, false) => PodState::Garbage,
        }
    }
}

/// A pod found on disk, as it was when looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub uuid: PodUuid,
    pub state: PodState,
    pub path: PathBuf,
    pub(crate) phase: Phase,
}

impl Pod {
    /// The pod's files.
    pub fn dir(&self) -> PodDir<'_> {
        PodDir::at(&self.path)
    }

    /// The pod manifest (what `rkt cat-manifest` prints).
    pub fn manifest(&self) -> Result<PodManifest, PodError> {
        let path = self.dir().manifest();
        let bytes = fs::read(&path).map_err(|e| PodError::io("reading", &path, e))?;
        PodManifest::from_json(&bytes).map_err(|e| PodError::Corrupt {
            uuid: self.uuid.clone(),
            reason: e.to_string(),
        })
    }

    /// Raw bytes of the pod manifest.
    pub fn manifest_bytes(&self) -> Result<Vec<u8>, PodError> {
        let path = self.dir().manifest();
        fs::read(&path).map_err(|e| PodError::io("reading", &path, e))
    }

    /// How stage1 is to set the pod up (defaults if the file is missing: older pods).
    pub fn options(&self) -> Result<PodOptions, PodError> {
        match fs::read(self.dir().options()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| PodError::Corrupt {
                uuid: self.uuid.clone(),
                reason: format!("options.json: {e}"),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PodOptions::default()),
            Err(e) => Err(PodError::io("reading", &self.dir().options(), e)),
        }
    }

    /// Replaces the options of a prepared pod before it is started (`rkt run-prepared
    /// --hostname`, `--dns`, `--hosts-entry`).
    pub fn replace_options(&self, options: &PodOptions) -> Result<(), PodError> {
        let json = serde_json::to_vec_pretty(options).expect("options serialize");
        write_atomic(&self.dir().options(), &json)
    }

    /// Seconds since the epoch when the pod was created.
    pub fn created(&self) -> Option<u64> {
        mtime(&self.dir().created())
    }

    /// The pod's metadata service token, if it was prepared with `--mds-register`.
    pub fn mds_token(&self) -> Option<String> {
        read_mds_token(&self.path)
    }
}

/// The metadata service token in a pod directory, if there is one.
pub fn read_mds_token(pod_dir: &Path) -> Option<String> {
    let token = fs::read_to_string(PodDir::at(pod_dir).mds_token()).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// A pod being prepared: in `prepare/`, locked by us. Dropping it without
/// [`PreparingPod::finish`] leaves an aborted prepare for `rkt gc`.
#[derive(Debug)]
pub struct PreparingPod {
    pub uuid: PodUuid,
    pub path: PathBuf,
    pods: Pods,
    lock: FileLock,
}

impl PreparingPod {
    /// The pod's files.
    pub fn dir(&self) -> PodDir<'_> {
        PodDir::at(&self.path)
    }

    /// Writes the pod manifest atomically.
    pub fn write_manifest(&self, manifest: &PodManifest) -> Result<(), PodError> {
        write_atomic(&self.dir().manifest(), manifest.to_json_pretty().as_bytes())
    }

    /// Writes how stage1 is to set the pod up.
    pub fn write_options(&self, options: &PodOptions) -> Result<(), PodError> {
        let json = serde_json::to_vec_pretty(options).expect("options serialize");
        write_atomic(&self.dir().options(), &json)
    }

    /// Gives the pod a fresh metadata service token, readable by root only.
    pub fn write_mds_token(&self) -> Result<(), PodError> {
        let path = self.dir().mds_token();
        let token = registration::new_token().map_err(|e| PodError::io("making", &path, e))?;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(token.as_bytes()))
            .map_err(|e| PodError::io("writing", &path, e))
    }

    /// Moves the pod to `prepared/` and lets go of it.
    pub fn finish(self) -> Result<Pod, PodError> {
        let to = self.pods.phase_path(Phase::Prepared, &self.uuid);
        self.pods.rename(&self.path, &to)?;
        drop(self.lock);
        Ok(Pod {
            uuid: self.uuid,
            state: PodState::Prepared,
            path: to,
            phase: Phase::Prepared,
        })
    }

    /// Gives up: the pod goes to `garbage/` and is deleted.
    pub fn abort(self) {
        let to = self.pods.phase_path(Phase::Garbage, &self.uuid);
        if self.pods.rename(&self.path, &to).is_ok() {
            // Nothing outside the directory was taken before the pod was prepared.
            let _ = gc::delete_locked(&to, &|_, _| Ok(()));
        }
    }
}

/// A pod in `run/` whose lock this process holds: it is "running" for as long as this value
/// (or the process) lives. stage1 holds one for the pod's whole life.
#[derive(Debug)]
pub struct RunningPod {
    pub uuid: PodUuid,
    pub path: PathBuf,
    _lock: FileLock,
}

impl RunningPod {
    /// The pod's files.
    pub fn dir(&self) -> PodDir<'_> {
        PodDir::at(&self.path)
    }
}

/// A pod watched by a `rkt run` (see [`PodDir::watch_lock`]): not collected while this lives
/// (or the process does).
#[derive(Debug)]
pub struct PodWatch {
    _lock: FileLock,
}

/// The pods directory.
#[derive(Debug, Clone)]
pub struct Pods {
    root: PathBuf,
}

impl Pods {
    /// Opens (creating if needed) `<dir>/pods`.
    pub fn open(dir: &Path) -> Result<Pods, PodError> {
        let pods = Pods {
            root: dir.join("pods"),
        };
        // The directory's group (the rkt group, under the packaged /var/lib/rkt) may list
        // pods and read their records; what apps run in is root's alone (PRIVATE_DIRS).
        for phase in Phase::ALL {
            let path = pods.root.join(phase.dir_name());
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(&path)
                .map_err(|e| PodError::io("creating", &path, e))?;
        }
        Ok(pods)
    }

    /// `run/`: the pods that run, and those that ran and are not yet collected.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join(Phase::Run.dir_name())
    }

    fn phase_path(&self, phase: Phase, uuid: &str) -> PathBuf {
        self.root.join(phase.dir_name()).join(uuid)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), PodError> {
        fs::rename(from, to).map_err(|e| PodError::io("moving pod to", to, e))?;
        for dir in [from.parent(), to.parent()].into_iter().flatten() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| PodError::io("syncing", dir, e))?;
        }
        Ok(())
    }

    /// Starts a new pod: made in `embryo/`, locked, then moved to `prepare/`, so that a pod
    /// in `prepare/` is always either being prepared (locked) or abandoned (not locked).
    pub fn create(&self) -> Result<PreparingPod, PodError> {
        let uuid = PodUuid::new_random();
        let embryo = self.phase_path(Phase::Embryo, &uuid);
        fs::DirBuilder::new()
            .mode(0o750)
            .create(&embryo)
            .map_err(|e| PodError::io("creating", &embryo, e))?;
        let lock = FileLock::try_acquire_existing(&embryo, LockKind::Exclusive)
            .map_err(|e| PodError::io("locking", &embryo, e))?
            .ok_or_else(|| PodError::Busy {
                uuid: uuid.clone(),
                state: PodState::Embryo,
            })?;
        // Under the lock: an unlocked embryo is an abandoned one, which gc may take away.
        for private in PRIVATE_DIRS {
            let path = embryo.join(private);
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(|e| PodError::io("creating", &path, e))?;
        }
        write_atomic(&PodDir::at(&embryo).created(), b"")?;
        let watch = PodDir::at(&embryo).watch_lock();
        fs::File::create(&watch).map_err(|e| PodError::io("creating", &watch, e))?;
        let path = self.phase_path(Phase::Prepare, &uuid);
        self.rename(&embryo, &path)?;
        Ok(PreparingPod {
            uuid,
            path,
            pods: self.clone(),
            lock,
        })
    }

    /// Every pod, in creation order.
    pub fn list(&self) -> Result<Vec<Pod>, PodError> {
        let mut pods = Vec::new();
        for phase in Phase::ALL {
            let dir = self.root.join(phase.dir_name());
            let entries = fs::read_dir(&dir).map_err(|e| PodError::io("reading", &dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| PodError::io("reading", &dir, e))?;
                // Only directories named as rkt names them.
                let Some(uuid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| PodUuid::parse(name).ok().filter(|u| u == name))
                else {
                    continue;
                };
                let path = entry.path();
                // It may have moved on since the directory was read: then it is listed
                // where it went, when that directory is read (or was already).
                let Some(locked) = is_locked(&path)? else {
                    continue;
                };
                pods.push(Pod {
                    uuid,
                    state: phase.state(locked),
                    path,
                    phase,
                });
            }
        }
        Ok(in_creation_order(pods, Pod::created))
    }

    /// The pod `uuid` if it is running (in `run/` and locked by its stage1), without listing
    /// every pod (the metadata service asks on each request).
    pub fn running(&self, uuid: &str) -> Result<Option<Pod>, PodError> {
        let Some(uuid) = PodUuid::parse(uuid).ok().filter(|u| u == uuid) else {
            return Ok(None);
        };
        let path = self.phase_path(Phase::Run, &uuid);
        Ok(match is_locked(&path)? {
            Some(true) => Some(Pod {
                uuid,
                state: PodState::Running,
                path,
                phase: Phase::Run,
            }),
            _ => None,
        })
    }

    /// The pod whose UUID is, or starts with, `prefix`.
    pub fn find(&self, prefix: &str) -> Result<Pod, PodError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.is_empty() {
            return Err(PodError::NotFound(prefix));
        }
        // Not the start of any UUID (and perhaps a whole file given as one): no need to look.
        let uuid_like = |c: char| c.is_ascii_hexdigit() || c == '-';
        if prefix.len() > 36 || !prefix.chars().all(uuid_like) {
            return Err(PodError::NotFound(prefix));
        }
        let found: Vec<Pod> = self
            .list()?
            .into_iter()
            .filter(|p| p.uuid.starts_with(&prefix))
            .collect();
        match found.len() {
            0 => Err(PodError::NotFound(prefix)),
            1 => Ok(found.into_iter().next().expect("one")),
            n => Err(PodError::Ambiguous {
                prefix,
                count: n,
                uuids: found
                    .iter()
                    .map(|p| p.uuid.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Pods that still need the image: being prepared, prepared or running (their apps' roots
    /// are overlays on its tree, directly or as a dependency of an app's image). Exited pods
    /// do not.
    pub fn users_of(
        &self,
        store: &rkt_store::Store,
        image: &rkt_schema::ImageId,
    ) -> Result<Vec<Pod>, PodError> {
        let needs = |app_image: &rkt_schema::ImageId| {
            app_image == image
                || store
                    .dependency_list(app_image)
                    .is_ok_and(|list| list.iter().any(|i| &i.id == image))
        };
        let mut users = Vec::new();
        for pod in self.list()? {
            let live = matches!(
                pod.state,
                PodState::Embryo | PodState::Preparing | PodState::Prepared | PodState::Running
            );
            // A pod still being written may have no manifest yet; skip it rather than fail.
            if live
                && pod.manifest().is_ok_and(|m| {
                    m.apps
                        .iter()
                        .any(|a| a.image.id.as_ref().is_some_and(needs))
                })
            {
                users.push(pod);
            }
        }
        Ok(users)
    }

    /// Takes a prepared pod to run it: locks it and moves it to `run/`. Fails if someone else
    /// holds it (a second start of the same pod, or `rkt rm`).
    pub fn take_for_run(&self, pod: &Pod) -> Result<RunningPod, PodError> {
        if pod.phase != Phase::Prepared {
            return Err(PodError::WrongState {
                uuid: pod.uuid.clone(),
                state: pod.state,
                action: "running it",
                needed: "prepared",
            });
        }
        let lock = FileLock::try_acquire_existing(&pod.path, LockKind::Exclusive)
            .map_err(|e| lock_error(pod, e))?
            .ok_or_else(|| PodError::Busy {
                uuid: pod.uuid.clone(),
                state: PodState::Prepared,
            })?;
        let path = self.phase_path(Phase::Run, &pod.uuid);
        self.rename(&pod.path, &path)?;
        Ok(RunningPod {
            uuid: pod.uuid.clone(),
            path,
            _lock: lock,
        })
    }

    /// Watches the pod until the returned value is dropped: `rkt gc` and `rkt rm` leave it
    /// alone meanwhile, whatever its state. Taken before the pod is handed to stage1.
    pub fn watch(&self, pod: &Pod) -> Result<PodWatch, PodError> {
        let path = pod.dir().watch_lock();
        let lock = FileLock::acquire(&path, LockKind::Shared).map_err(|e| lock_error(pod, e))?;
        Ok(PodWatch { _lock: lock })
    }

    /// Deletes a pod that is not running (`rkt rm`): it moves to `garbage/` under its lock,
    /// then its mounts are undone and its files removed.
    pub fn remove(&self, pod: &Pod, release: Release) -> Result<(), PodError> {
        let lock = lock_idle(&pod.path).map_err(|e| lock_error(pod, e))?;
        let Some(_lock) = lock else {
            let state = self.find(&pod.uuid).map(|p| p.state).unwrap_or(pod.state);
            return Err(PodError::Busy {
                uuid: pod.uuid.clone(),
                state,
            });
        };
        let garbage = self.phase_path(Phase::Garbage, &pod.uuid);
        if pod.phase != Phase::Garbage {
            self.rename(&pod.path, &garbage)?;
        }
        gc::delete_locked(&garbage, release)
    }
}

/// Pods listed phase by phase, each once (where it was seen last: a pod that moved on while
/// the phases were read shows up in both, and phases are read in life-cycle order), sorted by
/// creation time then UUID. Each pod's creation time is read once: read at every comparison,
/// it changes under the sort while other processes move pods (a pod that moved reads as
/// `None`), which breaks the total order the sort relies on.
fn in_creation_order(pods: Vec<Pod>, created: impl Fn(&Pod) -> Option<u64>) -> Vec<Pod> {
    let mut seen = std::collections::HashSet::new();
    let mut pods: Vec<Pod> = pods
        .into_iter()
        .rev()
        .filter(|p| seen.insert(p.uuid.clone()))
        .collect();
    pods.sort_by_cached_key(|p| (created(p), p.uuid.clone()));
    pods
}

/// The locks that marking or deleting a pod takes: its directory's (no stage1 runs it, no
/// other command is moving it) and its watch lock (no `rkt run` still reads it); `None` if
/// someone holds either.
pub(crate) fn lock_idle(path: &Path) -> io::Result<Option<(FileLock, Option<FileLock>)>> {
    let Some(dir) = FileLock::try_acquire_existing(path, LockKind::Exclusive)? else {
        return Ok(None);
    };
    match FileLock::try_acquire_existing(&PodDir::at(path).watch_lock(), LockKind::Exclusive) {
        Ok(Some(watch)) => Ok(Some((dir, Some(watch)))),
        Ok(None) => Ok(None),
        // A pod made before watch locks existed, or still being made: nobody watches it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some((dir, None))),
        Err(e) => Err(e),
    }
}

/// Whether the directory is locked by someone; `None` if it is gone.
fn is_locked(path: &Path) -> Result<Option<bool>, PodError> {
    match FileLock::try_acquire_existing(path, LockKind::Shared) {
        Ok(Some(_probe)) => Ok(Some(false)),
        Ok(None) => Ok(Some(true)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PodError::io("locking", path, e)),
    }
}

fn lock_error(pod: &Pod, e: io::Error) -> PodError {
    if e.kind() == io::ErrorKind::NotFound {
        PodError::NotFound(pod.uuid.to_string())
    } else {
        PodError::io("locking", &pod.path, e)
    }
}

/// Writes a file so that readers see the old content or the new, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PodError> {
    rkt_common::fs::write_atomic(path, bytes, 0o644).map_err(|e| PodError::io("writing", path, e))
}

/// Seconds since the epoch of a file's last change.
pub fn mtime_of(path: &Path) -> Option<u64> {
    mtime(path)
}

pub(crate) fn mtime(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.mtime().max(0) as u64)
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn pod(uuid: &str, phase: Phase) -> Pod {
        Pod {
            uuid: PodUuid::parse(uuid).unwrap(),
            state: phase.state(false),
            path: PathBuf::from("/nonexistent").join(uuid),
            phase,
        }
    }

    /// Creation times that change while the list is sorted (as when other processes move
    /// pods, so that a pod's file is found at one read and gone at the next) neither panic
    /// nor get read more than once per pod.
    #[test]
    fn sorting_reads_each_creation_time_once() {
        let pods: Vec<Pod> = (0..64)
            .map(|i| pod(&format!("{i:08x}-0000-4000-8000-000000000000"), Phase::Run))
            .collect();
        let reads = Cell::new(0u64);
        let created = |p: &Pod| {
            let n = reads.get();
            reads.set(n + 1);
            // Every other read of a pod finds its file gone.
            n.is_multiple_of(2)
                .then(|| u64::from(p.uuid.as_bytes()[7]) * 1000 + n)
        };
        let sorted = in_creation_order(pods, created);
        assert_eq!(sorted.len(), 64);
        assert_eq!(reads.get(), 64, "one read per pod");
    }

    /// A pod seen in two phases (it moved while the phase directories were read) is listed
    /// once, where it went.
    #[test]
    fn a_pod_that_moved_is_listed_once_in_its_later_phase() {
        let a = "00000000-0000-4000-8000-00000000000a";
        let b = "00000000-0000-4000-8000-00000000000b";
        let listed = vec![
            pod(a, Phase::Prepared),
            pod(b, Phase::Prepared),
            pod(a, Phase::Run),
            pod(a, Phase::ExitedGarbage),
        ];
        // The moved pod's old path reads no time; the others do: not adjacent after sorting.
        let created = |p: &Pod| (p.phase != Phase::Prepared || p.uuid == b).then_some(5);
        let sorted = in_creation_order(listed, created);
        let got: Vec<(&str, Phase)> = sorted.iter().map(|p| (p.uuid.as_str(), p.phase)).collect();
        assert_eq!(got, [(a, Phase::ExitedGarbage), (b, Phase::Prepared)]);
    }
}
