//! The operator as a process: HTTP endpoints, metrics, structured logs, leader election.

mod common;

use common::{
    action_lines, apply, http_get, is_ready, keyset_where, operator::Operator, org_keyset,
};
use dataminer_keys_operator::api::DataMinerKeySet;
use kube::Api;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("http").await.unwrap();
    let client = cp.client().await.unwrap();
    let keysets: Api<DataMinerKeySet> = Api::namespaced(client.clone(), &ns);
    let op = Operator::start(cp, &ns);
    let address = op.http_address().await;

    assert_eq!(
        http_get(&address, "/healthz").await,
        (200, "ok".to_string())
    );
    common::eventually(20, "/readyz to answer 200", || async {
        (http_get(&address, "/readyz").await.0 == 200).then_some(())
    })
    .await;

    apply(&keysets, &org_keyset("ks")).await.unwrap();
    keyset_where(&keysets, "ks", "Ready", is_ready).await;
    let (code, metrics) = http_get(&address, "/metrics").await;
    assert_eq!(code, 200);
    for expected in [
        "dataminer_keys_reconciles_total{result=\"ok\"}",
        "dataminer_keys_reconcile_duration_seconds_bucket",
        "dataminer_keys_actions_total{action=\"KeysCreated\"} 1",
        "dataminer_keys_keysets{state=\"Ready\"} 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn every_action_is_one_structured_log_line_without_the_key() {
    let mut e = common::Env::new(common::control_plane().await, "logs").await;
    let (keysets, secrets) = (e.keysets.clone(), e.secrets.clone());

    apply(&keysets, &org_keyset("ks")).await.unwrap();
    keyset_where(&keysets, "ks", "Ready", is_ready).await;
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"] =
        serde_json::json!({"secondary": {"revision": 4, "confirmLabel": common::LABEL}});
    apply(&keysets, &manifest).await.unwrap();
    let ks = keyset_where(&keysets, "ks", "secondary at 4", |k| {
        is_ready(k) && common::revisions(k) == (1, 4)
    })
    .await;
    e.ledger.record(&secrets.get("ks-keys").await.unwrap());

    let lines = common::eventually(10, "two action lines", || async {
        let lines = action_lines(&e.operator.logs());
        (lines.len() == 2).then_some(lines)
    })
    .await;
    let regenerate = lines
        .iter()
        .find(|l| l["action"] == "RegenerateSecondary")
        .expect("a RegenerateSecondary line");
    assert_eq!(regenerate["namespace"], e.ns.as_str());
    assert_eq!(regenerate["name"], "ks");
    // It is logged inside the reconcile span, which names the key set for every line in it.
    let span = &regenerate["span"];
    assert_eq!(
        (&span["name"], &span["namespace"], &span["keyset"]),
        (&json!("reconcile"), &json!(e.ns), &json!("ks")),
        "{regenerate}"
    );
    assert_eq!(regenerate["slot"], "secondary");
    assert_eq!(regenerate["revision"], 4);
    let fp = &ks
        .status
        .as_ref()
        .unwrap()
        .secondary
        .as_ref()
        .unwrap()
        .fingerprint;
    assert_eq!(regenerate["fingerprint"], fp.as_str());
    let created = lines
        .iter()
        .find(|l| l["action"] == "KeysCreated")
        .expect("a KeysCreated line");
    assert_eq!(created["primary_revision"], 1);
    assert_eq!(created["secondary_revision"], 1);
    assert!(
        created["primary_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    e.finish().await;
}

#[tokio::test]
async fn two_replicas_never_act_at_once_and_a_standby_takes_over() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("leader").await.unwrap();
    let client = cp.client().await.unwrap();
    let keysets: Api<DataMinerKeySet> = Api::namespaced(client.clone(), &ns);
    let mut a = Operator::start(cp, &ns);
    // Let A take the Lease first, so the roles are known.
    common::eventually(20, "replica A to lead", || async {
        a.logs().contains("became leader").then_some(())
    })
    .await;
    let mut b = Operator::start(cp, &ns);
    common::eventually(20, "replica B to stand by", || async {
        b.logs().contains("standing by").then_some(())
    })
    .await;

    apply(&keysets, &org_keyset("one")).await.unwrap();
    keyset_where(&keysets, "one", "Ready", is_ready).await;
    assert_eq!(action_lines(&a.logs()).len(), 1, "the leader acted");
    assert!(
        action_lines(&b.logs()).is_empty(),
        "the standby did not act"
    );
    assert!(!b.logs().contains("became leader"));

    // A clean stop releases the Lease: B takes over within a renew interval or two.
    a.stop();
    common::eventually(20, "replica B to lead", || async {
        b.logs().contains("became leader").then_some(())
    })
    .await;
    apply(&keysets, &org_keyset("two")).await.unwrap();
    keyset_where(&keysets, "two", "Ready", is_ready).await;
    assert!(
        action_lines(&b.logs()).iter().any(|l| l["name"] == "two"),
        "the new leader acts"
    );
    assert!(b.is_running());
    tokio::time::sleep(Duration::from_millis(100)).await;
}
