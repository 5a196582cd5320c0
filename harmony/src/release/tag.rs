//! Release tags: `<app>-v<semver>` (the app's registered name, which names its
//! component too, e.g. `webapp-server-v0.1.0`), read against the registered
//! app names (`fleet-operator`, `webapp-server`). The parser is total: a
//! malformed, ambiguous or unknown tag is an error before any work starts.

use std::fmt;

use semver::Version;

/// A git tag that names one registered app and the version to release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseTag {
    app: String,
    version: Version,
}

/// Why a tag names no release.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// The tag is empty, or is only `refs/tags/`.
    #[error("the release tag is empty")]
    Empty,
    /// The tag has no `-v`, so nothing in it can be the version.
    #[error("release tag `{tag}` has no `-v<semver>` part")]
    NoVersion {
        /// The tag, without a leading `refs/tags/`.
        tag: String,
    },
    /// The tag names one registered app, but what follows `-v` is not semver.
    #[error("release tag `{tag}` has an invalid version `{version}`: {why}")]
    BadVersion {
        /// The tag, without a leading `refs/tags/`.
        tag: String,
        /// What follows the app's name and `-v`.
        version: String,
        /// Why it is not semver.
        why: String,
    },
    /// No registered app's name is followed by `-v` in the tag.
    #[error("release tag `{tag}` names no registered app")]
    UnknownApp {
        /// The tag, without a leading `refs/tags/`.
        tag: String,
        /// The name the tag reads as: what comes before its first `-v`.
        name: String,
        /// The registered app names, to suggest the closest.
        known: Vec<String>,
    },
    /// Several registered apps' names fit the tag, and the version parses for none of
    /// those readings or for more than one.
    #[error("release tag `{tag}` could name more than one app: {}", matches.join(", "))]
    Ambiguous {
        /// The tag, without a leading `refs/tags/`.
        tag: String,
        /// The app names the tag could be read as.
        matches: Vec<String>,
    },
}

impl crate::Diagnostic for TagError {
    fn help(&self) -> String {
        match self {
            Self::Empty | Self::NoVersion { .. } => {
                "a release tag reads `<app>-v<semver>`, with the app's name as `list` shows it, e.g. `webapp-server-v0.1.0`".into()
            }
            Self::BadVersion { .. } => "the version is semver: `1.2.3`, `1.2.3-rc.1` or `1.2.3+build.5`".into(),
            Self::UnknownApp { name, known, .. } => match crate::suggest::closest(name, known.iter().map(String::as_str)) {
                Some(k) => format!("did you mean `{k}`? the registered apps are: {}", known.join(", ")),
                None => format!("the registered apps are: {}", known.join(", ")),
            },
            Self::Ambiguous { .. } => "rename one of the apps so that no name is another's name followed by `-v<digit>`".into(),
        }
    }
}

impl ReleaseTag {
    /// Read `tag` (a leading `refs/tags/` is accepted, as CI systems pass it)
    /// against the registered app names.
    pub fn parse<'a>(tag: &str, apps: impl IntoIterator<Item = &'a str>) -> Result<Self, TagError> {
        let apps: Vec<&str> = apps.into_iter().collect();
        let tag = tag.strip_prefix("refs/tags/").unwrap_or(tag);
        if tag.is_empty() {
            return Err(TagError::Empty);
        }
        // Every `-v` may be the separator: the name before it and the version after.
        let splits: Vec<(&str, &str)> = tag.match_indices("-v").map(|(i, _)| (&tag[..i], &tag[i + 2..])).collect();
        if splits.is_empty() {
            return Err(TagError::NoVersion { tag: tag.into() });
        }
        let matches: Vec<(&str, &str)> = splits.iter().copied().filter(|(name, _)| apps.contains(name)).collect();
        match matches.as_slice() {
            [] => {
                let (name, _) = splits[0];
                Err(TagError::UnknownApp {
                    tag: tag.into(),
                    name: name.into(),
                    known: apps.iter().map(|s| s.to_string()).collect(),
                })
            }
            [(name, version)] => {
                let parsed = Version::parse(version).map_err(|e| TagError::BadVersion {
                    tag: tag.into(),
                    version: (*version).into(),
                    why: e.to_string(),
                })?;
                Ok(Self {
                    app: (*name).into(),
                    version: parsed,
                })
            }
            many => {
                // Prefer the one reading whose version parses, when only one does.
                let valid: Vec<_> = many.iter().filter(|(_, v)| Version::parse(v).is_ok()).collect();
                if let [(name, version)] = valid.as_slice() {
                    return Ok(Self {
                        app: (*name).into(),
                        version: Version::parse(version).expect("checked"),
                    });
                }
                Err(TagError::Ambiguous {
                    tag: tag.into(),
                    matches: many.iter().map(|(n, _)| n.to_string()).collect(),
                })
            }
        }
    }

    /// The registered app this tag releases.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The version the tag names.
    pub fn version(&self) -> &Version {
        &self.version
    }
}

