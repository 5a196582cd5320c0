//! A plan saved by `plan --out FILE`, for `apply --plan FILE`: the contract
//! of a reviewed plan. It holds each app's plan and what it was computed
//! from, as digests (never a secret value); applying it re-renders, observes,
//! and refuses if either side moved.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::plan::ExactPlan;

/// The format this build writes and reads.
pub const FORMAT: &str = "harmony.plan/v1";

/// Plans saved by `plan --out FILE`: what `apply --plan FILE` carries out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// [`FORMAT`] when this build wrote it; another format is refused.
    pub format: String,
    /// The binary that made it: only the same binary applies it.
    pub binary: String,
    /// The topology every plan was made for (its `--topology` name).
    pub topology: String,
    /// One plan per app, in the order they are applied.
    pub plans: Vec<ExactPlan>,
}

impl SavedPlan {
    /// The plans `plans`, made by `binary` for `topology`.
    pub fn new(binary: impl Into<String>, topology: impl Into<String>, plans: Vec<ExactPlan>) -> Self {
        Self {
            format: FORMAT.to_owned(),
            binary: binary.into(),
            topology: topology.into(),
            plans,
        }
    }

    /// Write it to `path`, whole or not at all.
    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let io = |source| SavedPlanError::Write {
            path: path.to_owned(),
            source,
        };
        let mut bytes = serde_json::to_vec_pretty(self).expect("a plan is plain JSON");
        bytes.push(b'\n');
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(&bytes).map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Read the plan at `path`, made by `binary`: anything else is refused,
    /// naming the file and why.
    pub fn read(path: &Path, binary: &str) -> Result<Self, SavedPlanError> {
        let bytes = fs::read(path).map_err(|source| SavedPlanError::Read {
            path: path.to_owned(),
            source,
        })?;
        let bad = |why: String| SavedPlanError::Invalid {
            path: path.to_owned(),
            why,
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("it is not JSON ({e})")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(bad(format!("it is in format `{other}`, and this build reads `{FORMAT}`")));
            }
            None => return Err(bad("it is not a saved plan (it has no `format`)".into())),
        }
        let saved: SavedPlan = serde_json::from_value(value).map_err(|e| bad(format!("it is damaged: {e}")))?;
        if saved.binary != binary {
            return Err(bad(format!("it was made by `{}`, and this is `{binary}`", saved.binary)));
        }
        Ok(saved)
    }
}

/// A saved plan could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedPlanError {
    /// `plan --out` could not write the file.
    #[error("the plan could not be saved to `{}`: {source}", path.display())]
    Write {
        /// The file asked for.
        path: PathBuf,
        /// Why it could not be written.
        source: std::io::Error,
    },
    /// `apply --plan` could not read the file.
    #[error("the plan `{}` could not be read: {source}", path.display())]
    Read {
        /// The file given.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not a plan this binary may apply: another format, another binary, or
    /// not a plan at all.
    #[error("`{}` cannot be applied: {why}", path.display())]
    Invalid {
        /// The file given.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

impl crate::Diagnostic for SavedPlanError {
    fn help(&self) -> String {
        match self {
            Self::Write { .. } => "pass `--out` a path in a directory you can write".into(),
            Self::Read { .. } => "pass `--plan` the file `plan --out` wrote".into(),
            Self::Invalid { .. } => "make a new plan with `plan --out FILE` and apply that one; nothing was applied".into(),
        }
    }
}
