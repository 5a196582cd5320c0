//! `harmony-bench`: the generated CLI over the benchmark workload (`bench`).
//! `HARMONY_BENCH_N` sets how many apps it renders. It carries the `k8s`
//! topology, for the cluster benchmark (`bench/cluster.sh`).

harmony_registry::main!(bench_apps, harmony_k8s);
