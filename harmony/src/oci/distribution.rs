//! A remote OCI distribution registry: where images and charts are pushed and
//! pulled. Blobs go first (each once: a blob the registry has is not sent
//! again), the manifest last, byte for byte as we built it, so the digest the
//! registry reports is the digest we computed, and an interrupted push is
//! finished by running it again.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Mutex, Once};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{Artifact, Blob, Digest, Manifest, media};
use crate::oci::{ImageRef, ImageRefError};
use crate::secret::Secret;

/// A user name and password for a registry.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The registry user name.
    pub username: String,
    /// The password; `Debug` prints it redacted.
    pub password: Secret<String>,
}

/// A registry reached over the OCI distribution protocol. One per
/// credential: it keeps the tokens the registry granted.
pub struct Remote {
    registry: String,
    scheme: &'static str,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    credentials: Option<Credentials>,
    /// What each scope was granted (`repository:team/app:pull,push`), or,
    /// under the empty scope, the basic authorization, once the registry asked for one.
    granted: Mutex<HashMap<String, Secret<String>>>,
    timeout: Duration,
}

/// How long one registry request may take before the registry counts as
/// unreachable (`HARMONY_REGISTRY_TIMEOUT`, in seconds).
pub const TIMEOUT_VAR: &str = "HARMONY_REGISTRY_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("registry", &self.registry).finish_non_exhaustive()
    }
}

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached: the connection failed, no answer came within
    /// `HARMONY_REGISTRY_TIMEOUT`, or the answer was cut short.
    #[error("registry `{registry}` is not reachable: {why}")]
    Unreachable {
        /// The registry's `host[:port]`.
        registry: String,
        /// What failed: the innermost connection error, or the timeout.
        why: String,
    },
    /// The registry refused access (HTTP 401 or 403, or a `DENIED` or `UNAUTHORIZED`
    /// error code), with the credentials given or without any.
    #[error("registry `{registry}` refused the credentials")]
    Unauthorized {
        /// The registry's `host[:port]`.
        registry: String,
        /// Whether no credentials were set for the registry.
        anonymous: bool,
    },
    /// The registry does not hold the repository, tag, manifest or blob asked for.
    #[error("`{reference}` is not in the registry")]
    NotFound {
        /// The image or chart reference that was asked for.
        reference: String,
    },
    /// Content does not match its digest: a pulled manifest or blob, or the digest the
    /// registry reports for a pushed manifest.
    #[error("`{reference}` has digest {actual}, not the expected {expected}")]
    DigestMismatch {
        /// The image or chart reference being pushed or pulled.
        reference: String,
        /// The digest expected: the pinned one, or the one computed here.
        expected: String,
        /// The digest of what the registry returned or reports.
        actual: String,
    },
    /// The registry answered, but not as expected: another HTTP status, a body (a manifest,
    /// a token) that does not parse, or too many redirects.
    #[error("registry `{registry}` failed: {why}")]
    Protocol {
        /// The registry's `host[:port]`.
        registry: String,
        /// The HTTP status and the registry's own message, or what does not parse.
        why: String,
    },
    /// A repository or tag to push to is not a valid reference, or the registry reported
    /// a digest that is not valid.
    #[error(transparent)]
    Reference(#[from] ImageRefError),
}

impl crate::Diagnostic for RegistryError {
    fn help(&self) -> String {
        match self {
            Self::Unreachable { registry, .. } => format!("check that a registry listens at `{registry}` and that this machine reaches it"),
            Self::Unauthorized { anonymous: true, .. } => {
                "this registry needs credentials: set `HARMONY_REGISTRY_USERNAME` and `HARMONY_REGISTRY_PASSWORD`".into()
            }
            Self::Unauthorized { .. } => "check `HARMONY_REGISTRY_USERNAME` and `HARMONY_REGISTRY_PASSWORD`".into(),
            Self::NotFound { .. } => "release it first, or check the name and version".into(),
            Self::DigestMismatch { .. } => "something altered the stored content: push it again from a trusted build".into(),
            Self::Protocol { .. } => "rerun: pushes are idempotent and finish where they stopped".into(),
            Self::Reference(e) => e.help.clone(),
        }
    }
}

