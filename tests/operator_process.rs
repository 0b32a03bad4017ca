//! The operator as a process: HTTP endpoints, metrics, structured logs, leader election, and a
//! stop in each phase of its life (start-up, before the watches synced) on a real API server.

mod common;

use common::{
    action_lines, apply, http_get, is_ready, keyset_where, operator::Operator, org_keyset,
};
use dataminer_keys_operator::api::DataMinerKeySet;
use dmk_control_plane::ControlPlane;
use k8s_openapi::api::flowcontrol::v1::{FlowSchema, PriorityLevelConfiguration};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
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
    // What the "no replica leads" alert reads (charts/.../prometheusrule.yaml).
    for (replica, value) in [(&a, 1), (&b, 0)] {
        let text = replica.metrics_text().await.unwrap();
        let line = format!("\ndataminer_keys_leader {value}\n");
        assert!(text.contains(&line), "{line:?} missing in:\n{text}");
    }

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

/// API Priority and Fairness, used to hold one kind of request on the real API server: a
/// FlowSchema sends the lists and watches of key sets in `ns` by any of its ServiceAccounts to a
/// priority level with no seats, where they wait in a queue (until the server gives up on them,
/// about 15 s later, with a 429). The test's own identity (system:masters) is exempt, so the
/// operator runs as the chart's ServiceAccount.
struct HeldKeySetLists {
    levels: Api<PriorityLevelConfiguration>,
    schemas: Api<FlowSchema>,
    level: String,
    schema: String,
}

impl HeldKeySetLists {
    /// Lists of key sets in `ns` by ServiceAccounts of `ns`.
    async fn start(cp: &ControlPlane, ns: &str) -> HeldKeySetLists {
        Self::start_for(cp, ns, ns).await
    }

    /// Lists of key sets in `ns` by ServiceAccounts of `accounts_ns`.
    async fn start_for(cp: &ControlPlane, accounts_ns: &str, ns: &str) -> HeldKeySetLists {
        let client = cp.client().await.unwrap();
        let held = HeldKeySetLists {
            levels: Api::all(client.clone()),
            schemas: Api::all(client),
            level: format!("dmk-no-seats-{ns}"),
            schema: format!("dmk-hold-keyset-lists-{ns}"),
        };
        let level: PriorityLevelConfiguration = serde_json::from_value(json!({
            "metadata": {"name": held.level},
            "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 0, "lendablePercent": 0, "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Queue",
                    "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 50}}
            }}
        }))
        .unwrap();
        let schema: FlowSchema = serde_json::from_value(json!({
            "metadata": {"name": held.schema},
            "spec": {
                "priorityLevelConfiguration": {"name": held.level},
                "matchingPrecedence": 100,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [{
                    "subjects": [{"kind": "ServiceAccount",
                        "serviceAccount": {"namespace": accounts_ns, "name": "*"}}],
                    "resourceRules": [{
                        "verbs": ["list", "watch"],
                        "apiGroups": ["keys.dataminer.services"],
                        "resources": ["dataminerkeysets"],
                        "namespaces": [ns]
                    }]
                }]
            }
        }))
        .unwrap();
        let pp = PostParams::default();
        held.levels.create(&pp, &level).await.unwrap();
        held.schemas.create(&pp, &schema).await.unwrap();
        // In effect once a ServiceAccount's list of key sets no longer comes back (the API
        // server applies the configuration asynchronously).
        let probe: Api<DataMinerKeySet> = Api::namespaced(
            cp.client_as_service_account(accounts_ns, "probe")
                .await
                .unwrap(),
            ns,
        );
        common::eventually(30, "the FlowSchema in effect", || {
            let probe = probe.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(2), probe.list(&Default::default()))
                    .await
                    .is_err()
                    .then_some(())
            }
        })
        .await;
        held
    }

    /// Until the operator's list waits in the level's queue (kube-apiserver's own gauge).
    async fn until_queued(&self, cp: &ControlPlane) {
        let client = cp.client().await.unwrap();
        let series = format!("priority_level=\"{}\"", self.level);
        common::eventually(30, "a key set list held in the queue", || {
            let client = client.clone();
            let series = series.clone();
            async move {
                let metrics = client
                    .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
                    .await
                    .ok()?;
                metrics
                    .lines()
                    .filter(|l| {
                        l.starts_with("apiserver_flowcontrol_current_inqueue_requests{")
                            && l.contains(&series)
                    })
                    .any(|l| !l.ends_with(" 0"))
                    .then_some(())
            }
        })
        .await;
    }

    async fn end(self) {
        let dp = DeleteParams::default();
        let _ = self.schemas.delete(&self.schema, &dp).await;
        let _ = self.levels.delete(&self.level, &dp).await;
    }
}

