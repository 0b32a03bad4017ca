//! The periodic re-check of every key set, without a watch event: each live key set once per
//! period, spread evenly over it.
//!
//! Why not `Action::requeue(period)` after each reconcile: kube's scheduler then holds a timer
//! entry per key set for ever (a request in a map and in a delay queue, each with its own copy
//! of the object's name, namespace, uid and resourceVersion: about 0.5 KiB per key set, a tenth
//! of the operator's memory). This walk keeps only the names of one round, and hands the
//! scheduler one key set at a time. It also spreads the CPU of a resync over the period instead
//! of in bursts that follow the order key sets were created in.

use std::{collections::VecDeque, time::Duration};

use futures::{Stream, stream};
use kube::{
    ResourceExt,
    runtime::reflector::{ObjectRef, Store},
};

use crate::api::DataMinerKeySet;

/// Whether the periodic re-check applies: not to a revoked key set (it never gets keys again;
/// only a watch event can matter to it) nor to one being deleted.
fn rechecked(ks: &DataMinerKeySet) -> bool {
    let revoked = ks.status.as_ref().is_some_and(|s| s.revoked_at.is_some());
    !revoked && ks.metadata.deletion_timestamp.is_none()
}

/// One round of the walk: `namespace/name` of each key set still to visit, in one allocation
/// each (an `ObjectRef` would take three times the memory).
struct Round {
    due: VecDeque<Box<str>>,
    /// The pause before each: the period divided by the round's size.
    step: Duration,
    /// Nothing was due (at the start, or none to walk): wait one period before looking.
    idle: bool,
}

/// Every key set in `store` that [`rechecked`] applies to, once per `period`, the first round
/// one period from now (the watch's first list has just reconciled each of them).
pub fn walk(
    store: Store<DataMinerKeySet>,
    period: Duration,
) -> impl Stream<Item = ObjectRef<DataMinerKeySet>> + Send + 'static {
    let first = Round {
        due: VecDeque::new(),
        step: period,
        idle: true,
    };
    stream::unfold(first, move |mut round| {
        let store = store.clone();
        async move {
            while round.due.is_empty() {
                if round.idle {
                    tokio::time::sleep(period).await;
                }
                round.due = store
                    .state()
                    .iter()
                    .filter(|ks| rechecked(ks))
                    .map(|ks| {
                        format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any()).into()
                    })
                    .collect();
                round.idle = round.due.is_empty();
                let count = u32::try_from(round.due.len()).unwrap_or(u32::MAX).max(1);
                round.step = period / count;
            }
            tokio::time::sleep(round.step).await;
            let next = round.due.pop_front()?;
            // Names and namespaces never contain a slash.
            let (namespace, name) = next.split_once('/')?;
            Some((ObjectRef::new(name).within(namespace), round))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use kube::runtime::{reflector, watcher};

    fn keyset(name: &str, revoked: bool) -> DataMinerKeySet {
        let mut ks = crate::fixtures::keyset();
        ks.metadata.name = Some(name.into());
        ks.metadata.namespace = Some("team".into());
        if revoked {
            ks.status.get_or_insert_with(Default::default).revoked_at = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(crate::fixtures::at(0)),
            );
        }
        ks
    }

    #[tokio::test(start_paused = true)]
    async fn each_live_key_set_once_per_period_spread_over_it() {
        let (reader, mut writer) = reflector::store();
        for (name, revoked) in [("a", false), ("b", false), ("gone", true), ("c", false)] {
            writer.apply_watcher_event(&watcher::Event::Apply(keyset(name, revoked)));
        }
        let period = Duration::from_secs(300);
        let start = tokio::time::Instant::now();
        let mut walk = Box::pin(walk(reader, period));
        let mut seen = Vec::new();
        for _ in 0..6 {
            let next = walk.next().await.unwrap();
            seen.push((next.name.clone(), start.elapsed().as_secs()));
        }
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        let mut first_round = names[..3].to_vec();
        first_round.sort();
        assert_eq!(first_round, ["a", "b", "c"], "revoked ones are left out");
        assert_eq!(names[3..], names[..3], "the next round, same order");
        // One period of waiting, then one every period / 3.
        let times: Vec<u64> = seen.iter().map(|(_, t)| *t).collect();
        assert_eq!(times, [400, 500, 600, 700, 800, 900]);
    }
}
