#!/usr/bin/env bash
# What `#[derive(Score)]` costs to compile: one app crate of 100 Scores (80 leaves that render a
# ConfigMap and a Deployment, 20 with `requires(K8sClient)` and a smoke test, and 20 composites of
# four leaves each) written with the derive, against the same crate with the impls written by
# hand. `cargo build` of that crate alone, its dependencies already built, side by side
# (hyperfine, alternating). The derive also registers every Score (`list`, `explain`); the
# hand-written crate does not, so the comparison leans in the hand-written crate's favour.
#
# usage: bench/compile-cost.sh [-r RUNS]  (default 15; prints both medians and their ratio)     (docs/perf.md, "What the derive costs to compile")
set -euo pipefail

RUNS=15
while getopts "r:" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "error: -r takes a whole number above 0, not \`$RUNS\`" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "error: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf -- "$WORK"' EXIT
export CARGO_TARGET_DIR="$ROOT/target/compile-cost"

LEAVES=80
COMPOSITES=20

# crate NAME: a manifest outside the workspace, built offline against the workspace's lock.
crate() {
  mkdir -p "$WORK/$1/src"
  cp "$ROOT/Cargo.lock" "$WORK/$1/Cargo.lock"
  cat >"$WORK/$1/Cargo.toml" <<EOF
[package]
name = "$1"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
harmony = { path = "$ROOT/harmony" }
k8s-openapi = { version = "0.29", default-features = false, features = ["v1_33"] }

[profile.dev.package."*"]
opt-level = 1
debug = false
EOF
}

# The parts both crates share: the structs' fields and their `Render` and smoke tests.
prelude() {
  cat <<'EOF'
#![allow(dead_code)]
use harmony::k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use harmony::k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use harmony::{Desired, K8sClient, Render, RenderCx, ScoreError, SmokeError};

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), namespace: Some(namespace.to_owned()), ..Default::default() }
}
EOF
}

