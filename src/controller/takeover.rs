//! When a replica starts to act. A standby runs its watches from the start, so a takeover finds
//! its caches full instead of listing thousands of objects first; until then nothing reaches
//! its reconciler. Once it may act (it leads, or runs alone) and its cache has listed, every
//! key set is reconciled once, those whose spec asks for something first: a rotation requested
//! during a handover is not queued behind thousands of re-checks.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{Stream, StreamExt, stream};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;

use crate::api::DataMinerKeySet;

/// Whether events reach the reconciler: closed until the first round starts.
#[derive(Clone, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn open(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Whether `ks` may be waiting for the operator: a spec it has not seen, no status yet, or a
/// deletion to finish.
fn waiting(ks: &DataMinerKeySet) -> bool {
    let observed = ks.status.as_ref().and_then(|s| s.observed_generation);
    ks.metadata.deletion_timestamp.is_some()
        || observed.is_none()
        || observed != ks.metadata.generation
}

/// Every key set in `objects`, the waiting ones first (each group in the cache's order).
fn first_round_order(objects: &[Arc<DataMinerKeySet>]) -> Vec<ObjectRef<DataMinerKeySet>> {
    let (waiting, rest): (Vec<_>, Vec<_>) = objects.iter().partition(|ks| waiting(ks));
    waiting
        .into_iter()
        .chain(rest)
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// How the rest of the round is fed to the reconciler: at most `window` handed over and not yet
/// finished (kube's scheduler keeps what is due in a set without order, so a rotation that
/// arrives during the round would otherwise wait behind thousands of re-checks). `finished`
/// counts the reconciles this process finished.
pub struct Pace<F> {
    pub finished: F,
    pub window: u64,
}

/// Waits until `may_act` says so and `store` has listed, opens `gate`, then yields the first
/// round ([`first_round_order`]): the waiting key sets at once, the rest at `pace`. Events let
/// through the gate from then on reach the reconciler too; one that is also in the round is
/// merged by kube's scheduler while both wait.
pub fn first_round<F>(
    store: Store<DataMinerKeySet>,
    mut may_act: watch::Receiver<bool>,
    gate: Gate,
    pace: Pace<F>,
) -> impl Stream<Item = ObjectRef<DataMinerKeySet>> + Send + 'static
where
    F: Fn() -> u64 + Send + Sync + 'static,
{
    stream::once(async move {
        if may_act.wait_for(|yes| *yes).await.is_err() {
            return None; // the process is ending before it ever acted
        }
        // The store's readiness signal wakes only its most recent waiter (kube's controller
        // waits on it too): re-poll instead of waiting once.
        while tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready())
            .await
            .is_err()
        {}
        // Open before reading the cache: an event after this point passes the gate, one
        // before it is in the cache read below.
        gate.open();
        let state = store.state();
        let urgent = state.iter().filter(|ks| waiting(ks)).count() as u64;
        let base = (pace.finished)();
        Some(Round {
            refs: first_round_order(&state).into_iter(),
            urgent,
            sent: 0,
            base,
            pace,
        })
    })
    .filter_map(std::future::ready)
    .flat_map(|round| {
        stream::unfold(round, |mut round| async move {
            let next = round.refs.next()?;
            if round.sent >= round.urgent {
                round.wait_for_room().await;
            }
            round.sent += 1;
            Some((next, round))
        })
    })
}

struct Round<F> {
    refs: std::vec::IntoIter<ObjectRef<DataMinerKeySet>>,
    urgent: u64,
    sent: u64,
    base: u64,
    pace: Pace<F>,
}

