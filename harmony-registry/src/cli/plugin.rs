//! Plugins: `harmony-*` executables on `PATH`, found the way kubectl finds
//! `kubectl-*`. A third-party deploy binary named `harmony-myapp` gets
//! `harmony myapp plan`; `harmony list` shows the apps every plugin carries,
//! and `harmony apply APP` hands the command to the plugin that carries `APP`.
//!
//! - The file name after `harmony-` is the command's words joined by `-`; a
//!   `_` in the file name stands for a `-` inside a word (`harmony-my_app`
//!   is `harmony my-app`). The longest match of the command line wins.
//! - Built-in commands cannot be shadowed: they are parsed first.
//! - The first file of a name on `PATH` wins; later ones are overshadowed.
//! - A plugin runs with `HARMONY_AS_PLUGIN=1`, so that it does not look for
//!   plugins in turn; asked for its apps, it has `HARMONY_PLUGIN_TIMEOUT`
//!   seconds (10 by default) to answer.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::view::{Failure, View};

/// Set in a plugin's environment when harmony runs it.
pub const AS_PLUGIN: &str = "HARMONY_AS_PLUGIN";
const TIMEOUT_VAR: &str = "HARMONY_PLUGIN_TIMEOUT";
const PREFIX: &str = "harmony-";

/// The commands every generated CLI has; no plugin can take their names.
pub const BUILT_IN: &[&str] = &["list", "explain", "plan", "dry-run", "apply", "release", "render", "plugin", "help"];

/// A plugin found on `PATH`.
#[derive(Debug, Clone, Serialize)]
pub struct Plugin {
    /// The command it answers to: `my-app plan` for `harmony-my_app-plan`.
    pub command: String,
    pub path: PathBuf,
}

impl Plugin {
    fn words(&self) -> Vec<&str> {
        self.command.split(' ').collect()
    }
}

/// Every plugin on `PATH`, and what is wrong with the other candidates.
#[derive(Debug, Default, Serialize)]
pub struct PluginList {
    pub plugins: Vec<Plugin>,
    pub warnings: Vec<String>,
}

impl View for PluginList {
    const KIND: &'static str = "plugin-list";

    fn text(&self) -> String {
        let mut out = String::new();
        if self.plugins.is_empty() {
            out.push_str("No plugins: no executable named `harmony-*` on PATH.\n");
        } else {
            out.push_str("Plugins:\n");
            for p in &self.plugins {
                out.push_str(&format!("  harmony {:<24} {}\n", p.command, p.path.display()));
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

/// Whether this process was started by harmony to answer as a plugin.
pub fn running_as_plugin() -> bool {
    std::env::var_os(AS_PLUGIN).is_some_and(|v| !v.is_empty())
}

/// Scan `PATH` for plugins.
pub fn scan() -> PluginList {
    let path = std::env::var_os("PATH").unwrap_or_default();
    scan_dirs(std::env::split_paths(&path))
}

fn scan_dirs(dirs: impl Iterator<Item = PathBuf>) -> PluginList {
    let mut list = PluginList::default();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(rest) = name.strip_prefix(PREFIX) else { continue };
            if rest.is_empty() || path.is_dir() {
                continue;
            }
            let command = rest.split('-').map(|w| w.replace('_', "-")).collect::<Vec<_>>().join(" ");
            if !is_executable(&path) {
                list.warnings
                    .push(format!("`{}` is not executable, so it is not a plugin", path.display()));
                continue;
            }
            let first = command.split(' ').next().unwrap_or_default();
            if BUILT_IN.contains(&first) {
                list.warnings.push(format!(
                    "`{}` is shadowed by the built-in command `{first}` and never runs",
                    path.display()
                ));
                continue;
            }
            if let Some(earlier) = list.plugins.iter().find(|p| p.command == command) {
                list.warnings.push(format!(
                    "`{}` is overshadowed by `{}`, found earlier on PATH",
                    path.display(),
                    earlier.path.display()
                ));
                continue;
            }
            list.plugins.push(Plugin { command, path });
        }
    }
    list
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// The plugin a command line names, and the arguments left for it: the
/// longest match wins.
pub fn find<'p>(plugins: &'p [Plugin], args: &[OsString]) -> Option<(&'p Plugin, Vec<OsString>)> {
    let words: Vec<&str> = args
        .iter()
        .map_while(|a| a.to_str().filter(|w| !w.is_empty() && !w.starts_with('-')))
        .collect();
    (1..=words.len())
        .rev()
        .find_map(|n| plugins.iter().find(|p| p.words() == words[..n]).map(|p| (p, args[n..].to_vec())))
}

/// Run `plugin` with `args` in place of this process, and pass on its exit code.
pub fn run(plugin: &Plugin, args: &[OsString]) -> Result<ExitCode, Failure> {
    let status = Command::new(&plugin.path).args(args).env(AS_PLUGIN, "1").status().map_err(|e| {
        Failure::new(format!("plugin `{}` could not be started: {e}", plugin.path.display()))
            .help("check that it is an executable for this machine")
    })?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => {
            return Err(
                Failure::new(format!("plugin `{}` was killed by a signal", plugin.path.display())).help("run it on its own to see why")
            );
        }
    })
}

