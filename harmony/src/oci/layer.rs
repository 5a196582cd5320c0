//! Reproducible tar+gzip layers: entries sorted, parents listed, times fixed,
//! owners zeroed and unnamed, gzip without a timestamp or file name.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};

use super::{Blob, Digest, OciError};

/// The modification time of every entry: one second after the epoch, since
/// some tools treat a zero time as "unset".
pub const MTIME: u64 = 1;

#[derive(Clone, Debug)]
enum Entry {
    Dir,
    File { mode: u32, bytes: Vec<u8> },
}

/// The files of one layer, keyed by path; the order they are added in does not matter.
#[derive(Clone, Debug, Default)]
pub struct LayerBuilder {
    entries: BTreeMap<String, Entry>,
}

/// A built layer: the compressed blob, and the digest of the uncompressed
/// tar (an image config's `diff_id`).
#[derive(Clone, Debug)]
pub struct Layer {
    /// The gzipped tar, as stored and pushed.
    pub blob: Blob,
    /// The digest of the uncompressed tar, listed in the image config's `rootfs.diff_ids`.
    pub diff_id: Digest,
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a file at `path` (relative, `/`-separated) with `mode` (e.g. `0o755`).
    /// Its parent directories are added too.
    pub fn file(&mut self, path: &str, mode: u32, bytes: Vec<u8>) -> &mut Self {
        let path = path.trim_start_matches('/').to_owned();
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            self.entries.entry(format!("{p}/")).or_insert(Entry::Dir);
            parent = p;
        }
        self.entries.insert(path, Entry::File { mode, bytes });
        self
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> Result<Vec<u8>, OciError> {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(MTIME);
            header.set_uid(0);
            header.set_gid(0);
            header.set_username("").map_err(OciError::Layer)?;
            header.set_groupname("").map_err(OciError::Layer)?;
            match entry {
                Entry::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, path, std::io::empty()).map_err(OciError::Layer)?;
                }
                Entry::File { mode, bytes } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(bytes.len() as u64);
                    tar.append_data(&mut header, path, bytes.as_slice()).map_err(OciError::Layer)?;
                }
            }
        }
        tar.into_inner().map_err(OciError::Layer)
    }

    /// Build the layer with the given media type.
    pub fn build(&self, media_type: &str) -> Result<Layer, OciError> {
        let tar = self.tar()?;
        let diff_id = Digest::sha256_of(&tar);
        Ok(Layer {
            blob: Blob::new(media_type, gzip(&tar)?),
            diff_id,
        })
    }
}

/// Gzip with a fixed header (no time, no name, "unknown" OS) and a fixed level.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, OciError> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(6));
    gz.write_all(bytes).map_err(OciError::Layer)?;
    gz.finish().map_err(OciError::Layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_in_any_order_give_the_same_digests() {
        let mut a = LayerBuilder::new();
        a.file("app/bin/server", 0o755, b"binary".to_vec())
            .file("etc/app.conf", 0o644, b"x=1".to_vec());
        let mut b = LayerBuilder::new();
        b.file("/etc/app.conf", 0o644, b"x=1".to_vec())
            .file("app/bin/server", 0o755, b"binary".to_vec());
        let (la, lb) = (a.build("t").unwrap(), b.build("t").unwrap());
        assert_eq!(la.blob.digest(), lb.blob.digest());
        assert_eq!(la.diff_id, lb.diff_id);
    }

    #[test]
    fn entries_carry_no_owner_or_time_and_parents_come_first() {
        let mut l = LayerBuilder::new();
        l.file("app/bin/server", 0o755, b"binary".to_vec());
        let tar = l.tar().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u64, u64, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("app/".into(), MTIME, 0, 0o755),
                ("app/bin/".into(), MTIME, 0, 0o755),
                ("app/bin/server".into(), MTIME, 0, 0o755)
            ]
        );
    }
}
