//! `ChartRef`: a Helm chart in an OCI registry at a pinned version,
//! `oci://registry/namespace/name` plus a semver version.

use std::fmt;

use semver::Version;

use crate::oci::{Digest, ImageRef};

/// A chart in an OCI registry, at one version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChartRef {
    location: ImageRef,
    version: Version,
}

/// A chart reference that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid chart reference: {why}")]
pub struct ChartRefError {
    /// What was refused: the URL and version as given, joined by a space, or the
    /// repository a chart was to be stored under.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
    /// What to write instead.
    pub help: String,
}

impl crate::Diagnostic for ChartRefError {
    fn help(&self) -> String {
        self.help.clone()
    }
}

impl ChartRef {
    /// `oci://host[:port]/namespace/name` and a semver version (`1.4.2`).
    pub fn parse(url: &str, version: &str) -> Result<Self, ChartRefError> {
        let input = format!("{url} {version}");
        let err = |why: String, help: &str| ChartRefError {
            input: input.clone(),
            why,
            help: help.into(),
        };
        let Some(path) = url.strip_prefix("oci://") else {
            return Err(err(
                "it does not start with `oci://`".into(),
                "charts are pulled from OCI registries: `oci://host/namespace/name`",
            ));
        };
        let location: ImageRef = path.parse().map_err(|e: crate::oci::ImageRefError| err(e.why, &e.help))?;
        if location.registry().is_none() {
            return Err(err("it names no registry host".into(), "write `oci://host[:port]/namespace/name`"));
        }
        if location.tag().is_some() || location.digest().is_some() {
            return Err(err(
                "the version goes in its own argument, not after `:` or `@`".into(),
                "write `published(\"oci://host/ns/name\", \"1.4.2\")`",
            ));
        }
        let version = Version::parse(version.strip_prefix('v').unwrap_or(version)).map_err(|e| {
            err(
                format!("version `{version}` is not semver: {e}"),
                "write a version such as `1.4.2` or `2.0.0-rc.1`",
            )
        })?;
        Ok(Self { location, version })
    }

    /// The chart `name` at `version` under `registry/namespace`; with no
    /// registry, in the local topology's image-layout directory.
    pub fn new(registry: Option<&str>, namespace: &str, name: &str, version: Version) -> Result<Self, ChartRefError> {
        let repository = if namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{namespace}/{name}")
        };
        let location = ImageRef::new(registry, &repository).map_err(|e| ChartRefError {
            input: repository.clone(),
            why: e.why,
            help: e.help,
        })?;
        Ok(Self { location, version })
    }

    /// The chart's name.
    pub fn name(&self) -> &str {
        self.location.name()
    }

    /// Where it is stored, without its version: `host/ns/name`.
    pub fn location(&self) -> &ImageRef {
        &self.location
    }

    /// The chart's version.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// Where the chart is stored, tagged with its version: OCI tags cannot hold
    /// `+`, so build metadata is written with `_`, as Helm does.
    pub fn image_ref(&self) -> ImageRef {
        let tag = self.version.to_string().replace('+', "_");
        self.location
            .clone()
            .with_tag(&tag)
            .expect("a semver with `+` replaced is a valid tag")
    }

    /// The same reference pinned to a digest.
    pub fn pinned(&self, digest: Digest) -> ImageRef {
        self.image_ref().with_digest(digest)
    }
}

impl fmt::Display for ChartRef {
    /// `oci://host/ns/name:1.4.2`, or `oci-layout:ns/name:1.4.2` for a local one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.location.registry().is_some() {
            "oci://"
        } else {
            "oci-layout:"
        };
        write!(f, "{scheme}{}:{}", self.location, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let c = ChartRef::parse("oci://127.0.0.1:5000/charts/webapp", "0.1.0+build.7").unwrap();
        assert_eq!(c.name(), "webapp");
        assert_eq!(c.to_string(), "oci://127.0.0.1:5000/charts/webapp:0.1.0+build.7");
        assert_eq!(c.image_ref().to_string(), "127.0.0.1:5000/charts/webapp:0.1.0_build.7");
    }

    #[test]
    fn rejects_with_reasons() {
        for (url, version, why) in [
            ("https://x.io/a", "1.0.0", "oci://"),
            ("oci://charts/webapp", "1.0.0", "no registry"),
            ("oci://x.io/webapp:1.0.0", "1.0.0", "own argument"),
            ("oci://x.io/webapp", "1.0", "not semver"),
            ("oci://x.io/Web", "1.0.0", "uppercase"),
        ] {
            let e = ChartRef::parse(url, version).unwrap_err();
            assert!(e.why.contains(why), "{url} {version}: {e}");
        }
    }
}
