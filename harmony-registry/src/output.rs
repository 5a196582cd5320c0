//! How results and errors read: human text by default, JSON for machines.
//! Errors follow rustc's shape: what, where, why, and what to do.

use std::io::Write;

use serde::Serialize;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn print_json(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

pub fn report(format: Format, failure: &Failure) {
    match format {
        Format::Text => eprint!("{}", failure.to_text()),
        Format::Json => {
            let _ = serde_json::to_writer_pretty(std::io::stderr().lock(), &serde_json::json!({ "error": failure }));
            eprintln!();
        }
    }
}
