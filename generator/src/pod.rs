//! A pod file: systemd's INI syntax (systemd.syntax(7): `[Section]`, `Key=value`, `#`/`;`
//! comments, `\` continuing a line), with rkt's `[Pod]` and `[App]` sections beside the unit's
//! own `[Unit]`, `[Service]` and `[Install]`.

use std::path::{Path, PathBuf};

/// A pod as its file declares it.
#[derive(Debug, Default)]
pub struct Pod {
    /// `[Unit]` lines, passed through (dependencies on other pods, conditions…).
    pub unit: Vec<(String, String)>,
    /// `[Service]` lines, passed through after rkt's own (Restart=, timeouts, limits…).
    pub service: Vec<(String, String)>,
    pub install: Install,
    /// `rkt run`'s pod options (before the first image), in file order.
    pub pod_args: Vec<String>,
    /// Global options (`--insecure-options`), before `run`.
    pub global_args: Vec<String>,
    /// The apps, in file order.
    pub apps: Vec<App>,
    pub manifest: Option<PathBuf>,
    /// `[Pod] DefaultDependencies=`: wait for network-online.target.
    pub network_online: bool,
}

#[derive(Debug, Default)]
pub struct Install {
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
}

/// One `[App]` section: the image and its per-app options.
#[derive(Debug, Default)]
pub struct App {
    pub image: String,
    pub options: Vec<String>,
    pub args: Option<Vec<String>>,
}

/// `[Pod]` keys that map to a `rkt run` option taking a value (repeatable ones may repeat).
const POD_VALUE_KEYS: &[(&str, &str)] = &[
    ("Network", "--net"),
    ("Port", "--port"),
    ("Volume", "--volume"),
    ("Mount", "--mount"),
    ("Environment", "--set-env"),
    ("EnvironmentFile", "--set-env-file"),
    ("Hostname", "--hostname"),
    ("DNS", "--dns"),
    ("DNSSearch", "--dns-search"),
    ("DNSOption", "--dns-opt"),
    ("HostsEntry", "--hosts-entry"),
    ("Sysctl", "--sysctl"),
    ("PullPolicy", "--pull-policy"),
];

/// `[Pod]` keys that are yes/no switches of `rkt run`.
const POD_FLAG_KEYS: &[(&str, &str)] = &[
    ("PrivateUsers", "--private-users"),
    ("NoOverlay", "--no-overlay"),
    ("InheritEnvironment", "--inherit-env"),
    ("MetadataService", "--mds-register"),
];

/// `[App]` keys that map to per-app options taking a value.
const APP_VALUE_KEYS: &[(&str, &str)] = &[
    ("Name", "--name"),
    ("Exec", "--exec"),
    ("User", "--user"),
    ("Group", "--group"),
    ("SupplementaryGroups", "--supplementary-gids"),
    ("WorkingDirectory", "--working-dir"),
    ("Environment", "--set-env"),
    ("EnvironmentFile", "--set-env-file"),
    ("Memory", "--memory"),
    ("CPU", "--cpu"),
    ("CPUShares", "--cpu-shares"),
    ("CapabilitiesRetain", "--caps-retain"),
    ("CapabilitiesRemove", "--caps-remove"),
    ("Seccomp", "--seccomp"),
    ("OOMScoreAdjust", "--oom-score-adj"),
    ("Mount", "--mount"),
];

/// `[Unit]` keys that name units, where `NAME.pod` stands for another pod's unit.
const DEPENDENCY_KEYS: &[&str] = &[
    "Wants",
    "Requires",
    "Requisite",
    "BindsTo",
    "PartOf",
    "Upholds",
    "Conflicts",
    "Before",
    "After",
    "OnFailure",
    "OnSuccess",
    "PropagatesReloadTo",
    "ReloadPropagatedFrom",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "JoinsNamespaceOf",
];

/// `[Service]` keys the generated unit needs as it sets them.
const SERVICE_OWN: &[&str] = &["Type", "ExecStart", "NotifyAccess", "KillMode"];

/// Unit names this generator makes: what systemd accepts in a unit name, less `@` (templates)
/// and `\` (escapes), so that the name reads the same in a file name and in `systemctl`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the name {name:?} cannot be a unit's: use letters, digits, ':', '_', '.' and '-'"
        ))
    }
}

