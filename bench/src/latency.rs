//! Time to act, with N key sets at rest: how long after a regenerate request the new key is in
//! the Secret, and how long until status records it. Single requests spread over time, one at
//! a time, then a burst sent at once. Each request regenerates one key set's secondary key
//! (revision 1 to 2; the rotation phase moved only the primary).
//!
//! The clock starts when the bench sends the PATCH (so it includes the API server's own time to
//! accept it) and stops when a watch delivers the Secret with the new revision, or the key set
//! whose status records it: what a consumer watching either would see.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use dataminer_keys_operator::{api::DataMinerKeySet, secret::SECONDARY_REVISION_ANNOTATION};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde::Serialize;
use serde_json::json;

use crate::{Result, workload::LABEL};

/// p50, p99 and the maximum of a set of latencies, in seconds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_seconds: f64,
    pub p99_seconds: f64,
    pub max_seconds: f64,
}

impl Summary {
    fn of(mut seconds: Vec<f64>) -> Summary {
        seconds.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least q of the values at or below it.
        let rank = |q: f64| {
            let i = ((q * seconds.len() as f64).ceil() as usize).clamp(1, seconds.len());
            seconds[i - 1]
        };
        Summary {
            count: seconds.len(),
            p50_seconds: rank(0.50),
            p99_seconds: rank(0.99),
            max_seconds: *seconds.last().unwrap_or(&0.0),
        }
    }
}

/// One group of requests: to the new key in the Secret, and to status recording it.
#[derive(Clone, Debug, Serialize)]
pub struct Latencies {
    pub to_secret: Summary,
    pub to_status: Summary,
}

#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub singles: Latencies,
    pub burst: Latencies,
    /// The pause between two single requests (after the previous one is done).
    pub gap_seconds: f64,
}

/// When each key set was first seen done, per watch.
#[derive(Default)]
struct Seen {
    secret: HashMap<String, Instant>,
    status: HashMap<String, Instant>,
}

fn secondary_at_2(ks: &DataMinerKeySet) -> bool {
    ks.status.as_ref().is_some_and(|s| {
        s.secondary.as_ref().is_some_and(|k| k.revision == 2)
            && s.observed_generation == ks.metadata.generation
    })
}

/// Watches the namespace's Secrets and key sets from now on, noting when each reaches
/// secondary revision 2. The tasks end when the returned handles are dropped (aborted).
async fn watch(client: &Client, ns: &str) -> (Arc<Mutex<Seen>>, [tokio::task::JoinHandle<()>; 2]) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let keysets: Api<DataMinerKeySet> = Api::namespaced(client.clone(), ns);
    let s = seen.clone();
    let on_secrets = tokio::spawn(async move {
        let mut stream = Box::pin(watcher(secrets, watcher::Config::default()).applied_objects());
        while let Some(event) = stream.next().await {
            let Ok(secret) = event else { continue };
            let revision = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SECONDARY_REVISION_ANNOTATION))
                .map(String::as_str);
            if revision == Some("2")
                && let Some(name) = secret.metadata.name.as_deref()
                && let Some(keyset) = name.strip_suffix("-keys")
            {
                let now = Instant::now();
                s.lock()
                    .expect("seen lock")
                    .secret
                    .entry(keyset.to_string())
                    .or_insert(now);
            }
        }
    });
    let s = seen.clone();
    let on_keysets = tokio::spawn(async move {
        let mut stream = Box::pin(watcher(keysets, watcher::Config::default()).applied_objects());
        while let Some(event) = stream.next().await {
            let Ok(ks) = event else { continue };
            if secondary_at_2(&ks)
                && let Some(name) = ks.metadata.name.clone()
            {
                let now = Instant::now();
                s.lock()
                    .expect("seen lock")
                    .status
                    .entry(name)
                    .or_insert(now);
            }
        }
    });
    (seen, [on_secrets, on_keysets])
}

async fn request(api: &Api<DataMinerKeySet>, name: &str) -> Result<Instant> {
    let patch = json!({ "spec": { "regenerate": { "secondary": { "revision": 2, "confirmLabel": LABEL } } } });
    let sent = Instant::now();
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| format!("requesting a secondary regenerate of {name}: {e}"))?;
    Ok(sent)
}

/// Waits until both watches have seen every one of `names` done; their latencies from `sent`.
async fn wait_done(
    seen: &Mutex<Seen>,
    sent: &[(String, Instant)],
    timeout: Duration,
) -> Result<Latencies> {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let seen = seen.lock().expect("seen lock");
            let done = sent
                .iter()
                .all(|(n, _)| seen.secret.contains_key(n) && seen.status.contains_key(n));
            if done {
                let since = |m: &HashMap<String, Instant>| {
                    sent.iter()
                        .map(|(n, t)| m[n].saturating_duration_since(*t).as_secs_f64())
                        .collect()
                };
                return Ok(Latencies {
                    to_secret: Summary::of(since(&seen.secret)),
                    to_status: Summary::of(since(&seen.status)),
                });
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "secondary regenerates not done within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `singles` requests one after the other (each after the previous one is done and a gap),
/// then `burst` at once, on distinct key sets of `names`.
pub async fn measure(
    client: &Client,
    ns: &str,
    names: &[String],
    singles: usize,
    burst: usize,
    gap: Duration,
    timeout: Duration,
) -> Result<Results> {
    if names.len() < singles + burst {
        return Err(format!(
            "the latency phase needs {} key sets; there are {}",
            singles + burst,
            names.len()
        ));
    }
    let api: Api<DataMinerKeySet> = Api::namespaced(client.clone(), ns);
    let (seen, tasks) = watch(client, ns).await;
    // Both watches listed and are delivering before the first request: a key set seen done
    // before its request would be a measurement error, so none is at revision 2 yet.
    tokio::time::sleep(Duration::from_secs(3)).await;
    {
        let seen = seen.lock().expect("seen lock");
        if !seen.secret.is_empty() || !seen.status.is_empty() {
            return Err("key sets were at secondary revision 2 before the latency phase".into());
        }
    }
    // Distinct key sets, spread over the whole range.
    let step = names.len() / (singles + burst);
    let mut chosen = names.iter().step_by(step.max(1));

    let mut single_sent = Vec::with_capacity(singles);
    for name in chosen.by_ref().take(singles) {
        let sent = request(&api, name).await?;
        single_sent.push((name.clone(), sent));
        wait_done(&seen, &single_sent[single_sent.len() - 1..], timeout).await?;
        tokio::time::sleep(gap).await;
    }
    let singles = wait_done(&seen, &single_sent, timeout).await?;

    let burst_names: Vec<String> = chosen.take(burst).cloned().collect();
    let sends = burst_names.iter().map(|n| request(&api, n));
    let burst_sent: Vec<(String, Instant)> = futures::future::try_join_all(sends)
        .await?
        .into_iter()
        .zip(burst_names.iter())
        .map(|(t, n)| (n.clone(), t))
        .collect();
    let burst = wait_done(&seen, &burst_sent, timeout).await?;
    for task in tasks {
        task.abort();
    }
    Ok(Results {
        singles,
        burst,
        gap_seconds: gap.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Summary::of((1..=200).map(|i| i as f64 / 100.0).collect());
        assert_eq!(s.count, 200);
        assert_eq!(s.p50_seconds, 1.0);
        assert_eq!(s.p99_seconds, 1.98);
        assert_eq!(s.max_seconds, 2.0);
        let one = Summary::of(vec![0.3]);
        assert_eq!(
            (one.p50_seconds, one.p99_seconds, one.max_seconds),
            (0.3, 0.3, 0.3)
        );
    }
}
