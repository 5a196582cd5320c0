//! A small web application, delivered with harmony: its settings, its
//! database credentials, the server, and the Service in front of it, each one
//! Score, composed into [`WebApp`] and registered as the app `webapp`.

use std::collections::BTreeMap;

use harmony::k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use harmony::k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, Namespace, PodSpec,
    PodTemplateSpec, Probe, Secret as K8sSecret, SecretKeySelector, Service, ServicePort, ServiceSpec,
};
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use harmony::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use harmony::release::ReleaseCx;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, Secret};

/// The environment variable that holds the database password.
pub const PASSWORD_VAR: &str = "WEBAPP_DB_PASSWORD";

/// The web application: settings, credentials, server and Service, deployed in that order.
#[derive(Score, Clone, Debug)]
pub struct WebApp {
    /// The namespace everything lives in.
    #[score(child)]
    pub namespace: AppNamespace,
    /// Its settings, mounted as environment variables.
    #[score(child)]
    pub settings: Settings,
    /// The database credentials.
    #[score(child)]
    pub credentials: Credentials,
    /// The HTTP server.
    #[score(child)]
    pub server: Server,
    /// The Service in front of it.
    #[score(child)]
    pub service: Exposure,
}

impl WebApp {
    /// The app for one release (or, for `apply`, the working tree): its
    /// server runs `cx.image`. The password comes from `WEBAPP_DB_PASSWORD`
    /// when it is set (a development value otherwise).
    pub fn release(cx: &ReleaseCx) -> Self {
        let password = Secret::from_env(PASSWORD_VAR).unwrap_or_else(|_| Secret::new("development-only-password".to_owned()));
        let mut app = Self::new("webapp", password);
        app.server.image = cx.image.to_string();
        app
    }

    pub fn new(namespace: &str, database_password: Secret<String>) -> Self {
        let ns = namespace.to_owned();
        Self {
            namespace: AppNamespace { name: ns.clone() },
            settings: Settings {
                namespace: ns.clone(),
                greeting: "Hello from harmony".into(),
                log_level: "info".into(),
            },
            credentials: Credentials {
                namespace: ns.clone(),
                database_user: "webapp".into(),
                database_password,
            },
            server: Server {
                namespace: ns.clone(),
                image: "localhost/webapp:0.1.0".into(),
                replicas: 2,
                port: 8080,
            },
            service: Exposure { namespace: ns, port: 80 },
        }
    }
}

harmony::app! {
    /// A small web application: settings, credentials, server and Service.
    name: "webapp-server",
    image: Buildable(harmony::build::RustBinary::new("webapp-server").port(8080)),
    chart: builder(crate::WebApp::release),
    stages: [staging, production],
    smoke: http_get("/healthz"),
}

const APP: &str = "webapp";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), APP.to_owned()),
    ])
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels()),
        ..Default::default()
    }
}

/// The namespace the app lives in.
#[derive(Score, Clone, Debug)]
pub struct AppNamespace {
    pub name: String,
}

impl Render for AppNamespace {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        d.push(&Namespace {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(labels()),
                ..Default::default()
            },
            ..Default::default()
        })?;
        Ok(d)
    }
}

/// The app's settings, as a ConfigMap its pods read as environment variables.
#[derive(Score, Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    /// What the front page says.
    pub greeting: String,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
}

impl Render for Settings {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
        if !LEVELS.contains(&self.log_level.as_str()) {
            return Err(ScoreError::invalid(
                format!("log level `{}`", self.log_level),
                "it is not a level the server knows",
                format!("use one of {}", LEVELS.join(", ")),
            ));
        }
        let mut d = Desired::new();
        d.push(&ConfigMap {
            metadata: meta(&self.namespace, "webapp-settings"),
            data: Some(BTreeMap::from([
                ("GREETING".to_owned(), self.greeting.clone()),
                ("RUST_LOG".to_owned(), self.log_level.clone()),
            ])),
            ..Default::default()
        })?;
        Ok(d)
    }
}

/// The database credentials, as a Kubernetes Secret.
#[derive(Score, Clone, Debug)]
pub struct Credentials {
    pub namespace: String,
    pub database_user: String,
    /// Never printed: plans show only that it changed.
    #[score(secret)]
    pub database_password: Secret<String>,
}

impl Render for Credentials {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        d.push(&K8sSecret {
            metadata: meta(&self.namespace, "webapp-database"),
            string_data: Some(BTreeMap::from([
                ("username".to_owned(), self.database_user.clone()),
                ("password".to_owned(), self.database_password.expose().clone()),
            ])),
            ..Default::default()
        })?;
        Ok(d)
    }
}

/// The HTTP server: a Deployment reading the settings and the credentials.
#[derive(Score, Clone, Debug)]
pub struct Server {
    pub namespace: String,
    pub image: String,
    pub replicas: i32,
    pub port: i32,
}

impl Render for Server {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        if self.replicas < 1 {
            return Err(ScoreError::invalid(
                format!("replicas = {}", self.replicas),
                "the server needs at least one replica",
                "set `replicas` to 1 or more",
            ));
        }
        let selector = BTreeMap::from([("app.kubernetes.io/name".to_owned(), APP.to_owned())]);
        let probe = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.to_owned()),
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        };
        let container = Container {
            name: "server".into(),
            image: Some(self.image.clone()),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: self.port,
                ..Default::default()
            }]),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "webapp-settings".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            env: Some(vec![
                EnvVar {
                    name: "PORT".into(),
                    value: Some(self.port.to_string()),
                    ..Default::default()
                },
                EnvVar {
                    name: "DATABASE_PASSWORD".into(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "webapp-database".into(),
                            key: "password".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            liveness_probe: Some(probe("/healthz")),
            readiness_probe: Some(probe("/ready")),
            ..Default::default()
        };
        let mut d = Desired::new();
        d.push(&Deployment {
            metadata: meta(&self.namespace, "webapp"),
            spec: Some(DeploymentSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector {
                    match_labels: Some(selector),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        })?;
        Ok(d)
    }
}

/// The Service that routes to the server's `http` port.
#[derive(Score, Clone, Debug)]
pub struct Exposure {
    pub namespace: String,
    pub port: i32,
}

impl Render for Exposure {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        d.push(&Service {
            metadata: meta(&self.namespace, "webapp"),
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app.kubernetes.io/name".to_owned(), APP.to_owned())])),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: self.port,
                    target_port: Some(IntOrString::String("http".into())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })?;
        Ok(d)
    }
}