/// The HTTPS client: the machine's trusted roots, ring for the cryptography
/// (as the rest of the process). Without any trusted root, HTTPS registries
/// fail their handshake with an error that says so; loopback ones still work.
fn http_client() -> Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
        Ok(b) => b,
        Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
    };
    Client::builder(TokioExecutor::new()).build(builder.https_or_http().enable_http1().build())
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Whether `registry` (`host[:port]`) is on this machine, where plain HTTP is allowed.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What the registry answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// One request to the registry. It is sent again (hence its parts, not a
/// `Request`) when the registry first asks for credentials or redirects.
struct Ask<'a> {
    method: Method,
    url: String,
    content_type: Option<&'static str>,
    accept: Option<&'a str>,
    body: Bytes,
    /// The access it needs, as a token asks for it: `repository:team/app:pull`.
    scope: &'a str,
}

impl<'a> Ask<'a> {
    fn new(method: Method, url: String, scope: &'a str) -> Self {
        Self {
            method,
            url,
            content_type: None,
            accept: None,
            body: Bytes::new(),
            scope,
        }
    }
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"` (quoted
    /// values may hold commas).
    fn parse(header: &str) -> Option<Self> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let mut params = HashMap::new();
        let mut rest = rest.trim();
        while let Some((key, after)) = rest.split_once('=') {
            let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, tail) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let end = quoted.find('"').unwrap_or(quoted.len());
                    (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
                }
                None => after.split_once(',').unwrap_or((after, "")),
            };
            params.insert(key, value.to_owned());
            rest = tail.trim_start().trim_start_matches(',');
        }
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Self::Basic),
            "bearer" => Some(Self::Bearer {
                realm: params.remove("realm")?,
                service: params.remove("service"),
                scope: params.remove("scope"),
            }),
            _ => None,
        }
    }
}

/// A query value, percent-encoded.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a `Location` header points, absolute.
fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let origin = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| &base[..i + 3 + j]))
        .unwrap_or(base);
    format!("{origin}{location}")
}

/// The host part of a URL, to keep credentials from following a redirect elsewhere.
fn origin_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The registry's own words from its error envelope, or the start of the body.
fn registry_says(body: &[u8]) -> (Vec<String>, String) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) if !e.errors.is_empty() => (
            e.errors.iter().map(|e| e.code.clone()).collect(),
            e.errors
                .iter()
                .map(|e| format!("{}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (Vec::new(), text.chars().take(200).collect())
        }
    }
}

