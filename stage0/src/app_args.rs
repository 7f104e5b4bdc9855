//! The images of `rkt run`/`rkt prepare` with their per-app options, which apply to the image
//! before them as in the original rkt:
//! `IMAGE [--user=U --exec=/x ...] [-- ARGS... ---] IMAGE2 ...`.
//! They are taken out of the command line before clap sees the rest.

use anyhow::{Context, Result, anyhow, bail};
use rkt_pod::{AppOverrides, parse_env_assignment, parse_env_file};
use rkt_schema::{CapabilitySet, IsolatorValue, Quantity, Resource, SeccompSet};

/// The per-app options taken out of a command line, one entry per image in order.
pub type PerApp = Vec<AppOverrides>;

/// The per-app option names (each takes a value, but --readonly-rootfs). `cap-retain` and
/// `cap-remove` are the original's older spellings of `caps-retain` and `caps-remove`.
const PER_APP: [&str; 20] = [
    "name",
    "exec",
    "user",
    "group",
    "supplementary-gids",
    "working-dir",
    "set-env",
    "environment",
    "set-env-file",
    "readonly-rootfs",
    "memory",
    "cpu",
    "cpu-shares",
    "oom-score-adj",
    "caps-retain",
    "caps-remove",
    "cap-retain",
    "cap-remove",
    "seccomp",
    "mount",
];

pub const HELP: &str = "\
Per-app options follow their image: --name, --exec, --user, --group, --supplementary-gids=1,2,
--working-dir, --set-env=NAME=VALUE (or --environment), --set-env-file=FILE, --readonly-rootfs,
--memory=64M, --cpu=500m, --cpu-shares=N, --caps-retain=CAP_A,CAP_B, --caps-remove=...,
--seccomp=mode=retain|remove[,errno=EPERM],SYSCALL,..., --oom-score-adj=N,
--mount=volume=NAME,target=PATH;
arguments for the app follow `--` and end at `---`:
  rkt run img1 --user=1000 --memory=64M -- --verbose --- img2 --exec=/bin/sh";

/// Takes the per-app options out of the command line of `run` and `prepare` (other commands
/// are returned as they are): clap parses what is left, the images among it in order.
/// `takes_value(name)` says whether the pod or global option `--name` takes a value, so that
/// a value is not taken for an image. Options before the first image (`--set-env`) are the
/// pod's, as clap sees them.
pub fn split_app_options(
    argv: Vec<String>,
    takes_value: impl Fn(&str) -> bool,
) -> Result<(Vec<String>, PerApp)> {
    let mut kept = Vec::with_capacity(argv.len());
    let mut apps: PerApp = Vec::new();
    let mut iter = argv.into_iter();
    kept.extend(iter.next()); // the program
    let mut subcommand: Option<String> = None;
    // `app add UUID IMAGE`: the UUID is not an image.
    let mut not_images = 0;
    while let Some(token) = iter.next() {
        let option = token.strip_prefix("--").filter(|o| !o.is_empty());
        let per_app = option.map(|o| o.split_once('=').map_or(o, |(n, _)| n));
        match (subcommand.as_deref(), per_app) {
            (Some(_), _) if token == "--" => {
                let app = apps
                    .last_mut()
                    .ok_or_else(|| anyhow!("arguments after `--` need an image before them"))?;
                let args: Vec<String> = iter.by_ref().take_while(|a| a != "---").collect();
                app.args = Some(args);
            }
            (Some("run" | "prepare" | "add"), Some(name))
                if apps.is_empty() && PER_APP.contains(&name) && !takes_value(name) =>
            {
                bail!("--{name} is a per-app option: put it after the image it is for");
            }
            (Some("run" | "prepare" | "add"), Some(name))
                if !apps.is_empty() && PER_APP.contains(&name) =>
            {
                let option = option.unwrap_or_default();
                let app = apps.last_mut().ok_or_else(|| anyhow!("no image"))?;
                parse_option(app, option, &mut iter)?;
            }
            (_, Some(name)) => {
                let needs_value = !option.is_some_and(|o| o.contains('=')) && takes_value(name);
                kept.push(token);
                if needs_value {
                    kept.extend(iter.next());
                }
            }
            (None, None) if token == "app" => {
                kept.push(token);
                match iter.next() {
                    Some(sub) if sub == "add" => {
                        subcommand = Some(sub.clone());
                        not_images = 1;
                        kept.push(sub);
                    }
                    // Not ours: clap gets the whole line.
                    other => {
                        kept.extend(other);
                        kept.extend(iter);
                        return Ok((kept, apps));
                    }
                }
            }
            (None, None) if !token.starts_with('-') => {
                if token != "run" && token != "prepare" {
                    // Not ours: clap gets the whole line.
                    kept.push(token);
                    kept.extend(iter);
                    return Ok((kept, apps));
                }
                subcommand = Some(token.clone());
                kept.push(token);
            }
            (Some(_), None) if !token.starts_with('-') && not_images > 0 => {
                not_images -= 1;
                kept.push(token);
            }
            (Some(_), None) if !token.starts_with('-') => {
                apps.push(AppOverrides::default());
                kept.push(token);
            }
            _ => kept.push(token),
        }
    }
    Ok((kept, apps))
}

