//! Where the `k8s` topology deploys, read from the environment: the cluster
//! `KUBECONFIG` names (context selectable) or, inside a pod, the cluster the
//! pod runs in. Everything that can be checked without the network is
//! checked here, before any work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harmony::cluster::Place;
use harmony::topology::TopologyError;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The kubeconfig files, `:`-separated, as for kubectl.
pub const KUBECONFIG_VAR: &str = "KUBECONFIG";
/// The kubeconfig context to use instead of its current one.
pub const CONTEXT_VAR: &str = "HARMONY_K8S_CONTEXT";
/// The namespace that holds the apps' ApplySet parents (default: the
/// context's namespace, else `default`).
pub const NAMESPACE_VAR: &str = "HARMONY_K8S_NAMESPACE";
/// How long to wait for an applied object to become ready, in seconds.
pub const TIMEOUT_VAR: &str = "HARMONY_K8S_TIMEOUT";
/// How long one API request may take before it is retried, in seconds.
pub const REQUEST_TIMEOUT_VAR: &str = "HARMONY_K8S_REQUEST_TIMEOUT";
/// `true` takes ownership of fields another field manager owns.
pub const FORCE_VAR: &str = "HARMONY_FORCE_CONFLICTS";
/// Where the topology keeps what it must remember between runs.
pub const STATE_DIR_VAR: &str = "HARMONY_STATE_DIR";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the cluster.
#[derive(Clone, Debug)]
pub enum Source {
    /// A kubeconfig (read from `paths`), with the context to use.
    Kubeconfig {
        config: Box<Kubeconfig>,
        context: String,
        paths: String,
    },
    /// The service account of the pod this runs in.
    InCluster,
}

/// The settings of one `k8s` topology.
#[derive(Clone, Debug)]
pub struct Settings {
    pub source: Source,
    pub namespace: Option<String>,
    pub timeout: Duration,
    pub request_timeout: Duration,
    pub force: bool,
    pub state_dir: PathBuf,
}

impl Settings {
    /// Read and check the settings; reads the kubeconfig, contacts nothing.
    pub fn from_env() -> Result<Self, TopologyError> {
        let source = match std::env::var(KUBECONFIG_VAR) {
            Ok(paths) if !paths.trim().is_empty() => kubeconfig_source(&paths)?,
            _ => match home_kubeconfig() {
                Some(path) if path.is_file() => kubeconfig_source(&path.display().to_string())?,
                _ if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => Source::InCluster,
                _ => {
                    return Err(TopologyError::Missing {
                        var: KUBECONFIG_VAR,
                        help: "point `KUBECONFIG` at the kubeconfig of the cluster to deploy to (`scripts/test-cluster` starts a test cluster and prints one)",
                    });
                }
            },
        };
        Ok(Self {
            source,
            namespace: non_empty(NAMESPACE_VAR),
            timeout: seconds(TIMEOUT_VAR)?.unwrap_or(DEFAULT_TIMEOUT),
            request_timeout: seconds(REQUEST_TIMEOUT_VAR)?.unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            force: flag(FORCE_VAR)?,
            state_dir: non_empty(STATE_DIR_VAR).map_or_else(|| PathBuf::from("target/harmony/k8s"), PathBuf::from),
        })
    }

    /// The settings for the cluster of the kubeconfig at `path` (its current
    /// context), with the defaults for everything else: what a test that
    /// deploys to a cluster it started uses.
    pub fn for_kubeconfig(path: &Path, state_dir: &Path) -> Result<Self, TopologyError> {
        Ok(Self {
            source: kubeconfig_source(&path.display().to_string())?,
            namespace: None,
            timeout: DEFAULT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            force: false,
            state_dir: state_dir.to_owned(),
        })
    }

