//! Leader election that cannot overlap, on the real API server with real processes: a leader
//! whose Lease calls stall stops before the standby acts; a leader frozen while another took
//! over never resumes; a skewed clock does not hand over a healthy lease.

mod common;

use common::{
    apply, is_ready, keyset_where,
    operator::Operator,
    org_keyset,
    proxy::{StallingProxy, kubeconfig_via, server_address},
};
use dataminer_keys_operator::api::DataMinerKeySet;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use std::time::Duration;

const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

/// The timestamp of the first JSON log line whose message is `message`.
fn logged_at(log: &str, message: &str) -> Option<Timestamp> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == message)
        .and_then(|v| v["timestamp"].as_str()?.parse().ok())
}

async fn wait_logged(op: &Operator, message: &str, secs: u64) -> Timestamp {
    common::eventually(secs, message, || async { logged_at(&op.logs(), message) }).await
}

#[tokio::test]
async fn a_leader_whose_lease_calls_stall_stops_before_the_standby_acts() {
    let cp = common::control_plane().await;
    let Some(kubeconfig) = cp.kubeconfig_path() else {
        return; // attached to an outside cluster: no kubeconfig to route through the proxy
    };
    let ns = cp.namespace("stall").await.unwrap();
    let proxy = StallingProxy::start(server_address(kubeconfig)).await;
    let dir = tempfile::tempdir().unwrap();
    let via_proxy = kubeconfig_via(kubeconfig, &proxy.address, dir.path());
    let lease = format!("--leader-election-namespace={ns}");
    let mut a = Operator::start_with_kubeconfig(&ns, &[&lease], &[], Some(via_proxy));
    wait_logged(&a, "became leader", 20).await;
    let b = Operator::start(cp, &ns);
    wait_logged(&b, "another replica leads; standing by", 20).await;

    proxy.stall();
    let stalled_at = Timestamp::now();
    let lost = wait_logged(
        &a,
        "lost leadership; exiting so that only one replica acts",
        20,
    )
    .await;
    let status = a.wait_exit(10);
    assert!(!status.success(), "the old leader exits: {status}");
    let took_over = wait_logged(&b, "became leader", 30).await;
    assert!(
        lost < took_over,
        "the stalled leader stopped at {lost}, the standby led from {took_over}"
    );
    // Within the renew deadline (10 s) of its last renew, which came before the stall.
    assert!(
        lost.duration_since(stalled_at).as_secs_f64() <= 11.0,
        "stopped {} after the stall",
        lost.duration_since(stalled_at)
    );

    // The new leader acts.
    let keysets: Api<DataMinerKeySet> = Api::namespaced(cp.client().await.unwrap(), &ns);
    apply(&keysets, &org_keyset("after")).await.unwrap();
    keyset_where(&keysets, "after", "Ready", is_ready).await;
}

#[tokio::test]
async fn a_leader_frozen_while_another_took_over_never_resumes() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("frozen").await.unwrap();
    let keysets: Api<DataMinerKeySet> = Api::namespaced(cp.client().await.unwrap(), &ns);
    let mut a = Operator::start(cp, &ns);
    wait_logged(&a, "became leader", 20).await;
    let mut b = Operator::start(cp, &ns);
    wait_logged(&b, "another replica leads; standing by", 20).await;

    // A freezes (a stalled node); B takes over after the lease duration, then stops cleanly and
    // releases the Lease, which is free when A wakes up.
    a.signal(SIGSTOP);
    wait_logged(&b, "became leader", 40).await;
    b.stop();
    apply(&keysets, &org_keyset("while-frozen")).await.unwrap();
    a.signal(SIGCONT);

    let status = a.wait_exit(15);
    assert!(!status.success(), "the frozen leader exits: {status}");
    let log = a.logs();
    assert!(
        log.contains("lost leadership; exiting"),
        "it knows why it stops:\n{log}"
    );
    assert!(
        !common::action_lines(&log)
            .iter()
            .any(|l| l["name"] == "while-frozen"),
        "the frozen leader acted after waking up"
    );
    let ks = keysets.get("while-frozen").await.unwrap();
    assert!(ks.status.is_none(), "nobody reconciled it: {:?}", ks.status);
}

#[tokio::test]
async fn a_skewed_clock_does_not_hand_over_a_healthy_lease() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("skew").await.unwrap();
    // The leader's clock runs an hour behind: every renewTime it writes looks an hour old.
    let mut a = Operator::start_with_env(cp, &ns, &[], &[("DMK_TEST_CLOCK_SKEW_SECONDS", "-3600")]);
    wait_logged(&a, "became leader", 20).await;
    // The standby's clock runs ahead.
    let b = Operator::start_with_env(cp, &ns, &[], &[("DMK_TEST_CLOCK_SKEW_SECONDS", "120")]);
    wait_logged(&b, "another replica leads; standing by", 20).await;
    // Longer than a lease duration (15 s) plus a retry.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        !b.logs().contains("became leader"),
        "the standby took a healthy lease"
    );
    assert!(a.is_running(), "the leader still leads");
    let keysets: Api<DataMinerKeySet> = Api::namespaced(cp.client().await.unwrap(), &ns);
    apply(&keysets, &org_keyset("skewed")).await.unwrap();
    keyset_where(&keysets, "skewed", "Ready", is_ready).await;
    assert!(
        common::action_lines(&a.logs())
            .iter()
            .any(|l| l["name"] == "skewed")
    );
}
