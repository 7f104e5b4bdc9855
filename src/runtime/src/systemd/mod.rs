//! rkt's systemd client, over D-Bus (zbus): the host's systemd and machined on the system bus
//! (stage0's hand-off, stage1's machine registration) and the pod's own systemd over its
//! private socket (stage1 starting and watching apps). One place for the interfaces, the unit
//! naming rules and how an ended unit's exit status is read.

mod notify;
mod proxies;

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{MatchRule, Message};

pub use notify::{notify_socket, sd_notify};
pub use proxies::{
    MachineManagerProxyBlocking, ManagerProxyBlocking, ServiceProxyBlocking, UnitProxyBlocking,
};

#[derive(Debug, Error)]
pub enum SystemdError {
    #[error(
        "cannot reach systemd on the system bus: is this host running systemd and D-Bus? ({0})"
    )]
    NoSystemBus(Box<zbus::Error>),
    #[error("cannot reach the pod's systemd at {path}: {error}")]
    NoPodBus { path: String, error: std::io::Error },
    #[error("talking to the pod's systemd at {path}: {error}")]
    PodBus {
        path: String,
        error: Box<zbus::Error>,
    },
    #[error("{what}: {error}")]
    Call {
        what: String,
        error: Box<zbus::Error>,
    },
    #[error("lost the connection to systemd while waiting for {0}")]
    Disconnected(String),
}

impl SystemdError {
    fn call(what: impl Into<String>) -> impl FnOnce(zbus::Error) -> SystemdError {
        let what = what.into();
        move |source| SystemdError::Call {
            what,
            error: Box::new(source),
        }
    }
}

/// A connection to one systemd instance.
pub struct Systemd {
    connection: Connection,
}

impl Systemd {
    /// The host's systemd (and machined), over the system bus.
    pub fn system() -> Result<Systemd, SystemdError> {
        let connection =
            Connection::system().map_err(|e| SystemdError::NoSystemBus(Box::new(e)))?;
        Ok(Systemd { connection })
    }

    /// The systemd that is PID 1 of a pod (`leader`, a host PID), over the pod's own system
    /// bus (socket-activated in the pod), reached through the leader's root: no round trip
    /// through machined and no helper process, unlike `systemd-run -M`. (systemd's private
    /// socket would spare the pod its D-Bus daemon, but systemd names itself as the sender
    /// there, which zbus rejects.)
    pub fn pod(leader: u32) -> Result<Systemd, SystemdError> {
        let path = pod_bus_path(leader);
        let stream = UnixStream::connect(&path).map_err(|source| SystemdError::NoPodBus {
            path: path.clone(),
            error: source,
        })?;
        Systemd::pod_over(stream, path)
    }

    /// [`Systemd::pod`] over a stream already connected to the pod's bus at `path`: by a
    /// process in the pod's user namespace, for a pod that has one (the bus knows a client by
    /// the credentials it connected with, and the host's root is nobody there).
    pub fn pod_over(stream: UnixStream, path: String) -> Result<Systemd, SystemdError> {
        let connection = zbus::blocking::connection::Builder::async_io_unix_stream(stream)
            .build()
            .map_err(|source| SystemdError::PodBus {
                path,
                error: Box::new(source),
            })?;
        Ok(Systemd { connection })
    }

    /// Wraps an existing connection (e.g. stage0's own to the system bus).
    pub fn from_connection(connection: Connection) -> Systemd {
        Systemd { connection }
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    pub fn manager(&self) -> Result<ManagerProxyBlocking<'static>, SystemdError> {
        ManagerProxyBlocking::new(&self.connection).map_err(SystemdError::call("systemd manager"))
    }

