//! `ImageRef`: `registry/namespace/name:tag@sha256:…`, parsed and displayed by
//! the OCI distribution grammar, so no image reference is ever built by
//! concatenating strings.

use std::fmt;
use std::str::FromStr;

/// The tag a version is stored under. OCI tags cannot hold `+`: semver build
/// metadata is written with `_`, as Helm does.
pub fn tag_of(version: &semver::Version) -> String {
    version.to_string().replace('+', "_")
}

/// A content digest: `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: String,
    hex: String,
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::sha256(&sha2::Sha256::digest(bytes))
    }

    /// The SHA-256 digest of `value` serialized as JSON, hashed as it is
    /// written rather than held in memory first.
    pub fn sha256_of_json(value: &serde_json::Value) -> Self {
        use sha2::Digest as _;
        struct Hashing(sha2::Sha256);
        impl std::io::Write for Hashing {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.update(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut hashing = Hashing(sha2::Sha256::new());
        serde_json::to_writer(&mut hashing, value).expect("a JSON value serializes");
        Self::sha256(&hashing.0.finalize())
    }

    fn sha256(hash: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(2 * hash.len());
        for b in hash {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Self {
            algorithm: "sha256".into(),
            hex,
        }
    }

    /// `sha256`.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The hexadecimal digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            ImageRefError::new(
                s,
                format!("digest `{s}` {why}"),
                "a digest reads `sha256:` and 64 lowercase hexadecimal digits",
            )
        };
        let (algorithm, hex) = s.split_once(':').ok_or_else(|| bad("has no `:`"))?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .split(['+', '.', '_', '-'])
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if !algorithm_ok {
            return Err(bad("has an invalid algorithm"));
        }
        if !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) || hex.len() < 32 {
            return Err(bad("is not lowercase hexadecimal of at least 32 digits"));
        }
        if algorithm == "sha256" && hex.len() != 64 {
            return Err(bad("has the wrong length for sha256 (64 digits)"));
        }
        Ok(Self {
            algorithm: algorithm.into(),
            hex: hex.into(),
        })
    }
}

/// A reference to a container image.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// An image reference that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid image reference: {why}")]
pub struct ImageRefError {
    /// The text that was refused (a reference, a repository, a tag or a digest), as given.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
    /// What to write instead.
    pub help: String,
}

impl crate::Diagnostic for ImageRefError {
    fn help(&self) -> String {
        self.help.clone()
    }
}

impl ImageRefError {
    fn new(input: &str, why: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            why: why.into(),
            help: help.into(),
        }
    }
}

const MAX_NAME: usize = 255;

impl ImageRef {
    /// `repository` is `namespace/name`; `registry` is `host[:port]`.
    pub fn new(registry: Option<&str>, repository: &str) -> Result<Self, ImageRefError> {
        let input = match registry {
            Some(r) => format!("{r}/{repository}"),
            None => repository.to_owned(),
        };
        if let Some(r) = registry {
            check_registry(&input, r)?;
        }
        check_repository(&input, repository)?;
        Ok(Self {
            registry: registry.map(str::to_owned),
            repository: repository.to_owned(),
            tag: None,
            digest: None,
        })
    }

    /// The same reference at tag `tag` (refused if `tag` is not a valid tag).
    pub fn with_tag(mut self, tag: &str) -> Result<Self, ImageRefError> {
        check_tag(tag, tag)?;
        self.tag = Some(tag.to_owned());
        Ok(self)
    }

    /// The same reference pinned to `digest`.
    pub fn with_digest(mut self, digest: Digest) -> Self {
        self.digest = Some(digest);
        self
    }

    /// The same image with a different repository under the same registry.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// `namespace/name`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Everything before the name (`team/apps`), if anything.
    pub fn namespace(&self) -> Option<&str> {
        self.repository.rsplit_once('/').map(|(ns, _)| ns)
    }

    /// The last path component.
    pub fn name(&self) -> &str {
        self.repository.rsplit_once('/').map_or(&*self.repository, |(_, n)| n)
    }

