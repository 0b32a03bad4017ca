//! What both sides are given: N key sets created, then one rotation request each, sent by C
//! workers. With the operator, the bench waits (on a watch) until every key set reports the
//! result; the bare client ([`crate::bare`]) does the writes itself, watched the same way: the
//! watch's cost to the API server (two events per key set and phase, each a whole key set) and
//! to the bench's process is the bench's, so both sides carry it.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use dataminer_keys_operator::{
    api::{DataMinerKeySet, READY},
    controller::FINALIZER,
};
use futures::{StreamExt, TryStreamExt};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

use crate::{Result, apiserver::Requests};

pub const LABEL: &str = "Bench pipeline";

pub fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ks-{i:05}")).collect()
}

pub fn keyset(name: &str) -> DataMinerKeySet {
    serde_json::from_value(dmk_control_plane::kit::org_keyset_with(
        name, LABEL, "bench",
    ))
    .expect("a valid key set")
}

/// The rotation request: primary revision 2, confirmed.
fn rotation() -> serde_json::Value {
    json!({ "spec": { "regenerate": { "primary": { "revision": 2, "confirmLabel": LABEL } } } })
}

/// Whether new key sets get the operator's finalizer at admission (the chart's
/// MutatingAdmissionPolicy), asked by dry-run creates for up to `within` (the API server loads a
/// new policy asynchronously). Without it the operator patches the finalizer in: one more write.
pub async fn finalizer_at_admission(client: &Client, ns: &str, within: Duration) -> Result<bool> {
    let api: Api<DataMinerKeySet> = Api::namespaced(client.clone(), ns);
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = Instant::now() + within;
    loop {
        let probe = api
            .create(&dry_run, &keyset("policy-probe"))
            .await
            .map_err(|e| format!("dry-run create: {e}"))?;
        if probe.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn create(api: &Api<DataMinerKeySet>, name: &str) -> Result<DataMinerKeySet> {
    api.create(&PostParams::default(), &keyset(name))
        .await
        .map_err(|e| format!("creating {name}: {e}"))
}

async fn request_rotation(api: &Api<DataMinerKeySet>, name: &str) -> Result<DataMinerKeySet> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(rotation()))
        .await
        .map_err(|e| format!("requesting a rotation of {name}: {e}"))
}

fn ready_with_primary_at(ks: &DataMinerKeySet, revision: i64) -> bool {
    ks.status.as_ref().is_some_and(|s| {
        s.primary.as_ref().is_some_and(|p| p.revision == revision)
            && s.observed_generation == ks.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == READY && c.status == "True")
    })
}

/// The two phases both sides go through.
#[derive(Clone, Copy, Debug)]
pub enum Phase {
    /// Create every key set.
    Create,
    /// Ask every key set for a new primary key (revision 2).
    Rotate,
}

impl Phase {
    /// The request the bench sends for `name`; the answer is the key set as the server has it.
    pub async fn request(self, api: &Api<DataMinerKeySet>, name: &str) -> Result<DataMinerKeySet> {
        match self {
            Phase::Create => create(api, name).await,
            Phase::Rotate => request_rotation(api, name).await,
        }
    }

    /// How kube-apiserver counts that request.
    fn counted_as(self) -> &'static str {
        match self {
            Phase::Create => "POST dataminerkeysets",
            Phase::Rotate => "PATCH dataminerkeysets",
        }
    }

    /// The primary key's revision once the phase is done.
    fn primary_revision(self) -> i64 {
        match self {
            Phase::Create => 1,
            Phase::Rotate => 2,
        }
    }
}

/// Sends the phase's request for every key set and waits until the operator reports each
/// done; the time from the first request.
pub async fn run_and_wait(
    client: &Client,
    ns: &str,
    names: &[String],
    concurrency: usize,
    phase: Phase,
    own: &mut Requests,
    timeout: Duration,
) -> Result<Duration> {
    let api: Api<DataMinerKeySet> = Api::namespaced(client.clone(), ns);
    let send = futures::stream::iter(names.iter().map(|n| phase.request(&api, n)))
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) });
    own.add(phase.counted_as(), names.len() as f64);
    observe(&api, names, phase, send, own, timeout).await
}

/// Runs `send` while watching until every key set in `names` reports `phase` done; the time
/// from the first request. Both sides are timed through it.
pub async fn observe(
    api: &Api<DataMinerKeySet>,
    names: &[String],
    phase: Phase,
    send: impl Future<Output = Result<()>>,
    own: &mut Requests,
    timeout: Duration,
) -> Result<Duration> {
    let revision = phase.primary_revision();
    drive(
        api,
        names,
        send,
        |ks| ready_with_primary_at(ks, revision),
        own,
        timeout,
    )
    .await
}

/// Sends the requests while watching for `done` on every key set.
async fn drive(
    api: &Api<DataMinerKeySet>,
    names: &[String],
    send: impl Future<Output = Result<()>>,
    done: impl Fn(&DataMinerKeySet) -> bool,
    own: &mut Requests,
    timeout: Duration,
) -> Result<Duration> {
    let mut pending: HashSet<&str> = names.iter().map(String::as_str).collect();
    // One unpaged LIST, then one WATCH held for the phase (the server counts a watch when it
    // ends: below, before the caller scrapes). A phase over 290 s re-opens the watch, and those
    // few requests are counted as the operator's.
    let config = watcher::Config {
        page_size: None,
        ..Default::default()
    };
    let mut watch = Box::pin(watcher(api.clone(), config).applied_objects());
    own.add("LIST dataminerkeysets", 1.0);
    own.add("WATCH dataminerkeysets", 1.0);
    let started = Instant::now();
    let mut send = std::pin::pin!(send);
    let mut sent = false;
    let deadline = tokio::time::sleep(timeout);
    let mut deadline = std::pin::pin!(deadline);
    while !pending.is_empty() || !sent {
        tokio::select! {
            result = &mut send, if !sent => { result?; sent = true; }
            event = watch.next() => match event {
                Some(Ok(ks)) if done(&ks) => {
                    if let Some(name) = ks.metadata.name.as_deref() {
                        pending.remove(name);
                    }
                }
                Some(Ok(_)) => {}
                // The watcher re-lists by itself after an error.
                Some(Err(e)) => eprintln!("[bench] watching key sets: {e}"),
                None => return Err("the key set watch ended".into()),
            },
            _ = &mut deadline => {
                return Err(format!("{} key sets not done after {}s", pending.len(), timeout.as_secs()));
            }
        }
    }
    let took = started.elapsed();
    drop(watch);
    // Let the server finish (and count) the watch before the caller scrapes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(took)
}