    /// Starts a transient service and returns a handle to wait for its end. Property changes
    /// are watched from before the start, so a unit that ends at once is not missed.
    pub fn start_service(
        &self,
        name: &str,
        properties: &[(&str, Value<'_>)],
    ) -> Result<ServiceRun, SystemdError> {
        let manager = self.manager()?;
        subscribe(&manager)?;
        let changes = self.watch_unit(name)?;
        manager
            .start_transient_unit(name, "fail", properties, &[])
            .map_err(SystemdError::call(format!("starting {name}")))?;
        Ok(ServiceRun {
            name: name.to_owned(),
            changes,
            main_exit: None,
            ended: false,
        })
    }

    /// Runs a service this systemd has as a unit file (a socket-activated app, which its
    /// socket may already have started, or even seen end) and returns a handle to wait for its
    /// end: started unless it is running or has run.
    pub fn run_service_unit(&self, name: &str) -> Result<ServiceRun, SystemdError> {
        let manager = self.manager()?;
        subscribe(&manager)?;
        let changes = self.watch_unit(name)?;
        let looking = || SystemdError::call(format!("looking at {name}"));
        let path = manager.load_unit(name).map_err(looking())?;
        let unit = UnitProxyBlocking::builder(&self.connection)
            .path(path.clone())
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(looking())?;
        let service = ServiceProxyBlocking::builder(&self.connection)
            .path(path)
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(looking())?;
        let mut run = ServiceRun {
            name: name.to_owned(),
            changes,
            main_exit: None,
            ended: false,
        };
        let state = unit.active_state().map_err(looking())?;
        if matches!(
            state.as_str(),
            "active" | "activating" | "reloading" | "deactivating"
        ) {
            return Ok(run);
        }
        let code = service.exec_main_code().map_err(looking())?;
        if code != 0 {
            let status = service.exec_main_status().map_err(looking())?;
            run.main_exit = MainExit::from_wait_code(code, status);
            run.ended = true;
            return Ok(run);
        }
        manager
            .start_unit(name, "fail")
            .map_err(SystemdError::call(format!("starting {name}")))?;
        Ok(run)
    }

    /// The unit's PropertiesChanged signals, from now on (before its state is read or it is
    /// started, so that no change slips by).
    fn watch_unit(&self, name: &str) -> Result<MessageIterator, SystemdError> {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .interface("org.freedesktop.DBus.Properties")
            .and_then(|b| b.member("PropertiesChanged"))
            .and_then(|b| b.path(unit_object_path(name)))
            .map_err(SystemdError::call("watching the unit"))?
            .build();
        MessageIterator::for_match_rule(rule, &self.connection, Some(256))
            .map_err(SystemdError::call("watching the unit"))
    }

    /// Asks systemd to stop a unit, without waiting for it to stop.
    pub fn stop_unit(&self, name: &str) -> Result<(), SystemdError> {
        self.manager()?
            .stop_unit(name, "replace")
            .map_err(SystemdError::call(format!("stopping {name}")))?;
        Ok(())
    }

    /// The loaded units matching `pattern` (a glob, as `systemctl list-units PATTERN`) that
    /// are in the failed state.
    pub fn failed_units(&self, pattern: &str) -> Result<Vec<String>, SystemdError> {
        let units = self
            .manager()?
            .list_units_by_patterns(&["failed"], &[pattern])
            .map_err(SystemdError::call(format!(
                "listing failed units {pattern}"
            )))?;
        Ok(units.into_iter().map(|u| u.0).collect())
    }

    /// The argument vectors of a loaded service's `ExecStart=` commands.
    pub fn exec_start(&self, name: &str) -> Result<Vec<Vec<String>>, SystemdError> {
        let what = || format!("looking at {name}");
        let path = self
            .manager()?
            .get_unit(name)
            .map_err(SystemdError::call(what()))?;
        let service = ServiceProxyBlocking::builder(&self.connection)
            .path(path)
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(SystemdError::call(what()))?;
        let commands = service.exec_start().map_err(SystemdError::call(what()))?;
        Ok(commands.into_iter().map(|c| c.1).collect())
    }

    /// Lets a failed unit go (`systemctl reset-failed`): a transient one is unloaded. A unit
    /// that is not loaded (any more) is no error.
    pub fn reset_failed_unit(&self, name: &str) -> Result<(), SystemdError> {
        match self.manager()?.reset_failed_unit(name) {
            Err(zbus::Error::MethodError(error, _, _))
                if error.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                Ok(())
            }
            other => other.map_err(SystemdError::call(format!("resetting {name}"))),
        }
    }

    /// Sends `signal` to a unit's main process.
    pub fn kill_main(&self, name: &str, signal: i32) -> Result<(), SystemdError> {
        self.manager()?
            .kill_unit(name, "main", signal)
            .map_err(SystemdError::call(format!("signalling {name}")))
    }

    /// Halts the system this connection talks to at once, without stopping its units one by
    /// one (for a pod whose apps have all ended: what is left is journald and D-Bus, which
    /// the final kill makes flush and exit). The connection usually drops before the answer.
    pub fn halt_now(&self) -> Result<(), SystemdError> {
        match self.manager()?.halt() {
            Ok(()) => Ok(()),
            Err(zbus::Error::InputOutput(_)) => Ok(()),
            Err(e) => Err(SystemdError::Call {
                what: "halting".into(),
                error: Box::new(e),
            }),
        }
    }

    /// Waits until a unit is inactive or failed, or unloaded (transient units are, once they
    /// stopped). Changes are watched before the state is first read, so none slips by.
    pub fn wait_unit_inactive(&self, name: &str) -> Result<(), SystemdError> {
        let manager = self.manager()?;
        let changes = self.watch_unit(name)?;
        subscribe(&manager)?;
        let ended = |state: &str| matches!(state, "inactive" | "failed");
        let Ok(unit_path) = manager.get_unit(name) else {
            return Ok(()); // not loaded (any more)
        };
        let unit = UnitProxyBlocking::builder(&self.connection)
            .path(unit_path)
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(SystemdError::call(format!("looking at {name}")))?;
        match unit.active_state() {
            Ok(state) if !ended(&state) => {}
            _ => return Ok(()),
        }
        for message in changes {
            let Some((interface, changed)) = message.ok().as_ref().and_then(properties_changed)
            else {
                continue;
            };
            if interface != "org.freedesktop.systemd1.Unit" {
                continue;
            }
            let state = match changed
                .get("ActiveState")
                .and_then(|v| <&str>::try_from(v).ok())
            {
                Some(state) => state.to_owned(),
                // Invalidated rather than sent: ask; no answer means it was unloaded.
                None => match unit.active_state() {
                    Ok(state) => state,
                    Err(_) => return Ok(()),
                },
            };
            if ended(&state) {
                return Ok(());
            }
        }
        Err(SystemdError::Disconnected(name.to_owned()))
    }

    /// How each service of this systemd ends, from now on, as it ends: (unit name, exit).
    /// The iterator ends when the connection does (the pod went down).
    pub fn service_exits(
        &self,
    ) -> Result<impl Iterator<Item = (String, MainExit)> + use<>, SystemdError> {
        let manager = self.manager()?;
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .interface("org.freedesktop.DBus.Properties")
            .and_then(|b| b.member("PropertiesChanged"))
            .and_then(|b| b.path_namespace("/org/freedesktop/systemd1/unit"))
            .map_err(SystemdError::call("watching the services"))?
            .build();
        let changes = MessageIterator::for_match_rule(rule, &self.connection, Some(1024))
            .map_err(SystemdError::call("watching the services"))?;
        subscribe(&manager)?;
        Ok(changes.filter_map(|message| {
            let message = message.ok()?;
            let unit = unit_name_from_object_path(message.header().path()?.as_str())?;
            let (interface, changed) = properties_changed(&message)?;
            if interface != "org.freedesktop.systemd1.Service" {
                return None;
            }
            let int = |key: &str| changed.get(key).and_then(|v| i32::try_from(v).ok());
            let exit = MainExit::from_wait_code(int("ExecMainCode")?, int("ExecMainStatus")?)?;
            Some((unit, exit))
        }))
    }

    /// A loaded service's state, main PID and start time (`rkt app status`); `None` if the
    /// unit is not loaded (never started, or ended and collected).
    pub fn service_state(&self, name: &str) -> Result<Option<ServiceState>, SystemdError> {
        let Ok(path) = self.manager()?.get_unit(name) else {
            return Ok(None);
        };
        let what = || format!("looking at {name}");
        let unit = UnitProxyBlocking::builder(&self.connection)
            .path(path.clone())
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(SystemdError::call(what()))?;
        let service = ServiceProxyBlocking::builder(&self.connection)
            .path(path)
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(SystemdError::call(what()))?;
        Ok(Some(ServiceState {
            active_state: unit.active_state().map_err(SystemdError::call(what()))?,
            main_pid: service.main_pid().map_err(SystemdError::call(what()))?,
            started_usec: service
                .exec_main_start_timestamp()
                .map_err(SystemdError::call(what()))?,
        }))
    }

    /// Registers a container with machined, so that machinectl, `journalctl -M` and
    /// `systemd-run -M` know it; machined ties it to the caller's unit, found from the
    /// leader's cgroup.
    pub fn register_machine(&self, machine: &Machine<'_>) -> Result<(), SystemdError> {
        let machined = MachineManagerProxyBlocking::new(&self.connection)
            .map_err(SystemdError::call("systemd-machined"))?;
        machined
            .register_machine(
                machine.name,
                machine.id.to_vec(),
                machine.service,
                "container",
                machine.leader,
                &machine.root.to_string_lossy(),
            )
            .map_err(SystemdError::call(format!(
                "registering {} with systemd-machined",
                machine.name
            )))?;
        Ok(())
    }
}

/// The pod's system bus, seen from the host through its PID 1 `leader` (a host PID).
pub fn pod_bus_path(leader: u32) -> String {
    format!("/proc/{leader}/root/run/dbus/system_bus_socket")
}

/// Asks systemd to send its signals to this connection; asking twice is fine.
fn subscribe(manager: &ManagerProxyBlocking<'_>) -> Result<(), SystemdError> {
    match manager.subscribe() {
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" =>
        {
            Ok(())
        }
        other => other.map_err(SystemdError::call("subscribing to systemd's signals")),
    }
}

/// What systemd says about a loaded service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// active, activating, deactivating, inactive, failed, ...
    pub active_state: String,
    /// 0 when no main process runs.
    pub main_pid: u32,
    /// When its main process started, µs since the epoch; 0 if never.
    pub started_usec: u64,
}