impl Pod {
    /// A bare pod manifest: `rkt run --pod-manifest=FILE`, nothing else.
    pub fn from_manifest(path: PathBuf) -> Pod {
        Pod {
            manifest: Some(path),
            network_online: true,
            ..Pod::default()
        }
    }

    /// Parses a pod file; `dir` is its directory (for a relative `PodManifest=`), `beside` the
    /// pod manifest of the same name, if there is one: the pod's when the file names no app.
    /// The error names the line.
    pub fn parse(text: &str, dir: &Path, beside: Option<PathBuf>) -> Result<Pod, String> {
        let mut pod = Pod {
            network_online: true,
            ..Pod::default()
        };
        let mut section: Option<String> = None;
        for (number, line) in logical_lines(text) {
            let at = |why: String| format!("line {number}: {why}");
            if let Some(name) = line.strip_prefix('[') {
                let name = name
                    .strip_suffix(']')
                    .ok_or_else(|| at(format!("{line:?} is not a section header")))?;
                match name {
                    "Unit" | "Service" | "Install" | "Pod" => {}
                    "App" => pod.apps.push(App::default()),
                    other => {
                        return Err(at(format!(
                            "unknown section [{other}] (sections: [Unit], [Pod], [App], \
                             [Service], [Install])"
                        )));
                    }
                }
                section = Some(name.to_owned());
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| at(format!("{line:?} is not Key=value")))?;
            if key.is_empty() {
                return Err(at("a line with no key".to_owned()));
            }
            let section = section
                .as_deref()
                .ok_or_else(|| at(format!("{key}= comes before any section")))?;
            pod.set(section, key, value, dir).map_err(at)?;
        }
        if pod.apps.is_empty() && pod.manifest.is_none() {
            pod.manifest = beside;
        }
        pod.check()?;
        Ok(pod)
    }

    fn set(&mut self, section: &str, key: &str, value: &str, dir: &Path) -> Result<(), String> {
        match section {
            "Unit" if DEPENDENCY_KEYS.contains(&key) => {
                // Another pod by its file's name: `After=db.pod` is `After=db.service`.
                let units: Vec<String> = value
                    .split_whitespace()
                    .map(|u| match u.strip_suffix(".pod") {
                        Some(pod) => format!("{pod}.service"),
                        None => u.to_owned(),
                    })
                    .collect();
                self.unit.push((key.to_owned(), units.join(" ")));
            }
            "Unit" => self.unit.push((key.to_owned(), value.to_owned())),
            "Service" => {
                if SERVICE_OWN.contains(&key) {
                    return Err(format!(
                        "[Service] {key}= is the generator's: the unit runs `rkt run` as \
                         Type=notify, KillMode=mixed (see docs/pod-units.md)"
                    ));
                }
                self.service.push((key.to_owned(), value.to_owned()));
            }
            "Install" => {
                let targets = split_words(value)?;
                match key {
                    "WantedBy" => self.install.wanted_by.extend(targets),
                    "RequiredBy" => self.install.required_by.extend(targets),
                    _ => {
                        return Err(format!(
                            "[Install] {key}= is not supported (WantedBy=, RequiredBy=)"
                        ));
                    }
                }
                for target in self
                    .install
                    .wanted_by
                    .iter()
                    .chain(&self.install.required_by)
                {
                    check_unit_name(target)?;
                }
            }
            "Pod" => self.set_pod(key, value, dir)?,
            "App" => {
                let app = self.apps.last_mut().expect("an [App] section was opened");
                app.set(key, value)?;
            }
            _ => unreachable!("sections are checked when opened"),
        }
        Ok(())
    }

