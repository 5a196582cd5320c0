//! The state of one execution of a Score tree: which app, which mode, where in
//! the tree we are, and who hears about progress. Generated Interprets drive
//! it; the engine creates it.

use std::future::Future;
use std::sync::Arc;

use tracing::Instrument as _;

use crate::Diagnostic;
use crate::capability::{ApplySet, DeployError, K8sDeploy};
use crate::errors::{ScoreError, SmokeError};
use crate::object::{Desired, Object, ObjectRef, Part, Rendered};
use crate::render::RenderCx;

/// Whether writes happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Write, then verify.
    Apply,
    /// Every write suppressed: the target only checks what it would accept.
    DryRun,
}

static TERMINAL_PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Keep live progress (spinners, waiting lines) off the terminal for the
/// rest of the process: the CLI calls it when its output is for machines.
pub fn silence_terminal_progress() {
    TERMINAL_PROGRESS.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a topology may draw live progress on stderr: it is a terminal,
/// and the output is for people.
pub fn terminal_progress() -> bool {
    TERMINAL_PROGRESS.load(std::sync::atomic::Ordering::Relaxed) && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Something that hears about progress (the CLI prints it).
pub trait Progress: Send + Sync {
    /// Something happened.
    fn event(&self, event: &Event);
}

/// What happened, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The objects of the Score at `path` were applied (or checked, in a dry run).
    Deployed {
        /// The Score's place in the tree: `webapp/config`.
        path: String,
        /// How many objects it rendered.
        objects: usize,
        /// Applied, or only checked.
        mode: Mode,
    },
    /// Its smoke test passed.
    Verified {
        /// The Score's place in the tree.
        path: String,
        /// What passed: the topology's verification or the Score's smoke test.
        check: &'static str,
    },
    /// Objects no longer rendered were removed.
    Pruned {
        /// The objects removed.
        objects: Vec<ObjectRef>,
    },
    /// A release step finished (built, pushed, delivered).
    Release {
        /// What finished, as one line for the terminal.
        line: String,
    },
}

/// Ignores every event.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &Event) {}
}

/// The Score a step of a run belongs to: its type, and where it is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreAt {
    /// The Score's type name.
    pub name: &'static str,
    /// The file it is declared in.
    pub file: &'static str,
    /// The line of its declaration.
    pub line: u32,
}

/// One execution of a Score tree.
pub struct Run {
    set: ApplySet,
    mode: Mode,
    cx: RenderCx,
    path: Vec<String>,
    /// The Score whose step runs now (set by the generated `execute`).
    score: Option<&'static ScoreAt>,
    progress: Arc<dyn Progress>,
    /// The tree rendered for the command, when the engine has it: each Score
    /// deploys its part of it instead of rendering again.
    rendered: Option<Arc<Rendered>>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("set", &self.set)
            .field("mode", &self.mode)
            .field("path", &self.path)
            .finish()
    }
}

impl Run {
    /// A run of app `app` on `topology`, telling `progress` what happens.
    pub fn new(app: &str, topology: &str, mode: Mode, progress: Arc<dyn Progress>) -> Self {
        Self {
            set: ApplySet::new(app),
            mode,
            cx: RenderCx::new(app, topology),
            path: vec![app.to_owned()],
            score: None,
            progress,
            rendered: None,
        }
    }

    /// The same run, deploying from `rendered`, the tree rendered for the command.
    pub fn from_rendered(mut self, rendered: Arc<Rendered>) -> Self {
        self.rendered = Some(rendered);
        self
    }

    /// Whether it writes.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What a Score of this run renders with.
    pub fn render_cx(&self) -> &RenderCx {
        &self.cx
    }

    /// The app's set of objects on the target.
    pub fn set(&self) -> &ApplySet {
        &self.set
    }

    /// A run for one of several children deployed side by side: the same
    /// app, mode and progress, its own place in the tree.
    pub fn fork(&self, child: impl Into<String>) -> Run {
        let mut path = self.path.clone();
        path.push(child.into());
        Run {
            set: self.set.clone(),
            mode: self.mode,
            cx: self.cx.clone(),
            path,
            score: self.score,
            progress: self.progress.clone(),
            rendered: self.rendered.clone(),
        }
    }

    /// Where in the Score tree we are: `webapp/config`.
    pub fn path(&self) -> String {
        self.path.join("/")
    }

    /// The Score whose steps follow, for errors to point at.
    pub fn in_score(&mut self, at: &'static ScoreAt) {
        self.score = Some(at);
    }

    /// Step into a child Score.
    pub fn enter(&mut self, child: impl Into<String>) {
        self.path.push(child.into());
    }

    /// Step back out of it.
    pub fn leave(&mut self) {
        self.path.pop();
    }

    /// The objects of the Score at this place of the tree: its part of the
    /// tree rendered for the command, or, when the run has none (or the tree
    /// did not record this Score), what `render` gives. A render failure
    /// names this place.
    pub fn desired(&self, render: impl FnOnce(&RenderCx) -> Result<Desired, ScoreError>) -> Result<Part, InterpretError> {
        if let Some(rendered) = &self.rendered
            && let Some(range) = rendered.part_at(&self.path[1..].join("/"))
        {
            return Ok(Part::Shared(rendered.clone(), range));
        }
        render(&self.cx).map(Part::Own).map_err(|source| InterpretError::Render {
            path: self.path(),
            score: self.score,
            source,
        })
    }

