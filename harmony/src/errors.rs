//! What a Score's own code reports: a render that cannot be made
//! ([`ScoreError`]), a smoke test that failed ([`SmokeError`]), a topology that
//! cannot be set up ([`TopologyError`]). A leaf of
//! the core: everything else may use it, it uses nothing of the core.

/// A Score could not render: its data is inconsistent or incomplete.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("{what} is invalid: {why}")]
    Invalid { what: String, why: String, help: String },
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
    pub check: String,
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
    #[error("environment variable `{var}` is not set")]
    Missing { var: &'static str, help: &'static str },
    #[error("environment variable `{var}` is not valid: {why}")]
    BadSetting { var: &'static str, why: String },
    #[error("the state directory `{}` cannot be used: {why}", path.display())]
    StateDir { path: std::path::PathBuf, why: String },
    #[error("{what}")]
    Unsupported { what: String, help: String },
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
