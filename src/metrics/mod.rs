//! Prometheus metrics: reconciles by result, reconcile duration, actions by kind, key sets by
//! condition, all with low-cardinality labels; and the generation time of each key
//! ([`key_age`]), read from the key set caches at scrape time. Never a key.

mod key_age;

use std::{
    sync::{Arc, atomic::AtomicI64},
    time::Duration,
};

use futures::Stream;
use kube::runtime::reflector::Store;

use crate::{api::DataMinerKeySet, status::Standing};
pub use key_age::generated;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok`, or the error's metric label.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `create`, `update`, `delete`, `generate` or `event` (an audit Event refused).
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `Ready`, `NotReady` or `Revoked`.
    pub state: String,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    duration: Histogram,
    actions: Family<ActionLabels, Counter>,
    keysets: Family<StateLabels, Gauge<i64, AtomicI64>>,
    write_failures: Family<OperationLabels, Counter>,
    leader: Gauge<i64, AtomicI64>,
    key_age: Arc<key_age::KeyAge>,
    /// Reconciles finished, whatever their result (paces the first round: takeover.rs).
    finished: std::sync::atomic::AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dataminer_keys");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        let actions = Family::<ActionLabels, Counter>::default();
        let keysets = Family::<StateLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "reconciles",
            "Reconciliations by result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            duration.clone(),
        );
        registry.register(
            "actions",
            "Audited key set actions by kind",
            actions.clone(),
        );
        registry.register("keysets", "Key sets by state", keysets.clone());
        let write_failures = Family::<OperationLabels, Counter>::default();
        registry.register(
            "write_failures",
            "Secret writes the API server refused or did not answer in time",
            write_failures.clone(),
        );
        // 0 on a standby, so "no replica acts" is a value an alert can see, not a missing series.
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica acts (it holds the Lease, or runs without leader election)",
            leader.clone(),
        );
        let key_age = Arc::new(key_age::KeyAge::default());
        registry.register_collector(Box::new(key_age.clone()));
        Metrics {
            registry,
            key_age,
            reconciles,
            duration,
            actions,
            keysets,
            write_failures,
            leader,
            finished: Default::default(),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
        self.finished
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reconciles finished since start-up.
    pub fn reconciles_finished(&self) -> u64 {
        self.finished.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn action(&self, action: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                action: action.into(),
            })
            .inc();
    }

    /// This replica acts (true) or stands by.
    pub fn set_leader(&self, acting: bool) {
        self.leader.set(i64::from(acting));
    }

    pub fn write_failed(&self, operation: &str) {
        self.write_failures
            .get_or_create(&OperationLabels {
                operation: operation.into(),
            })
            .inc();
    }

    /// One key set moved from state `from` to `to` (`None`: not counted, as before its first
    /// reconcile or once it is gone). The caller keeps each key set's state (the controller's
    /// index does), so this holds no per-key-set map.
    pub fn keyset_moved(&self, from: Option<Standing>, to: Option<Standing>) {
        if from == to {
            return;
        }
        if let Some(p) = from {
            self.keysets
                .get_or_create(&StateLabels {
                    state: p.name().into(),
                })
                .dec();
        }
        if let Some(s) = to {
            self.keysets
                .get_or_create(&StateLabels {
                    state: s.name().into(),
                })
                .inc();
        }
    }

    /// Reports the generation time of the keys in these caches from now on.
    pub fn watch_keys(&self, stores: Vec<Store<DataMinerKeySet>>) {
        self.key_age.watch(stores);
    }

    /// The text exposition format, whole (tests, small registries).
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// The text exposition format in pieces of about [`CHUNK`] bytes, sent as the encoder
    /// writes them: at 10,000 key sets the key age series alone are about 2.5 MB of text, which
    /// a whole rendering would hold at once (and twice, while its buffer grows) on every scrape.
    pub fn render_chunks(self: Arc<Self>) -> impl Stream<Item = Result<String, std::io::Error>> {
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        tokio::task::spawn_blocking(move || {
            let mut out = Chunks {
                buf: String::with_capacity(CHUNK),
                tx,
            };
            // An error only means the scraper went away.
            if encode(&mut out, &self.registry).is_ok() && !out.buf.is_empty() {
                let _ = out.tx.blocking_send(out.buf);
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (Ok(chunk), rx))
        })
    }
}

/// Size of one piece of a streamed scrape.
pub const CHUNK: usize = 32 * 1024;

/// A `fmt::Write` that hands every full piece to the HTTP response; fails once nobody reads.
struct Chunks {
    buf: String,
    tx: tokio::sync::mpsc::Sender<String>,
}

impl std::fmt::Write for Chunks {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            let full = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK));
            self.tx.blocking_send(full).map_err(|_| std::fmt::Error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_gauges_follow_state_changes() {
        let m = Metrics::default();
        use Standing::{Ready, Revoked};
        m.keyset_moved(None, Some(Ready));
        m.keyset_moved(None, Some(Ready));
        m.keyset_moved(Some(Ready), Some(Revoked));
        m.keyset_moved(Some(Ready), None);
        m.keyset_moved(Some(Revoked), Some(Revoked));
        let text = m.render();
        assert!(
            text.contains("dataminer_keys_keysets{state=\"Ready\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("dataminer_keys_keysets{state=\"Revoked\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn reconciles_are_counted_by_result() {
        let m = Metrics::default();
        m.reconciled("ok", Duration::from_millis(3));
        m.reconciled("ok", Duration::from_millis(3));
        m.reconciled("write_secret", Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains("dataminer_keys_reconciles_total{result=\"ok\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("dataminer_keys_reconcile_duration_seconds_count 3"),
            "{text}"
        );
    }
}