    /// These settings moved to `place`: its context instead of the one the
    /// environment names. (Its namespace is where objects go, which the
    /// caller decides; the ApplySet parents stay where the settings keep them.)
    pub fn at(mut self, place: &Place) -> Result<Self, TopologyError> {
        let Some(wanted) = &place.context else { return Ok(self) };
        match &mut self.source {
            Source::Kubeconfig { config, context, paths } => {
                let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
                if !names.contains(&wanted.as_str()) {
                    return Err(TopologyError::Unsupported {
                        what: format!("the kubeconfig (`{paths}`) has no context `{wanted}`"),
                        help: format!("name one of its contexts ({}), or add `{wanted}` to it", names.join(", ")),
                    });
                }
                *context = wanted.clone();
                Ok(self)
            }
            Source::InCluster => Err(TopologyError::Unsupported {
                what: format!("context `{wanted}` is named, but there is no kubeconfig: this runs inside a pod"),
                help: format!("point `{KUBECONFIG_VAR}` at a kubeconfig that has context `{wanted}`"),
            }),
        }
    }

    /// Where the cluster is, as a user would recognise it.
    pub fn target(&self) -> String {
        match &self.source {
            Source::Kubeconfig { config, context, .. } => {
                let cluster = config
                    .contexts
                    .iter()
                    .find(|c| c.name == *context)
                    .and_then(|c| c.context.as_ref())
                    .map(|c| c.cluster.clone())
                    .unwrap_or_default();
                let server = config
                    .clusters
                    .iter()
                    .find(|c| c.name == cluster)
                    .and_then(|c| c.cluster.as_ref())
                    .and_then(|c| c.server.clone())
                    .unwrap_or_default();
                format!("{server} (context `{context}`)")
            }
            Source::InCluster => "the cluster this pod runs in".into(),
        }
    }

    /// The client configuration.
    pub async fn config(&self) -> Result<kube::Config, String> {
        let mut config = match &self.source {
            Source::Kubeconfig { config, context, .. } => {
                let options = KubeConfigOptions {
                    context: Some(context.clone()),
                    ..KubeConfigOptions::default()
                };
                kube::Config::from_custom_kubeconfig((**config).clone(), &options)
                    .await
                    .map_err(|e| e.to_string())?
            }
            Source::InCluster => kube::Config::incluster().map_err(|e| e.to_string())?,
        };
        // Harmony retries itself, with a bounded budget (see `cluster::retry`).
        config.default_retry = false;
        Ok(config)
    }
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".kube").join("config"))
}

fn kubeconfig_source(paths: &str) -> Result<Source, TopologyError> {
    read_kubeconfig(paths, non_empty(CONTEXT_VAR))
}