    /// Hand one Score's objects to the target (or only check them, in a dry run).
    pub async fn deploy<T: K8sDeploy>(&mut self, topology: &T, objects: &[Object]) -> Result<(), InterpretError> {
        let span = tracing::info_span!("step", path = %self.path(), objects = objects.len(), mode = ?self.mode);
        let result = async {
            match self.mode {
                Mode::Apply => topology.apply(&self.set, objects).await,
                Mode::DryRun => topology.dry_run(&self.set, objects).await,
            }
        }
        .instrument(span)
        .await;
        result.map_err(|source| InterpretError::Deploy {
            path: self.path(),
            score: self.score,
            source,
        })?;
        self.progress.event(&Event::Deployed {
            path: self.path(),
            objects: objects.len(),
            mode: self.mode,
        });
        Ok(())
    }

    /// Run a Score's own smoke test (skipped in a dry run: nothing was deployed).
    pub async fn smoke(&mut self, test: impl Future<Output = Result<(), SmokeError>> + Send) -> Result<(), InterpretError> {
        if self.mode == Mode::DryRun {
            return Ok(());
        }
        let span = tracing::info_span!("smoke", path = %self.path());
        test.instrument(span).await.map_err(|source| InterpretError::Smoke {
            path: self.path(),
            score: self.score,
            source,
        })?;
        self.progress.event(&Event::Verified {
            path: self.path(),
            check: "smoke test",
        });
        Ok(())
    }

    /// The default smoke test: the target's verification of what was rendered.
    pub async fn verify<T: K8sDeploy>(&mut self, topology: &T, objects: &[Object]) -> Result<(), InterpretError> {
        if self.mode == Mode::DryRun {
            return Ok(());
        }
        let span = tracing::info_span!("verify", path = %self.path(), objects = objects.len());
        topology
            .verify(&self.set, objects)
            .instrument(span)
            .await
            .map_err(|source| InterpretError::Unverified {
                path: self.path(),
                score: self.score,
                source,
            })?;
        self.progress.event(&Event::Verified {
            path: self.path(),
            check: "verification",
        });
        Ok(())
    }
}

/// An execution failed, at `path` in the Score tree.
#[derive(Debug, thiserror::Error)]
pub enum InterpretError {
    /// The Score's render returned an error.
    #[error("`{path}` could not render")]
    Render {
        /// The Score's place in the tree: `webapp/config`.
        path: String,
        /// The Score's type and declaration, when the generated code set it.
        score: Option<&'static ScoreAt>,
        /// Why it could not render.
        source: ScoreError,
    },
    /// The topology refused or failed to deploy the Score's objects.
    #[error("`{path}` could not be deployed")]
    Deploy {
        /// The Score's place in the tree: `webapp/config`.
        path: String,
        /// The Score's type and declaration, when the generated code set it.
        score: Option<&'static ScoreAt>,
        /// Why the deploy failed.
        source: DeployError,
    },
    /// The objects were deployed but the topology's readiness check failed (a rollout that
    /// did not finish, a Service with no ready pod).
    #[error("`{path}` was deployed but did not pass verification")]
    Unverified {
        /// The Score's place in the tree: `webapp/config`.
        path: String,
        /// The Score's type and declaration, when the generated code set it.
        score: Option<&'static ScoreAt>,
        /// What was not ready.
        source: SmokeError,
    },
    /// The objects were deployed and ready, but the Score's smoke test failed.
    #[error("`{path}` was deployed but its smoke test failed")]
    Smoke {
        /// The Score's place in the tree: `webapp/config`.
        path: String,
        /// The Score's type and declaration, when the generated code set it.
        score: Option<&'static ScoreAt>,
        /// What the smoke test said.
        source: SmokeError,
    },
}

impl InterpretError {
    /// Where in the Score tree: `webapp/config`.
    pub fn path(&self) -> &str {
        match self {
            Self::Render { path, .. } | Self::Deploy { path, .. } | Self::Unverified { path, .. } | Self::Smoke { path, .. } => path,
        }
    }
}

impl Diagnostic for InterpretError {
    /// The Score's declaration, its type and its place in the app:
    /// `src/lib.rs:40: Score `Server` at `webapp/server``.
    fn location(&self) -> Option<String> {
        let (Self::Render { score, .. } | Self::Deploy { score, .. } | Self::Unverified { score, .. } | Self::Smoke { score, .. }) = self;
        Some(match score {
            Some(at) => format!("{}:{}: Score `{}` at `{}`", at.file, at.line, at.name, self.path()),
            None => self.path().to_owned(),
        })
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![match self {
            Self::Render { source, .. } => source.to_string(),
            Self::Deploy { source, .. } => source.to_string(),
            Self::Unverified { source, .. } | Self::Smoke { source, .. } => source.to_string(),
        }];
        if let Self::Deploy { source, .. } = self {
            notes.extend(source.notes());
        }
        notes
    }

    fn help(&self) -> String {
        match self {
            Self::Render { source, .. } => source.help(),
            Self::Deploy { source, .. } => source.help(),
            Self::Unverified { source, .. } | Self::Smoke { source, .. } => source.help(),
        }
    }
}
