//! The peer benchmark's workload (`../shared/bench` (beside the repository)), written with the Score DSL.
//!
//! `N` apps, each a ServiceAccount, a ConfigMap (20 keys), a Service and a
//! Deployment (two containers, env, envFrom, resources, probes, a volume), all
//! in namespace `bench`, every value a function of the app index `i`
//! (1-based). [`BenchApp`] renders the four objects of one app exactly as the
//! peer generator (`gen_workload.py`) and the Rust floor (`rustbase`) build
//! them; [`Bench`] composes `N` of them and is registered as the app `bench`.
//!
//! `N` comes from [`N_VAR`] (see [`Bench::from_env`]).

use std::collections::BTreeMap;

use harmony::k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use harmony::k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, ConfigMapKeySelector, ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Service,
    ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use harmony::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use harmony::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

/// The environment variable that sets how many apps the workload has.
pub const N_VAR: &str = "HARMONY_BENCH_N";
/// The number of apps when [`N_VAR`] is unset, empty or not a number.
pub const DEFAULT_N: usize = 10;
/// The largest number of apps: app names are `app-NNNN`, so past this the
/// workload would no longer match the peers' (and memory grows for nothing).
pub const MAX_N: usize = 9999;

/// The namespace every object lives in.
pub const NAMESPACE: &str = "bench";
const NUM_CONFIG_KEYS: usize = 20;

/// The whole workload: `apps.len()` apps, deployed in index order.
#[derive(Score, Clone, Debug)]
pub struct Bench {
    /// One leaf per app, `app-0001` first.
    #[score(child)]
    pub apps: Vec<BenchApp>,
}

impl Bench {
    /// The workload of `n` apps, indices `1..=n`.
    pub fn new(n: usize) -> Self {
        Self {
            apps: (1..=n).map(|index| BenchApp { index }).collect(),
        }
    }

    /// The workload sized by [`N_VAR`].
    ///
    /// `app!` expressions cannot fail, so a bad value does not panic: unset,
    /// empty or unparsable (`abc`, `-3`) means [`DEFAULT_N`]; a number above
    /// [`MAX_N`] is clamped to [`MAX_N`]. `0` is allowed (an empty app: its
    /// plan removes everything a previous apply left).
    pub fn from_env() -> Self {
        Self::new(n_from(std::env::var(N_VAR).ok().as_deref()))
    }
}

/// The number of apps a value of [`N_VAR`] asks for (see [`Bench::from_env`]).
pub fn n_from(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(DEFAULT_N, |n| n.min(MAX_N))
}

harmony::app! {
    /// The peer benchmark's workload: `HARMONY_BENCH_N` apps (default 10) of four objects each.
    name: "bench",
    score: crate::Bench::from_env(),
}

/// One app of the workload: its ServiceAccount, ConfigMap, Service and
/// Deployment, every value derived from `index`.
#[derive(Score, Clone, Debug)]
pub struct BenchApp {
    /// The app's index, from 1; it names the app `app-NNNN`.
    pub index: usize,
}

impl Render for BenchApp {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        let (sa, cm, svc, deploy) = app_objects(self.index);
        d.push(&sa)?;
        d.push(&cm)?;
        d.push(&svc)?;
        d.push(&deploy)?;
        Ok(d)
    }
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// `app-0007`.
pub fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

fn labels(i: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        (s("app.kubernetes.io/name"), app_name(i)),
        (s("app.kubernetes.io/part-of"), s("bench")),
        (s("app.kubernetes.io/managed-by"), s("bench-gen")),
    ])
}

fn meta(i: usize, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(s(NAMESPACE)),
        labels: Some(labels(i)),
        ..Default::default()
    }
}

fn config_data(i: usize) -> BTreeMap<String, String> {
    let n = app_name(i);
    let mut data = BTreeMap::new();
    for k in 0..NUM_CONFIG_KEYS - 1 {
        data.insert(format!("key_{k:02}"), format!("{n}-value-{k:02}"));
    }
    data.insert(
        s("app.properties"),
        format!(
            "server.port=8080\nserver.name={n}\ncache.size={}\nfeature.flags=a,b,c\n",
            64 * (1 + i % 8)
        ),
    );
    data
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: s(name),
        value: Some(value),
        ..Default::default()
    }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: s(name),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: s(path),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn port(name: &str, p: i32) -> ContainerPort {
    ContainerPort {
        name: Some(s(name)),
        container_port: p,
        protocol: Some(s("TCP")),
        ..Default::default()
    }
}

fn resources(req_cpu: &str, req_mem: &str, lim_cpu: &str, lim_mem: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            (s("cpu"), Quantity(s(req_cpu))),
            (s("memory"), Quantity(s(req_mem))),
        ])),
        limits: Some(BTreeMap::from([
            (s("cpu"), Quantity(s(lim_cpu))),
            (s("memory"), Quantity(s(lim_mem))),
        ])),
        ..Default::default()
    }
}