/// What `list --output json` says of the apps a plugin carries.
#[derive(Debug, Deserialize)]
struct Listed {
    schema: String,
    #[serde(default)]
    apps: Vec<ListedApp>,
    #[serde(default)]
    releases: Vec<ListedApp>,
}

#[derive(Debug, Deserialize)]
struct ListedApp {
    name: String,
}

/// The apps one plugin carries.
#[derive(Debug, Clone, Serialize)]
pub struct PluginApps {
    pub plugin: String,
    pub path: PathBuf,
    pub apps: Vec<String>,
    pub releases: Vec<String>,
}

/// Ask every plugin for its apps; a plugin that fails is named in a warning
/// and the others are still asked.
pub fn apps_of(plugins: &[Plugin]) -> (Vec<PluginApps>, Vec<String>) {
    let timeout = std::env::var(TIMEOUT_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs);
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    for plugin in plugins {
        match ask_list(plugin, timeout) {
            Ok(listed) => found.push(PluginApps {
                plugin: plugin.command.clone(),
                path: plugin.path.clone(),
                apps: listed.apps.into_iter().map(|a| a.name).collect(),
                releases: listed.releases.into_iter().map(|a| a.name).collect(),
            }),
            Err(why) => warnings.push(format!("plugin `{}` did not list its apps: {why}", plugin.path.display())),
        }
    }
    (found, warnings)
}

fn ask_list(plugin: &Plugin, timeout: Duration) -> Result<Listed, String> {
    let mut child = Command::new(&plugin.path)
        .args(["list", "--output", "json"])
        .env(AS_PLUGIN, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("it could not be started ({e})"))?;
    // Read while it runs, so a large answer cannot fill the pipe and stall it.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it did not answer within {}s and was stopped (`{TIMEOUT_VAR}` allows more)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("it could not be waited for ({e})")),
        }
    };
    let bytes = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("`list --output json` failed ({status})"));
    }
    let listed: Listed = serde_json::from_slice(&bytes).map_err(|e| format!("its `list --output json` is not valid JSON ({e})"))?;
    if listed.schema != crate::view::SCHEMA {
        return Err(format!(
            "it speaks schema `{}`, and this binary `{}`",
            listed.schema,
            crate::view::SCHEMA
        ));
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(command: &str) -> Plugin {
        Plugin {
            command: command.into(),
            path: PathBuf::from(format!("/bin/harmony-{}", command.replace('-', "_").replace(' ', "-"))),
        }
    }

    #[test]
    fn the_longest_match_wins_and_keeps_the_rest_as_arguments() {
        let plugins = [plugin("my-app"), plugin("my-app plan"), plugin("other")];
        let args: Vec<OsString> = ["my-app", "plan", "--yes"].iter().map(OsString::from).collect();
        let (p, rest) = find(&plugins, &args).unwrap();
        assert_eq!(p.command, "my-app plan");
        assert_eq!(rest, [OsString::from("--yes")]);
        let args: Vec<OsString> = ["my-app", "apply"].iter().map(OsString::from).collect();
        let (p, rest) = find(&plugins, &args).unwrap();
        assert_eq!((p.command.as_str(), rest), ("my-app", vec![OsString::from("apply")]));
        assert!(find(&plugins, &[OsString::from("nothing")]).is_none());
    }
}
