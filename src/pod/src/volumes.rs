//! Volumes and mounts at prepare time: `--volume` and `--mount` parsed into the pod manifest's
//! types, each app's mounts completed from its image's mount points, and the spec's rules
//! checked before anything starts (stage1 then only has to bind what the manifest says).

use std::path::{Component, Path};

use rkt_schema::{AcName, App, Mount, PodManifest, Volume, VolumeKind};

/// Why a pod's volumes or mounts cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    #[error(
        "--volume {arg}: {reason} (give NAME,kind=host,source=PATH[,readOnly=true][,recursive=false] or NAME,kind=empty[,mode=0755][,uid=N][,gid=N])"
    )]
    VolumeSyntax { arg: String, reason: String },
    #[error("--mount {arg}: {reason} (give volume=NAME,target=/PATH)")]
    MountSyntax { arg: String, reason: String },
    #[error("two volumes are named {name:?}: volume names must be unique in a pod")]
    Duplicate { name: String },
    #[error(
        "app {app}: no volume named {volume:?} for its mount at {target}; add --volume {volume},kind=host,source=PATH or --volume {volume},kind=empty"
    )]
    Unknown {
        app: String,
        volume: String,
        target: String,
    },
    #[error(
        "volume {volume}: its source {source_path} does not exist; create it first (rkt does not create host paths)"
    )]
    MissingSource { volume: String, source_path: String },
    #[error(
        "volume {volume}: its source {source_path} goes through a symlink (it is {real}); give the real path"
    )]
    SymlinkSource {
        volume: String,
        source_path: String,
        real: String,
    },
    #[error("app {app}: mount target {target:?}: {reason}")]
    BadTarget {
        app: String,
        target: String,
        reason: &'static str,
    },
    #[error(
        "app {app}: mount targets {first} and {second} overlap; give each volume a directory of its own"
    )]
    Overlap {
        app: String,
        first: String,
        second: String,
    },
}

/// Parses `--volume NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL]` or
/// `NAME,kind=empty[,mode=0755][,uid=N][,gid=N]` (the original rkt's syntax).
pub fn parse_volume(arg: &str) -> Result<Volume, VolumeError> {
    let bad = |reason: String| VolumeError::VolumeSyntax {
        arg: arg.to_owned(),
        reason,
    };
    let mut parts = arg.split(',');
    let name = parts.next().unwrap_or_default();
    let name = AcName::try_from(name).map_err(|_| {
        bad(format!(
            "{name:?} is not a volume name (lower case, digits, '-')"
        ))
    })?;
    let mut kind = None;
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?;
        if fields.iter().any(|(k, _)| *k == key) || (key == "kind" && kind.is_some()) {
            return Err(bad(format!("{key} is given twice")));
        }
        match key {
            "kind" => {
                kind = Some(match value {
                    "host" => VolumeKind::Host,
                    "empty" => VolumeKind::Empty,
                    _ => return Err(bad(format!("kind {value:?} is neither host nor empty"))),
                })
            }
            _ => fields.push((key, value)),
        }
    }
    let kind = kind.ok_or_else(|| bad("kind= is missing".into()))?;
    let mut volume = Volume::new(name, kind);
    let boolean = |key: &str, value: &str| match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(format!("{key}={value}: give true or false"))),
    };
    let id = |key: &str, value: &str| {
        value
            .parse::<u32>()
            .map_err(|_| bad(format!("{key}={value}: give a number")))
    };
    for (key, value) in fields {
        match (kind, key) {
            (VolumeKind::Host, "source") => volume.source = Some(value.to_owned()),
            (VolumeKind::Host, "recursive") => volume.recursive = Some(boolean(key, value)?),
            (_, "readOnly") => volume.read_only = Some(boolean(key, value)?),
            (VolumeKind::Empty, "mode") => volume.mode = Some(value.to_owned()),
            (VolumeKind::Empty, "uid") => volume.uid = Some(id(key, value)?),
            (VolumeKind::Empty, "gid") => volume.gid = Some(id(key, value)?),
            (_, "source" | "recursive" | "mode" | "uid" | "gid") => {
                let kind = if kind == VolumeKind::Host {
                    "host"
                } else {
                    "empty"
                };
                return Err(bad(format!("{key} is not an option of {kind} volumes")));
            }
            _ => return Err(bad(format!("unknown option {key:?}"))),
        }
    }
    match &volume.source {
        None if kind == VolumeKind::Host => return Err(bad("source= is missing".into())),
        Some(s) if !s.starts_with('/') => {
            return Err(bad(format!("the source {s:?} is not an absolute path")));
        }
        _ => {}
    }
    // The schema's own rules (an octal mode).
    let mut manifest = PodManifest::new();
    manifest.volumes.push(volume);
    manifest.validate_template().map_err(|e| {
        let e = e.to_string();
        bad(e
            .strip_prefix("invalid volumes[0].")
            .unwrap_or(&e)
            .to_owned())
    })?;
    Ok(manifest.volumes.pop().expect("pushed above"))
}

