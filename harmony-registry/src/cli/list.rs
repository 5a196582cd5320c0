//! `list`: what the binary carries, and where each thing runs.

use serde::Serialize;

use crate::view::View;

#[derive(Debug, Serialize)]
pub struct ListView {
    pub apps: Vec<AppLine>,
    pub releases: Vec<ReleaseLine>,
    pub scores: Vec<ScoreLine>,
    pub topologies: Vec<TopologyLine>,
    pub capabilities: Vec<CapabilityLine>,
    /// The apps of the plugins on PATH (`harmony list` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<crate::cli::plugin::PluginApps>,
    /// Plugins that could not say what they carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AppLine {
    pub name: &'static str,
    pub doc: &'static str,
    pub score: &'static str,
    pub needs: Vec<&'static str>,
    /// The topologies it runs on.
    pub topologies: Vec<&'static str>,
    pub location: String,
}

#[derive(Debug, Serialize)]
pub struct ReleaseLine {
    pub name: &'static str,
    pub tag: String,
    pub stages: &'static [&'static str],
    pub topologies: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct ScoreLine {
    pub name: &'static str,
    pub module: &'static str,
    pub doc: &'static str,
    pub requires: Vec<&'static str>,
    pub topologies: Vec<&'static str>,
    pub location: String,
}

#[derive(Debug, Serialize)]
pub struct TopologyLine {
    pub name: &'static str,
    pub about: &'static str,
    pub capabilities: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct CapabilityLine {
    pub name: &'static str,
    pub about: &'static str,
}

/// The form of a release tag, as every message writes it.
pub fn tag_form(release: &str) -> String {
    format!("{release}-v<semver>")
}

pub fn view() -> ListView {
    ListView {
        apps: crate::apps()
            .into_iter()
            .map(|a| {
                let needs = (a.needs)();
                AppLine {
                    name: a.name,
                    doc: first_line(a.doc),
                    score: (a.score)(),
                    topologies: crate::runs_on(&needs),
                    needs,
                    location: a.location.to_string(),
                }
            })
            .collect(),
        releases: crate::releases()
            .into_iter()
            .map(|r| ReleaseLine {
                name: r.name,
                tag: tag_form(r.name),
                stages: r.stages,
                topologies: crate::runs_on(&(r.needs)()),
            })
            .collect(),
        scores: crate::scores()
            .into_iter()
            .map(|s| ScoreLine {
                name: s.name,
                module: s.module,
                doc: first_line(s.doc),
                requires: (s.requires)(),
                topologies: crate::runs_on(&(s.needs)()),
                location: s.location.to_string(),
            })
            .collect(),
        topologies: crate::topologies()
            .into_iter()
            .map(|t| TopologyLine {
                name: t.name,
                about: t.about,
                capabilities: t.capabilities(),
            })
            .collect(),
        capabilities: crate::capabilities()
            .into_iter()
            .map(|c| CapabilityLine {
                name: c.name,
                about: c.about,
            })
            .collect(),
        plugins: Vec::new(),
        warnings: Vec::new(),
    }
}

impl View for ListView {
    const KIND: &'static str = "list";

    fn text(&self) -> String {
        let mut out = String::from("Apps:\n");
        for a in &self.apps {
            out.push_str(&format!("  {:<20} {}  [{}]\n", a.name, a.doc, a.topologies.join(", ")));
        }
        if !self.releases.is_empty() {
            out.push_str("\nReleases (`release --from-tag <app>-v<semver>`):\n");
            for r in &self.releases {
                out.push_str(&format!(
                    "  {:<20} tag {}, through {}  [{}]\n",
                    r.name,
                    r.tag,
                    r.stages.join(", "),
                    r.topologies.join(", ")
                ));
            }
        }
        out.push_str("\nScores:\n");
        for s in &self.scores {
            out.push_str(&format!("  {:<20} {}  [{}]\n", s.name, s.doc, s.topologies.join(", ")));
        }
        out.push_str("\nTopologies:\n");
        for t in &self.topologies {
            out.push_str(&format!("  {:<20} {}  provides [{}]\n", t.name, t.about, t.capabilities.join(", ")));
        }
        out.push_str("\nCapabilities:\n");
        for c in &self.capabilities {
            out.push_str(&format!("  {:<20} {}\n", c.name, c.about));
        }
        if !self.plugins.is_empty() {
            out.push_str("\nPlugins (`harmony <plugin> …`, or name an app and harmony finds its plugin):\n");
            for p in &self.plugins {
                let apps = if p.apps.is_empty() {
                    "no apps".to_owned()
                } else {
                    p.apps.join(", ")
                };
                out.push_str(&format!("  {:<20} {apps}  ({})\n", p.plugin, p.path.display()));
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

pub(crate) fn first_line(doc: &str) -> &str {
    doc.lines().next().unwrap_or("")
}
