//! An OCI image-layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`):
//! the registry of the `local` topology, readable by any OCI tool
//! (`skopeo inspect oci:DIR:REF`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{Whole, write_whole};

use super::{Artifact, Blob, Descriptor, Digest, Manifest, OciError, media};

/// The annotation that names a manifest in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image-layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

impl Layout {
    /// The layout at `root`; nothing is created until something is stored.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm()).join(digest.hex())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn read_index(&self) -> Result<Index, OciError> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OciError::Corrupt { path, why: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index {
                schema_version: 2,
                media_type: Some(media::INDEX.into()),
                manifests: Vec::new(),
            }),
            Err(source) => Err(OciError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Store a blob, once: an existing blob with the right content is kept.
    pub fn put_blob(&self, blob: &Blob) -> Result<(), OciError> {
        let path = self.blob_path(blob.digest());
        if fs::read(&path).is_ok_and(|b| Digest::sha256_of(&b) == *blob.digest()) {
            return Ok(());
        }
        write_atomic(&path, blob.bytes())
    }

    /// Store an artifact under `name` (`webapp-server:0.1.0`), replacing what
    /// that name pointed at. Returns the manifest's digest.
    pub fn put(&self, name: &str, artifact: &Artifact) -> Result<Digest, OciError> {
        write_atomic(&self.root.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        for blob in std::iter::once(artifact.config()).chain(artifact.layers()) {
            self.put_blob(blob)?;
        }
        let manifest = artifact.manifest_blob();
        self.put_blob(&manifest)?;
        let mut index = self.read_index()?;
        index
            .manifests
            .retain(|d| d.annotations.as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) != Some(name));
        let mut descriptor = manifest.descriptor();
        descriptor.annotations = Some(BTreeMap::from([(REF_NAME.to_owned(), name.to_owned())]));
        index.manifests.push(descriptor);
        index.manifests.sort_by(|a, b| ref_name(a).cmp(&ref_name(b)));
        let bytes = serde_json::to_vec_pretty(&index).expect("an index is plain JSON");
        write_atomic(&self.index_path(), &bytes)?;
        Ok(manifest.digest().clone())
    }

    /// The manifest digest stored under `name`, if any.
    pub fn resolve(&self, name: &str) -> Result<Option<Digest>, OciError> {
        let index = self.read_index()?;
        let found = index.manifests.iter().find(|d| ref_name(d) == Some(name));
        match found {
            None => Ok(None),
            Some(d) => d
                .digest
                .parse()
                .map(Some)
                .map_err(|e: crate::oci::ImageRefError| OciError::Corrupt {
                    path: self.index_path(),
                    why: e.why,
                }),
        }
    }

    /// Read a blob back, checking it against its digest.
    pub fn blob(&self, digest: &Digest, media_type: &str) -> Result<Blob, OciError> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|source| OciError::Io {
            action: "read",
            path,
            source,
        })?;
        let blob = Blob::new(media_type, bytes);
        if blob.digest() != digest {
            return Err(OciError::DigestMismatch {
                digest: digest.to_string(),
            });
        }
        Ok(blob)
    }

    /// Read the artifact stored under `name`, verifying every blob.
    pub fn get(&self, name: &str) -> Result<Option<Artifact>, OciError> {
        let Some(digest) = self.resolve(name)? else { return Ok(None) };
        let manifest_blob = self.blob(&digest, media::MANIFEST)?;
        let manifest: Manifest = serde_json::from_slice(manifest_blob.bytes()).map_err(|e| OciError::Corrupt {
            path: self.blob_path(&digest),
            why: e.to_string(),
        })?;
        let parse = |d: &Descriptor| -> Result<Blob, OciError> {
            let digest: Digest = d.digest.parse().map_err(|e: crate::oci::ImageRefError| OciError::Corrupt {
                path: self.index_path(),
                why: e.why,
            })?;
            self.blob(&digest, &d.media_type)
        };
        let config = parse(&manifest.config)?;
        let layers = manifest.layers.iter().map(parse).collect::<Result<_, _>>()?;
        Ok(Some(Artifact::new(config, layers)))
    }
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str)
}

/// Write a file of the layout whole (see [`crate::files`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let how = Whole {
        durable: true,
        private: false,
    };
    write_whole(path, bytes, how).map_err(|f| OciError::Io {
        action: f.action,
        path: f.path,
        source: f.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(content: &[u8]) -> Artifact {
        Artifact::new(
            Blob::new(media::IMAGE_CONFIG, b"{}".to_vec()),
            vec![Blob::new(media::LAYER_TAR_GZIP, content.to_vec())],
        )
    }

    #[test]
    fn store_resolve_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path());
        let a = artifact(b"one");
        let digest = layout.put("webapp:0.1.0", &a).unwrap();
        assert_eq!(digest, a.digest());
        assert_eq!(layout.resolve("webapp:0.1.0").unwrap(), Some(digest));
        assert_eq!(layout.get("webapp:0.1.0").unwrap(), Some(a.clone()));
        assert_eq!(layout.resolve("webapp:0.2.0").unwrap(), None);
        // Retagging replaces; storing twice is idempotent.
        let b = artifact(b"two");
        layout.put("webapp:0.1.0", &b).unwrap();
        layout.put("webapp:0.1.0", &b).unwrap();
        assert_eq!(layout.get("webapp:0.1.0").unwrap(), Some(b));
        let index: serde_json::Value = serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn an_altered_blob_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path());
        let a = artifact(b"one");
        layout.put("x:1", &a).unwrap();
        let layer = &a.layers()[0];
        fs::write(dir.path().join("blobs/sha256").join(layer.digest().hex()), b"tampered").unwrap();
        assert!(matches!(layout.get("x:1"), Err(OciError::DigestMismatch { .. })));
        // Storing again repairs it.
        layout.put("x:1", &a).unwrap();
        assert_eq!(layout.get("x:1").unwrap(), Some(a));
    }
}
