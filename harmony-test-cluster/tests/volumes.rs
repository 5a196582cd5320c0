//! Persistent volumes: the default StorageClass's provisioner makes a volume for each claim,
//! the real kube-controller-manager binds the two and the real scheduler places the pod, and
//! the kubelet mounts the volume's directory into the container it runs. What a container writes
//! there outlives its restarts and its pod, and no removal of a container's root reaches it.
//! The containers run the static busybox (Debian's `busybox-static`) as a held image. Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{apply, events, get, request, seen_pods, wait_until};
use harmony_test_cluster::{Options, PROVISIONER, STORAGE_CLASS, TestCluster};
use serde_json::{Value, json};

/// The held image: busybox is its whole content, `/busybox` its entrypoint.
const BUSYBOX: &str = "harmony.test/busybox:volumes";

fn cluster() -> TestCluster {
    let cluster = TestCluster::start_with(Options {
        ready_after: Duration::from_millis(100),
        ..Options::default()
    })
    .expect("start");
    cluster.hold_image(BUSYBOX, "/bin/busybox");
    cluster
}

/// A container of the held busybox that runs `script` with `sh -c`, the pod's uid in `POD_UID`.
fn busybox(script: &str, mounts: Value) -> Value {
    json!({
        "name": "app",
        "image": BUSYBOX,
        "command": ["/busybox", "sh", "-c", script],
        "env": [{"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}],
        "volumeMounts": mounts,
    })
}

fn pod(cluster: &TestCluster, ns: &str, name: &str) -> Option<Value> {
    cluster.object("v1", "Pod", Some(ns), name)
}

fn ready(pod: &Value) -> bool {
    pod["status"]["containerStatuses"][0]["ready"] == true
}

/// The lines of a file on the host (none if it is not there).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The mount points of this machine at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// The claim once Bound, and the PersistentVolume it is bound to.
fn bound(cluster: &TestCluster, ns: &str, claim: &str) -> (Value, Value) {
    let claim = wait_until(
        &format!("claim {ns}/{claim} to be bound"),
        || {
            cluster
                .object("v1", "PersistentVolumeClaim", Some(ns), claim)
                .filter(|c| c["status"]["phase"] == "Bound")
        },
        || format!("{:?}", cluster.object("v1", "PersistentVolumeClaim", Some(ns), claim)),
    );
    let name = claim["spec"]["volumeName"].as_str().expect("volumeName").to_owned();
    let volume = cluster.object("v1", "PersistentVolume", None, &name).expect("the claim's volume");
    (claim, volume)
}

/// The volume is the one the provisioner made for this claim, and kube-controller-manager bound
/// them; its directory, under the cluster's own.
fn check_provisioned(cluster: &TestCluster, claim: &Value, volume: &Value, storage: &str) -> PathBuf {
    let annotations = &claim["metadata"]["annotations"];
    assert_eq!(claim["spec"]["storageClassName"], STORAGE_CLASS, "the default class: {claim}");
    assert_eq!(annotations["volume.kubernetes.io/storage-provisioner"], PROVISIONER, "{claim}");
    assert_eq!(
        annotations["pv.kubernetes.io/bind-completed"], "yes",
        "bound by the controller: {claim}"
    );
    assert_eq!(
        volume["metadata"]["name"],
        format!("pvc-{}", claim["metadata"]["uid"].as_str().unwrap())
    );
    assert_eq!(volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"], PROVISIONER);
    assert_eq!(volume["status"]["phase"], "Bound");
    let spec = &volume["spec"];
    assert_eq!(spec["claimRef"]["uid"], claim["metadata"]["uid"]);
    assert_eq!(spec["claimRef"]["name"], claim["metadata"]["name"]);
    assert_eq!(spec["capacity"]["storage"], storage);
    assert_eq!(spec["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(spec["storageClassName"], STORAGE_CLASS);
    assert_eq!(spec["persistentVolumeReclaimPolicy"], "Delete");
    let path = PathBuf::from(spec["hostPath"]["path"].as_str().expect("a hostPath volume"));
    let volumes = std::fs::canonicalize(cluster.plane().volumes_dir()).expect("the volumes' directory");
    assert!(path.starts_with(&volumes), "{} is under {}", path.display(), volumes.display());
    assert!(path.is_dir(), "{}", path.display());
    path
}

#[test]
fn the_default_class_is_the_host_path_provisioners() {
    let cluster = cluster();
    let class = cluster
        .object("storage.k8s.io/v1", "StorageClass", None, STORAGE_CLASS)
        .expect("the StorageClass");
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(class["provisioner"], PROVISIONER);
    assert_eq!(class["volumeBindingMode"], "Immediate");
    assert_eq!(class["reclaimPolicy"], "Delete");
}

/// A StatefulSet's claim template gets a volume; the pod's data is there for the pod the
/// controller makes in its place; deleting the claim deletes the volume and its directory.
#[test]
fn a_statefulsets_data_outlives_its_pod_and_goes_with_its_claim() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    let script = "echo \"$POD_UID\" >> /data/runs && /busybox cat /data/runs && exec /busybox sleep 3600";
    apply(
        &cluster,
        &format!("/apis/apps/v1/namespaces/{ns}/statefulsets/db"),
        &json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": ns},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [busybox(script, json!([{"name": "data", "mountPath": "/data"}]))]},
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
                }],
            },
        }),
    );
    let (claim, volume) = bound(&cluster, &ns, "data-db-0");
    let dir = check_provisioned(&cluster, &claim, &volume, "64Mi");
    assert!(
        events(&cluster, &ns).iter().any(|e| e["reason"] == "ProvisioningSucceeded"
            && e["involvedObject"]["name"] == "data-db-0"
            && e["message"] == format!("Successfully provisioned volume {}", volume["metadata"]["name"].as_str().unwrap())),
        "the provisioner says what it did"
    );

    let first = wait_until("db-0 to run", || pod(&cluster, &ns, "db-0").filter(ready), seen_pods(&cluster, &ns));
    let first_uid = first["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(first["spec"]["nodeName"], "harmony-node", "placed by the real scheduler");
    assert_eq!(
        lines(&dir.join("runs")),
        vec![first_uid.clone()],
        "the container wrote into the volume"
    );

    // The controller makes db-0 again, with the same claim: the first run's line is there.
    let answer = request(&cluster, "DELETE", &format!("/api/v1/namespaces/{ns}/pods/db-0"), None, "");
    assert_eq!(answer.code, 200, "{}", answer.body);
    let second = wait_until(
        "a new db-0 to run",
        || pod(&cluster, &ns, "db-0").filter(|p| p["metadata"]["uid"] != first_uid.as_str() && ready(p)),
        seen_pods(&cluster, &ns),
    );
    let second_uid = second["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(lines(&dir.join("runs")), [first_uid.clone(), second_uid.clone()]);
    let log = wait_until(
        "the new container's log",
        || {
            let answer = get(&cluster, &format!("/api/v1/namespaces/{ns}/pods/db-0/log"));
            (answer.code == 200 && answer.body.lines().count() == 2).then_some(answer.body)
        },
        String::new,
    );
    assert_eq!(
        log,
        format!("{first_uid}\n{second_uid}\n"),
        "the new container read both runs' lines"
    );
    let (again, _) = bound(&cluster, &ns, "data-db-0");
    assert_eq!(again["metadata"]["uid"], claim["metadata"]["uid"], "the same claim");

    // Reclaim policy Delete: the claim goes, then its volume and its directory.
    let answer = request(
        &cluster,
        "DELETE",
        &format!("/apis/apps/v1/namespaces/{ns}/statefulsets/db"),
        None,
        "",
    );
    assert_eq!(answer.code, 200, "{}", answer.body);
    let answer = request(
        &cluster,
        "DELETE",
        &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/data-db-0"),
        None,
        "",
    );
    assert_eq!(answer.code, 200, "{}", answer.body);
    let name = volume["metadata"]["name"].as_str().unwrap().to_owned();
    wait_until(
        "the volume to be deleted",
        || cluster.object("v1", "PersistentVolume", None, &name).is_none().then_some(()),
        || format!("{:?}", cluster.object("v1", "PersistentVolume", None, &name)),
    );
    assert!(!dir.exists(), "{} is removed with its volume", dir.display());
}

/// A container that exits is restarted; its volumes are unmounted from its root in between and
/// when its pod goes, and neither the restarts nor the removal of the pod's roots touch what it
/// wrote: on a claim's volume, and on a `hostPath` (made by the kubelet, `DirectoryOrCreate`).
#[test]
fn restarts_and_deleting_the_pod_keep_the_volumes_data() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    let host = tempfile::tempdir().expect("a directory of the host");
    let host_dir = host.path().join("made-by-the-kubelet");
    apply(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/data"),
        &json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
        }),
    );
    let script = "echo \"$POD_UID\" >> /data/runs && echo \"$POD_UID\" >> /host/runs && exit 3";
    apply(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/pods/writer"),
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "writer", "namespace": ns},
            "spec": {
                "containers": [busybox(script, json!([
                    {"name": "data", "mountPath": "/data"},
                    {"name": "host", "mountPath": "/host"},
                ]))],
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "host", "hostPath": {"path": host_dir.display().to_string(), "type": "DirectoryOrCreate"}},
                ],
            },
        }),
    );
    let (claim, volume) = bound(&cluster, &ns, "data");
    let dir = check_provisioned(&cluster, &claim, &volume, "1Mi");
    let restarted = wait_until(
        "the container to be restarted twice",
        || pod(&cluster, &ns, "writer").filter(|p| p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(2)),
        seen_pods(&cluster, &ns),
    );
    let uid = restarted["metadata"]["uid"].as_str().unwrap().to_owned();
    let status = &restarted["status"]["containerStatuses"][0];
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3);
    // Each run that ended (counted as a restart) appended its line first.
    let ended = status["restartCount"].as_u64().unwrap() as usize;
    for file in [dir.join("runs"), host_dir.join("runs")] {
        let runs = lines(&file);
        assert!(
            runs.len() >= ended,
            "every run's line is kept across restarts ({ended} ended): {runs:?}"
        );
        assert!(runs.iter().all(|l| *l == uid), "{runs:?}");
    }

    let kubelet = cluster.plane().dir().join("kubelet");
    let roots = || -> Vec<PathBuf> {
        std::fs::read_dir(&kubelet)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{ns}_writer_")))
            })
            .collect()
    };
    let pod_dirs = roots();
    assert_eq!(pod_dirs.len(), 1, "the pod's directory: {pod_dirs:?}");
    let answer = request(&cluster, "DELETE", &format!("/api/v1/namespaces/{ns}/pods/writer"), None, "");
    assert_eq!(answer.code, 200, "{}", answer.body);
    wait_until(
        "the pod's directory to be removed",
        || (pod(&cluster, &ns, "writer").is_none() && roots().is_empty()).then_some(()),
        || {
            format!(
                "roots {:?}; lines on the claim's volume {:?}, on the hostPath {:?}",
                roots(),
                lines(&dir.join("runs")),
                lines(&host_dir.join("runs"))
            )
        },
    );
    assert!(mounts_under(&pod_dirs[0]).is_empty(), "{:?}", mounts_under(&pod_dirs[0]));
    let (on_claim, on_host) = (lines(&dir.join("runs")), lines(&host_dir.join("runs")));
    assert!(on_claim.len() >= ended, "the claim's volume keeps its data: {on_claim:?}");
    assert!(on_host.len() >= ended, "the hostPath keeps its data: {on_host:?}");
    let (claim, _) = bound(&cluster, &ns, "data");
    assert_eq!(claim["metadata"]["uid"], volume["spec"]["claimRef"]["uid"], "the claim stays bound");
}

