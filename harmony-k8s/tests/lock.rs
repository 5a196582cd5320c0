//! The `k8s` topology's lock, a `coordination.k8s.io/v1` Lease per app, on the real API server:
//! taken once, renewed while held, given back, taken over from a holder that died, and refused
//! by RBAC in words that say what to grant.

use std::time::Duration;

use harmony::Diagnostic as _;
use harmony::Topology as _;
use harmony::lock::{Attempt, Holder, LockError};
use serde_json::{Value, json};

mod support;
use support::{fixture_with, runtime};

fn lease(f: &support::Fixture, app: &str) -> Option<Value> {
    f.cluster.object(
        "coordination.k8s.io/v1",
        "Lease",
        Some(f.cluster.namespace()),
        &format!("harmony-lock-{app}"),
    )
}

/// The Lease of app `shop` written as another tool (or a run that died) left it.
fn write_lease(f: &support::Fixture, body: &Value) {
    let ns = f.cluster.namespace();
    support::apply_as(
        &f.cluster,
        "test",
        &format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/harmony-lock-shop"),
        body,
        true,
    );
}

#[test]
fn one_run_holds_an_apps_lease_renews_it_and_gives_it_back_to_the_next() {
    let f = fixture_with(Default::default(), Duration::from_secs(10));
    let rt = runtime();
    let first = Holder::this_process("apply");
    let Attempt::Acquired { lock, took_over: None } = rt.block_on(f.topology.try_lock("shop", &first)).unwrap() else {
        panic!("a free lease is taken, from no one")
    };
    let held = lease(&f, "shop").expect("the lease exists");
    assert_eq!(held["spec"]["holderIdentity"], json!(first.id));
    assert_eq!(held["spec"]["leaseDurationSeconds"], json!(15));
    let holder: Holder = serde_json::from_str(held["metadata"]["annotations"]["harmony.deploy/holder"].as_str().unwrap()).unwrap();
    assert_eq!(holder, first);

    // Another run (another topology, as another process would have) finds it held, and by whom.
    let (other, _other_dir) = support::fixture_on(&f.cluster, Duration::from_secs(10));
    let second = Holder::this_process("release");
    match rt.block_on(other.try_lock("shop", &second)).unwrap() {
        Attempt::Busy { holder } => assert_eq!(holder, Some(first.clone())),
        Attempt::Acquired { .. } => panic!("a held lease was taken twice"),
    }
    // Another app's lease is another lease.
    let Attempt::Acquired { lock: cart, .. } = rt.block_on(other.try_lock("cart", &second)).unwrap() else {
        panic!("another app's lease is free")
    };

    // Renewed while held, even while no one drives the runtime.
    std::thread::sleep(Duration::from_secs(6));
    let renewed = lease(&f, "shop").unwrap();
    assert_ne!(
        renewed["spec"]["renewTime"], held["spec"]["renewTime"],
        "renewed after 5 s: {renewed}"
    );

    rt.block_on(lock.release()).unwrap();
    let released = lease(&f, "shop").unwrap();
    assert_eq!(released["spec"].get("holderIdentity"), None, "{released}");
    let Attempt::Acquired { lock, took_over } = rt.block_on(other.try_lock("shop", &second)).unwrap() else {
        panic!("a released lease is free at once")
    };
    assert_eq!(took_over, None, "a clean release leaves nothing to take over");
    assert_eq!(lease(&f, "shop").unwrap()["spec"]["leaseTransitions"], json!(1));
    rt.block_on(lock.release()).unwrap();
    rt.block_on(cart.release()).unwrap();
}

#[test]
fn a_lease_its_holder_stopped_renewing_is_taken_over_and_the_holder_named() {
    let f = fixture_with(Default::default(), Duration::from_secs(10));
    let ns = f.cluster.namespace().to_owned();
    let dead = Holder::this_process("apply");
    // As a run killed a minute ago left it.
    let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "harmony-lock-shop", "namespace": ns,
            "annotations": {"harmony.deploy/holder": serde_json::to_string(&dead).unwrap()}},
        "spec": {"holderIdentity": dead.id, "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:01:00.000000Z"}});
    write_lease(&f, &body);
    let rt = runtime();
    let me = Holder::this_process("apply");
    let Attempt::Acquired { lock, took_over } = rt.block_on(f.topology.try_lock("shop", &me)).unwrap() else {
        panic!("an expired lease is taken over")
    };
    assert_eq!(took_over, Some(dead), "the run says whom it took over from");
    assert_eq!(lease(&f, "shop").unwrap()["spec"]["holderIdentity"], json!(me.id));

    // A lease someone else holds and renews is not: a live holder written by another tool.
    rt.block_on(lock.release()).unwrap();
    // As the server takes it: microseconds, no more.
    let now = json!(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now()
    ));
    let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "harmony-lock-shop", "namespace": ns},
        "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 60, "renewTime": now}});
    write_lease(&f, &body);
    match rt.block_on(f.topology.try_lock("shop", &me)).unwrap() {
        Attempt::Busy { holder: None } => {}
        other => panic!("a live lease of another tool is left alone: {other:?}"),
    }
}

/// A user who may apply but not write Leases is told exactly that, and what to grant.
#[test]
fn a_user_who_may_not_write_leases_is_told_what_to_grant() {
    let f = fixture_with(Default::default(), Duration::from_secs(10));
    let ns = f.cluster.namespace().to_owned();
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "deployer", "namespace": ns},
        "rules": [{"apiGroups": ["", "apps"], "resources": ["*"], "verbs": ["*"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deployer", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "User", "name": "harmony-restricted", "apiGroup": "rbac.authorization.k8s.io"}]});
    for (kind, body) in [("roles", &role), ("rolebindings", &binding)] {
        support::apply_as(
            &f.cluster,
            "test",
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}/deployer"),
            body,
            true,
        );
    }
    let (restricted, _dir) = support::restricted_on(&f.cluster);
    let rt = runtime();
    let Err(err) = rt.block_on(restricted.try_lock("shop", &Holder::this_process("apply"))) else {
        panic!("a user who may not read Leases cannot take one")
    };
    assert!(matches!(err, LockError::Unavailable { .. }), "{err:?}");
    let text = format!("{err} {}", err.help());
    assert!(text.contains(&format!("Lease {ns}/harmony-lock-shop")), "{text}");
    assert!(text.contains("harmony-restricted"), "the user: {text}");
    assert!(text.contains("`leases` of group `coordination.k8s.io`"), "{text}");
    assert!(text.contains(&format!("in namespace `{ns}`")), "{text}");
    assert!(lease(&f, "shop").is_none(), "nothing was written");
}
