//! Where Scores run. A topology provides capabilities (see [`crate::capability`]);
//! which ones it provides decides, at compile time, which Scores it accepts.

use std::path::PathBuf;

/// A place Scores run on: a local workspace, a CI runner, a cluster.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a topology",
    label = "expected a topology here",
    note = "a topology is where Scores run: use a built-in one such as `harmony::topology::Local`, or implement `harmony::Topology` for `{Self}`"
)]
pub trait Topology: Send + Sync + 'static {
    /// The name users select it by (`--topology local`).
    fn name(&self) -> &str;
}

/// A topology the generated CLI can build from the environment, by name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a built-in topology",
    label = "`topologies: [..]` takes topologies the generated CLI can build",
    note = "the CLI builds each listed topology from the environment: list a built-in one such as `Local`, or implement `harmony::BuiltinTopology` for `{Self}`"
)]
pub trait BuiltinTopology: Topology + Sized {
    /// The name after `--topology`.
    const NAME: &'static str;
    /// One line on what it is for, shown by `list`.
    const ABOUT: &'static str;
    /// Build it from the process environment; a missing or bad setting is an
    /// error that names it.
    fn from_env() -> Result<Self, TopologyError>;
}

/// A topology could not be set up from the environment.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("environment variable `{var}` is not set")]
    Missing { var: &'static str, help: &'static str },
    #[error("environment variable `{var}` is not valid: {why}")]
    BadSetting { var: &'static str, why: String },
    #[error("the state directory `{}` cannot be used: {why}", path.display())]
    StateDir { path: PathBuf, why: String },
}

impl TopologyError {
    pub fn help(&self) -> String {
        match self {
            Self::Missing { help, .. } => (*help).to_owned(),
            Self::BadSetting { var, .. } => format!("fix or unset `{var}`"),
            Self::StateDir { .. } => "set `HARMONY_STATE_DIR` to a directory this user can write".into(),
        }
    }
}
pub use crate::ci::Ci;
pub use crate::local::Local;