impl fmt::Display for ReleaseTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-v{}", self.app, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic as _;
    use proptest::prelude::*;

    const APPS: [&str; 3] = ["webapp-server", "fleet-operator", "fleet-agent"];

    #[test]
    fn reads_registered_apps() {
        let t = ReleaseTag::parse("webapp-server-v0.1.0", APPS).unwrap();
        assert_eq!((t.app(), t.version().to_string().as_str()), ("webapp-server", "0.1.0"));
        let t = ReleaseTag::parse("refs/tags/fleet-operator-v1.2.3-rc.1+build.5", APPS).unwrap();
        assert_eq!(t.to_string(), "fleet-operator-v1.2.3-rc.1+build.5");
    }

    #[test]
    fn every_bad_tag_says_why() {
        let e = |t: &str| ReleaseTag::parse(t, APPS).unwrap_err();
        assert_eq!(e(""), TagError::Empty);
        assert!(matches!(e("webapp-server-1.0.0"), TagError::NoVersion { .. }));
        assert!(matches!(e("webapp-server-v1.0"), TagError::BadVersion { .. }));
        assert!(matches!(e("webapp-server-v01.0.0"), TagError::BadVersion { .. }));
        let unknown = e("webap-server-v1.0.0");
        assert!(unknown.help().contains("did you mean `webapp-server`?"), "{}", unknown.help());
        assert!(matches!(e("fleet-v1.0.0"), TagError::UnknownApp { .. }));
    }

    #[test]
    fn an_app_named_like_another_plus_a_version_is_resolved_or_refused() {
        let apps = ["x", "x-v1"];
        assert_eq!(ReleaseTag::parse("x-v1-v2.0.0", apps).unwrap().app(), "x-v1");
        assert!(matches!(
            ReleaseTag::parse("x-v1-v2", ["x", "x-v1"]),
            Err(TagError::BadVersion { .. }) | Err(TagError::Ambiguous { .. })
        ));
    }

    proptest! {
        #[test]
        fn parsing_is_total(s in "\\PC{0,40}") {
            match ReleaseTag::parse(&s, APPS) {
                Ok(t) => prop_assert!(APPS.contains(&t.app())),
                Err(e) => prop_assert!(!e.to_string().is_empty() && !e.help().is_empty()),
            }
        }

        #[test]
        fn registered_tags_round_trip(app in prop::sample::select(APPS.to_vec()), major in 0u64..100, minor in 0u64..100, patch in 0u64..100, pre in prop::option::of("[a-z]{1,5}\\.[1-9][0-9]?")) {
            let version = match &pre { Some(p) => format!("{major}.{minor}.{patch}-{p}"), None => format!("{major}.{minor}.{patch}") };
            let tag = format!("{app}-v{version}");
            let parsed = ReleaseTag::parse(&tag, APPS).unwrap();
            prop_assert_eq!(parsed.to_string(), tag);
        }
    }
}
