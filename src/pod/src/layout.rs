//! Names of pods and of every path in a pod's directory, spelled once. Whatever reads or writes
//! a pod's files (stage0, the runtime, the metadata service, gc) gets the path from here.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A pod's UUID, in the hyphenated lower-case form that names its directory, its unit
/// (`rkt-<uuid>.service`) and its machine (`rkt-<uuid>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodUuid(String);

/// Text that is not a UUID was given where a pod's UUID belongs.
#[derive(Debug, Error)]
#[error("{} is not a pod UUID", rkt_common::excerpt::excerpt(.0))]
pub struct NotAPodUuid(pub String);

impl PodUuid {
    /// A fresh random (version 4) UUID.
    pub fn new_random() -> PodUuid {
        PodUuid(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// Parses any form the `uuid` crate reads (hyphenated or not, any case) into the canonical one.
    pub fn parse(text: &str) -> Result<PodUuid, NotAPodUuid> {
        uuid::Uuid::parse_str(text)
            .map(|u| PodUuid(u.hyphenated().to_string()))
            .map_err(|_| NotAPodUuid(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pod's systemd unit on the host, which runs stage1.
    pub fn unit_name(&self) -> String {
        format!("rkt-{}.service", self.0)
    }

    /// The pod's machine ID (its systemd's /etc/machine-id, the name of its journal
    /// directory, journal field `_MACHINE_ID`): the UUID's hex digits.
    pub fn machine_id(&self) -> String {
        self.0.replace('-', "")
    }

    /// The name machined knows the pod by, as the original rkt named it (`machinectl status
    /// rkt-<uuid>`). Also the pod's hostname when none is given.
    pub fn machine_name(&self) -> String {
        format!("rkt-{}", self.0)
    }
}

impl std::ops::Deref for PodUuid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PodUuid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Path> for PodUuid {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl fmt::Display for PodUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PodUuid {
    type Err = NotAPodUuid;
    fn from_str(s: &str) -> Result<PodUuid, NotAPodUuid> {
        PodUuid::parse(s)
    }
}

impl PartialEq<str> for PodUuid {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PodUuid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The files of one pod's directory (`<dir>/pods/<phase>/<uuid>/`), as paths. A view: it
/// neither checks nor creates anything.
#[derive(Debug, Clone, Copy)]
pub struct PodDir<'a> {
    root: &'a Path,
}

impl<'a> PodDir<'a> {
    pub fn at(root: &'a Path) -> PodDir<'a> {
        PodDir { root }
    }

    pub fn path(&self) -> &'a Path {
        self.root
    }

    /// The pod manifest, as the appc spec defines it.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("pod")
    }

    /// Empty; its mtime is the pod's creation time.
    pub fn created(&self) -> PathBuf {
        self.root.join("pod-created")
    }

    /// How stage1 is to set the pod up (`PodOptions` as JSON).
    pub fn options(&self) -> PathBuf {
        self.root.join("options.json")
    }

    /// The pod's metadata service token (mode 0600).
    pub fn mds_token(&self) -> PathBuf {
        self.root.join("mds-token")
    }

    /// Held (shared) by a `rkt run` that waits for the pod: gc and rm leave it alone meanwhile.
    pub fn watch_lock(&self) -> PathBuf {
        self.root.join("watch.lock")
    }

    /// The pod's PID 1 (a host PID) and its start time, while it runs.
    pub fn pid(&self) -> PathBuf {
        self.root.join("pid")
    }

    /// The pod's network, as CNI's ADD gave it (JSON), written before the ADD.
    pub fn net_status(&self) -> PathBuf {
        self.root.join("net.json")
    }

    /// The pod's network namespace, bind-mounted.
    pub fn netns(&self) -> PathBuf {
        self.root.join("netns")
    }

    /// The root the pod's systemd boots in.
    pub fn stage1_root(&self) -> PathBuf {
        self.root.join("stage1/rootfs")
    }

    /// An app's directory in the pod's root: `rootfs/` under it is what the app sees as `/`.
    pub fn stage2(&self, app: &str) -> PathBuf {
        self.stage1_root().join("opt/stage2").join(app)
    }

    /// The app's root as seen from the host.
    pub fn app_rootfs(&self, app: &str) -> PathBuf {
        self.stage2(app).join("rootfs")
    }

    /// The writable layer over an app's image trees (`upper/`, `work/`).
    pub fn overlay(&self, app: &str) -> PathBuf {
        self.root.join("overlay").join(app)
    }

    /// What the pod keeps about an app (its exit status).
    pub fn app(&self, app: &str) -> PathBuf {
        self.root.join("apps").join(app)
    }

    /// The app's exit status, written when it ends; its mtime is when.
    pub fn app_exit(&self, app: &str) -> PathBuf {
        self.app(app).join("exit")
    }

    /// The pod's directory for a volume it shares among its apps (an empty volume).
    pub fn shared_volume(&self, name: &str) -> PathBuf {
        self.root.join("sharedVolumes").join(name)
    }
}

impl AsRef<Path> for PodDir<'_> {
    fn as_ref(&self) -> &Path {
        self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_canonical_and_name_the_unit_and_machine() {
        let u = PodUuid::parse("397D9A96FF3C4A2F8DE9F00B02540300").unwrap();
        assert_eq!(u.as_str(), "397d9a96-ff3c-4a2f-8de9-f00b02540300");
        assert_eq!(
            u.unit_name(),
            "rkt-397d9a96-ff3c-4a2f-8de9-f00b02540300.service"
        );
        assert_eq!(u.machine_name(), "rkt-397d9a96-ff3c-4a2f-8de9-f00b02540300");
        assert_eq!(u.machine_id(), "397d9a96ff3c4a2f8de9f00b02540300");
        // machined and the kernel's hostname take at most 64 bytes.
        assert!(u.machine_name().len() <= 64);
        assert!(PodUuid::parse("397d9a96").is_err());
        assert!(PodUuid::parse("../../etc").is_err());
    }
}
