//! How results and errors read. Every command's result is a typed view, and
//! both outputs are made from it: text for people, and JSON for machines in
//! the versioned schema `docs/cli-json.md` describes. Errors follow rustc's
//! shape: what, where, why, and what to do.

use std::io::Write;

use harmony::Diagnostic;
use serde::Serialize;

/// The `schema` field of every JSON document the CLI prints.
pub const SCHEMA: &str = "harmony.cli/v1";

/// A command's result.
pub trait View: Serialize {
    /// The `kind` field of its JSON document.
    const KIND: &'static str;
    /// What a person reads.
    fn text(&self) -> String;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct Document<'a, V: Serialize> {
    schema: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    view: &'a V,
}

/// The view as `format` prints it.
pub fn render<V: View>(view: &V, format: Format) -> String {
    match format {
        Format::Text => view.text(),
        Format::Json => json(V::KIND, view),
    }
}

/// Print the view on stdout.
pub fn emit<V: View>(view: &V, format: Format) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(render(view, format).as_bytes());
    let _ = out.flush();
}

fn json(kind: &'static str, view: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(&Document {
        schema: SCHEMA,
        kind,
        view,
    })
    .expect("views are plain JSON");
    s.push('\n');
    s
}

/// A failure as the user sees it.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            notes: Vec::new(),
            help: None,
        }
    }

    /// Any error harmony reports, in its one shape: no per-type mapping.
    pub fn of(e: &dyn Diagnostic) -> Self {
        Self {
            message: e.to_string(),
            location: e.location(),
            notes: e.notes(),
            help: Some(e.help()),
        }
    }

    /// `what` failed because of `e`: `e` becomes the first note.
    pub fn caused(what: impl Into<String>, e: &dyn Diagnostic) -> Self {
        let mut f = Self::of(e);
        f.notes.insert(0, std::mem::replace(&mut f.message, what.into()));
        f
    }

    /// Say where, around what the error itself knows: `webapp/server (app … on …)`.
    pub fn within(mut self, context: impl Into<String>) -> Self {
        let context = context.into();
        self.location = Some(match self.location {
            Some(l) => format!("{l} ({context})"),
            None => context,
        });
        self
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn to_text(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(l) = &self.location {
            out.push_str(&format!("  --> {l}\n"));
        }
        for n in &self.notes {
            let mut lines = n.lines();
            if let Some(first) = lines.next() {
                out.push_str(&format!("   = note: {first}\n"));
            }
            for l in lines {
                out.push_str(&format!("           {l}\n"));
            }
        }
        if let Some(h) = &self.help {
            out.push_str(&format!("   = help: {h}\n"));
        }
        out
    }
}

#[derive(Serialize)]
struct ErrorView<'a> {
    error: &'a Failure,
}

/// Print the failure on stderr.
pub fn report(format: Format, failure: &Failure) {
    let text = match format {
        Format::Text => failure.to_text(),
        Format::Json => json("error", &ErrorView { error: failure }),
    };
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use harmony::capability::DeployError;
    use harmony::object::ObjectRef;

    use super::*;

    #[test]
    fn any_error_reads_in_one_shape() {
        let object = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: "api".into(),
        };
        let e = DeployError::Conflict {
            object: Box::new(object),
            field: "spec.replicas".into(),
            manager: "kube-controller-manager".into(),
        };
        let text = Failure::caused("app `web` could not be applied", &e).within("web/api").to_text();
        assert_eq!(
            text,
            "error: app `web` could not be applied\n  --> web/api\n   = note: apps/v1 Deployment web/api: field `spec.replicas` is owned by field manager `kube-controller-manager`\n   = help: `kube-controller-manager` manages `spec.replicas`: leave the field to it (remove it from the Score), or take ownership explicitly with `apply --force-conflicts`\n"
        );
    }
}