impl<F: Fn() -> u64> Round<F> {
    /// Until fewer than the window are handed over and unfinished. A reconcile kube skips (the
    /// key set was deleted meanwhile) never finishes: without progress for 200 ms, go on.
    async fn wait_for_room(&mut self) {
        let mut last = (self.pace.finished)();
        let mut still = std::time::Instant::now();
        loop {
            let finished = (self.pace.finished)();
            let outstanding = self.sent.saturating_sub(finished.saturating_sub(self.base));
            if outstanding < self.pace.window {
                return;
            }
            if finished != last {
                (last, still) = (finished, std::time::Instant::now());
            } else if still.elapsed() > Duration::from_millis(200) {
                self.base += outstanding; // count the stuck ones as finished
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::{reflector, watcher};

    fn keyset(name: &str, generation: i64, observed: Option<i64>) -> DataMinerKeySet {
        let mut ks = crate::fixtures::keyset();
        ks.metadata.name = Some(name.into());
        ks.metadata.namespace = Some("team".into());
        ks.metadata.generation = Some(generation);
        if let Some(observed) = observed {
            ks.status
                .get_or_insert_with(Default::default)
                .observed_generation = Some(observed);
        }
        ks
    }

    fn unpaced() -> Pace<impl Fn() -> u64 + Send + Sync + 'static> {
        Pace {
            finished: || 0,
            window: u64::MAX,
        }
    }

    #[tokio::test]
    async fn the_rest_waits_for_the_reconciler_and_a_stall_does_not_stop_it() {
        use std::sync::atomic::AtomicU64;
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(keyset("rotation", 2, Some(1))));
        for i in 0..5 {
            let name = format!("settled-{i}");
            writer.apply_watcher_event(&watcher::Event::InitApply(keyset(&name, 1, Some(1))));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let (allow, may_act) = watch::channel(true);
        let finished = Arc::new(AtomicU64::new(0));
        let pace = Pace {
            finished: {
                let finished = finished.clone();
                move || finished.load(Ordering::Relaxed)
            },
            window: 2,
        };
        let mut round = Box::pin(first_round(reader, may_act, Gate::default(), pace));
        // The waiting one, then two of the rest: the window is full.
        for _ in 0..3 {
            round.next().await.unwrap();
        }
        let held = tokio::time::timeout(Duration::from_millis(100), round.next()).await;
        assert!(held.is_err(), "a full window holds the rest");
        finished.fetch_add(1, Ordering::Relaxed);
        assert!(round.next().await.is_some(), "one finished: one more");
        // Nothing finishes any more (say, deleted key sets kube skips): after 200 ms it goes on.
        let started = std::time::Instant::now();
        while round.next().await.is_some() {}
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(allow);
    }

    #[test]
    fn requests_and_deletions_go_first() {
        let mut deleting = keyset("deleting", 1, Some(1));
        deleting.metadata.deletion_timestamp = Some(Time(crate::fixtures::at(0)));
        let objects: Vec<Arc<DataMinerKeySet>> = [
            keyset("settled-a", 3, Some(3)),
            keyset("rotation", 4, Some(3)),
            keyset("settled-b", 1, Some(1)),
            keyset("new", 1, None),
            deleting,
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let names: Vec<String> = first_round_order(&objects)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            names,
            ["rotation", "new", "deleting", "settled-a", "settled-b"]
        );
    }

    #[tokio::test]
    async fn nothing_passes_before_it_may_act_and_the_cache_listed() {
        let (reader, mut writer) = reflector::store();
        let (allow, may_act) = watch::channel(false);
        let gate = Gate::default();
        let mut round = Box::pin(first_round(reader, may_act, gate.clone(), unpaced()));
        // Allowed, but the cache has not listed: still closed.
        allow.send(true).unwrap();
        let early = tokio::time::timeout(Duration::from_millis(300), round.next()).await;
        assert!(early.is_err() && !gate.is_open());
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(keyset("a", 1, Some(1))));
        writer.apply_watcher_event(&watcher::Event::InitApply(keyset("b", 2, Some(1))));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        assert_eq!(round.next().await.unwrap().name, "b");
        assert!(gate.is_open());
        assert_eq!(round.next().await.unwrap().name, "a");
        assert!(round.next().await.is_none(), "one round");
    }

    #[tokio::test]
    async fn a_process_that_never_acts_yields_nothing() {
        let (reader, _writer) = reflector::store::<DataMinerKeySet>();
        let (allow, may_act) = watch::channel(false);
        let gate = Gate::default();
        let round = first_round(reader, may_act, gate.clone(), unpaced());
        drop(allow);
        assert_eq!(round.count().await, 0);
        assert!(!gate.is_open());
    }
}
