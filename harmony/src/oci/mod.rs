//! OCI artifacts, built reproducibly: content-addressed blobs, manifests, and
//! the image-layout directory the `local` topology stores them in.
//!
//! An image and a Helm chart are the same thing here: an [`Artifact`] (a
//! config blob and layer blobs, tied together by a manifest). Manifests are
//! serialized with a fixed field order, tarballs with sorted entries, fixed
//! times and no owners, and gzip without a timestamp, so the same inputs give
//! the same digests on every machine.

pub mod distribution;
pub mod layer;
pub mod layout;
pub mod reference;

use serde::{Deserialize, Serialize};

pub use reference::{Digest, ImageRef, ImageRefError, tag_of};

/// Media types this crate writes.
pub mod media {
    /// An OCI image manifest.
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image index.
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// An OCI image config.
    pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// A gzipped tar layer.
    pub const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// A Helm chart's config.
    pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
    /// A Helm chart's packaged content.
    pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
}

/// Bytes and their digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob {
    media_type: String,
    digest: Digest,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("media_type", &self.media_type)
            .field("digest", &self.digest)
            .field("size", &self.bytes.len())
            .finish()
    }
}

impl Blob {
    /// `bytes`, of media type `media_type`, with their digest.
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            media_type: media_type.into(),
            digest: Digest::sha256_of(&bytes),
            bytes,
        }
    }

    /// Its media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The SHA-256 digest of its bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How a manifest refers to it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.to_string(),
            size: self.bytes.len() as u64,
            annotations: None,
        }
    }
}

/// A pointer to a blob: its type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type (see [`media`]).
    pub media_type: String,
    /// The blob's digest, `sha256:<hex>`.
    pub digest: String,
    /// The blob's size, in bytes.
    pub size: u64,
    /// Free-form annotations (an image layout's index keeps each manifest's name here);
    /// left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// An OCI image manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The manifest schema version: `2` in every manifest this crate writes.
    pub schema_version: u32,
    /// The manifest's own media type ([`media::MANIFEST`] in the ones this crate writes).
    pub media_type: String,
    /// The config blob: an image's config, or a Helm chart's.
    pub config: Descriptor,
    /// The layer blobs, in the order they are applied.
    pub layers: Vec<Descriptor>,
}

/// A config blob and its layers: an image or a chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    config: Blob,
    layers: Vec<Blob>,
}

impl Artifact {
    /// An artifact of `config` and `layers`, in order.
    pub fn new(config: Blob, layers: Vec<Blob>) -> Self {
        Self { config, layers }
    }

    /// Its config blob.
    pub fn config(&self) -> &Blob {
        &self.config
    }

    /// Its layers, in order.
    pub fn layers(&self) -> &[Blob] {
        &self.layers
    }

    /// Its image manifest.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: media::MANIFEST.into(),
            config: self.config.descriptor(),
            layers: self.layers.iter().map(Blob::descriptor).collect(),
        }
    }

    /// The manifest as stored and pushed: its digest is the artifact's identity.
    pub fn manifest_blob(&self) -> Blob {
        Blob::new(
            media::MANIFEST,
            serde_json::to_vec(&self.manifest()).expect("a manifest is plain JSON"),
        )
    }

    /// The digest of its manifest: the artifact's identity.
    pub fn digest(&self) -> Digest {
        self.manifest_blob().digest().clone()
    }
}

/// An artifact that does not hold together.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file of an image layout, or of an image a builder wrote, could not be read or written.
    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done, as a verb: `read`, `write`.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// An image layout (or a docker archive) does not hold together: an index or manifest
    /// does not parse, a digest is not valid, or no image is listed.
    #[error("`{}` is not a valid OCI layout: {why}", path.display())]
    Corrupt {
        /// The file at fault: an index or a manifest.
        path: std::path::PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A blob read from an image layout does not hash to the digest it is stored under.
    #[error("blob {digest} does not match its content")]
    DigestMismatch {
        /// The digest the blob is stored under.
        digest: String,
    },
    /// Packing files into a layer's tar, or compressing it, failed.
    #[error("the layer could not be written: {0}")]
    Layer(std::io::Error),
}

impl crate::Diagnostic for OciError {
    fn help(&self) -> String {
        match self {
            Self::Io { .. } => "check the path's permissions and free space, then rerun".into(),
            Self::Corrupt { path, .. } => format!("move `{}` aside; the next release writes a fresh one", path.display()),
            Self::DigestMismatch { .. } => "the stored blob was altered: remove it and rerun to write it again".into(),
            Self::Layer(_) => "check the files being packaged are readable".into(),
        }
    }
}
