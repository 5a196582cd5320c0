#!/usr/bin/env bash
# Whole-process render and plan of the peer workload: Harmony against helm and the Rust floor,
# timed side by side in one session with hyperfine (docs/perf.md).
#
# usage: bench/run.sh [-n N] [-r RUNS] [-k ROUNDS] [-w WARMUP]
#   -n N       apps in the workload (default 1000; 4 objects each)
#   -r RUNS    timed runs per command and round (default 10)
#   -k ROUNDS  rounds (default 3): every round times every command once more, so a burst of load
#              from other processes hits all commands alike; medians are over all rounds
#   -w WARMUP  untimed runs per command and round (default 1)
#
# Needs: the peers from ../shared/bench/setup_peers.sh under $PEERS (default /tmp/perfpeers),
# hyperfine (apt-get install hyperfine), python3 with PyYAML (check_equiv.py).
# Environment: PEERS, BENCH_DIR (default ../shared/bench, beside the repository), CARGO_TARGET_DIR.
#
# Every command is an argument vector: hyperfine runs it without a shell (-N), output goes to a
# pipe (--output=pipe) for every command alike. Prints no host names.
set -euo pipefail

N=1000
RUNS=10
ROUNDS=3
WARMUP=1
while getopts "n:r:k:w:" opt; do
  case $opt in
    n) N=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    k) ROUNDS=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
for v in "$N" "$RUNS" "$ROUNDS" "$WARMUP"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "error: -n, -r, -k and -w take whole numbers, not \`$v\`" >&2; exit 2; }
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$ROOT/../shared/bench}"
PEERS="${PEERS:-/tmp/perfpeers}"
HELM="$PEERS/helm/helm"
RUSTBASE="$PEERS/rustbase/target/release/rustbase"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/harmony-bench"

for tool in hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "error: \`$tool\` is not installed" >&2; exit 1; }
done
if [ ! -x "$HELM" ] || [ ! -x "$RUSTBASE" ]; then
  echo "error: peers missing under $PEERS; run: PEERS=$PEERS $BENCH_DIR/setup_peers.sh" >&2
  exit 1
fi

echo "== build (release)"
(cd "$ROOT" && cargo build --release --quiet -p bench-apps --bin harmony-bench)

SHM=/dev/shm
[ -d "$SHM" ] && [ -w "$SHM" ] || SHM="${TMPDIR:-/tmp}"
WORK="$(mktemp -d "$SHM/harmony-bench.XXXXXX")"
trap 'rm -rf -- "$WORK"' EXIT
# hyperfine -N splits a command line on whitespace itself (no shell): paths must have none.
for p in "$WORK" "$BIN" "$HELM" "$RUSTBASE"; do
  [[ $p != *[[:space:]]* ]] || { echo "error: path with whitespace: $p" >&2; exit 1; }
done

echo "== machine"
echo "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); kernel $(uname -r)"
echo "mem: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "helm $("$HELM" version --short 2>/dev/null); $(hyperfine --version); $(rustc --version)"

echo "== workload: N=$N ($((4 * N)) objects)"
python3 "$BENCH_DIR/gen_workload.py" "$N" --out "$WORK/wl" >/dev/null
STATE="$WORK/state"
export HARMONY_BENCH_N="$N" HARMONY_STATE_DIR="$STATE"

echo "== equivalence (check_equiv.py against expected.yaml)"
check() { # name file
  printf '  %-34s ' "$1"
  python3 "$BENCH_DIR/check_equiv.py" "$WORK/wl/expected.yaml" "$2" | sed -n 1,3p
}
"$BIN" render bench >"$WORK/harmony.yaml"
check "harmony-bench render (YAML)" "$WORK/harmony.yaml"
"$BIN" --output json render bench >"$WORK/harmony.json"
check "harmony-bench render (JSON)" "$WORK/harmony.json"
"$RUSTBASE" "$N" --format yaml >"$WORK/rustbase.yaml"
check "rustbase --format yaml" "$WORK/rustbase.yaml"
"$HELM" template bench "$WORK/wl/helm/bench" >"$WORK/helm.yaml"
check "helm template" "$WORK/helm.yaml"

echo "== state: one apply into $STATE"
"$BIN" apply --yes bench >/dev/null 2>"$WORK/apply.err" || { cat "$WORK/apply.err" >&2; exit 1; }
"$BIN" plan bench >/dev/null || { echo "error: the plan after apply is not empty" >&2; exit 1; }
echo "  inventory.json: $(du -h "$STATE/bench/inventory.json" | cut -f1)"