impl ServiceState {
    /// Whether it has a process running, or is on its way to or from having one.
    pub fn is_running(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "activating" | "deactivating" | "reloading"
        )
    }
}

/// A container as machined should know it.
pub struct Machine<'a> {
    pub name: &'a str,
    pub id: [u8; 16],
    pub service: &'a str,
    pub leader: u32,
    pub root: &'a Path,
}

/// How a service's main process ended, as systemd reports it (`ExecMainCode`, `ExecMainStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainExit {
    Exited(i32),
    Killed(i32),
}

impl MainExit {
    fn from_wait_code(code: i32, status: i32) -> Option<MainExit> {
        // CLD_EXITED, CLD_KILLED, CLD_DUMPED from waitid(2).
        match code {
            1 => Some(MainExit::Exited(status)),
            2 | 3 => Some(MainExit::Killed(status)),
            _ => None,
        }
    }

    /// As a shell reports it: the exit code, or 128 + the signal.
    pub fn shell_status(self) -> i32 {
        match self {
            MainExit::Exited(code) => code,
            MainExit::Killed(signal) => 128 + signal,
        }
    }
}

/// A transient service started by [`Systemd::start_service`].
pub struct ServiceRun {
    name: String,
    changes: MessageIterator,
    main_exit: Option<MainExit>,
    /// Seen to end while waiting for it to become active.
    ended: bool,
}

