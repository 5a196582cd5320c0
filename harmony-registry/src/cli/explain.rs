//! `explain NAME`: one app, Score, topology or capability in full.

use std::fmt::Write as _;

use serde::Serialize;

use super::list::tag_form;
use crate::view::{Failure, View};

#[derive(Debug, Serialize)]
#[serde(tag = "what", rename_all = "lowercase")]
pub enum ExplainView {
    App {
        name: &'static str,
        doc: &'static str,
        score: &'static str,
        needs: Vec<&'static str>,
        topologies: Vec<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        release: Option<ReleaseView>,
        location: String,
    },
    Score {
        name: &'static str,
        module: &'static str,
        doc: &'static str,
        composite: bool,
        requires: Vec<&'static str>,
        needs: Vec<&'static str>,
        smoke: Option<&'static str>,
        fields: Vec<FieldView>,
        topologies: Vec<&'static str>,
        location: String,
    },
    Topology {
        name: &'static str,
        #[serde(rename = "type")]
        type_name: &'static str,
        about: &'static str,
        capabilities: Vec<&'static str>,
        scores: Vec<&'static str>,
    },
    Capability {
        name: &'static str,
        about: &'static str,
        provided_by: Vec<&'static str>,
        required_by: Vec<&'static str>,
    },
}

#[derive(Debug, Serialize)]
pub struct ReleaseView {
    pub tag: String,
    pub stages: &'static [&'static str],
    pub topologies: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct FieldView {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub doc: &'static str,
    pub child: bool,
    pub secret: bool,
}

/// Everything known about `name`, or what it might have meant.
pub fn view(name: &str) -> Result<ExplainView, Failure> {
    if let Some(a) = crate::app(name) {
        let needs = (a.needs)();
        return Ok(ExplainView::App {
            name: a.name,
            doc: a.doc,
            score: (a.score)(),
            topologies: crate::runs_on(&needs),
            needs,
            release: crate::releases().into_iter().find(|r| r.name == a.name).map(|r| ReleaseView {
                tag: tag_form(r.name),
                stages: r.stages,
                topologies: crate::runs_on(&(r.needs)()),
            }),
            location: a.location.to_string(),
        });
    }
    if let Some(s) = crate::scores().into_iter().find(|s| s.name == name) {
        let needs = (s.needs)();
        return Ok(ExplainView::Score {
            name: s.name,
            module: s.module,
            doc: s.doc,
            composite: s.fields.iter().any(|f| f.child),
            requires: (s.requires)(),
            topologies: crate::runs_on(&needs),
            needs,
            smoke: s.smoke,
            fields: s
                .fields
                .iter()
                .map(|f| FieldView {
                    name: f.name,
                    ty: f.ty,
                    doc: f.doc,
                    child: f.child,
                    secret: f.secret,
                })
                .collect(),
            location: s.location.to_string(),
        });
    }
    if let Some(t) = crate::topology(name) {
        return Ok(ExplainView::Topology {
            name: t.name,
            type_name: t.type_name,
            about: t.about,
            capabilities: t.capabilities(),
            scores: crate::scores_on(t).iter().map(|s| s.name).collect(),
        });
    }
    if let Some(c) = crate::capabilities().into_iter().find(|c| c.name == name) {
        return Ok(ExplainView::Capability {
            name: c.name,
            about: c.about,
            provided_by: crate::topologies()
                .into_iter()
                .filter(|t| t.capabilities().contains(&c.name))
                .map(|t| t.name)
                .collect(),
            required_by: crate::scores_requiring(c.name).iter().map(|s| s.name).collect(),
        });
    }
    let all: Vec<&str> = crate::apps()
        .iter()
        .map(|a| a.name)
        .chain(crate::scores().iter().map(|s| s.name))
        .chain(crate::topologies().iter().map(|t| t.name))
        .chain(crate::capabilities().iter().map(|c| c.name))
        .collect();
    let f = Failure::new(format!("nothing named `{name}` is registered"));
    Err(match crate::closest(name, all.iter().copied()) {
        Some(c) => f.help(format!("did you mean `{c}`?")),
        None => f.help("`list` shows every app, Score, topology and capability"),
    })
}

