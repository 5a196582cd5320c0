#!/usr/bin/env bash
# The peer workload on a cluster: Harmony's `k8s` topology against real kubectl, side by side on
# the real control plane (scripts/test-cluster), with latency per request added by a proxy in
# front of the API server (docs/perf.md, "On a cluster").
#
# usage: bench/cluster.sh [-n N] [-l "5 20"] [-t "harmony kubectl"]
#   -n N        apps in the workload (default 1000; 4 objects each)
#   -l LIST     latencies to add, in milliseconds (default "0 20")
#   -t TOOLS    which tools to measure (default "harmony kubectl")
#
# For each latency, fresh test clusters for each tool and, on them, in order: first apply; plan
# with nothing to change (`harmony plan`, `kubectl diff --server-side`); apply with nothing to
# change. Harmony's apply also waits until every object is ready, as the real controllers
# report it (the kubelet makes played pods ready at once); kubectl's does not wait at all, and
# the script times `kubectl wait` for every Deployment to be Available after it. Harmony's commands run five times (median and
# fastest), a first apply each time on a fresh cluster; kubectl's take minutes and run once.
# Each command is an argument vector; times and peak RSS come from /usr/bin/time.
# Needs kubectl from scripts/install-k8s-tools and the control plane from
# scripts/install-control-plane.
set -euo pipefail

N=1000
LATENCIES="0 20"
TOOLS="harmony kubectl"
while getopts "n:l:t:" opt; do
  case $opt in
    n) N=$OPTARG ;;
    l) LATENCIES=$OPTARG ;;
    t) TOOLS=$OPTARG ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
  esac
done
for tool in $TOOLS; do
  case $tool in
    harmony | kubectl) ;;
    *) echo "error: -t takes \`harmony\`, \`kubectl\` or both, not \`$tool\`" >&2; exit 2 ;;
  esac
done
measures() { [[ " $TOOLS " == *" $1 "* ]]; }
[[ $N =~ ^[0-9]+$ ]] || { echo "error: -n takes a whole number, not \`$N\`" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KUBECTL="$ROOT/target/tools/kubectl/kubectl"
[ -x "$KUBECTL" ] || { echo "error: kubectl is missing: run scripts/install-k8s-tools" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

echo "== build (release)"
(cd "$ROOT" && cargo build --release --quiet -p bench-apps --bin harmony-bench -p harmony-test-cluster --bin harmony-test-cluster)
BENCH="$TARGET/release/harmony-bench"
SERVER="$TARGET/release/harmony-test-cluster"

WORK="$(mktemp -d)"
CLUSTERS=()
cleanup() {
  for pid in "${CLUSTERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf -- "$WORK"
}
# (stop_clusters, below, does the same between phases.)
trap cleanup EXIT

echo "== machine"
echo "cpus: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg); $("$KUBECTL" version --client=true | sed -n 1p)"

export HARMONY_BENCH_N="$N"
"$BENCH" render --out "$WORK/manifests" >/dev/null
printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}\n' >"$WORK/namespace.json"
echo "== workload: N=$N ($(find "$WORK/manifests" -name '*.yaml' | wc -l) objects)"

# Start a test cluster with `$1` ms of latency; sets KC to its kubeconfig.
start_cluster() {
  local out="$WORK/cluster-$RANDOM.out"
  "$SERVER" --latency "$1" --ready-after 0 >"$out" 2>/dev/null &
  CLUSTERS+=("$!")
  for _ in $(seq 1 1200); do [ -s "$out" ] && break; sleep 0.1; done
  [ -s "$out" ] || { echo "error: the test cluster did not start in 120 s" >&2; exit 1; }
  KC="$(head -1 "$out" | sed 's/^KUBECONFIG=//')"
  "$KUBECTL" --kubeconfig "$KC" --cache-dir "$WORK/kcache" apply --server-side -f "$WORK/namespace.json" >/dev/null
}

# measure LABEL RUNS COMMAND...: RUNS timed runs (each must exit 0); prints the median and the
# fastest, in seconds, and the largest peak RSS. With BEFORE_EACH set, that command runs
# (untimed) before each run.
measure() {
  local label=$1 runs=$2; shift 2
  local stats="$WORK/time.txt" code=0 times=() peak=0
  for _ in $(seq 1 "$runs"); do
    [ -n "${BEFORE_EACH:-}" ] && $BEFORE_EACH
    /usr/bin/time -f "%e %M" -o "$stats" "$@" >/dev/null 2>"$WORK/stderr.txt" || code=$?
    if [ "$code" != 0 ]; then
      echo "error: \`$label\` exited $code:" >&2; tail -5 "$WORK/stderr.txt" >&2; exit 1
    fi
    read -r secs kib <"$stats"
    times+=("$secs"); [ "$kib" -gt "$peak" ] && peak=$kib
  done
  read -r median fastest < <(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[1]}')
  printf '  %-50s %3d run(s)  median %7.2f s  fastest %7.2f s  %5d MiB\n' "$label" "$runs" "$median" "$fastest" "$((peak / 1024))"
}

# A new cluster at latency `$1`, Harmony pointed at it with a fresh state directory.
fresh_cluster() {
  stop_clusters
  start_cluster "$1"
  export KUBECONFIG="$KC" HARMONY_STATE_DIR="$WORK/state-$1-$RANDOM"
}

stop_clusters() {
  for pid in "${CLUSTERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  CLUSTERS=()
}

for latency in $LATENCIES; do
  echo "== ${latency} ms per request"
  # A first apply needs a fresh cluster: five of them, one per run (it is quick, and a single
  # run of it varies by a fifth on a shared machine).
  if measures harmony; then
    BEFORE_EACH="fresh_cluster $latency"
    measure "harmony apply (first)" 5 "$BENCH" apply --topology k8s --yes bench
    BEFORE_EACH=""
    measure "harmony plan (nothing to change)" 5 "$BENCH" plan --topology k8s bench
    measure "harmony apply (nothing to change)" 5 "$BENCH" apply --topology k8s --yes bench
    unset KUBECONFIG
    stop_clusters
  fi
  measures kubectl || continue

  start_cluster "$latency"
  kubectl=("$KUBECTL" --kubeconfig "$KC" --cache-dir "$WORK/kcache-$latency")
  measure "kubectl apply --server-side (first)" 1 "${kubectl[@]}" apply --server-side -R -f "$WORK/manifests"
  # kubectl does not wait: this is what waiting as Harmony does costs it (and the controllers'
  # status writes would otherwise race its diff).
  measure "kubectl wait (every Deployment Available)" 1 "${kubectl[@]}" wait --for=condition=Available deployment --all -n bench --timeout=900s
  measure "kubectl diff --server-side (nothing to change)" 1 "${kubectl[@]}" diff --server-side -R -f "$WORK/manifests"
  measure "kubectl apply --server-side (nothing to change)" 1 "${kubectl[@]}" apply --server-side -R -f "$WORK/manifests"
  stop_clusters
done