/// SIGTERM, then at most 5 s for a clean exit; returns the log.
fn stops_at_once(op: &mut Operator) -> String {
    let asked = std::time::Instant::now();
    op.stop_within(5);
    println!("exited {:?} after SIGTERM", asked.elapsed());
    op.logs()
}

/// A SIGTERM while start-up waits on the API server (here its preflight list of key sets,
/// held) ends the process at once and cleanly, instead of when the kubelet's SIGKILL comes.
#[tokio::test]
async fn a_stop_during_start_up_exits_at_once() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("stop-start").await.unwrap();
    common::chart::grant(cp, "t", &ns, None).await;
    let held = HeldKeySetLists::start(cp, &ns).await;
    let mut op = common::chart::operator(cp, "t", &ns);
    held.until_queued(cp).await;
    let logs = stops_at_once(&mut op);
    held.end().await;
    assert!(logs.contains("stopped during start-up"), "{logs}");
    assert!(!logs.contains("became leader"), "{logs}");
}

/// A start-up list the API server holds ends start-up after 10 s with a message that says so
/// (the pod restarts and says why), not a process hanging in silence.
#[tokio::test]
async fn a_held_start_up_list_ends_with_a_message() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("held-start").await.unwrap();
    common::chart::grant(cp, "t", &ns, None).await;
    let held = HeldKeySetLists::start(cp, &ns).await;
    let mut op = common::chart::operator(cp, "t", &ns);
    let status = op.wait_exit(14);
    held.end().await;
    let logs = op.logs();
    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains(
            "dataminer-keys-operator: the Kubernetes API server did not answer a list of DataMinerKeySets within 10s"
        ),
        "{logs}"
    );
}

/// A SIGTERM that lands before the watches have synced ends the process at once. kube's
/// controller holds every reconcile until its cache is ready and, shutting down gracefully,
/// stops filling that cache: without the operator's own exit for this case it would wait
/// forever (seen once on a loaded CI machine). The operator watches two namespaces; start-up
/// lists key sets in the first, and the lists in the second are held, so it leads at once
/// with a watch whose first list waits in the queue.
#[tokio::test]
async fn a_stop_before_the_watches_synced_exits_at_once() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("unsynced").await.unwrap();
    let second = cp.namespace("unsynced-held").await.unwrap();
    common::chart::grant(cp, "t", &ns, None).await;
    common::chart::grant(cp, "t", &second, None).await;
    let held = HeldKeySetLists::start_for(cp, &ns, &second).await;
    let fullname = "t-dataminer-keys-operator";
    let sa = format!("system:serviceaccount:{ns}:{fullname}");
    let groups = format!("system:serviceaccounts,system:serviceaccounts:{ns},system:authenticated");
    let mut op = Operator::start_with_env(
        cp,
        &ns,
        &[
            &format!("--lease-name={fullname}"),
            &format!("--namespace={ns},{second}"),
        ],
        &[
            ("KUBE_RS_DEBUG_IMPERSONATE_USER", &sa),
            ("KUBE_RS_DEBUG_IMPERSONATE_GROUP", &groups),
        ],
    );
    common::eventually(30, "the operator to lead", || async {
        op.logs().contains("became leader").then_some(())
    })
    .await;
    held.until_queued(cp).await;
    assert!(!op.logs().contains("watches synced"), "{}", op.logs());

    let logs = stops_at_once(&mut op);
    held.end().await;
    assert!(logs.contains("stopped before the watches synced"), "{logs}");
}