/// One per-app option (`name=value`, `name value` or the flag `readonly-rootfs`).
fn parse_option(
    app: &mut AppOverrides,
    option: &str,
    rest: &mut impl Iterator<Item = String>,
) -> Result<()> {
    let (name, inline) = match option.split_once('=') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (option, None),
    };
    if name == "readonly-rootfs" {
        app.readonly_rootfs = match inline.as_deref() {
            None => true,
            Some(v) => crate::compat::parse_go_bool(v).ok_or_else(|| {
                anyhow!(
                    "--readonly-rootfs={}: give true or false",
                    rkt_common::excerpt::shown(v)
                )
            })?,
        };
        return Ok(());
    }
    let value = match inline {
        Some(v) => v,
        None => rest
            .next()
            .ok_or_else(|| anyhow!("--{name} needs a value"))?,
    };
    apply_option(app, name, &value)
        .with_context(|| format!("--{name}={}", rkt_common::excerpt::shown(&value)))
}

fn apply_option(o: &mut AppOverrides, name: &str, value: &str) -> Result<()> {
    match name {
        "name" => o.name = Some(value.to_owned()),
        "exec" => o.exec = Some(exec(value)?),
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
        "caps-retain" | "cap-retain" => o
            .isolators
            .push(IsolatorValue::CapabilitiesRetainSet(capabilities(value)?)),
        "caps-remove" | "cap-remove" => o
            .isolators
            .push(IsolatorValue::CapabilitiesRemoveSet(capabilities(value)?)),
        "seccomp" => o.isolators.push(seccomp(value)?),
        "mount" => o
            .mounts
            .push(rkt_pod::parse_mount(value).map_err(|e| anyhow!(e))?),
        _ => bail!("unknown per-app option --{name} (see rkt run --help)"),
    }
    Ok(())
}

/// `--exec`: an absolute path in the app's root, or a bare name that stage1 looks up in the
/// image's PATH (exec(3) searches PATH only for a name without a slash; a relative path has
/// nothing to be relative to). Refused here, before any image is fetched or pod made.
fn exec(value: &str) -> Result<String> {
    if value.trim().is_empty() {
        bail!(
            "give the program to run: an absolute path (/bin/sh) or a name in the image's PATH (sh)"
        );
    }
    if value.contains('/') && !value.starts_with('/') {
        bail!(
            "a relative path is not looked up anywhere: give an absolute path (/{}) or a bare name found in the image's PATH",
            value.trim_start_matches("./")
        );
    }
    Ok(value.to_owned())
}

