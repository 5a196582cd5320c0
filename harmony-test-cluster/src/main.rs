//! `harmony-test-cluster`: runs the test API server as a process, for trying tools against it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use harmony_test_cluster::{ArgoCd, Options, TestCluster, Workloads};

// The server allocates and frees many small JSON values per request, from a
// thread of its own; mimalloc serves that without glibc's arena growth steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An in-process Kubernetes API server for tests, run standalone.
#[derive(Debug, Parser)]
#[command(name = "harmony-test-cluster", version)]
struct Args {
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig (default: a file in a temporary directory kept while running).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Milliseconds before workloads become ready.
    #[arg(long, default_value_t = 2000)]
    ready_after: u64,
    /// Milliseconds added to every request, as a remote cluster would (for benchmarks).
    #[arg(long, default_value_t = 0)]
    latency: u64,
    /// Really run the pods' images (pulled from a registry on loopback) instead of playing
    /// them; needs root.
    #[arg(long)]
    run_images: bool,
    /// Play Argo CD: install the Application CRD and the `argocd` namespace, and sync
    /// Applications (Helm charts from OCI registries, rendered by `helm`: `HARMONY_HELM` or on
    /// `PATH`).
    #[arg(long)]
    argocd: bool,
    /// Hold an image: `REFERENCE=PROGRAM`, a static program that is the image's whole content
    /// and entrypoint. Pods whose images are all held run for real even while the others are
    /// played (needs root). Repeatable.
    #[arg(long = "image", value_name = "REFERENCE=PROGRAM", value_parser = held_image)]
    images: Vec<(String, PathBuf)>,
}

fn held_image(arg: &str) -> Result<(String, PathBuf), String> {
    let (reference, program) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not REFERENCE=PROGRAM (like nats:2.10-alpine=/usr/bin/nats-server)"))?;
    let program = std::fs::canonicalize(program)
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| format!("{program} is not a file: the program of image {reference}"))?;
    Ok((reference.to_string(), program))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let cluster = TestCluster::start_with(Options {
        port: args.port,
        ready_after: Duration::from_millis(args.ready_after),
        latency: Duration::from_millis(args.latency),
        ..Options::default()
    })?;
    if args.run_images {
        cluster.set_workloads(Workloads::Run);
    }
    if args.argocd {
        cluster.play_argocd(ArgoCd::Syncs);
    }
    for (reference, program) in &args.images {
        cluster.hold_image(reference, program);
    }
    let temp = tempfile::tempdir()?;
    let path = args.kubeconfig.unwrap_or_else(|| temp.path().join("kubeconfig"));
    cluster.write_kubeconfig(&path)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "KUBECONFIG={}", path.display())?;
    if args.run_images {
        writeln!(
            out,
            "harmony-test-cluster at {} runs images: its kubelet pulls them from registries on loopback and runs them; \
             a pod is ready once its process kept running {} ms",
            cluster.url(),
            args.ready_after
        )?;
    } else {
        writeln!(
            out,
            "harmony-test-cluster at {} plays a healthy cluster: workloads become ready after {} ms",
            cluster.url(),
            args.ready_after
        )?;
    }
    for (reference, program) in &args.images {
        writeln!(
            out,
            "harmony-test-cluster runs pods of image {reference} for real: {}",
            program.display()
        )?;
    }
    if args.argocd {
        writeln!(
            out,
            "harmony-test-cluster plays Argo CD: Applications in namespace argocd sync their Helm charts from OCI registries"
        )?;
    }
    out.flush()?;
    drop(out);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        Ok::<(), std::io::Error>(())
    })?;
    drop(cluster);
    Ok(())
}
