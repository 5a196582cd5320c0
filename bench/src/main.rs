//! `harmony-bench`: the generated CLI over the benchmark workload (`bench`).
//! `HARMONY_BENCH_N` sets how many apps it renders.

harmony_registry::main!(bench_apps);