impl View for ExplainView {
    const KIND: &'static str = "explain";

    fn text(&self) -> String {
        let mut o = String::new();
        match self {
            Self::App {
                name,
                doc,
                score,
                needs,
                topologies,
                release,
                location,
            } => {
                let _ = writeln!(o, "app {name}\n");
                print_doc(&mut o, doc);
                let _ = writeln!(o, "  root Score:  {score}");
                let _ = writeln!(o, "  needs:       {}", join_or(needs, "nothing"));
                let _ = writeln!(o, "  runs on:     {}", join_or(topologies, NO_TOPOLOGY));
                if let Some(r) = release {
                    let _ = writeln!(
                        o,
                        "  releases:    `release --from-tag {}` through {} (on {})",
                        r.tag,
                        r.stages.join(", "),
                        join_or(&r.topologies, NO_TOPOLOGY)
                    );
                }
                let _ = writeln!(o, "  declared at: {location}");
            }
            Self::Score {
                name,
                module,
                doc,
                composite,
                needs,
                smoke,
                fields,
                topologies,
                location,
                ..
            } => {
                let _ = writeln!(o, "Score {module}::{name}\n");
                print_doc(&mut o, doc);
                let kind = if *composite {
                    "composite: deploys its children in order"
                } else {
                    "leaf: renders its own objects"
                };
                let _ = writeln!(o, "  kind:        {kind}");
                let _ = writeln!(o, "  needs:       {}", join_or(needs, "nothing"));
                let check = match (composite, smoke) {
                    (true, None) => "each child's own".to_owned(),
                    (true, Some(s)) => format!("each child's own, then `{s}`"),
                    (false, None) => "the topology's verification of what it rendered".to_owned(),
                    (false, Some(s)) => format!("the topology's verification of what it rendered, then `{s}`"),
                };
                let _ = writeln!(o, "  smoke test:  {check}");
                let _ = writeln!(o, "  runs on:     {}", join_or(topologies, NO_TOPOLOGY));
                let _ = writeln!(o, "  declared at: {location}");
                let _ = writeln!(o, "  fields:");
                for f in fields {
                    let mut tags = Vec::new();
                    if f.child {
                        tags.push("child");
                    }
                    if f.secret {
                        tags.push("secret");
                    }
                    let tags = if tags.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", tags.join(", "))
                    };
                    let doc = match super::list::first_line(f.doc) {
                        "" => String::new(),
                        line => format!("  {line}"),
                    };
                    let _ = writeln!(o, "    {}: {}{tags}{doc}", f.name, f.ty);
                }
            }
            Self::Topology {
                name,
                type_name,
                about,
                capabilities,
                scores,
            } => {
                let _ = writeln!(o, "topology {name} ({type_name})\n\n  {about}\n");
                let _ = writeln!(o, "  provides:    {}", capabilities.join(", "));
                let _ = writeln!(o, "  runs Scores: {}", join_or(scores, "none registered"));
            }
            Self::Capability {
                name,
                about,
                provided_by,
                required_by,
            } => {
                let _ = writeln!(o, "capability {name}\n\n  {about}\n");
                let _ = writeln!(o, "  provided by: {}", join_or(provided_by, NO_TOPOLOGY));
                let _ = writeln!(
                    o,
                    "  required by: {}",
                    join_or(required_by, "no registered Score (beyond every leaf's `K8sDeploy`)")
                );
            }
        }
        o
    }
}

const NO_TOPOLOGY: &str = "no topology this binary carries";

fn print_doc(o: &mut String, doc: &str) {
    if !doc.is_empty() {
        for l in doc.lines() {
            o.push_str("  ");
            o.push_str(l);
            o.push('\n');
        }
        o.push('\n');
    }
}

fn join_or(items: &[&str], none: &str) -> String {
    if items.is_empty() { none.to_owned() } else { items.join(", ") }
}