leaf() { # leaf I DERIVED(0|1)
  local i=$1 derived=$2 smoke=$(( $1 < 20 ))
  if [ "$derived" = 1 ]; then
    echo "/// Service $i."
    echo "#[derive(harmony::Score, Debug, Clone)]"
    [ "$smoke" = 1 ] && echo "#[score(requires(K8sClient), smoke = Self::ping)]"
  else
    echo "/// Service $i."
    echo "#[derive(Debug, Clone)]"
  fi
  cat <<EOF
pub struct Service$i {
    pub namespace: String,
    pub image: String,
    pub replicas: i32,
    pub greeting: String,
}

impl Render for Service$i {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut desired = Desired::new();
        desired.push(&ConfigMap {
            metadata: meta(&self.namespace, "service-$i"),
            data: Some([("greeting".to_owned(), self.greeting.clone())].into()),
            ..Default::default()
        })?;
        let labels: std::collections::BTreeMap<String, String> = [("app".to_owned(), "service-$i".to_owned())].into();
        desired.push(&Deployment {
            metadata: meta(&self.namespace, "service-$i"),
            spec: Some(DeploymentSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                    spec: Some(PodSpec {
                        containers: vec![Container { name: "app".into(), image: Some(self.image.clone()), ..Default::default() }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        })?;
        Ok(desired)
    }
}
EOF
  if [ "$smoke" = 1 ]; then
    cat <<EOF

impl Service$i {
    async fn ping<T: K8sClient>(&self, topology: &T) -> Result<(), SmokeError> {
        let id = harmony::ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(self.namespace.clone()),
            name: "service-$i".into(),
        };
        match topology.get(&id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(SmokeError::new("service-$i", "its ConfigMap is missing")),
            Err(e) => Err(SmokeError::new("service-$i", e.to_string())),
        }
    }
}
EOF
  fi
  if [ "$derived" = 0 ]; then
    if [ "$smoke" = 1 ]; then
      local bounds="T: harmony::Topology + harmony::K8sDeploy + K8sClient" tail="run.smoke(self.ping(topology)).await" needs='out.push("K8sDeploy"); out.push("K8sClient");'
    else
      local bounds="T: harmony::Topology + harmony::K8sDeploy" tail="Ok(())" needs='out.push("K8sDeploy");'
    fi
    cat <<EOF

impl<T> harmony::Score<T> for Service$i where $bounds {}

impl<T> harmony::Interpret<T> for Service$i
where
    $bounds,
{
    async fn execute(&self, topology: &T, run: &mut harmony::Run) -> Result<(), harmony::InterpretError> {
        let desired = run.rendered(Render::render(self, run.render_cx()))?;
        run.deploy(topology, &desired).await?;
        run.verify(topology, &desired).await?;
        $tail
    }
}

impl harmony::score::IsScore for Service$i {
    fn needs(out: &mut Vec<&'static str>) {
        $needs
    }

    fn render_tree(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        Render::render(self, cx)
    }
}
EOF
  fi
  echo
}

composite() { # composite I DERIVED
  local i=$1 derived=$2 first=$(( $1 * 4 ))
  local kids=("$first" "$((first + 1))" "$((first + 2))" "$((first + 3))")
  echo "/// Stack $i: four services, in order."
  if [ "$derived" = 1 ]; then echo "#[derive(harmony::Score, Debug, Clone)]"; else echo "#[derive(Debug, Clone)]"; fi
  echo "pub struct Stack$i {"
  for k in "${kids[@]}"; do
    [ "$derived" = 1 ] && echo "    #[score(child)]"
    echo "    pub s$k: Service$k,"
  done
  echo "}"
  if [ "$derived" = 0 ]; then
    local where="" steps="" needs="" renders=""
    for k in "${kids[@]}"; do
      where+="    Service$k: harmony::Score<T>,"$'\n'
      steps+="        run.enter(\"s$k\");"$'\n'"        let result = harmony::Interpret::<T>::execute(&self.s$k, topology, run).await;"$'\n'"        run.leave();"$'\n'"        result?;"$'\n'
      needs+="        <Service$k as harmony::score::IsScore>::needs(out);"$'\n'
      renders+="        desired.extend(harmony::score::IsScore::render_tree(&self.s$k, cx)?);"$'\n'
    done
    cat <<EOF

impl<T: harmony::Topology> harmony::Score<T> for Stack$i
where
$where{}

impl<T: harmony::Topology> harmony::Interpret<T> for Stack$i
where
$where{
    async fn execute(&self, topology: &T, run: &mut harmony::Run) -> Result<(), harmony::InterpretError> {
$steps        Ok(())
    }
}

impl harmony::score::IsScore for Stack$i {
    fn needs(out: &mut Vec<&'static str>) {
$needs    }

    fn render_tree(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        let mut desired = Desired::new();
$renders        Ok(desired)
    }
}
EOF
  fi
  echo
}

for variant in derived by_hand; do
  derived=0; [ "$variant" = derived ] && derived=1
  crate "scores_$variant"
  {
    prelude
    for i in $(seq 0 $((LEAVES - 1))); do leaf "$i" "$derived"; done
    for i in $(seq 0 $((COMPOSITES - 1))); do composite "$i" "$derived"; done
  } >"$WORK/scores_$variant/src/lib.rs"
done

echo "== machine"
echo "cpus: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg); $(rustc --version)"
echo "== dependencies (built once, not measured)"
for variant in derived by_hand; do
  (cd "$WORK/scores_$variant" && cargo build --offline --quiet)
done
echo "== $((LEAVES)) leaves and $COMPOSITES composites: \`cargo build\` of the app crate alone"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/times.json" \
  --prepare "touch $WORK/scores_by_hand/src/lib.rs $WORK/scores_derived/src/lib.rs" \
  -n "impls by hand" "cargo build --offline --quiet --manifest-path $WORK/scores_by_hand/Cargo.toml" \
  -n "#[derive(Score)]" "cargo build --offline --quiet --manifest-path $WORK/scores_derived/Cargo.toml"
# Medians: a noisy neighbour on a shared machine moves means more than medians.
medians=$(grep -o '"median": *[0-9.]*' "$WORK/times.json" | grep -o '[0-9.]*$' | tr '\n' ' ')
read -r by_hand derived <<<"$medians"
awk -v h="$by_hand" -v d="$derived" 'BEGIN { printf "medians: impls by hand %.3f s, #[derive(Score)] %.3f s: %.2fx\n", h, d, d / h }'