fn http_probe(path: &str, initial_delay: Option<i32>, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(s(path)),
            port: IntOrString::String(s("http")),
            ..Default::default()
        }),
        initial_delay_seconds: initial_delay,
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(s(name)),
        port,
        target_port: Some(IntOrString::String(s(name))),
        protocol: Some(s("TCP")),
        ..Default::default()
    }
}

/// The four typed objects of app `i`, in deploy order.
pub fn app_objects(i: usize) -> (ServiceAccount, ConfigMap, Service, Deployment) {
    let n = app_name(i);
    let cm = format!("{n}-config");
    let sa = ServiceAccount {
        metadata: meta(i, n.clone()),
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let configmap = ConfigMap {
        metadata: meta(i, cm.clone()),
        data: Some(config_data(i)),
        ..Default::default()
    };
    let selector = BTreeMap::from([(s("app.kubernetes.io/name"), n.clone())]);
    let service = Service {
        metadata: meta(i, n.clone()),
        spec: Some(ServiceSpec {
            type_: Some(s("ClusterIP")),
            selector: Some(selector.clone()),
            ports: Some(vec![service_port("http", 80), service_port("metrics", 9090)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let app = Container {
        name: s("app"),
        image: Some(format!("registry.example.com/team-{}/{n}:1.{}.{i}", i % 7, i % 10)),
        image_pull_policy: Some(s("IfNotPresent")),
        ports: Some(vec![port("http", 8080), port("metrics", 9090)]),
        env: Some(vec![
            env("APP_NAME", n.clone()),
            env("APP_ENV", s("production")),
            env("PORT", s("8080")),
            EnvVar {
                name: s("LOG_LEVEL"),
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: cm.clone(),
                        key: s("key_00"),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            env_field("POD_NAME", "metadata.name"),
            env_field("POD_NAMESPACE", "metadata.namespace"),
        ]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: cm.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        resources: Some(resources("100m", "128Mi", "500m", "256Mi")),
        liveness_probe: Some(http_probe("/healthz", Some(10), 10)),
        readiness_probe: Some(http_probe("/ready", None, 5)),
        volume_mounts: Some(vec![VolumeMount {
            name: s("config"),
            mount_path: s("/etc/app"),
            read_only: Some(true),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let sidecar = Container {
        name: s("log-shipper"),
        image: Some(s("registry.example.com/infra/log-shipper:2.3.1")),
        image_pull_policy: Some(s("IfNotPresent")),
        ports: Some(vec![port("forward", 24224)]),
        env: Some(vec![
            env("SHIP_TO", s("http://logs.example.com:9200")),
            env("APP_NAME", n.clone()),
            env("BUFFER_SIZE", s("1024")),
        ]),
        resources: Some(resources("50m", "64Mi", "200m", "128Mi")),
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(24224),
                ..Default::default()
            }),
            period_seconds: Some(20),
            ..Default::default()
        }),
        readiness_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec![s("/bin/sh"), s("-c"), s("test -f /tmp/ready")]),
            }),
            period_seconds: Some(10),
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: meta(i, n.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(1 + (i % 3) as i32),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some(s("RollingUpdate")),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(i)),
                    annotations: Some(BTreeMap::from([
                        (s("prometheus.io/scrape"), s("true")),
                        (s("prometheus.io/port"), s("9090")),
                    ])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(n),
                    containers: vec![app, sidecar],
                    volumes: Some(vec![Volume {
                        name: s("config"),
                        config_map: Some(ConfigMapVolumeSource {
                            name: cm,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    (sa, configmap, service, deployment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_falls_back_and_clamps() {
        assert_eq!(n_from(None), DEFAULT_N);
        assert_eq!(n_from(Some("")), DEFAULT_N);
        assert_eq!(n_from(Some("abc")), DEFAULT_N);
        assert_eq!(n_from(Some("-3")), DEFAULT_N);
        assert_eq!(n_from(Some(" 1000 ")), 1000);
        assert_eq!(n_from(Some("0")), 0);
        assert_eq!(n_from(Some("123456")), MAX_N);
    }

    #[test]
    fn every_app_renders_four_named_objects() {
        let cx = RenderCx::new("bench", "local");
        let objects = harmony::score::IsScore::render_tree(&Bench::new(3), &cx).unwrap().into_objects();
        let names: Vec<String> = objects.iter().map(|o| format!("{} {}", o.id().kind, o.id().name)).collect();
        assert_eq!(names.len(), 12);
        assert_eq!(
            names[..4],
            [
                "ServiceAccount app-0001",
                "ConfigMap app-0001-config",
                "Service app-0001",
                "Deployment app-0001"
            ]
        );
        let deploy = objects[3].body();
        assert_eq!(deploy.pointer("/spec/replicas").and_then(|v| v.as_i64()), Some(2));
    }
}
