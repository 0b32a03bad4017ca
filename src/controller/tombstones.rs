//! Tombstones: the lineages of key sets that were revoked or deleted through the finalizer.
//! The keys of a tombstoned lineage are never adopted again, whatever backup they come from
//! (docs/design.md, "Restore").
//!
//! Kept in one Secret beside the proof key, `<lease-name>-revoked` (data key `lineages`, one
//! lineage a line), read once per process when first needed, then kept in memory: only the
//! leader acts, and every write goes through this process. A lineage is 32 hex characters, so
//! the Secret's 1 MiB holds about 30,000 of them; past that the write is refused and the
//! revocation reports it (docs/backup.md).

use std::collections::HashSet;

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use tokio::sync::{Mutex, OnceCell};

use super::calls::{CallError, call};
use crate::secret::FIELD_MANAGER;

const DATA_KEY: &str = "lineages";

pub struct Tombstones {
    api: Api<Secret>,
    name: String,
    /// The lineages, once read; the lock also serializes writes.
    known: OnceCell<Mutex<HashSet<String>>>,
}

impl Tombstones {
    pub fn new(client: Client, namespace: &str, name: String) -> Self {
        Tombstones {
            api: Api::namespaced(client, namespace),
            name,
            known: OnceCell::new(),
        }
    }

    async fn read(&self) -> Result<(HashSet<String>, Option<Secret>), CallError> {
        let secret = call(self.api.get_opt(&self.name)).await?;
        let lineages = secret
            .as_ref()
            .and_then(|s| s.data.as_ref()?.get(DATA_KEY))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Ok((lineages, secret))
    }

    async fn known(&self) -> Result<&Mutex<HashSet<String>>, CallError> {
        self.known
            .get_or_try_init(|| async { Ok(Mutex::new(self.read().await?.0)) })
            .await
    }

    /// Whether `lineage` was revoked or deleted.
    pub(super) async fn contains(&self, lineage: &str) -> Result<bool, CallError> {
        Ok(self.known().await?.lock().await.contains(lineage))
    }

    /// Records `lineage` for good (nothing to do if it is already). Retries a write that lost a
    /// race with another writer; the caller checks leadership first.
    pub(super) async fn add(&self, lineage: &str) -> Result<(), CallError> {
        let mut known = self.known().await?.lock().await;
        if known.contains(lineage) {
            return Ok(());
        }
        loop {
            let (mut stored, existing) = self.read().await?;
            stored.insert(lineage.to_string());
            let mut sorted: Vec<&String> = stored.iter().collect();
            sorted.sort();
            let text: String = sorted.iter().map(|l| format!("{l}\n")).collect();
            let data: std::collections::BTreeMap<String, ByteString> =
                [(DATA_KEY.to_string(), ByteString(text.into_bytes()))].into();
            let written = match existing {
                // Server-side apply on the version read: refused (409) if it changed since.
                Some(secret) => {
                    let body = serde_json::json!({
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": { "name": self.name, "resourceVersion": secret.resource_version() },
                        "data": data,
                    });
                    let pp = PatchParams::apply(FIELD_MANAGER).force();
                    call(self.api.patch(&self.name, &pp, &Patch::Apply(&body))).await
                }
                None => {
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            labels: Some(
                                [(
                                    "app.kubernetes.io/name".to_string(),
                                    "dataminer-keys-operator".to_string(),
                                )]
                                .into(),
                            ),
                            annotations: Some([(
                                "keys.dataminer.services/purpose".to_string(),
                                "Lineages of revoked or deleted key sets: their keys are never adopted again. Part of the backup, with the proof key.".to_string(),
                            )].into()),
                            ..Default::default()
                        },
                        data: Some(data),
                        ..Default::default()
                    };
                    let pp = PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    };
                    call(self.api.create(&pp, &secret)).await
                }
            };
            match written {
                Ok(s) => {
                    tracing::debug!(secret = s.name_any(), "lineage tombstoned");
                    *known = stored;
                    return Ok(());
                }
                // Someone else wrote it since: read again and add on top.
                Err(e) if e.code() == Some(409) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
