//! The daemonless image builder against buildah, on the same input: one
//! prebuilt binary made into an image holding `/app/server`.
//!
//! - `package/daemonless/<size>`: what `RustBinary` does after `cargo build`:
//!   read the binary, pack it into a reproducible layer, write the config
//!   ([`harmony::build::pack_binary`]), in process.
//! - `package/buildah/<size>`: `Buildah::build_dockerfile` on
//!   `FROM scratch` + `COPY server /app/server`: `buildah bud` into a private
//!   vfs store, `buildah push` to an OCI layout, read back into an `Artifact`.
//!
//! The binary is this benchmark's own executable, repeated or cut to 1 MiB
//! and 16 MiB (real machine code, so gzip works as hard as on a server
//! binary). Both sides compress with gzip at their defaults.
//!
//! `cargo bench -p harmony --bench build` (about a minute on 2 cores; needs buildah).

use harmony::Diagnostic as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use harmony::build::{BuildCx, Buildah, DockerfileBuilder, pack_binary};
use harmony::release::Version;

const SIZES: [(&str, usize); 2] = [("1MiB", 1 << 20), ("16MiB", 16 << 20)];

/// `len` bytes of this executable, repeated as needed.
fn binary(len: usize) -> Vec<u8> {
    let exe = std::fs::read(std::env::current_exe().expect("the bench knows its path")).expect("the bench reads itself");
    exe.iter().copied().cycle().take(len).collect()
}

fn packaging(c: &mut Criterion) {
    let mut group = c.benchmark_group("package");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for (label, len) in SIZES {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let context = tmp.path().join("context");
        std::fs::create_dir_all(&context).expect("the context dir");
        std::fs::write(context.join("server"), binary(len)).expect("the binary");
        std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY server /app/server\n").expect("the Dockerfile");
        let scratch = tmp.path().join("scratch");
        let cx = BuildCx::new(&context, &scratch, "server", Version::new(0, 1, 0));
        group.throughput(Throughput::Bytes(len as u64));

        group.bench_with_input(BenchmarkId::new("daemonless", label), context.as_path(), |b, context| {
            b.iter(|| {
                let bytes = std::fs::read(context.join("server")).expect("the binary");
                black_box(pack_binary(&cx, "server", bytes, Some(8080), "x86_64-unknown-linux-gnu").expect("packed"))
            })
        });

        let buildah = Buildah::in_scratch(&scratch);
        group.bench_with_input(BenchmarkId::new("buildah", label), context.as_path(), |b, context| {
            b.iter(|| {
                black_box(
                    buildah
                        .build_dockerfile(&context.join("Dockerfile"), context, &cx)
                        .unwrap_or_else(|e| panic!("{e}\nhelp: {}", e.help())),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, packaging);
criterion_main!(benches);
