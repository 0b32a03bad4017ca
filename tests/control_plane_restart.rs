//! The operator through API server and etcd crashes: the harness restarts a component in place
//! (same ports, same data), and rotations requested around the restarts still run exactly once.
//! This binary owns its control plane, so restarting it disturbs no other test.

mod common;

use common::{LABEL, apply, is_ready, keyset_where, operator::Operator, org_keyset, revisions};
use dataminer_keys_operator::api::DataMinerKeySet;
use dmk_control_plane::{Component, ControlPlane, Options};
use kube::Api;
use serde_json::json;

fn with_request(revision: i64) -> serde_json::Value {
    let mut m = org_keyset("ks");
    m["spec"]["regenerate"]["primary"] = json!({ "revision": revision, "confirmLabel": LABEL });
    m
}

#[tokio::test]
async fn rotations_across_api_server_and_etcd_crashes_run_exactly_once() {
    if std::env::var("DMK_TEST_CLUSTER").as_deref() == Ok("kubeconfig") {
        return; // an attached cluster is not ours to crash
    }
    let mut cp = ControlPlane::start(&Options {
        crd_dir: Some(common::crd_dir()),
        ..Default::default()
    })
    .await
    .unwrap();
    let ns = cp.namespace("restart").await.unwrap();
    let mut op = Operator::start(&cp, &ns);
    let client = cp.client().await.unwrap();
    let api: Api<DataMinerKeySet> = Api::namespaced(client.clone(), &ns);
    apply(&api, &org_keyset("ks")).await.unwrap();
    keyset_where(&api, "ks", "Ready", is_ready).await;

    // A request, then kube-apiserver crashes (SIGKILL) and comes back on the same port.
    apply(&api, &with_request(2)).await.unwrap();
    let before = cp.pids();
    cp.restart(Component::ApiServer, true).await.unwrap();
    let after_api = cp.pids();
    assert_eq!(
        (before[0] == after_api[0], before[1] == after_api[1]),
        (true, false),
        "only kube-apiserver was replaced"
    );
    keyset_where(&api, "ks", "primary 2 after an API server crash", |k| {
        is_ready(k) && revisions(k) == (2, 1)
    })
    .await;

    // etcd crashes under the API server, with a request made just before.
    apply(&api, &with_request(3)).await.unwrap();
    cp.restart(Component::Etcd, true).await.unwrap();
    assert_ne!(cp.pids()[0], after_api[0], "etcd was replaced");
    let ks = keyset_where(&api, "ks", "primary 3 after an etcd crash", |k| {
        is_ready(k) && revisions(k) == (3, 1)
    })
    .await;

    // Each revision exactly once in history, the operator alive, its keys recorded.
    let revisions_seen: Vec<Option<i64>> = ks
        .status
        .as_ref()
        .unwrap()
        .history
        .iter()
        .filter(|h| h.action == "RegeneratePrimary")
        .map(|h| h.revision)
        .collect();
    assert_eq!(revisions_seen, [Some(3), Some(2)]);
    assert!(op.is_running(), "the operator rode out both crashes");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, &ns);
    let mut ledger = common::KeyLedger::default();
    let (p, _) = ledger.record(&secrets.get("ks-keys").await.unwrap());
    assert_eq!(
        ks.status
            .as_ref()
            .unwrap()
            .primary
            .as_ref()
            .unwrap()
            .fingerprint,
        dataminer_keys_operator::keys::fingerprint(p.as_bytes())
    );
    let client = cp.client().await.unwrap();
    ledger.assert_no_leaks(&client, &ns, &op.logs()).await;
    op.stop();
    cp.stop();
}