/// The kubeconfig of `paths` (`:`-separated, merged as kubectl merges
/// them), at context `wanted` or its current one, checked as far as it can be
/// without the network: each file read and parsed, the context there, the
/// files its user reads readable.
fn read_kubeconfig(paths: &str, wanted: Option<String>) -> Result<Source, TopologyError> {
    let bad = |why: String| TopologyError::BadSetting { var: KUBECONFIG_VAR, why };
    let mut merged: Option<Kubeconfig> = None;
    for path in std::env::split_paths(paths) {
        if path.as_os_str().is_empty() {
            continue;
        }
        let shown = path.display();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(bad(format!("`{shown}` does not exist"))),
            Err(_) if path.is_dir() => return Err(bad(format!("`{shown}` is a directory, not a kubeconfig file"))),
            Err(e) => return Err(bad(format!("`{shown}` cannot be read: {e}"))),
        };
        let config = Kubeconfig::from_yaml(&text).map_err(|e| bad(format!("`{shown}` is not a kubeconfig: {e}")))?;
        if config.clusters.is_empty() && config.contexts.is_empty() && config.auth_infos.is_empty() {
            // A kubeconfig with nothing in it (`kind: Config`, empty lists) is one, and empty.
            let says_it_is_one = text.lines().any(|l| l.trim_end() == "kind: Config");
            return Err(bad(if says_it_is_one {
                format!(
                    "`{shown}` defines no clusters, contexts or users: add the cluster to deploy to, a user, and a context that names both"
                )
            } else {
                format!(
                    "`{shown}` is not a kubeconfig: no clusters, contexts or users could be read from it (`kubectl config view --kubeconfig {shown}` shows what a kubeconfig holds)"
                )
            }));
        }
        merged = Some(match merged {
            None => config,
            Some(first) => first.merge(config).map_err(|e| bad(format!("its files cannot be merged: {e}")))?,
        });
    }
    let Some(config) = merged else {
        return Err(bad("it names no file".into()));
    };
    if config.clusters.is_empty() {
        return Err(bad(format!("`{paths}` defines no clusters: add the cluster to deploy to")));
    }
    let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
    if names.is_empty() {
        return Err(bad(format!(
            "`{paths}` defines no contexts: add one that names a cluster and a user"
        )));
    }
    let context = match (wanted, &config.current_context) {
        (Some(wanted), _) => {
            if !names.contains(&wanted.as_str()) {
                return Err(TopologyError::BadSetting {
                    var: CONTEXT_VAR,
                    why: format!("the kubeconfig (`{paths}`) has no context `{wanted}`; it has: {}", names.join(", ")),
                });
            }
            wanted
        }
        (None, Some(current)) if names.contains(&current.as_str()) => current.clone(),
        (None, Some(current)) => {
            return Err(bad(format!(
                "the current context of `{paths}`, `{current}`, is not one of its contexts ({})",
                names.join(", ")
            )));
        }
        (None, None) => {
            return Err(TopologyError::BadSetting {
                var: CONTEXT_VAR,
                why: format!(
                    "the kubeconfig (`{paths}`) sets no current context: name one of its contexts ({}) in `{CONTEXT_VAR}`",
                    names.join(", ")
                ),
            });
        }
    };
    check_user_files(&config, &context, paths)?;
    Ok(Source::Kubeconfig {
        config: Box::new(config),
        context,
        paths: paths.to_owned(),
    })
}

/// The files the user of `context` reads (a token, a client certificate and
/// key) can be read: found now, not at the first request.
fn check_user_files(config: &Kubeconfig, context: &str, paths: &str) -> Result<(), TopologyError> {
    let Some(user_name) = config
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone())
    else {
        return Ok(());
    };
    let Some(user) = config
        .auth_infos
        .iter()
        .find(|a| a.name == user_name)
        .and_then(|a| a.auth_info.as_ref())
    else {
        return Err(TopologyError::BadSetting {
            var: KUBECONFIG_VAR,
            why: format!("context `{context}` of `{paths}` names user `{user_name}`, which it does not define"),
        });
    };
    for (what, file) in [
        ("its token", &user.token_file),
        ("its client certificate", &user.client_certificate),
        ("its client key", &user.client_key),
    ] {
        let Some(file) = file else { continue };
        if let Err(e) = std::fs::read(file) {
            return Err(TopologyError::BadSetting {
                var: KUBECONFIG_VAR,
                why: format!("user `{user_name}` (context `{context}` of `{paths}`) reads {what} from `{file}`, which cannot be read: {e}"),
            });
        }
    }
    Ok(())
}

fn non_empty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn seconds(var: &'static str) -> Result<Option<Duration>, TopologyError> {
    non_empty(var)
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| TopologyError::BadSetting {
                    var,
                    why: format!("`{v}` is not a positive number of seconds"),
                })
        })
        .transpose()
}

