//! What a Score's own code reports: a render that cannot be made
//! ([`ScoreError`]), a smoke test that failed ([`SmokeError`]), a topology that
//! cannot be set up ([`TopologyError`]). A leaf of
//! the core: everything else may use it, it uses nothing of the core.

/// A Score could not render: its data is inconsistent or incomplete.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// Something the Score renders from is missing or wrong: an object without
    /// a name, a chart that cannot be used, a secret whose variable is not set.
    #[error("{what} is invalid: {why}")]
    Invalid {
        /// What is invalid: an object, an app's chart, a secret.
        what: String,
        /// Why it is invalid.
        why: String,
        /// What to do about it, for the `help:` line.
        help: String,
    },
}

impl ScoreError {
    /// `what` is invalid because `why`; `help` says what to do.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>, help: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            why: why.into(),
            help: help.into(),
        }
    }
}

impl crate::Diagnostic for ScoreError {
    fn help(&self) -> String {
        match self {
            Self::Invalid { help, .. } => help.clone(),
        }
    }
}

/// A smoke test failed: what was checked and why it did not pass.
#[derive(Debug, thiserror::Error)]
#[error("{check}: {why}")]
pub struct SmokeError {
    /// What was checked: `readiness of apps/v1 Deployment web/webapp`.
    pub check: String,
    /// Why it did not pass.
    pub why: String,
    help: Option<String>,
}

impl SmokeError {
    /// A failed `check`, and why it failed.
    pub fn new(check: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            why: why.into(),
            help: None,
        }
    }

    /// What to do about it, for the `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The help the check gave, if it gave one.
    pub fn given_help(&self) -> Option<&str> {
        self.help.as_deref()
    }
}

impl crate::Diagnostic for SmokeError {
    fn help(&self) -> String {
        self.help
            .clone()
            .unwrap_or_else(|| "what was deployed so far is kept and recorded; fix the cause and apply again".into())
    }
}

/// A topology could not be set up from the environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// A setting the topology needs is absent from the environment.
    #[error("environment variable `{var}` is not set")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What to set it to.
        help: &'static str,
    },
    /// A setting is present but cannot be used: empty, not Unicode, or not in
    /// the form its topology reads.
    #[error("environment variable `{var}` is not valid: {why}")]
    BadSetting {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value.
        why: String,
    },
    /// The directory the topology keeps its state in exists but cannot be
    /// used (it is not a directory, say).
    #[error("the state directory `{}` cannot be used: {why}", path.display())]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why it cannot be used.
        why: String,
    },
    /// The settings ask for something this topology, or this binary, cannot
    /// do: a kubeconfig context that does not exist, a cluster topology that
    /// lacks a capability, none linked at all.
    #[error("{what}")]
    Unsupported {
        /// What was asked for and cannot be done.
        what: String,
        /// What to do instead.
        help: String,
    },
}

impl crate::Diagnostic for TopologyError {
    fn help(&self) -> String {
        match self {
            Self::Missing { help, .. } => (*help).to_owned(),
            Self::BadSetting { var, .. } => format!("fix or unset `{var}`"),
            Self::StateDir { .. } => "set `HARMONY_STATE_DIR` to a directory this user can write".into(),
            Self::Unsupported { help, .. } => help.clone(),
        }
    }
}
