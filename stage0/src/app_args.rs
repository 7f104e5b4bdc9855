//! The images of `rkt run`/`rkt prepare` with their per-app options, which apply to the image
//! before them as in the original rkt:
//! `IMAGE [--user=U --exec=/x ...] [-- ARGS... ---] IMAGE2 ...`.
//! clap hands us everything from the first image on; this splits it into apps.

use anyhow::{Context, Result, anyhow, bail};
use rkt::pod::{AppOverrides, parse_env_assignment, parse_env_file};
use rkt::schema::{CapabilitySet, IsolatorValue, Quantity, Resource, SeccompSet};

/// One image to run and what to change about its app.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageApp {
    pub image: String,
    pub overrides: AppOverrides,
}

pub const HELP: &str = "\
Per-app options follow their image: --name, --exec, --user, --group, --supplementary-gids=1,2,
--working-dir, --set-env=NAME=VALUE (or --environment), --set-env-file=FILE, --readonly-rootfs,
--memory=64M, --cpu=500m, --cpu-shares=N, --caps-retain=CAP_A,CAP_B, --caps-remove=...,
--seccomp=mode=retain|remove[,errno=EPERM],SYSCALL,..., --oom-score-adj=N;
arguments for the app follow `--` and end at `---`:
  rkt run img1 --user=1000 --memory=64M -- --verbose --- img2 --exec=/bin/sh";

/// Splits the command line from the first image on into apps.
pub fn parse_image_apps(raw: &[String]) -> Result<Vec<ImageApp>> {
    let mut apps: Vec<ImageApp> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let token = &raw[i];
        i += 1;
        if token == "--" {
            let app = apps
                .last_mut()
                .ok_or_else(|| anyhow!("arguments after `--` need an image before them"))?;
            let mut args = Vec::new();
            while i < raw.len() && raw[i] != "---" {
                args.push(raw[i].clone());
                i += 1;
            }
            i += 1; // the `---`, if any
            app.overrides.args = Some(args);
            continue;
        }
        let Some(option) = token.strip_prefix("--") else {
            apps.push(ImageApp {
                image: token.clone(),
                overrides: AppOverrides::default(),
            });
            continue;
        };
        let (name, inline) = match option.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (option, None),
        };
        let app = apps.last_mut().ok_or_else(|| {
            anyhow!("--{name} is a per-app option: put it after the image it is for")
        })?;
        if name == "readonly-rootfs" {
            app.overrides.readonly_rootfs = match inline.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(v) => bail!("--readonly-rootfs={v}: give true or false"),
            };
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = raw
                    .get(i)
                    .cloned()
                    .ok_or_else(|| anyhow!("--{name} needs a value"))?;
                i += 1;
                v
            }
        };
        apply_option(&mut app.overrides, name, &value)
            .with_context(|| format!("--{name}={value} (for image {})", app.image))?;
    }
    Ok(apps)
}

fn apply_option(o: &mut AppOverrides, name: &str, value: &str) -> Result<()> {
    match name {
        "name" => o.name = Some(value.to_owned()),
        "exec" => o.exec = Some(value.to_owned()),
        "user" => o.user = Some(value.to_owned()),
        "group" => o.group = Some(value.to_owned()),
        "working-dir" => {
            if !value.starts_with('/') {
                bail!("the working directory must be an absolute path");
            }
            o.working_dir = Some(value.to_owned());
        }
        "supplementary-gids" => {
            let gids = value
                .split(',')
                .map(|g| g.trim().parse::<u32>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| anyhow!("give group IDs as numbers, comma-separated"))?;
            o.supplementary_gids = Some(gids);
        }
        "set-env" | "environment" => o
            .environment
            .push(parse_env_assignment(value).map_err(|e| anyhow!(e))?),
        "set-env-file" => o.environment.extend(read_env_file(value)?),
        "memory" => o
            .isolators
            .push(IsolatorValue::ResourceMemory(resource(value)?)),
        "cpu" => o
            .isolators
            .push(IsolatorValue::ResourceCpu(resource(value)?)),
        "cpu-shares" => {
            let shares: u32 = value
                .parse()
                .ok()
                .filter(|s| (2..=262_144).contains(s))
                .ok_or_else(|| anyhow!("give a number from 2 to 262144"))?;
            o.isolators.push(IsolatorValue::CpuShares(shares));
        }
        "oom-score-adj" => {
            let adj: i32 = value
                .parse()
                .ok()
                .filter(|a| (-1000..=1000).contains(a))
                .ok_or_else(|| anyhow!("give a number from -1000 to 1000"))?;
            o.isolators.push(IsolatorValue::OomScoreAdj(adj));
        }
        "caps-retain" => o
            .isolators
            .push(IsolatorValue::CapabilitiesRetainSet(capabilities(value)?)),
        "caps-remove" => o
            .isolators
            .push(IsolatorValue::CapabilitiesRemoveSet(capabilities(value)?)),
        "seccomp" => o.isolators.push(seccomp(value)?),
        _ => bail!("unknown per-app option --{name}\n{HELP}"),
    }
    Ok(())
}

