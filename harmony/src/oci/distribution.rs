//! A remote OCI distribution registry: where images and charts are pushed and
//! pulled. Blobs go first (each once: a blob the registry has is not sent
//! again), the manifest last, byte for byte as we built it, so the digest the
//! registry reports is the digest we computed, and an interrupted push is
//! finished by running it again.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Once;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::{Artifact, Blob, Digest, Manifest, media};
use crate::oci::{ImageRef, ImageRefError};
use crate::secret::Secret;

/// A user name and password for a registry.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret<String>,
}

/// A registry reached over the OCI distribution protocol. One per
/// credential: the client caches what it was granted.
pub struct Remote {
    registry: String,
    client: Client,
    auth: RegistryAuth,
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
    #[error("registry `{registry}` is not reachable: {why}")]
    Unreachable { registry: String, why: String },
    #[error("registry `{registry}` refused the credentials")]
    Unauthorized { registry: String, anonymous: bool },
    #[error("`{reference}` is not in the registry")]
    NotFound { reference: String },
    #[error("`{reference}` has digest {actual}, not the expected {expected}")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("registry `{registry}` failed: {why}")]
    Protocol { registry: String, why: String },
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

impl Remote {
    /// Talk to `registry` (`host[:port]`): HTTPS, except on loopback.
    pub fn new(registry: &str, credentials: Option<&Credentials>) -> Self {
        install_crypto();
        let protocol = if is_loopback(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            ..Default::default()
        });
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.expose().clone()),
            None => RegistryAuth::Anonymous,
        };
        let timeout = std::env::var(TIMEOUT_VAR)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        Self {
            registry: registry.to_owned(),
            client,
            auth,
            timeout,
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Give up on a request after `timeout` instead of `HARMONY_REGISTRY_TIMEOUT`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn reference(&self, image: &ImageRef) -> Reference {
        let repository = image.repository().to_owned();
        match (image.tag(), image.digest()) {
            (_, Some(d)) => Reference::with_digest(self.registry.clone(), repository, d.to_string()),
            (Some(t), None) => Reference::with_tag(self.registry.clone(), repository, t.to_owned()),
            (None, None) => Reference::with_tag(self.registry.clone(), repository, "latest".into()),
        }
    }

    fn error(&self, reference: &str, e: OciDistributionError) -> RegistryError {
        let registry = self.registry.clone();
        let anonymous = matches!(self.auth, RegistryAuth::Anonymous);
        match e {
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
                RegistryError::Unreachable { registry, why }
            }
            OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) => {
                RegistryError::Unauthorized { registry, anonymous }
            }
            OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s.as_u16() == 404) => RegistryError::NotFound {
                reference: reference.to_owned(),
            },
            OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. } => {
                RegistryError::Unauthorized { registry, anonymous }
            }
            OciDistributionError::ServerError { code: 401 | 403, .. } => RegistryError::Unauthorized { registry, anonymous },
            OciDistributionError::ServerError { code: 404, .. } | OciDistributionError::ImageManifestNotFoundError(_) => {
                RegistryError::NotFound {
                    reference: reference.to_owned(),
                }
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<String> = envelope.errors.iter().map(|e| format!("{:?}", e.code)).collect();
                if codes.iter().any(|c| c == "Unauthorized" || c == "Denied") {
                    RegistryError::Unauthorized { registry, anonymous }
                } else if codes.iter().any(|c| c.contains("Unknown")) {
                    RegistryError::NotFound {
                        reference: reference.to_owned(),
                    }
                } else {
                    RegistryError::Protocol {
                        registry,
                        why: envelope.to_string(),
                    }
                }
            }
            other => RegistryError::Protocol {
                registry,
                why: other.to_string(),
            },
        }
    }

    /// Await one registry request, giving up after the timeout.
    async fn within<T>(&self, shown: &str, request: impl Future<Output = Result<T, OciDistributionError>>) -> Result<T, RegistryError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result.map_err(|e| self.error(shown, e)),
            Err(_) => Err(RegistryError::Unreachable {
                registry: self.registry.clone(),
                why: format!("no answer within {} s (set `{TIMEOUT_VAR}` to wait longer)", self.timeout.as_secs()),
            }),
        }
    }

    /// Push `artifact` as `repository:tag`; returns the reference pinned to its digest.
    pub async fn push(&self, repository: &str, tag: &str, artifact: &Artifact) -> Result<ImageRef, RegistryError> {
        let image = ImageRef::new(Some(&self.registry), repository)?.with_tag(tag)?;
        let reference = self.reference(&image);
        let shown = image.to_string();
        self.within(&shown, self.client.auth(&reference, &self.auth, RegistryOperation::Push))
            .await?;
        for blob in std::iter::once(artifact.config()).chain(artifact.layers()) {
            let digest = blob.digest().to_string();
            let present = self.within(&shown, self.client.blob_exists(&reference, &digest)).await?;
            if !present {
                self.within(&shown, self.client.push_blob(&reference, blob.bytes().to_vec(), &digest))
                    .await?;
            }
        }
        let manifest = artifact.manifest_blob();
        let content_type = http::HeaderValue::from_static(media::MANIFEST);
        self.within(
            &shown,
            self.client.push_manifest_raw(&reference, manifest.bytes().to_vec(), content_type),
        )
        .await?;
        Ok(image.with_digest(manifest.digest().clone()))
    }

    /// The digest `image` points at now, or `None` if the registry does not have it.
    pub async fn resolve(&self, image: &ImageRef) -> Result<Option<Digest>, RegistryError> {
        let reference = self.reference(image);
        match self
            .within(&image.to_string(), self.client.fetch_manifest_digest(&reference, &self.auth))
            .await
        {
            Ok(d) => d.parse().map(Some).map_err(RegistryError::from),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Pull `image` and every blob it names, checking each against its digest
    /// (and the manifest against the reference's digest, when pinned).
    pub async fn pull(&self, image: &ImageRef) -> Result<(Artifact, Digest), RegistryError> {
        let reference = self.reference(image);
        let shown = image.to_string();
        let accepted = [media::MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"];
        let (bytes, _) = self
            .within(&shown, self.client.pull_manifest_raw(&reference, &self.auth, &accepted))
            .await?;
        let digest = Digest::sha256_of(&bytes);
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
        let config = self.pull_blob(&reference, &shown, &manifest.config).await?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            layers.push(self.pull_blob(&reference, &shown, layer).await?);
        }
        Ok((Artifact::new(config, layers), digest))
    }

    async fn pull_blob(&self, reference: &Reference, shown: &str, d: &super::Descriptor) -> Result<Blob, RegistryError> {
        let mut bytes = Vec::with_capacity(d.size as usize);
        self.within(shown, self.client.pull_blob(reference, d.digest.as_str(), &mut bytes))
            .await?;
        let blob = Blob::new(d.media_type.clone(), bytes);
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

#[cfg(test)]
mod tests {
    use super::is_loopback;

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
