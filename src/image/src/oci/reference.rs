//! `docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]` references.

use std::fmt;

use super::{Digest, SourceError};

/// Where a registry image is: registry host, repository, and tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Docker Hub, where names without a registry part go (`docker://busybox`).
const DOCKER_HUB: &str = "registry-1.docker.io";

impl Reference {
    /// Parses what follows `docker://`.
    pub fn parse(s: &str) -> Result<Reference, SourceError> {
        let bad = |rule: &str| SourceError::Reference {
            reference: format!("docker://{s}"),
            rule: rule.to_owned(),
        };
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (s, None),
        };
        let (first, remainder) = rest.split_once('/').unwrap_or(("", rest));
        // As Docker does: the first part is a registry only if it looks like a host name.
        let (registry, path) = if first.contains('.') || first.contains(':') || first == "localhost"
        {
            (first.to_owned(), remainder)
        } else {
            (DOCKER_HUB.to_owned(), rest)
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_owned())),
            _ => (path, None),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        if registry.is_empty()
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(bad(
                "the registry must be a host name with an optional :port",
            ));
        }
        if !valid_repository(&repository) {
            return Err(bad(
                "the repository must be lowercase letters, digits and separators (. _ - /)",
            ));
        }
        if let Some(tag) = &tag
            && !valid_tag(tag)
        {
            return Err(bad("a tag is 1 to 128 letters, digits, '_', '.' or '-'"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What the manifest is asked for by: the digest if given (it pins the image), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "docker://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

fn valid_tag(tag: &str) -> bool {
    (1..=128).contains(&tag.len())
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = Reference::parse("127.0.0.1:5000/app/web:1.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "app/web");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.manifest_reference(), "latest");
        let hex = "f".repeat(64);
        let r = Reference::parse(&format!("localhost:5000/x@sha256:{hex}")).unwrap();
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        assert_eq!(
            r.to_string(),
            format!("docker://localhost:5000/x@sha256:{hex}")
        );
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "example.com/../etc:1",
            "example.com/UPPER",
            "example.com/a:bad tag",
            "example.com/a@sha256:xyz",
            "exa mple.com/a",
            "example.com/a/?x=1",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
