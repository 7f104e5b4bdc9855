//! `rkt-pod-generator`, a systemd generator (systemd.generator(7)): each pod file
//! `/etc/rkt/pods/NAME.pod` (or a bare pod manifest `NAME.json`) becomes `NAME.service`, a unit
//! whose main process is `rkt run`. The format is in docs/pod-units.md.
//!
//! It runs at boot and at every `systemctl daemon-reload`, before most of the system is up: it
//! uses std only, touches nothing but its output directory, and a bad file costs that file's
//! unit alone (with a message in the journal), never the others nor a half-written unit.
#![forbid(unsafe_code)]

mod log;
mod pod;
mod unit;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where pod files are looked for; a name found in an earlier directory hides the later ones
/// (the administrator's `/etc` over the runtime's `/run` over the vendor's `/usr/lib`).
const SEARCH_PATH: [&str; 3] = ["/etc/rkt/pods", "/run/rkt/pods", "/usr/lib/rkt/pods"];

fn main() -> ExitCode {
    // systemd passes three directories (normal, early, late); the units go to the normal one.
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: rkt-pod-generator NORMAL_DIR [EARLY_DIR LATE_DIR]");
        return ExitCode::FAILURE;
    };
    let search: Vec<PathBuf> = SEARCH_PATH.iter().map(PathBuf::from).collect();
    let report = generate(&search, &out);
    for (source, why) in &report.failed {
        log::error(&format!("{}: {why}; no unit made for it", source.display()));
    }
    // A bad pod file is that file's failure, not the generator's: systemd would only add a
    // vaguer line of its own.
    ExitCode::SUCCESS
}

/// What one run made and refused.
#[derive(Debug, Default)]
pub struct Report {
    /// Units written, by name.
    pub made: Vec<String>,
    /// Pod files refused, with why.
    pub failed: Vec<(PathBuf, String)>,
}

/// Finds the pod files in `search` and writes a unit for each good one into `out`.
pub fn generate(search: &[PathBuf], out: &Path) -> Report {
    let mut report = Report::default();
    for (name, source) in sources(search) {
        match make_one(&name, &source, out) {
            Ok(()) => report.made.push(format!("{name}.service")),
            Err(why) => report.failed.push((source.path().to_path_buf(), why)),
        }
    }
    report
}

/// A pod's definition: a `.pod` file, or a bare pod manifest.
#[derive(Debug, Clone)]
enum Source {
    PodFile(PathBuf),
    Manifest(PathBuf),
}

impl Source {
    fn path(&self) -> &Path {
        match self {
            Source::PodFile(p) | Source::Manifest(p) => p,
        }
    }
}

/// The pod definitions by unit name: a `.pod` beats a `.json` of the same name (whose pod
/// manifest it runs when it names no app), and an earlier directory beats a later one.
fn sources(search: &[PathBuf]) -> BTreeMap<String, Source> {
    let mut found: BTreeMap<String, Source> = BTreeMap::new();
    for dir in search {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        // .pod files first, so a manifest beside one is the pod file's business.
        files.sort_by_key(|p| p.extension().is_some_and(|e| e != "pod"));
        let mut here: BTreeMap<String, Source> = BTreeMap::new();
        for path in files {
            let (Some(stem), Some(ext)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|s| s.to_str()),
            ) else {
                continue;
            };
            let source = match ext {
                "pod" => Source::PodFile(path.clone()),
                "json" => Source::Manifest(path.clone()),
                _ => continue,
            };
            if !found.contains_key(stem) {
                here.entry(stem.to_owned()).or_insert(source);
            }
        }
        found.extend(here);
    }
    found
}

fn make_one(name: &str, source: &Source, out: &Path) -> Result<(), String> {
    pod::check_name(name)?;
    let pod = match source {
        Source::PodFile(path) => {
            let text = fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
            let beside = Some(path.with_extension("json")).filter(|m| m.is_file());
            pod::Pod::parse(&text, path.parent().unwrap_or(Path::new("/")), beside)?
        }
        Source::Manifest(path) => pod::Pod::from_manifest(path.clone()),
    };
    let text = unit::render(name, source.path(), &pod)?;
    write_unit(out, name, &text, &pod.install)
}

/// Writes `NAME.service` and its `.wants/`/`.requires/` links, or nothing: the unit goes in
/// under a temporary name and is renamed into place once complete; the links come after.
fn write_unit(out: &Path, name: &str, text: &str, install: &pod::Install) -> Result<(), String> {
    let unit = format!("{name}.service");
    let tmp = out.join(format!(".{unit}.tmp"));
    let dest = out.join(&unit);
    fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &dest).map_err(|e| format!("renaming to {}: {e}", dest.display()))?;
    let mut links = Vec::new();
    for (target, kind) in install
        .wanted_by
        .iter()
        .map(|t| (t, "wants"))
        .chain(install.required_by.iter().map(|t| (t, "requires")))
    {
        let dir = out.join(format!("{target}.{kind}"));
        let link = dir.join(&unit);
        let made = fs::create_dir_all(&dir).and_then(|()| {
            match std::os::unix::fs::symlink(&dest, &link) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        });
        if let Err(e) = made {
            for made in links.iter().chain([&dest]) {
                let _ = fs::remove_file(made);
            }
            return Err(format!("linking {}: {e}", link.display()));
        }
        links.push(link);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