/// Parses `--mount volume=NAME,target=PATH`.
pub fn parse_mount(arg: &str) -> Result<Mount, VolumeError> {
    let bad = |reason: String| VolumeError::MountSyntax {
        arg: arg.to_owned(),
        reason,
    };
    let (mut volume, mut target) = (None, None);
    for part in arg.split(',') {
        match part.split_once('=') {
            Some(("volume", v)) if volume.is_none() => volume = Some(v),
            Some(("target", t)) if target.is_none() => target = Some(t),
            Some((key @ ("volume" | "target"), _)) => {
                return Err(bad(format!("{key} is given twice")));
            }
            _ => {
                return Err(bad(format!(
                    "{part:?} is neither volume=NAME nor target=PATH"
                )));
            }
        }
    }
    let volume = volume.ok_or_else(|| bad("volume= is missing".into()))?;
    let target = target.ok_or_else(|| bad("target= is missing".into()))?;
    let volume =
        AcName::try_from(volume).map_err(|_| bad(format!("{volume:?} is not a volume name")))?;
    if !target.starts_with('/') {
        return Err(bad(format!(
            "the target {target:?} is not an absolute path"
        )));
    }
    Ok(Mount {
        volume,
        path: target.to_owned(),
        app_volume: None,
    })
}

/// Checks the pod's volumes: unique names, and host sources that exist at their real path
/// (pods.md: a missing source is an error, a symlinked one should be).
pub fn check_volumes(volumes: &[Volume]) -> Result<(), VolumeError> {
    for (i, volume) in volumes.iter().enumerate() {
        if volumes[..i].iter().any(|v| v.name == volume.name) {
            return Err(VolumeError::Duplicate {
                name: volume.name.to_string(),
            });
        }
        check_source(volume)?;
    }
    Ok(())
}

fn check_source(volume: &Volume) -> Result<(), VolumeError> {
    let (VolumeKind::Host, Some(source)) = (volume.kind, &volume.source) else {
        return Ok(());
    };
    let real = std::fs::canonicalize(source).map_err(|_| VolumeError::MissingSource {
        volume: volume.name.to_string(),
        source_path: source.clone(),
    })?;
    // Path equality ignores a trailing '/' and "." components, not "..".
    if real != Path::new(source) {
        return Err(VolumeError::SymlinkSource {
            volume: volume.name.to_string(),
            source_path: source.clone(),
            real: real.display().to_string(),
        });
    }
    Ok(())
}