# name <TAB> command line (hyperfine -N splits it; `env` sets N per command).
COMMANDS=(
  "helm template	$HELM template bench $WORK/wl/helm/bench"
  "rustbase yaml	$RUSTBASE $N --format yaml"
  "rustbase yaml --stream	$RUSTBASE $N --format yaml --stream"
  "rustbase json	$RUSTBASE $N --format json"
  "rustbase json --stream	$RUSTBASE $N --format json --stream"
  "harmony render yaml	env HARMONY_BENCH_N=$N $BIN render bench"
  "harmony render json	env HARMONY_BENCH_N=$N $BIN --output json render bench"
  "harmony plan	env HARMONY_BENCH_N=$N HARMONY_STATE_DIR=$STATE $BIN plan bench"
  "rustbase 0 apps (startup)	$RUSTBASE 0"
  "harmony render 0 apps (startup)	env HARMONY_BENCH_N=0 $BIN render bench"
)
ARGS=(-N --output=pipe --style=none -w "$WARMUP" -r "$RUNS")
for entry in "${COMMANDS[@]}"; do
  ARGS+=(-n "${entry%%	*}" "${entry#*	}")
done

echo "== timing: $ROUNDS round(s) x $RUNS run(s) per command"
for ((k = 1; k <= ROUNDS; k++)); do
  # hyperfine's warnings (outliers, a slow first run) go to a log: the medians below say enough.
  hyperfine "${ARGS[@]}" --export-json "$WORK/round$k.json" >/dev/null 2>"$WORK/hyperfine.log" || {
    cat "$WORK/hyperfine.log" >&2
    exit 1
  }
  echo "  round $k done (load $(cut -d' ' -f1 /proc/loadavg))"
done

echo "== peak RSS (one run each, /usr/bin/time)"
if [ -x /usr/bin/time ]; then
  for entry in "${COMMANDS[@]}"; do
    read -r -a argv <<<"${entry#*	}"
    /usr/bin/time -f "%M" -o "$WORK/rss" "${argv[@]}" >/dev/null 2>&1 || true
    printf '  %-34s %7.1f MiB\n' "${entry%%	*}" "$(awk '{print $1 / 1024}' "$WORK/rss")"
  done
else
  echo "  (no /usr/bin/time)"
fi

echo "== results (wall time, median over all runs of all rounds)"
python3 - "$N" "$WORK"/round*.json <<'EOF'
import json, statistics, sys
n = int(sys.argv[1])
runs = {}
for path in sys.argv[2:]:
    for r in json.load(open(path))["results"]:
        runs.setdefault(r["command"], []).extend(r["times"])
med = {k: statistics.median(v) for k, v in runs.items()}
for k, v in runs.items():
    v = sorted(v)
    print("  %-34s median %8.1f ms  (min %7.1f, max %7.1f, %d runs)  %6.0f objects/s"
          % (k, med[k] * 1e3, v[0] * 1e3, v[-1] * 1e3, len(v), 4 * n / med[k] if med[k] else 0))
def ratio(a, b, what):
    print("  %-58s %6.2fx" % (what, med[a] / med[b]))
print("== ratios (same session)")
ratio("harmony render yaml", "rustbase yaml", "harmony render (YAML) / rustbase yaml     [target <= 1.5]")
ratio("harmony render yaml", "rustbase yaml --stream", "harmony render (YAML) / rustbase yaml --stream")
ratio("harmony render json", "rustbase json", "harmony render (JSON) / rustbase json")
ratio("harmony render json", "rustbase json --stream", "harmony render (JSON) / rustbase json --stream")
ratio("helm template", "harmony plan", "helm template / harmony plan               [several x]")
ratio("helm template", "harmony render yaml", "helm template / harmony render (YAML)")
ratio("harmony plan", "harmony render yaml", "harmony plan / harmony render (YAML)")
ratio("harmony render yaml", "harmony render json", "harmony render: YAML / JSON")
ratio("rustbase yaml", "rustbase json", "rustbase: YAML / JSON")
print("  %-58s %6.3f s %s" % ("harmony plan, absolute [target <= 0.3 s]", med["harmony plan"],
                              "(met)" if med["harmony plan"] <= 0.3 else "(MISSED)"))
EOF