fn flag(var: &'static str) -> Result<bool, TopologyError> {
    match non_empty(var).as_deref().map(str::trim) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(TopologyError::BadSetting {
            var,
            why: format!("`{other}` is neither `true` nor `false`"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use harmony::Diagnostic as _;

    use super::*;

    const GOOD: &str = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n\
        contexts: [{name: dev, context: {cluster: c, user: u}}, {name: prod, context: {cluster: c, user: u}}]\n\
        current-context: dev\nusers: [{name: u, user: {token: t}}]\n";

    /// What reading `text` as the only kubeconfig says, with `wanted` as the context.
    fn read(text: &str, wanted: Option<&str>) -> Result<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        read_kubeconfig(path.to_str().unwrap(), wanted.map(str::to_owned))
            .map(|source| match source {
                Source::Kubeconfig { context, .. } => context,
                Source::InCluster => unreachable!(),
            })
            .map_err(|e| format!("{e} (help: {})", e.help()).replace(path.to_str().unwrap(), "CONFIG"))
    }

    #[test]
    fn a_good_kubeconfig_gives_its_current_context_or_the_one_named() {
        assert_eq!(read(GOOD, None), Ok("dev".into()));
        assert_eq!(read(GOOD, Some("prod")), Ok("prod".into()));
    }

    #[test]
    fn a_missing_or_unreadable_kubeconfig_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = read_kubeconfig(missing.to_str().unwrap(), None).unwrap_err().to_string();
        assert!(e.contains(&format!("`{}` does not exist", missing.display())), "{e}");
        let e = read_kubeconfig(dir.path().to_str().unwrap(), None).unwrap_err().to_string();
        assert!(e.contains("is a directory, not a kubeconfig file"), "{e}");
        let e = read("\u{0}\u{ff}", None).unwrap_err();
        assert!(e.contains("`CONFIG`"), "{e}");
    }

    #[test]
    fn text_that_is_not_a_kubeconfig_says_so_and_names_the_file() {
        for text in [":: not yaml [", "clusters: {", "a: 1\n", "just words\n", ""] {
            let e = read(text, None).unwrap_err();
            assert!(e.contains("`CONFIG` is not a kubeconfig"), "{text:?}: {e}");
            assert!(!e.contains("name one of  in"), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_kubeconfig_without_clusters_or_contexts_says_what_is_missing() {
        let e = read("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n", None).unwrap_err();
        assert!(e.contains("`CONFIG` defines no clusters, contexts or users"), "{e}");
        let e = read("apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: t}}]\n", None).unwrap_err();
        assert!(e.contains("defines no clusters"), "{e}");
        let e = read(
            "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://x'}}]\nusers: []\n",
            None,
        )
        .unwrap_err();
        assert!(e.contains("defines no contexts"), "{e}");
    }

    #[test]
    fn an_unknown_or_missing_context_lists_the_contexts_that_exist() {
        let e = read(GOOD, Some("staging")).unwrap_err();
        assert!(e.contains("has no context `staging`; it has: dev, prod"), "{e}");
        let e = read(&GOOD.replace("current-context: dev\n", ""), None).unwrap_err();
        assert!(e.contains("sets no current context: name one of its contexts (dev, prod)"), "{e}");
        let e = read(&GOOD.replace("current-context: dev", "current-context: gone"), None).unwrap_err();
        assert!(e.contains("`gone`, is not one of its contexts (dev, prod)"), "{e}");
    }

    #[test]
    fn a_token_or_certificate_file_that_cannot_be_read_is_named() {
        let text = GOOD.replace("{token: t}", "{tokenFile: /nonexistent/token}");
        let e = read(&text, None).unwrap_err();
        assert!(
            e.contains("user `u` (context `dev` of `CONFIG`) reads its token from `/nonexistent/token`, which cannot be read"),
            "{e}"
        );
        let text = GOOD.replace(
            "{token: t}",
            "{client-certificate: /nonexistent/cert, client-key: /nonexistent/key}",
        );
        let e = read(&text, None).unwrap_err();
        assert!(e.contains("its client certificate from `/nonexistent/cert`"), "{e}");
        let e = read(&GOOD.replace("user: u}", "user: nobody}"), None).unwrap_err();
        assert!(e.contains("names user `nobody`, which it does not define"), "{e}");
    }
}