/// Completes app `app_name`'s `mounts` (given with `--mount`) from the mount points of `app`
/// (its image's, or its replacement): a mount point no mount satisfies gets the pod volume of
/// its name, or else, as the original rkt did, an empty volume of its own, added to
/// `volumes` (named `<app>-<mount point>`). Then checks every mount: its volume exists, its
/// target is a clean absolute path other than `/`, and no two targets overlap.
pub fn complete_app_mounts(
    app_name: &AcName,
    app: &App,
    mounts: &mut Vec<Mount>,
    volumes: &mut Vec<Volume>,
) -> Result<(), VolumeError> {
    for point in &app.mount_points {
        let satisfied = mounts
            .iter()
            .any(|m| m.path == point.path || m.volume == point.name);
        if satisfied {
            continue;
        }
        let volume = if volumes.iter().any(|v| v.name == point.name) {
            point.name.clone()
        } else {
            let name = AcName::try_from(format!("{app_name}-{}", point.name)).map_err(|_| {
                VolumeError::Unknown {
                    app: app_name.to_string(),
                    volume: point.name.to_string(),
                    target: point.path.clone(),
                }
            })?;
            if volumes.iter().any(|v| v.name == name) {
                return Err(VolumeError::Duplicate {
                    name: name.to_string(),
                });
            }
            volumes.push(Volume::new(name.clone(), VolumeKind::Empty));
            name
        };
        mounts.push(Mount {
            volume,
            path: point.path.clone(),
            app_volume: None,
        });
    }
    for (i, mount) in mounts.iter().enumerate() {
        let bad = |reason| VolumeError::BadTarget {
            app: app_name.to_string(),
            target: mount.path.clone(),
            reason,
        };
        let path = Path::new(&mount.path);
        if !path.is_absolute() {
            return Err(bad("it is not an absolute path"));
        }
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(bad("it must not hold \"..\""));
        }
        if path.components().all(|c| c == Component::RootDir) {
            return Err(bad("a volume cannot replace the app's whole root"));
        }
        if mount.app_volume.is_none() && !volumes.iter().any(|v| v.name == mount.volume) {
            return Err(VolumeError::Unknown {
                app: app_name.to_string(),
                volume: mount.volume.to_string(),
                target: mount.path.clone(),
            });
        }
        // pods.md: overlapping or nested targets should be an error.
        if let Some(other) = mounts[..i]
            .iter()
            .find(|m| path.starts_with(&m.path) || Path::new(&m.path).starts_with(path))
        {
            return Err(VolumeError::Overlap {
                app: app_name.to_string(),
                first: other.path.clone(),
                second: mount.path.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkt_schema::MountPoint;

    fn name(s: &str) -> AcName {
        AcName::try_from(s).unwrap()
    }

    #[test]
    fn parses_host_and_empty_volumes() {
        let v =
            parse_volume("data,kind=host,source=/srv/data,readOnly=true,recursive=false").unwrap();
        assert_eq!(v.name, name("data"));
        assert_eq!(v.kind, VolumeKind::Host);
        assert_eq!(v.source.as_deref(), Some("/srv/data"));
        assert!(v.read_only());
        assert!(!v.recursive());
        let v = parse_volume("scratch,kind=empty,mode=0700,uid=1000,gid=100").unwrap();
        assert_eq!(
            (v.kind, v.mode_bits(), v.uid(), v.gid()),
            (VolumeKind::Empty, 0o700, 1000, 100)
        );
        // The spec's defaults: writable, recursive, 0755 root:root.
        let v = parse_volume("h,kind=host,source=/x").unwrap();
        assert!(!v.read_only() && v.recursive());
        assert_eq!(parse_volume("e,kind=empty").unwrap().mode_bits(), 0o755);
    }

    #[test]
    fn refuses_bad_volumes_with_the_reason() {
        for (arg, want) in [
            ("Data,kind=empty", "not a volume name"),
            ("d,kind=nfs", "neither host nor empty"),
            ("d,source=/x", "kind= is missing"),
            ("d,kind=host", "source= is missing"),
            ("d,kind=host,source=rel", "absolute"),
            (
                "d,kind=host,source=/x,mode=0700",
                "not an option of host volumes",
            ),
            ("d,kind=empty,source=/x", "not an option of empty volumes"),
            ("d,kind=empty,mode=999", "octal"),
            ("d,kind=empty,uid=-1", "give a number"),
            ("d,kind=host,source=/x,readOnly=yes", "true or false"),
            ("d,kind=host,source=/x,source=/y", "given twice"),
            ("d,kind=host,source=/x,colour=red", "unknown option"),
        ] {
            let e = parse_volume(arg).unwrap_err().to_string();
            assert!(e.contains(want), "{arg}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn parses_mounts() {
        let m = parse_mount("volume=data,target=/var/data").unwrap();
        assert_eq!((m.volume, m.path.as_str()), (name("data"), "/var/data"));
        for (arg, want) in [
            ("volume=data", "target= is missing"),
            ("target=/x", "volume= is missing"),
            ("volume=data,target=rel", "absolute"),
            ("volume=data,target=/x,target=/y", "twice"),
            ("vol=data,target=/x", "neither"),
        ] {
            let e = parse_mount(arg).unwrap_err().to_string();
            assert!(e.contains(want), "{arg}: {e}");
        }
    }

    fn app_with_points(points: &[(&str, &str)]) -> App {
        let mut app = App::new(vec!["/x".into()], "0", "0");
        app.mount_points = points
            .iter()
            .map(|(n, p)| MountPoint {
                name: name(n),
                path: (*p).into(),
                read_only: false,
            })
            .collect();
        app
    }

    fn mount(volume: &str, path: &str) -> Mount {
        Mount {
            volume: name(volume),
            path: path.into(),
            app_volume: None,
        }
    }

    #[test]
    fn mount_points_take_the_volume_of_their_name_or_an_empty_one() {
        let app = app_with_points(&[("data", "/data"), ("cache", "/cache"), ("logs", "/logs")]);
        let mut volumes = vec![Volume::host(name("data"), "/srv")];
        let mut volumes_extra = vec![Volume::new(name("elsewhere"), VolumeKind::Empty)];
        volumes.append(&mut volumes_extra);
        // /logs is satisfied by the user's mount at the same path.
        let mut mounts = vec![mount("elsewhere", "/logs")];
        complete_app_mounts(&name("web"), &app, &mut mounts, &mut volumes).unwrap();
        let got: Vec<_> = mounts
            .iter()
            .map(|m| format!("{}:{}", m.volume, m.path))
            .collect();
        assert_eq!(got, ["elsewhere:/logs", "data:/data", "web-cache:/cache"]);
        let implicit = volumes.iter().find(|v| v.name == "web-cache").unwrap();
        assert_eq!(implicit.kind, VolumeKind::Empty);
        // The result is a valid reified pod as the spec has it.
        let mut pod = PodManifest::new();
        pod.volumes = volumes;
        pod.apps.push(rkt_schema::RuntimeApp {
            name: name("web"),
            image: rkt_schema::RuntimeImage {
                name: None,
                id: Some(
                    rkt_schema::ImageId::try_from(format!("sha512-{}", "a".repeat(128))).unwrap(),
                ),
                labels: vec![],
            },
            app: Some(app),
            read_only_root_fs: false,
            mounts,
            annotations: vec![],
        });
        pod.validate().unwrap();
    }

    #[test]
    fn unknown_volumes_bad_targets_and_overlaps_are_refused() {
        let app = app_with_points(&[]);
        let mut volumes = vec![Volume::new(name("a"), VolumeKind::Empty)];
        let cases = [
            (vec![mount("nope", "/x")], "no volume named \"nope\""),
            (vec![mount("a", "/")], "whole root"),
            (vec![mount("a", "/x/../etc")], "\"..\""),
            (vec![mount("a", "/x"), mount("a", "/x/y")], "overlap"),
            (vec![mount("a", "/x/y"), mount("a", "/x")], "overlap"),
            (vec![mount("a", "/x"), mount("a", "/x/")], "overlap"),
        ];
        for (mut mounts, want) in cases {
            let e = complete_app_mounts(&name("web"), &app, &mut mounts, &mut volumes)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.starts_with("app web:"), "{e}");
        }
        // Siblings with a common prefix do not overlap.
        let mut mounts = vec![mount("a", "/data"), mount("a", "/data2")];
        complete_app_mounts(&name("web"), &app, &mut mounts, &mut volumes).unwrap();
    }

    #[test]
    fn host_sources_must_exist_at_their_real_path() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let host = |p: &Path| Volume::host(name("v"), p.display().to_string());
        check_volumes(&[host(&real)]).unwrap();
        let e = check_volumes(&[host(&dir.path().join("missing"))]).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = check_volumes(&[host(&dir.path().join("link"))]).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        let e = check_volumes(&[host(&real), host(&real)]).unwrap_err();
        assert!(e.to_string().contains("unique"), "{e}");
    }
}
