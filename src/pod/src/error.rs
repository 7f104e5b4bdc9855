use std::io;
use std::path::Path;

use super::PodState;

/// Why a pod operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PodError {
    #[error("no matches found for {} (see `rkt list`)", rkt_common::excerpt::excerpt(.0))]
    NotFound(String),
    #[error("{prefix:?} matches {count} pods; give more of the UUID: {uuids}")]
    Ambiguous {
        prefix: String,
        count: usize,
        uuids: String,
    },
    #[error("pod {uuid} is {state}; stop it first (rkt stop) or wait for it")]
    Busy {
        uuid: crate::PodUuid,
        state: PodState,
    },
    #[error("pod {uuid} is {state}: {action} needs a pod that is {needed}")]
    WrongState {
        uuid: crate::PodUuid,
        state: PodState,
        action: &'static str,
        needed: &'static str,
    },
    #[error(transparent)]
    Store(#[from] rkt_store::StoreError),
    #[error("no images given: a pod needs at least one app")]
    NoImages,
    #[error("image {image} has no app to run (its manifest has no \"app\")")]
    NoApp { image: String },
    #[error(
        "app name {} is longer than {} characters (it names the app's unit and directories); give a shorter one with --name",
        rkt_common::excerpt::excerpt(.name),
        super::MAX_APP_NAME
    )]
    AppNameTooLong { name: String },
    #[error("two apps would be named {name:?}: a pod's app names must be unique")]
    DuplicateApp { name: String },
    #[error(
        "app {app}: {what} {name:?} is not in the image's /etc/{db}; give a number or a name the image has"
    )]
    UnknownIdentity {
        app: String,
        what: &'static str,
        name: String,
        db: &'static str,
    },
    #[error(
        "app {app}: nothing to execute (its image's \"exec\" is empty); give a program with --exec"
    )]
    NoExec { app: String },
    #[error(
        "app {app}: {exec:?} is not in the image's PATH ({path}); give an absolute path with --exec"
    )]
    ExecNotFound {
        app: String,
        exec: String,
        path: &'static str,
    },
    #[error(
        "pod {uuid} is not mutable: apps can only be added to and removed from a pod started with `rkt run --mutable`"
    )]
    NotMutable { uuid: crate::PodUuid },
    #[error("pod {uuid} has no app {app:?}; its apps: {apps} (see `rkt app list {uuid}`)")]
    UnknownApp {
        uuid: crate::PodUuid,
        app: String,
        apps: String,
    },
    #[error(
        "app {app:?} of pod {uuid} is {state}: stop it first (rkt app stop {uuid} --app={app})"
    )]
    AppRunning {
        uuid: crate::PodUuid,
        app: String,
        state: &'static str,
    },
    #[error(transparent)]
    Volume(#[from] super::VolumeError),
    #[error(transparent)]
    Port(#[from] super::PortError),
    #[error(transparent)]
    Sysctl(#[from] crate::SysctlError),
    #[error("invalid pod manifest: {reason}")]
    Invalid { reason: String },
    #[error("corrupt pod {uuid}: {reason}")]
    Corrupt {
        uuid: crate::PodUuid,
        reason: String,
    },
    #[error(transparent)]
    Io(#[from] rkt_common::IoError),
}

impl PodError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> PodError {
        PodError::Io(rkt_common::IoError::new(action, path.to_owned(), source))
    }
}
