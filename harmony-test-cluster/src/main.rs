//! `harmony-test-cluster`: runs the real control plane and our kubelet until stopped, for trying
//! Harmony, kubectl or anything else against them (`scripts/test-cluster`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use harmony_test_cluster::{ControlPlane, FaultProxy, Options, Workloads};

/// The real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
/// kube-scheduler) and our kubelet as its node, until stopped.
#[derive(Debug, Parser)]
#[command(name = "harmony-test-cluster", version)]
struct Args {
    /// Where to write the kubeconfig (default: a file in the control plane's directory).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Milliseconds before played pods are ready (and that a real container must keep running).
    #[arg(long, default_value_t = 2000)]
    ready_after: u64,
    /// Milliseconds added to every request, as a remote cluster would: the kubeconfig then points
    /// at a proxy in front of the API server that adds them.
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
    /// Make the played pods of a namespace fail on purpose: `NAMESPACE=crash-loop` (each
    /// container exits 1 and is restarted with a growing back-off), `NAMESPACE=image-pull`
    /// (`ImagePullBackOff`) or `NAMESPACE=never-ready` (pods stay `ContainerCreating`).
    /// Repeatable.
    #[arg(long = "fail", value_name = "NAMESPACE=HOW", value_parser = failing_namespace)]
    fail: Vec<(String, String, Workloads)>,
}

fn failing_namespace(arg: &str) -> Result<(String, String, Workloads), String> {
    let (namespace, how) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not NAMESPACE=HOW (like shop=crash-loop)"))?;
    let workloads = match how {
        "crash-loop" => Workloads::CrashLoop {
            exit_code: 1,
            log: vec![format!("harmony-test-cluster --fail {namespace}=crash-loop: exiting with 1")],
        },
        "image-pull" => Workloads::ImagePullBackOff,
        "never-ready" => Workloads::NeverReady,
        other => return Err(format!("`{other}` is not a way to fail: crash-loop, image-pull or never-ready")),
    };
    Ok((namespace.to_owned(), how.to_owned(), workloads))
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
    // Stop (and stop everything started) when whoever started this goes away; one started
    // detached (its parent already init) runs until stopped.
    if rustix::process::getppid().is_some_and(|p| p.as_raw_nonzero().get() != 1) {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
    }
    let ready_after = Duration::from_millis(args.ready_after);
    let plane = ControlPlane::start(Options {
        workloads: if args.run_images {
            Workloads::Run
        } else {
            Workloads::Ready { after: ready_after }
        },
        ready_after,
        images: args.images.clone(),
        ..Options::default()
    })?;
    if args.argocd {
        plane.play_argocd(harmony_test_cluster::ArgoCd::Syncs)?;
    }
    for (namespace, _, workloads) in &args.fail {
        plane.set_workloads_in(namespace, workloads.clone());
    }
    let latency = Duration::from_millis(args.latency);
    let proxy = if latency.is_zero() { None } else { Some(plane.proxy(latency)?) };
    let server = proxy.as_ref().map_or_else(|| plane.url(), FaultProxy::url);
    let path = args.kubeconfig.unwrap_or_else(|| plane.dir().join("admin.kubeconfig"));
    std::fs::write(&path, plane.kubeconfig_at(&server, "default"))?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "KUBECONFIG={}", path.display())?;
    writeln!(
        out,
        "Kubernetes {} at {} (etcd {}), node {}: logs in {}",
        harmony_test_cluster::kubernetes_version(),
        plane.url(),
        harmony_test_cluster::etcd_version(),
        plane.node(),
        plane.dir().display()
    )?;
    if proxy.is_some() {
        writeln!(out, "every request through {server} waits {} ms more", args.latency)?;
    }
    if args.run_images {
        writeln!(
            out,
            "the kubelet runs images: it pulls them from registries on loopback; a container is ready once it kept running {} ms",
            args.ready_after
        )?;
    } else {
        writeln!(out, "the kubelet plays pods: ready {} ms after they are bound", args.ready_after)?;
    }
    if args.argocd {
        writeln!(
            out,
            "Argo CD is played: Applications in namespace argocd sync their Helm charts from OCI registries"
        )?;
    }
    for (namespace, how, _) in &args.fail {
        writeln!(out, "played pods in namespace {namespace} fail on purpose: {how}")?;
    }
    for (reference, program) in &args.images {
        writeln!(out, "pods of image {reference} run for real: {}", program.display())?;
    }
    out.flush()?;
    drop(out);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
        Ok::<(), std::io::Error>(())
    })?;
    drop(proxy);
    drop(plane);
    Ok(())
}