impl ServiceRun {
    /// Waits until the service is active (for `Type=notify`: once it sent `READY=1`) and
    /// returns true; false if it ended first (its exit stays for [`ServiceRun::wait`]).
    pub fn wait_active(&mut self) -> Result<bool, SystemdError> {
        if self.ended {
            return Ok(false);
        }
        while let Some(message) = self.changes.next() {
            let Ok(message) = message else { continue };
            if unit_active_state(&message).as_deref() == Some("active") {
                return Ok(true);
            }
            if self.absorb(&message) {
                self.ended = true;
                return Ok(false);
            }
        }
        Err(SystemdError::Disconnected(self.name.clone()))
    }

    /// Waits until the service is inactive or failed and returns how its main process ended;
    /// `None` if it never ran (its start failed before a process existed).
    pub fn wait(mut self) -> Result<Option<MainExit>, SystemdError> {
        if self.ended {
            return Ok(self.main_exit);
        }
        while let Some(message) = self.changes.next() {
            let Ok(message) = message else { continue };
            if self.absorb(&message) {
                return Ok(self.main_exit);
            }
        }
        Err(SystemdError::Disconnected(self.name))
    }

    /// Takes in one PropertiesChanged signal; true once the unit has ended.
    fn absorb(&mut self, message: &Message) -> bool {
        let Some((interface, changed)) = properties_changed(message) else {
            return false;
        };
        let int =
            |key: &str| -> Option<i32> { changed.get(key).and_then(|v| i32::try_from(v).ok()) };
        match interface.as_str() {
            "org.freedesktop.systemd1.Service" => {
                if let (Some(code), Some(status)) = (int("ExecMainCode"), int("ExecMainStatus"))
                    && let Some(exit) = MainExit::from_wait_code(code, status)
                {
                    self.main_exit = Some(exit);
                }
                false
            }
            "org.freedesktop.systemd1.Unit" => {
                // Inactive with a job pending is the moment before the start, not the end.
                let ended = changed
                    .get("ActiveState")
                    .and_then(|v| <&str>::try_from(v).ok())
                    .is_some_and(|state| matches!(state, "inactive" | "failed"));
                let job_pending = changed
                    .get("Job")
                    .and_then(|v| v.try_clone().ok())
                    .and_then(|v| <(u32, OwnedObjectPath)>::try_from(v).ok())
                    .is_some_and(|(id, _)| id != 0);
                ended && !job_pending
            }
            _ => false,
        }
    }
}

