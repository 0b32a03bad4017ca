//! How long key sets wait while the operator restarts or hands over, with N key sets:
//! - `restart`: SIGTERM, then the same replica starts again (a rolling upgrade of a single
//!   replica), with a regenerate requested while it is down;
//! - `failover`: two replicas; the leader SIGKILLed (its Lease runs out) or SIGTERMed (it
//!   releases its Lease on the way out), and a regenerate requested at once.
//!
//! Each regenerate raises one key set's primary revision by one (the rotation phase left every
//! primary at 2). The clock starts when the leader is signalled.

use std::time::{Duration, Instant};

use dataminer_keys_operator::api::DataMinerKeySet;
use dmk_control_plane::kit::operator::Operator;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde::Serialize;
use serde_json::json;

use crate::{Result, apiserver::Requests, workload::LABEL};

#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    /// Until every key set was verified again (the new process's reconcile counter reached the
    /// number of key sets) and the regenerate requested while it was down was done.
    pub settled_seconds: f64,
    pub verified_seconds: f64,
    pub regenerated_seconds: f64,
    /// The restarted process's requests (the bench's own subtracted), per key set.
    pub writes_per_set: f64,
    pub reads_per_set: f64,
    pub requests: Requests,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failover {
    /// From SIGKILL of the leader to the standby's regenerate in status.
    pub kill_first_action_seconds: f64,
    /// From SIGTERM of the leader to the standby's regenerate in status.
    pub term_first_action_seconds: f64,
}

async fn primary_revision(api: &Api<DataMinerKeySet>, name: &str) -> Result<i64> {
    let ks = api
        .get(name)
        .await
        .map_err(|e| format!("get {name}: {e}"))?;
    Ok(ks.status.and_then(|s| s.primary).map_or(0, |p| p.revision))
}

/// Asks for the next primary revision of `name`; returns it.
async fn regenerate(api: &Api<DataMinerKeySet>, name: &str, own: &mut Requests) -> Result<i64> {
    let next = primary_revision(api, name).await? + 1;
    let patch = json!({ "spec": { "regenerate": { "primary": { "revision": next, "confirmLabel": LABEL } } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| format!("requesting a regenerate of {name}: {e}"))?;
    own.add("GET dataminerkeysets", 1.0);
    own.add("PATCH dataminerkeysets", 1.0);
    Ok(next)
}

/// Polls until `name`'s status records primary revision `revision`; counts its GETs as the
/// bench's own.
async fn regenerated(
    api: &Api<DataMinerKeySet>,
    name: &str,
    revision: i64,
    own: &mut Requests,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        own.add("GET dataminerkeysets", 1.0);
        if primary_revision(api, name).await? >= revision {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name} did not reach primary revision {revision} within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM, a regenerate while down, start again: until every key set is verified again and the
/// regenerate is done.
pub async fn restart(
    client: &Client,
    ns: &str,
    op: &mut Operator,
    sets: usize,
    target: &str,
    timeout: Duration,
) -> Result<Restart> {
    let api: Api<DataMinerKeySet> = Api::namespaced(client.clone(), ns);
    let mut own = Requests::default();
    let before = Requests::scrape(client).await?;
    let started = Instant::now();
    op.stop();
    let revision = regenerate(&api, target, &mut own).await?;
    op.restart();
    let deadline = started + timeout;
    let (mut verified, mut done) = (None, None);
    while verified.is_none() || done.is_none() {
        if verified.is_none() && op.reconciles().await.unwrap_or(0.0) >= sets as f64 {
            verified = Some(started.elapsed());
        }
        if done.is_none() {
            own.add("GET dataminerkeysets", 1.0);
            if primary_revision(&api, target).await? >= revision {
                done = Some(started.elapsed());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the restart did not settle within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (verified, done) = (verified.unwrap_or_default(), done.unwrap_or_default());
    // Settle, so the restart's own writes and their watch echoes are counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (requests, _) = Requests::scrape(client)
        .await?
        .since(&before)
        .minus(&own)
        .split_operator();
    let n = sets as f64;
    Ok(Restart {
        settled_seconds: verified.max(done).as_secs_f64(),
        verified_seconds: verified.as_secs_f64(),
        regenerated_seconds: done.as_secs_f64(),
        writes_per_set: requests.writes() / n,
        reads_per_set: requests.reads() / n,
        requests,
    })
}

/// Two replicas: `leader` and a standby started with `standby` (a new identity, another metrics
/// port). The leader is SIGKILLed and a regenerate sent at once; then the new leader is SIGTERMed
/// with a fresh standby waiting, and again. Returns the last standby, now leading.
pub async fn failover(
    client: &Client,
    ns: &str,
    leader: Operator,
    mut standby: impl FnMut() -> Operator,
    target: &str,
    timeout: Duration,
) -> Result<(Failover, Operator)> {
    let api: Api<DataMinerKeySet> = Api::namespaced(client.clone(), ns);
    let mut own = Requests::default();

    let mut leader = leader;
    let second = standby();
    second.wait_ready(60).await?;
    let started = Instant::now();
    leader.kill();
    let revision = regenerate(&api, target, &mut own).await?;
    regenerated(&api, target, revision, &mut own, timeout).await?;
    let kill_first = started.elapsed();

    let mut leader = second;
    let third = standby();
    third.wait_ready(60).await?;
    let started = Instant::now();
    // The regenerate goes out while the leader drains, as a request would during a rollout.
    leader.signal(15);
    let revision = regenerate(&api, target, &mut own).await?;
    regenerated(&api, target, revision, &mut own, timeout).await?;
    let term_first = started.elapsed();
    leader.stop();
    Ok((
        Failover {
            kill_first_action_seconds: kill_first.as_secs_f64(),
            term_first_action_seconds: term_first.as_secs_f64(),
        },
        third,
    ))
}
