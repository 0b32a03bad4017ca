//! `dataminer_keys_key_generated_timestamp_seconds{keyset_namespace,keyset,slot}`: when each key was
//! generated, for "rotate me" alerts (`time() - metric > age`).
//!
//! Read from the key set caches at scrape time, never kept: a series per key and slot held in a
//! metric family would cost about 20,000 entries at 10,000 key sets (docs/performance.md).

use std::sync::OnceLock;

use kube::{ResourceExt, runtime::reflector::Store};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, gauge::ConstGauge},
    registry::Unit,
};

use crate::api::{DataMinerKeySet, Slot};

/// The collector: the controller's key set caches, once they exist (a standby replica has none
/// and reports no keys).
#[derive(Default)]
pub struct KeyAge {
    stores: OnceLock<Vec<Store<DataMinerKeySet>>>,
}

impl std::fmt::Debug for KeyAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAge")
            .field("stores", &self.stores.get().map(Vec::len))
            .finish()
    }
}

impl KeyAge {
    /// Reports the keys of these caches from now on (set once, when this replica leads).
    pub fn watch(&self, stores: Vec<Store<DataMinerKeySet>>) {
        let _ = self.stores.set(stores);
    }
}

/// Each slot that holds a key: (slot, Unix seconds it was generated). A revoked key set holds
/// none.
pub fn generated(ks: &DataMinerKeySet) -> Vec<(Slot, i64)> {
    let Some(status) = &ks.status else {
        return vec![];
    };
    if status.revoked_at.is_some() {
        return vec![];
    }
    Slot::BOTH
        .into_iter()
        .filter_map(|slot| Some((slot, status.slot(slot)?.generated_at.0.as_second())))
        .collect()
}

impl Collector for KeyAge {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "key_generated_timestamp",
            "When the key in each slot of a key set was generated (Unix time); revoked key sets have none",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for store in self.stores.get().into_iter().flatten() {
            for ks in store.state() {
                let namespace = ks.namespace().unwrap_or_default();
                let name = ks.name_any();
                for (slot, at) in generated(&ks) {
                    let labels = [
                        ("keyset_namespace", namespace.as_str()),
                        ("keyset", name.as_str()),
                        ("slot", slot.name()),
                    ];
                    ConstGauge::new(at).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::StreamExt;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::{reflector, watcher};

    use crate::{
        api::{DataMinerKeySetStatus, KeyStatus},
        fixtures::{at, keyset},
        metrics::Metrics,
    };

    fn with_keys(
        name: &str,
        primary: i64,
        secondary: i64,
        revoked: bool,
    ) -> super::DataMinerKeySet {
        let key = |secs| KeyStatus {
            revision: 1,
            generated_at: Time(at(secs)),
            fingerprint: "sha256:00000000".into(),
        };
        let mut ks = keyset();
        ks.metadata.name = Some(name.into());
        ks.status = Some(DataMinerKeySetStatus {
            primary: Some(key(primary)),
            secondary: Some(key(secondary)),
            revoked_at: revoked.then(|| Time(at(secondary + 1))),
            ..Default::default()
        });
        ks
    }

    fn metrics_over(keysets: Vec<super::DataMinerKeySet>) -> Arc<Metrics> {
        let (reader, mut writer) = reflector::store();
        for ks in keysets {
            writer.apply_watcher_event(&watcher::Event::Apply(ks));
        }
        let metrics = Arc::new(Metrics::default());
        metrics.watch_keys(vec![reader]);
        metrics
    }

    #[test]
    fn each_slot_reports_when_its_key_was_generated() {
        let m = metrics_over(vec![
            with_keys("active", 1_700_000_000, 1_700_000_500, false),
            with_keys("gone", 1_600_000_000, 1_600_000_000, true),
            {
                let mut pending = keyset();
                pending.metadata.name = Some("pending".into());
                pending
            },
        ]);
        let text = m.render();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("dataminer_keys_key_generated_timestamp_seconds{"))
            .collect();
        assert_eq!(
            series,
            [
                r#"dataminer_keys_key_generated_timestamp_seconds{keyset_namespace="ns",keyset="active",slot="primary"} 1700000000"#,
                r#"dataminer_keys_key_generated_timestamp_seconds{keyset_namespace="ns",keyset="active",slot="secondary"} 1700000500"#,
            ],
            "{text}"
        );
        assert!(text.contains("# TYPE dataminer_keys_key_generated_timestamp_seconds gauge"));
        assert!(text.contains("# UNIT dataminer_keys_key_generated_timestamp_seconds seconds"));
    }

    #[test]
    fn a_replica_that_does_not_lead_reports_no_keys() {
        let text = Metrics::default().render();
        assert!(
            !text.contains("dataminer_keys_key_generated_timestamp_seconds{"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_streamed_scrape_is_the_whole_text_in_pieces() {
        let m = metrics_over(
            (0..2_000)
                .map(|i| with_keys(&format!("ks-{i}"), i, i + 1, false))
                .collect(),
        );
        let whole = m.render();
        let pieces: Vec<String> = m
            .clone()
            .render_chunks()
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert!(pieces.len() > 3, "{} pieces", pieces.len());
        assert!(
            pieces[..pieces.len() - 1]
                .iter()
                .all(|p| p.len() >= crate::metrics::CHUNK && p.len() < 2 * crate::metrics::CHUNK)
        );
        assert_eq!(pieces.concat(), whole);
        assert!(whole.ends_with("# EOF\n"));
    }
}