impl Remote {
    /// Talk to `registry` (`host[:port]`): HTTPS, except on loopback.
    pub fn new(registry: &str, credentials: Option<&Credentials>) -> Self {
        install_crypto();
        let timeout = std::env::var(TIMEOUT_VAR)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        Self {
            registry: registry.to_owned(),
            scheme: if is_loopback(registry) { "http" } else { "https" },
            http: http_client(),
            credentials: credentials.cloned(),
            granted: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// The registry's host (and port).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Give up on a request after `timeout` instead of `HARMONY_REGISTRY_TIMEOUT`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}/v2/{path}", self.scheme, self.registry)
    }

    fn unauthorized(&self) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            anonymous: self.credentials.is_none(),
        }
    }

    fn unreachable(&self, why: impl Into<String>) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            why: why.into(),
        }
    }

    /// A failed answer, in the user's terms: no access, not there, or the registry's own words.
    fn failure(&self, answer: &Answer, shown: &str) -> RegistryError {
        let (codes, said) = registry_says(&answer.body);
        let has = |c: &str| codes.iter().any(|code| code.eq_ignore_ascii_case(c));
        if matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) || has("UNAUTHORIZED") || has("DENIED") {
            self.unauthorized()
        } else if answer.status == StatusCode::NOT_FOUND || codes.iter().any(|c| c.ends_with("_UNKNOWN")) {
            RegistryError::NotFound {
                reference: shown.to_owned(),
            }
        } else {
            RegistryError::Protocol {
                registry: self.registry.clone(),
                why: format!(
                    "HTTP {} for {shown}{}",
                    answer.status,
                    if said.is_empty() { String::new() } else { format!(": {said}") }
                ),
            }
        }
    }

    /// Await one exchange, giving up after the timeout.
    async fn within<T>(&self, exchange: impl Future<Output = Result<T, RegistryError>>) -> Result<T, RegistryError> {
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or_else(|_| {
            Err(self.unreachable(format!(
                "no answer within {} s (set `{TIMEOUT_VAR}` to wait longer)",
                self.timeout.as_secs()
            )))
        })
    }

    /// Send `method url` once, with `authorization` if given; the whole answer.
    async fn exchange(&self, ask: &Ask<'_>, url: &str, authorization: Option<&Secret<String>>) -> Result<Answer, RegistryError> {
        let mut request = Request::builder().method(ask.method.clone()).uri(url);
        if let Some(accept) = ask.accept {
            request = request.header(header::ACCEPT, accept);
        }
        if let Some(content_type) = ask.content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(secret) = authorization {
            let mut value =
                HeaderValue::from_str(secret.expose()).map_err(|_| self.unreachable("the credentials cannot travel in an HTTP header"))?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(ask.body.clone()))
            .map_err(|e| self.unreachable(format!("`{url}` is not a valid address: {e}")))?;
        let response = self.within(async {
            let response = self.http.request(request).await.map_err(|e| {
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = s.to_string();
                    source = s.source();
                }
                self.unreachable(why)
            })?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| self.unreachable(format!("the answer was cut short: {e}")))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        });
        response.await
    }

    /// What was granted for `scope` (a token), or to every request (basic).
    fn authorization(&self, scope: &str) -> Option<Secret<String>> {
        let granted = self.granted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        granted.get(scope).or_else(|| granted.get("")).cloned()
    }

    fn grant(&self, scope: &str, authorization: String) {
        self.granted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(scope.to_owned(), Secret::new(authorization));
    }

    fn basic(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| {
            let pair = format!("{}:{}", c.username, c.password.expose());
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        })
    }

    /// Send `ask`: answer a credentials challenge once (basic, or a token
    /// from the realm the registry names), follow redirects (credentials go
    /// only to the registry itself).
    async fn send(&self, ask: &Ask<'_>) -> Result<Answer, RegistryError> {
        let mut url = ask.url.clone();
        let mut challenged = false;
        for _ in 0..6 {
            let own = origin_of(&url) == self.registry;
            let authorization = if own { self.authorization(ask.scope) } else { None };
            let answer = self.exchange(ask, &url, authorization.as_ref()).await?;
            if answer.status == StatusCode::UNAUTHORIZED && own && !challenged {
                challenged = true;
                let challenge = answer
                    .headers
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse);
                match challenge {
                    Some(Challenge::Basic) => self.grant("", self.basic().ok_or_else(|| self.unauthorized())?),
                    Some(Challenge::Bearer { realm, service, scope }) => {
                        let token = self
                            .token(&realm, service.as_deref(), scope.as_deref().unwrap_or(ask.scope))
                            .await?;
                        self.grant(ask.scope, format!("Bearer {}", token.expose()));
                    }
                    None => return Err(self.unauthorized()),
                }
                continue;
            }
            let location = answer.headers.get(header::LOCATION).and_then(|v| v.to_str().ok());
            if let (true, Some(location)) = (
                answer.status.is_redirection() && matches!(ask.method, Method::GET | Method::HEAD),
                location,
            ) {
                url = absolute(&url, location);
                continue;
            }
            return Ok(answer);
        }
        Err(RegistryError::Protocol {
            registry: self.registry.clone(),
            why: format!("`{}` redirects too many times", ask.url),
        })
    }

    /// A token for `scope` from the registry's authorization server.
    async fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<Secret<String>, RegistryError> {
        let mut url = format!("{realm}{}scope={}", if realm.contains('?') { '&' } else { '?' }, encoded(scope));
        if let Some(service) = service {
            url.push_str(&format!("&service={}", encoded(service)));
        }
        let ask = Ask::new(Method::GET, url.clone(), scope);
        let basic = self.basic().map(Secret::new);
        let answer = self.exchange(&ask, &url, basic.as_ref()).await?;
        if !answer.status.is_success() {
            return Err(if matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                self.unauthorized()
            } else {
                self.failure(&answer, realm)
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = serde_json::from_slice(&answer.body).map_err(|e| RegistryError::Protocol {
            registry: self.registry.clone(),
            why: format!("the token from `{realm}` does not parse: {e}"),
        })?;
        token
            .token
            .or(token.access_token)
            .map(Secret::new)
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.registry.clone(),
                why: format!("`{realm}` answered without a token"),
            })
    }

    /// Push `artifact` as `repository:tag`; returns the reference pinned to its digest.
    pub async fn push(&self, repository: &str, tag: &str, artifact: &Artifact) -> Result<ImageRef, RegistryError> {
        let image = ImageRef::new(Some(&self.registry), repository)?.with_tag(tag)?;
        let shown = image.to_string();
        let scope = format!("repository:{repository}:pull,push");
        for blob in std::iter::once(artifact.config()).chain(artifact.layers()) {
            let head = Ask::new(Method::HEAD, self.url(&format!("{repository}/blobs/{}", blob.digest())), &scope);
            let answer = self.send(&head).await?;
            match answer.status {
                s if s.is_success() => continue,
                StatusCode::NOT_FOUND => self.push_blob(repository, &scope, &shown, blob).await?,
                _ => return Err(self.failure(&answer, &shown)),
            }
        }
        let manifest = artifact.manifest_blob();
        let mut put = Ask::new(Method::PUT, self.url(&format!("{repository}/manifests/{tag}")), &scope);
        put.content_type = Some(media::MANIFEST);
        put.body = Bytes::copy_from_slice(manifest.bytes());
        let answer = self.send(&put).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&answer, &shown));
        }
        let stored = answer.headers.get("docker-content-digest").and_then(|v| v.to_str().ok());
        if let Some(stored) = stored.filter(|s| *s != manifest.digest().to_string()) {
            return Err(RegistryError::DigestMismatch {
                reference: shown,
                expected: manifest.digest().to_string(),
                actual: stored.to_owned(),
            });
        }
        Ok(image.with_digest(manifest.digest().clone()))
    }

    /// One blob, in a single upload: open a session, then put the bytes.
    async fn push_blob(&self, repository: &str, scope: &str, shown: &str, blob: &Blob) -> Result<(), RegistryError> {
        let open = Ask::new(Method::POST, self.url(&format!("{repository}/blobs/uploads/")), scope);
        let answer = self.send(&open).await?;
        let location = answer.headers.get(header::LOCATION).and_then(|v| v.to_str().ok());
        let (StatusCode::ACCEPTED, Some(location)) = (answer.status, location) else {
            return Err(self.failure(&answer, shown));
        };
        let location = absolute(&open.url, location);
        let separator = if location.contains('?') { '&' } else { '?' };
        let mut put = Ask::new(
            Method::PUT,
            format!("{location}{separator}digest={}", encoded(&blob.digest().to_string())),
            scope,
        );
        put.content_type = Some("application/octet-stream");
        put.body = Bytes::copy_from_slice(blob.bytes());
        let answer = self.send(&put).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.failure(&answer, shown))
        }
    }

    /// How `image` is named in the registry's paths: its digest, else its tag.
    fn reference(image: &ImageRef) -> String {
        match (image.digest(), image.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".into(),
        }
    }

    /// The digest `image` points at now, or `None` if the registry does not have it.
    pub async fn resolve(&self, image: &ImageRef) -> Result<Option<Digest>, RegistryError> {
        let scope = format!("repository:{}:pull", image.repository());
        let path = format!("{}/manifests/{}", image.repository(), Self::reference(image));
        let mut head = Ask::new(Method::HEAD, self.url(&path), &scope);
        head.accept = Some(ACCEPTED_MANIFESTS);
        let answer = self.send(&head).await?;
        match answer.status {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => return Err(self.failure(&answer, &image.to_string())),
            _ => {}
        }
        match answer.headers.get("docker-content-digest").and_then(|v| v.to_str().ok()) {
            Some(d) => d.parse().map(Some).map_err(RegistryError::from),
            None => Ok(Some(self.manifest(image).await?.1)),
        }
    }

    /// The manifest of `image`, as stored, and its digest.
    async fn manifest(&self, image: &ImageRef) -> Result<(Bytes, Digest), RegistryError> {
        let scope = format!("repository:{}:pull", image.repository());
        let path = format!("{}/manifests/{}", image.repository(), Self::reference(image));
        let mut get = Ask::new(Method::GET, self.url(&path), &scope);
        get.accept = Some(ACCEPTED_MANIFESTS);
        let answer = self.send(&get).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&answer, &image.to_string()));
        }
        let digest = Digest::sha256_of(&answer.body);
        Ok((answer.body, digest))
    }

    /// Pull `image` and every blob it names, checking each against its digest
    /// (and the manifest against the reference's digest, when pinned).
    pub async fn pull(&self, image: &ImageRef) -> Result<(Artifact, Digest), RegistryError> {
        let shown = image.to_string();
        let (bytes, digest) = self.manifest(image).await?;
        if let Some(expected) = image.digest().filter(|e| **e != digest) {
            return Err(RegistryError::DigestMismatch {
                reference: shown,
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
            registry: self.registry.clone(),
            why: format!("its manifest does not parse: {e}"),
        })?;
        let config = self.pull_blob(image, &shown, &manifest.config).await?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            layers.push(self.pull_blob(image, &shown, layer).await?);
        }
        Ok((Artifact::new(config, layers), digest))
    }

    async fn pull_blob(&self, image: &ImageRef, shown: &str, d: &super::Descriptor) -> Result<Blob, RegistryError> {
        let scope = format!("repository:{}:pull", image.repository());
        let get = Ask::new(Method::GET, self.url(&format!("{}/blobs/{}", image.repository(), d.digest)), &scope);
        let answer = self.send(&get).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&answer, shown));
        }
        let blob = Blob::new(d.media_type.clone(), answer.body.to_vec());
        if blob.digest().to_string() != d.digest {
            return Err(RegistryError::DigestMismatch {
                reference: shown.to_owned(),
                expected: d.digest.clone(),
                actual: blob.digest().to_string(),
            });
        }
        Ok(blob)
    }
}

/// The manifests a pull understands: OCI's, and Docker's v2 (what most registries serve).
const ACCEPTED_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[cfg(test)]
mod tests {
    use super::{Challenge, absolute, encoded, is_loopback};

    #[test]
    fn challenges_as_registries_write_them() {
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:team/app:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None, "a bearer challenge names its realm");
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn upload_locations_and_query_values() {
        assert_eq!(
            absolute(
                "http://127.0.0.1:5000/v2/team/app/blobs/uploads/",
                "/v2/team/app/blobs/uploads/u1?_state=x"
            ),
            "http://127.0.0.1:5000/v2/team/app/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            absolute("https://r.example/v2/a", "https://blobs.example/b"),
            "https://blobs.example/b"
        );
        assert_eq!(encoded("sha256:ab"), "sha256%3Aab");
        assert_eq!(encoded("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        for r in ["127.0.0.1:5000", "localhost:5000", "localhost", "[::1]:5000", "127.8.9.1"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["registry.example.com", "10.0.0.1:5000", "192.168.1.2", "localhost.example.com:5000"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