fn read_env_file(path: &str) -> Result<Vec<(String, String)>> {
    let text = crate::input::read_limited_text(
        std::path::Path::new(path),
        crate::commands::ENV_FILE_LIMIT,
    )
    .with_context(|| format!("reading {path}"))?;
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
    rkt_pod::plan::capability_mask("", set.iter().map(String::as_str))
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

    /// The pod options of these tests that take a value.
    fn takes_value(name: &str) -> bool {
        matches!(name, "dir" | "uuid-file-save" | "set-env" | "pull-policy")
    }

    fn split(args: &[&str]) -> Result<(Vec<String>, PerApp)> {
        let argv = std::iter::once("rkt")
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect();
        split_app_options(argv, takes_value)
    }

    fn parse(args: &[&str]) -> Result<PerApp> {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        split(&all).map(|(_, apps)| apps)
    }

    #[test]
    fn app_add_takes_the_image_options_not_the_uuid() {
        let (kept, apps) = split(&[
            "app",
            "add",
            "1234abcd",
            "img.aci",
            "--name=probe",
            "--user",
            "0",
            "--",
            "--print-msg",
            "hi",
        ])
        .unwrap();
        assert_eq!(kept, ["rkt", "app", "add", "1234abcd", "img.aci"]);
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].name.as_deref(), Some("probe"));
        assert_eq!(apps[0].user.as_deref(), Some("0"));
        assert_eq!(
            apps[0].args.as_deref(),
            Some(&["--print-msg".to_owned(), "hi".to_owned()][..])
        );
        // Other app subcommands are clap's alone.
        let (kept, apps) = split(&["app", "start", "1234", "--app=probe"]).unwrap();
        assert_eq!(kept, ["rkt", "app", "start", "1234", "--app=probe"]);
        assert!(apps.is_empty());
    }

    #[test]
    fn pod_options_stay_for_clap() {
        let (kept, apps) = split(&[
            "--dir",
            "/d",
            "run",
            "--set-env=A=1",
            "--set-env",
            "B=2",
            "a.aci",
            "--user=0",
            "--uuid-file-save",
            "/tmp/u",
            "b.aci",
            "--no-overlay",
            "--",
            "x",
            "---",
        ])
        .unwrap();
        assert_eq!(
            kept,
            [
                "rkt",
                "--dir",
                "/d",
                "run",
                "--set-env=A=1",
                "--set-env",
                "B=2",
                "a.aci",
                "--uuid-file-save",
                "/tmp/u",
                "b.aci",
                "--no-overlay"
            ]
        );
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].user.as_deref(), Some("0"));
        assert_eq!(apps[1].args, Some(vec!["x".to_owned()]));
        let (kept, apps) = split(&["enter", "u", "--", "--user", "x"]).unwrap();
        assert_eq!(kept.len(), 6);
        assert!(apps.is_empty());
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
        assert_eq!(apps[0].user.as_deref(), Some("1000"));
        assert_eq!(apps[0].group.as_deref(), Some("1000"));
        assert_eq!(apps[0].args, Some(vec!["x".into(), "--y".into()]));
        assert_eq!(apps[1].exec.as_deref(), Some("/sh"));
        assert!(apps[1].readonly_rootfs && !apps[0].readonly_rootfs);
        assert_eq!(apps[1].environment, [("K".into(), "V=W".into())]);
    }

    #[test]
    fn isolator_flags_become_isolators() {
        let apps = parse(&[
            "a",
            "--memory=64M",
            "--cpu=250m",
            "--caps-retain=CAP_KILL,net_raw",
            "--seccomp=mode=remove,errno=ENOTTY,chroot",
            "--cap-remove=CAP_MKNOD",
            "--readonly-rootfs=1",
        ])
        .unwrap();
        let names: Vec<_> = apps[0].isolators.iter().map(|i| i.name()).collect();
        assert_eq!(
            names,
            [
                "resource/memory",
                "resource/cpu",
                "os/linux/capabilities-retain-set",
                "os/linux/seccomp-remove-set",
                "os/linux/capabilities-remove-set"
            ]
        );
        assert!(apps[0].readonly_rootfs);
    }

    #[test]
    fn bad_values_are_one_clear_error() {
        let err = |args: &[&str]| format!("{:#}", parse(args).unwrap_err());
        assert!(
            err(&["a", "--caps-retain=CAP_FLY"]).contains("\"CAP_FLY\" is not a Linux capability")
        );
        assert!(err(&["a", "--memory=lots"]).contains("not a quantity"));
        assert!(err(&["a", "--seccomp=chroot"]).contains("mode=retain"));
        assert!(err(&["a", "--supplementary-gids=x"]).contains("numbers"));
        assert!(err(&["a", "--user"]).contains("needs a value"));
        assert!(err(&["a", "--exec="]).contains("absolute path"));
        assert!(err(&["a", "--exec", " "]).contains("absolute path"));
        assert!(err(&["a", "--exec=bin/true"]).contains("/bin/true"));
        assert!(err(&["a", "--exec=./run"]).contains("/run"));
        let apps = parse(&["a", "--exec=true", "b", "--exec=/bin/true"]).unwrap();
        assert_eq!(apps[0].exec.as_deref(), Some("true"));
        assert_eq!(apps[1].exec.as_deref(), Some("/bin/true"));
    }
}
