//! The ACI layout rules: only `manifest` and `rootfs/` at the top, names that stay inside.

use super::AciError;

/// Where an archive entry belongs, after its name was cleaned (`./a//b/` → `a/b`).
#[derive(Debug, PartialEq, Eq)]
pub enum EntryPlace {
    /// The `manifest` file.
    Manifest,
    /// The `rootfs` directory itself.
    RootfsDir,
    /// A path inside `rootfs`, relative to it, never empty, never holding `..`.
    InRootfs(Vec<u8>),
}

/// The components of an archive entry name, cleaned the way the reference reader does
/// (`filepath.Clean`: `./a//b/` → `a`, `b`), refusing what could address anything outside the
/// tree: absolute names and `..` components. The one check every archive entry goes through,
/// ACI and OCI layer alike. Empty for the root itself.
pub fn clean_entry_name(raw: &[u8]) -> Result<Vec<&[u8]>, AciError> {
    if raw.first() == Some(&b'/') {
        return Err(AciError::layout(raw, "absolute names are not allowed"));
    }
    let mut parts = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(AciError::layout(raw, "'..' is not allowed in names")),
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

/// Where an ACI entry goes: its name cleaned by [`clean_entry_name`], then only `manifest` and
/// `rootfs/` allowed at the top.
pub fn classify_entry_name(raw: &[u8]) -> Result<EntryPlace, AciError> {
    let parts = clean_entry_name(raw)?;
    match parts.split_first() {
        None => Err(AciError::layout(raw, "empty name")),
        Some((&b"manifest", [])) => Ok(EntryPlace::Manifest),
        Some((&b"rootfs", [])) => Ok(EntryPlace::RootfsDir),
        Some((&b"rootfs", rest)) => Ok(EntryPlace::InRootfs(rest.join(&b'/'))),
        Some(_) => Err(AciError::layout(
            raw,
            "only 'manifest' and 'rootfs/' may be at the top of an ACI",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str) -> Result<EntryPlace, String> {
        classify_entry_name(name.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn cleans_names() {
        assert_eq!(place("./manifest").unwrap(), EntryPlace::Manifest);
        assert_eq!(place("rootfs/").unwrap(), EntryPlace::RootfsDir);
        assert_eq!(
            place("./rootfs//usr/./bin/").unwrap(),
            EntryPlace::InRootfs(b"usr/bin".to_vec())
        );
    }

    #[test]
    fn refuses_escapes_and_extra_top_level_entries() {
        assert!(
            place("/rootfs/etc/passwd")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            place("rootfs/../../etc/passwd")
                .unwrap_err()
                .contains("'..'")
        );
        assert!(place("rootfs/a/..").unwrap_err().contains("'..'"));
        assert!(
            place("rootfsextra/x")
                .unwrap_err()
                .contains("only 'manifest'")
        );
        assert!(place("manifest/x").unwrap_err().contains("only 'manifest'"));
        assert!(place("README").unwrap_err().contains("only 'manifest'"));
        assert!(place("./").unwrap_err().contains("empty"));
    }
}