    fn set_pod(&mut self, key: &str, value: &str, dir: &Path) -> Result<(), String> {
        if let Some((_, option)) = POD_VALUE_KEYS.iter().find(|(k, _)| *k == key) {
            non_empty(key, value)?;
            self.pod_args.push(format!("{option}={value}"));
        } else if let Some((_, option)) = POD_FLAG_KEYS.iter().find(|(k, _)| *k == key) {
            if parse_bool(key, value)? {
                self.pod_args.push((*option).to_owned());
            }
        } else {
            match key {
                "Image" => {
                    non_empty(key, value)?;
                    self.apps.push(App {
                        image: value.to_owned(),
                        ..App::default()
                    });
                }
                "PodManifest" => {
                    non_empty(key, value)?;
                    self.manifest = Some(dir.join(value));
                }
                "InsecureOptions" => {
                    non_empty(key, value)?;
                    self.global_args.push(format!("--insecure-options={value}"));
                }
                "DefaultDependencies" => self.network_online = parse_bool(key, value)?,
                "RunArguments" => self.pod_args.extend(split_words(value)?),
                _ => {
                    return Err(format!(
                        "[Pod] {key}= is not a pod key (see docs/pod-units.md for the list)"
                    ));
                }
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        if let Some(app) = self.apps.iter().find(|a| a.image.is_empty()) {
            let name = app
                .options
                .iter()
                .find_map(|o| o.strip_prefix("--name="))
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            return Err(format!("an [App] section{name} has no Image="));
        }
        match (&self.manifest, self.apps.is_empty()) {
            (None, true) => {
                Err("no app: give [Pod] Image= or [App] sections, or PodManifest=".to_owned())
            }
            (Some(_), false) => {
                Err("PodManifest= describes the apps: it cannot go with Image= or [App]".to_owned())
            }
            _ => Ok(()),
        }
    }

    /// `rkt`'s arguments after the program name.
    pub fn rkt_args(&self) -> Vec<String> {
        let mut args = self.global_args.clone();
        args.push("run".to_owned());
        args.extend(self.pod_args.iter().cloned());
        if let Some(manifest) = &self.manifest {
            args.push(format!("--pod-manifest={}", manifest.display()));
        }
        for app in &self.apps {
            args.push(app.image.clone());
            args.extend(app.options.iter().cloned());
            if let Some(app_args) = &app.args {
                args.push("--".to_owned());
                args.extend(app_args.iter().cloned());
                args.push("---".to_owned());
            }
        }
        args
    }
}

impl App {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if let Some((_, option)) = APP_VALUE_KEYS.iter().find(|(k, _)| *k == key) {
            non_empty(key, value)?;
            self.options.push(format!("{option}={value}"));
            return Ok(());
        }
        match key {
            "Image" => {
                non_empty(key, value)?;
                if !self.image.is_empty() {
                    return Err("an [App] has one Image= (start another [App] section)".to_owned());
                }
                self.image = value.to_owned();
            }
            "Args" => self
                .args
                .get_or_insert_with(Vec::new)
                .extend(split_words(value)?),
            "ReadOnlyRootfs" => {
                if parse_bool(key, value)? {
                    self.options.push("--readonly-rootfs".to_owned());
                }
            }
            _ => {
                return Err(format!(
                    "[App] {key}= is not an app key (see docs/pod-units.md for the list)"
                ));
            }
        }
        Ok(())
    }
}

fn non_empty(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err(format!("{key}= needs a value"))
    } else {
        Ok(())
    }
}

fn check_unit_name(name: &str) -> Result<(), String> {
    let ok = name.contains('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-' | '@' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a unit name"))
    }
}

/// systemd's booleans.
fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => Err(format!("{key}={value} is not a boolean (yes or no)")),
    }
}

/// The lines of `text` with their first line number, continuations (`\` at the end) joined,
/// comments and blank lines left out.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with(['#', ';'])) {
            continue;
        }
        let (number, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(head) = trimmed.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            pending = Some((number, joined));
        } else {
            joined.push_str(trimmed);
            lines.push((number, joined));
        }
    }
    if let Some(last) = pending {
        lines.push((last.0, last.1.trim_end().to_owned()));
    }
    lines
}

/// Splits a value into words as systemd does for ExecStart=: whitespace separates, `"…"` and
/// `'…'` quote, `\` escapes the next character.
pub fn split_words(value: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => word.extend(chars.next()),
                    c if c == first => {
                        closed = true;
                        break;
                    }
                    c => word.push(c),
                }
            }
            if !closed {
                return Err(format!("unbalanced quote in {value:?}"));
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!("a quote must end a word in {value:?}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    word.extend(chars.next());
                } else {
                    word.push(c);
                }
            }
        }
        words.push(word);
    }
    Ok(words)
}
