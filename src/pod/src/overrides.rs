//! Per-app options given on the command line (`--exec`, `--user`, `--memory`, ...): what they
//! change in the image's app, written into the pod manifest's `apps[].app` so that stage1 and
//! `rkt cat-manifest` see the app that really runs.

use rkt_schema::{App, EnvironmentVariable, Isolator, IsolatorValue, Mount};

/// What the user changed about one app; `None`/empty means "as the image says".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppOverrides {
    /// `--name`: the app's name in the pod instead of the image name's last part.
    pub name: Option<String>,
    /// `--exec`: the program to run instead of the image's `exec[0]`.
    pub exec: Option<String>,
    /// Arguments after `--` (up to `---`): replace the image's arguments.
    pub args: Option<Vec<String>>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_gids: Option<Vec<u32>>,
    pub working_dir: Option<String>,
    /// The environment under the image's (`--inherit-env`: the image's values win).
    pub base_environment: Vec<(String, String)>,
    /// The environment added over the image's, in order (a later value of a name wins).
    pub environment: Vec<(String, String)>,
    /// `--readonly-rootfs`.
    pub readonly_rootfs: bool,
    /// `--memory`, `--cpu`, `--caps-retain`, ...: replace the image's isolator of that name.
    pub isolators: Vec<IsolatorValue>,
    /// `--mount volume=NAME,target=PATH`: into the pod manifest's `apps[].mounts`, not its app.
    pub mounts: Vec<Mount>,
}

impl AppOverrides {
    /// Whether the image's app is used unchanged (mounts are the pod's, not the app's).
    pub fn is_empty(&self) -> bool {
        AppOverrides {
            mounts: Vec::new(),
            ..self.clone()
        } == AppOverrides::default()
    }

    /// The image's app with these options applied.
    pub fn apply(&self, image_app: &App) -> App {
        let mut app = image_app.clone();
        match (&self.exec, &self.args) {
            (Some(exec), Some(args)) => {
                app.exec = std::iter::once(exec.clone()).chain(args.clone()).collect();
            }
            (Some(exec), None) => match app.exec.first_mut() {
                Some(first) => *first = exec.clone(),
                None => app.exec = vec![exec.clone()],
            },
            (None, Some(args)) => {
                app.exec.truncate(1);
                app.exec.extend(args.iter().cloned());
            }
            (None, None) => {}
        }
        if let Some(user) = &self.user {
            app.user = user.clone();
        }
        if let Some(group) = &self.group {
            app.group = group.clone();
        }
        if let Some(gids) = &self.supplementary_gids {
            app.supplementary_gids = gids.clone();
        }
        if let Some(dir) = &self.working_dir {
            app.working_directory = dir.clone();
        }
        let mut base: Vec<EnvironmentVariable> = Vec::new();
        for (name, value) in &self.base_environment {
            if !app.environment.iter().any(|v| &v.name == name) {
                base.retain(|v| &v.name != name);
                base.push(EnvironmentVariable {
                    name: name.clone(),
                    value: value.clone(),
                });
            }
        }
        base.append(&mut app.environment);
        app.environment = base;
        for (name, value) in &self.environment {
            app.environment.retain(|v| &v.name != name);
            app.environment.push(EnvironmentVariable {
                name: name.clone(),
                value: value.clone(),
            });
        }
        for value in &self.isolators {
            let isolator = Isolator::from(value.clone());
            app.isolators.retain(|i| i.name != isolator.name);
            app.isolators.push(isolator);
        }
        app
    }
}

/// Parses `NAME=VALUE` lines of a `--set-env-file` (blank lines and `#` comments skipped).
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The line is not quoted: env files hold secrets, and a line that is not an
        // assignment may be one (`export TOKEN=…`).
        let (name, value) = parse_env_assignment(line).map_err(|_| {
            format!(
                "line {} is not NAME=VALUE (a name without spaces, then =)",
                i + 1
            )
        })?;
        vars.push((name, value));
    }
    Ok(vars)
}

/// Parses one `NAME=VALUE`.
pub fn parse_env_assignment(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "{} is not NAME=VALUE",
            rkt_common::excerpt::excerpt(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkt_schema::{CapabilitySet, Quantity, Resource};

    fn image_app() -> App {
        serde_json::from_str(
            r#"{"exec": ["/inspect", "--print-env"], "user": "0", "group": "0",
                "environment": [{"name": "A", "value": "image"}],
                "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn nothing_given_keeps_the_image_app() {
        let o = AppOverrides::default();
        assert!(o.is_empty());
        assert_eq!(o.apply(&image_app()), image_app());
    }

    #[test]
    fn exec_and_args_replace_the_command() {
        let app = image_app();
        let exec_only = AppOverrides {
            exec: Some("/bin/other".into()),
            ..Default::default()
        };
        assert_eq!(exec_only.apply(&app).exec, ["/bin/other", "--print-env"]);
        let args_only = AppOverrides {
            args: Some(vec!["--print-cwd".into()]),
            ..Default::default()
        };
        assert_eq!(args_only.apply(&app).exec, ["/inspect", "--print-cwd"]);
        let both = AppOverrides {
            exec: Some("/x".into()),
            args: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(both.apply(&app).exec, ["/x"]);
    }

    #[test]
    fn environment_and_isolators_override_by_name() {
        let o = AppOverrides {
            base_environment: vec![("A".into(), "host".into()), ("H".into(), "host".into())],
            environment: vec![("A".into(), "cli".into()), ("B".into(), "b".into())],
            isolators: vec![
                IsolatorValue::ResourceMemory(Resource::with_limit(
                    Quantity::parse("64M").unwrap(),
                )),
                IsolatorValue::CapabilitiesRetainSet(CapabilitySet {
                    set: vec!["CAP_KILL".into()],
                }),
            ],
            ..Default::default()
        };
        let app = o.apply(&image_app());
        let env: Vec<_> = app
            .environment
            .iter()
            .map(|v| format!("{}={}", v.name, v.value))
            .collect();
        assert_eq!(env, ["H=host", "A=cli", "B=b"]);
        let names: Vec<_> = app.isolators.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["resource/memory", "os/linux/capabilities-retain-set"]
        );
        assert_eq!(app.isolators[0].value["limit"], "64M");
    }

    #[test]
    fn env_files_are_name_value_lines() {
        let vars = parse_env_file("# comment\nA=1\n\nB=x=y\n").unwrap();
        assert_eq!(vars, [("A".into(), "1".into()), ("B".into(), "x=y".into())]);
        assert!(
            parse_env_file("A=1\nnot an assignment\n")
                .unwrap_err()
                .starts_with("line 2 is not NAME=VALUE")
        );
    }
}