    /// Its tag, if it has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Its digest, if it is pinned.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ImageRefError::new(
                input,
                "it is empty",
                "write `registry/namespace/name:tag`, e.g. `127.0.0.1:5000/team/webapp:0.1.0`",
            ));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(ImageRefError::new(
                input,
                format!("it contains {c:?}"),
                "remove whitespace and control characters",
            ));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(d.parse::<Digest>().map_err(|e| ImageRefError { input: input.into(), ..e })?),
            ),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(input, tag)?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => (Some(first), path),
            _ => (None, name),
        };
        if let Some(r) = registry {
            check_registry(input, r)?;
        }
        check_repository(input, repository)?;
        Ok(Self {
            registry: registry.map(str::to_owned),
            repository: repository.into(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

fn check_tag(input: &str, tag: &str) -> Result<(), ImageRefError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        return Ok(());
    }
    Err(ImageRefError::new(
        input,
        format!("tag `{tag}` is not valid"),
        "a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`",
    ))
}

fn check_registry(input: &str, registry: &str) -> Result<(), ImageRefError> {
    let bad = || {
        ImageRefError::new(
            input,
            format!("registry `{registry}` is not a host name with an optional port"),
            "write the registry as `host` or `host:port`, e.g. `127.0.0.1:5000`",
        )
    };
    let (host, port) = if let Some(stripped) = registry.strip_prefix('[') {
        let (v6, rest) = stripped.split_once(']').ok_or_else(bad)?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        (
            None,
            rest.strip_prefix(':')
                .map(Some)
                .unwrap_or(if rest.is_empty() { None } else { return Err(bad()) }),
        )
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    let port_ok =
        |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| n <= 65535);
    if port.is_some_and(|p| !port_ok(p)) {
        return Err(bad());
    }
    Ok(())
}

fn check_repository(input: &str, repository: &str) -> Result<(), ImageRefError> {
    let help = "path components are lowercase letters and digits, separated by `.`, `_`, `__` or dashes, e.g. `team/webapp`";
    if repository.is_empty() {
        return Err(ImageRefError::new(input, "it has no repository name", help));
    }
    if repository.len() > MAX_NAME {
        return Err(ImageRefError::new(
            input,
            format!("its name is longer than {MAX_NAME} characters"),
            "use a shorter name",
        ));
    }
    for component in repository.split('/') {
        if !component_ok(component) {
            let why = if component.is_empty() {
                "it has an empty path component (`//` or a trailing `/`)".to_owned()
            } else if component.bytes().any(|b| b.is_ascii_uppercase()) {
                format!("path component `{component}` has uppercase letters")
            } else {
                format!("path component `{component}` is not valid")
            };
            return Err(ImageRefError::new(input, why, help));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn parses_every_part() {
        let r: ImageRef = format!("127.0.0.1:5000/team/apps/webapp:0.1.0@{D}").parse().unwrap();
        assert_eq!(r.registry(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository(), "team/apps/webapp");
        assert_eq!(r.namespace(), Some("team/apps"));
        assert_eq!(r.name(), "webapp");
        assert_eq!(r.tag(), Some("0.1.0"));
        assert_eq!(r.digest().unwrap().to_string(), D);

        let bare: ImageRef = "webapp".parse().unwrap();
        assert_eq!((bare.registry(), bare.namespace(), bare.tag()), (None, None, None));
        let local: ImageRef = "localhost/webapp:1".parse().unwrap();
        assert_eq!(local.registry(), Some("localhost"));
        let hub_like: ImageRef = "library/nginx:1.25".parse().unwrap();
        assert_eq!(hub_like.registry(), None, "a first component without `.` or `:` is a namespace");
    }

    #[test]
    fn rejects_with_reasons() {
        for (input, why) in [
            ("", "empty"),
            ("Team/webapp", "uppercase"),
            ("team//webapp", "empty path component"),
            ("webapp:", "tag ``"),
            ("webapp:-x", "tag `-x`"),
            ("webapp@sha256:abc", "at least 32 digits"),
            ("webapp@sha256:0123456789abcdef0123456789abcdef", "wrong length"),
            ("webapp@md5", "no `:`"),
            ("host:99999/webapp", "registry"),
            ("a b", "contains ' '"),
            ("web--app..x", "not valid"),
        ] {
            let e = input.parse::<ImageRef>().unwrap_err();
            assert!(e.to_string().contains(why), "{input}: {e}");
            assert!(!e.help.is_empty());
        }
    }

    #[test]
    fn building_checks_too() {
        let r = ImageRef::new(Some("127.0.0.1:5000"), "team/webapp")
            .unwrap()
            .with_tag("0.1.0")
            .unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/webapp:0.1.0");
        assert!(ImageRef::new(None, "Team").is_err());
        assert!(r.with_tag("no/slash").is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}(([._]|__|-{1,2})[a-z0-9]{1,6}){0,2}"
    }

    fn image_ref() -> impl Strategy<Value = String> {
        let registry = prop_oneof![
            Just(String::new()),
            "[a-z]{1,8}\\.[a-z]{2,4}(:[0-9]{1,5})?/",
            Just("localhost:5000/".to_owned())
        ];
        let tag = prop_oneof![Just(String::new()), ":[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"];
        let digest = prop_oneof![Just(String::new()), "@sha256:[0-9a-f]{64}"];
        (registry, prop::collection::vec(component(), 1..4), tag, digest).prop_map(|(r, path, t, d)| format!("{r}{}{t}{d}", path.join("/")))
    }

    proptest! {
        #[test]
        fn valid_references_round_trip(s in image_ref()) {
            match s.parse::<ImageRef>() {
                Ok(r) => {
                    prop_assert_eq!(r.to_string(), s.clone());
                    prop_assert_eq!(r.to_string().parse::<ImageRef>().unwrap(), r);
                }
                // Only a generated port over 65535 may be refused.
                Err(e) => prop_assert!(e.why.contains("registry"), "{}", e),
            }
        }

        #[test]
        fn any_input_parses_or_explains(s in "\\PC{0,40}") {
            match s.parse::<ImageRef>() {
                Ok(r) => prop_assert_eq!(r.to_string().parse::<ImageRef>().unwrap(), r),
                Err(e) => prop_assert!(!e.why.is_empty() && !e.help.is_empty()),
            }
        }
    }
}