/// A pod whose claim is not bound is not started: it waits in `ContainerCreating`, with
/// kubelet's `FailedMount` event. (The scheduler places no such pod: this one names its node.)
#[test]
fn a_pod_whose_claim_is_not_bound_waits_for_it() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    apply(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/nowhere"),
        &json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "nowhere", "namespace": ns},
            "spec": {
                "storageClassName": "no-such-class",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Mi"}},
            },
        }),
    );
    apply(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/pods/waits"),
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "waits", "namespace": ns},
            "spec": {
                "nodeName": cluster.plane().node(),
                "containers": [{"name": "app", "image": "example.com/app:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "nowhere"}}],
            },
        }),
    );
    let message = format!(
        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[data]: \
         error processing PVC {ns}/nowhere: PVC is not bound"
    );
    let event = wait_until(
        "the FailedMount event",
        || {
            events(&cluster, &ns)
                .into_iter()
                .find(|e| e["reason"] == "FailedMount" && e["involvedObject"]["name"] == "waits")
        },
        || format!("{:?}", events(&cluster, &ns)),
    );
    assert_eq!(event["message"], message.as_str());
    assert_eq!(event["type"], "Warning");
    assert!(event["involvedObject"]["fieldPath"].is_null(), "about the pod: {event}");
    let waiting = wait_until(
        "the pod's status",
        || pod(&cluster, &ns, "waits").filter(|p| p["status"]["containerStatuses"].is_array()),
        seen_pods(&cluster, &ns),
    );
    assert_eq!(waiting["status"]["phase"], "Pending");
    assert_eq!(
        waiting["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    let claim = cluster
        .object("v1", "PersistentVolumeClaim", Some(&ns), "nowhere")
        .expect("the claim");
    assert_eq!(claim["status"]["phase"], "Pending");
    assert!(
        cluster
            .objects("v1", "PersistentVolume")
            .iter()
            .all(|v| v["spec"]["claimRef"]["uid"] != claim["metadata"]["uid"]),
        "no volume for a class the provisioner does not serve"
    );
}
