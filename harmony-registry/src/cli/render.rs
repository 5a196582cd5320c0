//! `render`: the manifests each app renders, secret values redacted, on
//! stdout or into a directory, for review or GitOps.

use std::borrow::Cow;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use harmony::secret::REDACTED;
use serde_json::Value;

use super::session::{Session, Target};
use crate::view::{Failure, Format};

pub(super) fn render(target: &Target, out: &Path, format: Format) -> Result<ExitCode, Failure> {
    let session = Session::open(&target.apps, target.topology())?;
    let to_stdout = out.as_os_str() == "-";
    let stdout = std::io::stdout();
    let mut sink = BufWriter::with_capacity(1 << 20, stdout.lock());
    let written_error = |e: String| Failure::new(format!("could not write the render: {e}"));
    let mut written = 0usize;
    for app in &session.apps {
        let objects = app
            .app
            .render(&session.topology)
            .map_err(|e| Failure::of(&e).within(session.context_of(app)))?;
        for o in &objects {
            // Only a Secret's body differs from what was rendered: borrow the rest.
            let body: Cow<'_, Value> = if o.id().is_secret() {
                Cow::Owned(for_review(o))
            } else {
                Cow::Borrowed(o.body())
            };
            if to_stdout {
                match format {
                    Format::Text => {
                        sink.write_all(b"---\n").map_err(|e| written_error(e.to_string()))?;
                        serde_yaml_ng::to_writer(&mut sink, &*body).map_err(|e| written_error(e.to_string()))?;
                    }
                    Format::Json => {
                        serde_json::to_writer(&mut sink, &*body).map_err(|e| written_error(e.to_string()))?;
                        sink.write_all(b"\n").map_err(|e| written_error(e.to_string()))?;
                    }
                }
            } else {
                let id = o.id();
                let dir = out.join(app.name).join(id.namespace.as_deref().unwrap_or("_cluster"));
                let path = dir.join(format!("{}.yaml", id.file_stem()));
                let text = serde_yaml_ng::to_string(&*body).map_err(|e| written_error(e.to_string()))?;
                std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(&path, text))
                    .map_err(|e| {
                        Failure::new(format!("could not write `{}`: {e}", path.display())).help("pass `--out` a directory you can write")
                    })?;
            }
            written += 1;
        }
    }
    sink.flush().map_err(|e| written_error(e.to_string()))?;
    if !to_stdout && format == Format::Text {
        println!("Rendered {written} objects into {}.", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// An object as a render shows it, for review: secret values are `<redacted>`.
pub fn for_review(o: &harmony::Object) -> Value {
    let mut body = o.body().clone();
    if o.id().is_secret() {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(map)) = body.get_mut(field) {
                for v in map.values_mut() {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
    body
}