/// The interface and changed values of an org.freedesktop.DBus.Properties.PropertiesChanged
/// signal.
fn properties_changed(message: &Message) -> Option<(String, HashMap<String, OwnedValue>)> {
    let (interface, changed, _) = message
        .body()
        .deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
        .ok()?;
    Some((interface, changed))
}

/// The unit's new ActiveState, if `message` is a PropertiesChanged of a unit that carries it.
fn unit_active_state(message: &Message) -> Option<String> {
    let (interface, changed) = properties_changed(message)?;
    if interface != "org.freedesktop.systemd1.Unit" {
        return None;
    }
    changed
        .get("ActiveState")
        .and_then(|v| <&str>::try_from(v).ok())
        .map(str::to_owned)
}

/// The D-Bus object path systemd gives a unit: every byte outside `[A-Za-z0-9]` becomes `_xx`.
pub fn unit_object_path(name: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            path.push(b as char);
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

/// The unit a D-Bus object path of systemd's names (the inverse of [`unit_object_path`]).
pub fn unit_name_from_object_path(path: &str) -> Option<String> {
    let escaped = path.strip_prefix("/org/freedesktop/systemd1/unit/")?;
    let bytes = escaped.as_bytes();
    let mut name = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            name.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            name.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(name).ok()
}

/// How long systemd may take to answer a call before we give up.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_escape_like_systemd() {
        assert_eq!(
            unit_object_path("rkt-1b2c.service"),
            "/org/freedesktop/systemd1/unit/rkt_2d1b2c_2eservice"
        );
        assert_eq!(
            unit_object_path("-.slice"),
            "/org/freedesktop/systemd1/unit/_2d_2eslice"
        );
    }

    #[test]
    fn unit_paths_read_back() {
        for name in [
            "rkt-1b2c.service",
            "-.slice",
            "probe.service",
            "a_b@c.service",
        ] {
            assert_eq!(
                unit_name_from_object_path(&unit_object_path(name)).as_deref(),
                Some(name)
            );
        }
        assert_eq!(unit_name_from_object_path("/elsewhere/x"), None);
        assert_eq!(
            unit_name_from_object_path("/org/freedesktop/systemd1/unit/a_2"),
            None
        );
    }

    #[test]
    fn exit_codes_read_as_a_shell_would() {
        assert_eq!(
            MainExit::from_wait_code(1, 7).map(MainExit::shell_status),
            Some(7)
        );
        assert_eq!(
            MainExit::from_wait_code(2, 15).map(MainExit::shell_status),
            Some(143)
        );
        assert_eq!(MainExit::from_wait_code(0, 0), None);
    }
}
