//! The hand-off: asking systemd, over the system bus, to run stage1 as the pod's own unit, and
//! watching for the job and the unit to finish rather than sleeping.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rkt_runtime::systemd::ManagerProxyBlocking;
use zbus::blocking::Connection;
use zbus::zvariant::Value;

/// The pod's unit, as stage0 asks systemd to create it.
pub struct PodUnit<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub stage1: &'a Path,
    pub dir: &'a Path,
    pub uuid: &'a str,
    /// The unit `rkt run` itself runs in, which the pod is bound to.
    pub bound_to: Option<&'a str>,
    /// `--interactive`: stage1 gets `rkt run`'s terminal as its stdin, stdout and stderr.
    pub interactive: bool,
}

/// A connection to the system's systemd.
pub struct Systemd {
    connection: Connection,
}

impl Systemd {
    pub fn connect() -> Result<Systemd> {
        let connection = Connection::system().context(
            "cannot reach systemd on the system bus: is this host running systemd and D-Bus?",
        )?;
        Ok(Systemd { connection })
    }

    /// Starts the pod's unit and waits for its start job: done once stage1 said READY=1 (the
    /// pod booted and its apps were started), failed if stage1 gave up before.
    pub fn start_pod(&self, unit: &PodUnit<'_>) -> Result<()> {
        let manager = ManagerProxyBlocking::new(&self.connection)?;
        manager
            .subscribe()
            .context("subscribing to systemd's job signals")?;
        // Listen before starting, so that the job's end cannot slip by unseen.
        let mut jobs = manager.receive_job_removed()?;

        let exec_start = vec![(
            unit.stage1.to_string_lossy().into_owned(),
            vec![
                unit.stage1.to_string_lossy().into_owned(),
                "--dir".to_owned(),
                unit.dir.to_string_lossy().into_owned(),
                unit.uuid.to_owned(),
            ],
            false,
        )];
        // Borrowed by the properties of an interactive pod, until the unit is made.
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        let mut properties: Vec<(&str, Value<'_>)> = vec![
            ("Description", Value::from(unit.description)),
            ("Slice", Value::from("machine.slice")),
            ("Type", Value::from("notify")),
            // stage1 runs systemd-nspawn, which manages the pod's cgroup subtree.
            ("Delegate", Value::from(true)),
            // SIGTERM to stage1 alone: it shuts the apps and the pod down in order.
            ("KillMode", Value::from("mixed")),
            ("TimeoutStopUSec", Value::from(30_000_000u64)),
            // No start timeout of its own: stage1 bounds the pod's boot, and how long an app
            // may take to say READY=1 is for the unit running `rkt run` to say (its
            // TimeoutStartSec= stops it, and the pod with it).
            ("TimeoutStartUSec", Value::from(u64::MAX)),
            ("ExecStart", Value::from(exec_start)),
        ];
        if unit.interactive {
            use std::os::fd::AsFd;
            use zbus::zvariant::Fd;
            // systemd duplicates them as it creates the unit.
            properties.push((
                "StandardInputFileDescriptor",
                Value::from(Fd::from(stdin.as_fd())),
            ));
            properties.push((
                "StandardOutputFileDescriptor",
                Value::from(Fd::from(stdout.as_fd())),
            ));
            properties.push((
                "StandardErrorFileDescriptor",
                Value::from(Fd::from(stderr.as_fd())),
            ));
        }
        if let Some(caller) = unit.bound_to {
            // Not After= the caller: a caller that is still starting (Type=notify waiting for
            // this pod's readiness, Type=oneshot waiting for `rkt run` to end) would wait for
            // the pod while the pod's start waited for it.
            properties.push(("BindsTo", Value::from(vec![caller])));
        }
        let job = manager
            .start_transient_unit(unit.name, "fail", &properties, &[])
            .with_context(|| format!("asking systemd to start {}", unit.name))?;
        for signal in &mut jobs {
            let args = signal.args()?;
            if args.job.as_str() != job.as_str() {
                continue;
            }
            return match args.result.as_str() {
                "done" => Ok(()),
                result => bail!(
                    "the pod's unit {} did not start ({result}); see journalctl -u {}",
                    unit.name,
                    unit.name
                ),
            };
        }
        bail!(
            "lost the connection to systemd while starting {}",
            unit.name
        )
    }

    /// Asks systemd to stop a unit (without waiting for it).
    pub fn stop_unit(&self, name: &str) -> Result<()> {
        let manager = ManagerProxyBlocking::new(&self.connection)?;
        manager
            .stop_unit(name, "replace")
            .with_context(|| format!("asking systemd to stop {name}"))?;
        Ok(())
    }

    /// Waits until the unit is no longer active (the pod ended).
    pub fn wait_inactive(&self, name: &str) -> Result<()> {
        rkt_runtime::systemd::Systemd::from_connection(self.connection.clone())
            .wait_unit_inactive(name)
            .with_context(|| format!("waiting for {name} to end"))
    }
}