fn read_env_file(path: &str) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    parse_env_file(&text).map_err(|e| anyhow!("{path}: {e}"))
}

fn resource(value: &str) -> Result<Resource> {
    let limit = Quantity::parse(value)
        .map_err(|_| anyhow!("{value:?} is not a quantity like 64M, 1Gi or 500m"))?;
    Ok(Resource::with_limit(limit))
}

fn capabilities(value: &str) -> Result<CapabilitySet> {
    let set: Vec<String> = value.split(',').map(|c| c.trim().to_owned()).collect();
    // The names are checked now so that a typo stops the run before anything is made.
    rkt::stage1::capability_mask("", set.iter().map(String::as_str))
        .map_err(|e| anyhow!("{}", e.to_string().trim_start_matches("app : ")))?;
    Ok(CapabilitySet { set })
}

/// `mode=retain|remove[,errno=ENAME],syscall,...`
fn seccomp(value: &str) -> Result<IsolatorValue> {
    let mut mode = None;
    let mut errno = None;
    let mut set = Vec::new();
    for part in value.split(',') {
        if let Some(m) = part.strip_prefix("mode=") {
            mode = Some(m.to_owned());
        } else if let Some(e) = part.strip_prefix("errno=") {
            errno = Some(e.to_owned());
        } else if !part.is_empty() {
            set.push(part.to_owned());
        }
    }
    if set.is_empty() {
        bail!("name at least one syscall");
    }
    let seccomp = SeccompSet { set, errno };
    match mode.as_deref() {
        Some("retain") => Ok(IsolatorValue::SeccompRetainSet(seccomp)),
        Some("remove") => Ok(IsolatorValue::SeccompRemoveSet(seccomp)),
        _ => bail!("start with mode=retain or mode=remove"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Vec<ImageApp>> {
        let raw: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_image_apps(&raw)
    }

    #[test]
    fn options_apply_to_the_image_before_them() {
        let apps = parse(&[
            "a.aci",
            "--user=1000",
            "--group",
            "1000",
            "--",
            "x",
            "--y",
            "---",
            "b",
            "--exec=/sh",
            "--readonly-rootfs",
            "--set-env=K=V=W",
        ])
        .unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].image, "a.aci");
        assert_eq!(apps[0].overrides.user.as_deref(), Some("1000"));
        assert_eq!(apps[0].overrides.group.as_deref(), Some("1000"));
        assert_eq!(apps[0].overrides.args, Some(vec!["x".into(), "--y".into()]));
        assert_eq!(apps[1].image, "b");
        assert_eq!(apps[1].overrides.exec.as_deref(), Some("/sh"));
        assert!(apps[1].overrides.readonly_rootfs && !apps[0].overrides.readonly_rootfs);
        assert_eq!(apps[1].overrides.environment, [("K".into(), "V=W".into())]);
    }

    #[test]
    fn isolator_flags_become_isolators() {
        let apps = parse(&[
            "a",
            "--memory=64M",
            "--cpu=250m",
            "--caps-retain=CAP_KILL,net_raw",
            "--seccomp=mode=remove,errno=ENOTTY,chroot",
        ])
        .unwrap();
        let names: Vec<_> = apps[0]
            .overrides
            .isolators
            .iter()
            .map(|i| i.name())
            .collect();
        assert_eq!(
            names,
            [
                "resource/memory",
                "resource/cpu",
                "os/linux/capabilities-retain-set",
                "os/linux/seccomp-remove-set"
            ]
        );
    }

    #[test]
    fn bad_values_are_one_clear_error() {
        let err = |args: &[&str]| format!("{:#}", parse(args).unwrap_err());
        assert!(
            err(&["a", "--caps-retain=CAP_FLY"]).contains("\"CAP_FLY\" is not a Linux capability")
        );
        assert!(err(&["a", "--memory=lots"]).contains("not a quantity"));
        assert!(err(&["a", "--seccomp=chroot"]).contains("mode=retain"));
        assert!(err(&["a", "--frobnicate=1"]).contains("unknown per-app option"));
        assert!(err(&["a", "--supplementary-gids=x"]).contains("numbers"));
        assert!(err(&["a", "--user"]).contains("needs a value"));
    }
}
