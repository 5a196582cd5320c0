//! Render and plan of the peer workload (`bench_apps::Bench`) for N = 10, 100
//! and 1000 apps (4 objects each), in process, with criterion.
//!
//! Groups:
//! - `build/N`: only the typed k8s-openapi structs (`bench_apps::app_objects`),
//!   what the Rust floor builds before it serializes.
//! - `render/N`: the Score tree to erased objects (`engine::render`): build the
//!   typed k8s-openapi structs and turn each into a `serde_json::Value`.
//! - `observe/N`: read the stored state back (`Local::observe`: `inventory.json`
//!   parsed into values, plus the state key).
//! - `clone/N`: a deep copy of every rendered body, what a redaction that
//!   always copies costs (the CLI's `render` still copies each body).
//! - `diff/N`: `Plan::compute` on an unchanged target (redact + compare every object).
//! - `plan/N`: the whole `engine::plan` (render + observe + diff), what
//!   `harmony-bench plan bench` does after startup.
//!
//! The state directory is made once per N by one `engine::plan_and_apply` into a temp
//! dir. Sample counts are small so the whole run takes about a minute on 2
//! cores: `cargo bench -p bench-apps --bench render_plan`.
//!
//! Serialization (YAML vs JSON) is not here: it happens in the CLI; the
//! whole-process comparison in `bench/run.sh` measures it (docs/perf.md).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bench_apps::Bench;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use harmony::K8sDeploy;
use harmony::capability::ApplySet;
use harmony::engine;
use harmony::engine::plan::Plan;
use harmony::engine::run::Silent;
use harmony::local::Local;

const SIZES: [usize; 3] = [10, 100, 1000];
/// Under `cargo test --all-targets` (no `--bench` argument) criterion runs each
/// benchmark once as a smoke test; the one-time setup (an apply of up to 1000
/// apps in a debug build) would dominate it, so only the smallest size runs.
const TEST_SIZES: [usize; 1] = [10];
const APP: &str = "bench";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime starts")
}

/// A state directory holding one apply of `score`.
fn applied(rt: &tokio::runtime::Runtime, score: &Bench) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let local = Local::at(dir.path());
    let plan = rt
        .block_on(engine::plan_and_apply(APP, score, &local, Arc::new(Silent)))
        .expect("the workload applies");
    assert_eq!(plan.summary().add, 4 * score.apps.len(), "a fresh state adds every object");
    dir
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let set = ApplySet::new(APP);
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if benchmarking { &SIZES } else { &TEST_SIZES };
    for &n in sizes {
        let score = Bench::new(n);
        let state = applied(&rt, &score);
        let objects = 4 * n as u64;

        let mut g = c.benchmark_group("build");
        g.throughput(Throughput::Elements(objects));
        g.bench_with_input(BenchmarkId::from_parameter(n), &score, |b, score| {
            b.iter(|| {
                let typed: Vec<_> = score.apps.iter().map(|a| bench_apps::app_objects(a.index)).collect();
                black_box(typed)
            });
        });
        g.finish();

        let mut g = c.benchmark_group("render");
        g.throughput(Throughput::Elements(objects));
        g.bench_with_input(BenchmarkId::from_parameter(n), &score, |b, score| {
            b.iter(|| black_box(engine::render::<Bench>(APP, "local", score).expect("renders")));
        });
        g.finish();

        let local = Local::at(state.path());
        let mut g = c.benchmark_group("observe");
        g.throughput(Throughput::Elements(objects));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(rt.block_on(local.observe(&set)).expect("reads the state")));
        });
        g.finish();

        let desired = engine::render::<Bench>(APP, "local", &score).expect("renders");
        let observed = rt.block_on(local.observe(&set)).expect("reads the state");
        let mut g = c.benchmark_group("clone");
        g.throughput(Throughput::Elements(objects));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let copies: Vec<_> = desired.iter().map(|o| o.body().clone()).collect();
                black_box(copies)
            });
        });
        g.finish();

        let mut g = c.benchmark_group("diff");
        g.throughput(Throughput::Elements(objects));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let plan = Plan::compute(APP, "local", &desired, &observed);
                assert!(plan.is_empty());
                black_box(plan)
            });
        });
        g.finish();

        let mut g = c.benchmark_group("plan");
        g.throughput(Throughput::Elements(objects));
        g.bench_with_input(BenchmarkId::from_parameter(n), &score, |b, score| {
            b.iter(|| {
                let plan = rt.block_on(engine::plan(APP, score, &local)).expect("plans");
                assert!(plan.is_empty(), "an unchanged workload plans no changes");
                black_box(plan)
            });
        });
        g.finish();
    }
}

criterion_group! {
    name = render_plan;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(render_plan);
