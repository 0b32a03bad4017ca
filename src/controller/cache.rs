//! What the reconciler knows without asking the API server: the watch caches, and what it
//! wrote or read itself.
//!
//! Secrets are cached as metadata only; values are read by GET when needed. For each key set
//! the reconciler remembers the Secret version it last verified (uid and resourceVersion), the
//! key set generation it verified it for, and the plan's view of it. While the cached Secret is
//! still that version and the spec has not changed, the values cannot have changed, so the plan
//! reuses that view without a read. Only a clean view is remembered: every value proven at the
//! revision its annotation names (anything else depends on the record and the request, and is
//! read again each time).
//!
//! It also remembers the key set version its last status write was made on: a cached key set
//! still at that version predates the write (the watch has not delivered it yet), and planning
//! from it would record a change twice, so that reconcile waits for the watch instead.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use k8s_openapi::api::core::v1::Secret;
use kube::{Resource, ResourceExt, core::PartialObjectMeta};

use super::secret_index::{SecretIndex, Version};

use crate::{
    api::DataMinerKeySet,
    plan::{SecretSeen, Slot},
};

/// A Secret version the reconciler has verified (its uid is the one in `seen`), and the plan's
/// view of it.
#[derive(Clone, Debug)]
struct Verified {
    resource_version: String,
    generation: Option<i64>,
    seen: SecretSeen,
}

impl Verified {
    fn uid(&self) -> Option<&str> {
        match &self.seen {
            SecretSeen::Present { uid, .. } => Some(uid),
            SecretSeen::Absent => None,
        }
    }

    /// Whether the Secret version `uid`/`resource_version` is the one verified.
    fn is_version(&self, uid: &str, resource_version: &str) -> bool {
        self.uid() == Some(uid) && self.resource_version == resource_version
    }
}

/// One per key set, so kept small: the map's slots hold it inline, the rarer parts are boxed.
#[derive(Default)]
struct Memo {
    verified: Option<Box<Verified>>,
    /// A create was refused or a write's outcome is unknown: read before planning again.
    must_read: bool,
    /// The key set's resourceVersion the last status write was made on, and the one it produced.
    status_written_on: Option<String>,
    status_written_as: Option<String>,
    /// A reconcile found the cache behind and left the work to the watch event of our own status
    /// write: that event must not be skipped.
    awaited: bool,
    /// The state the metrics count it in (`Ready`, `NotReady`, `Revoked`).
    state: Option<&'static str>,
}

#[derive(Default)]
pub struct Cache {
    /// One per Secret watch. Until every one has listed, absence means nothing.
    secrets: OnceLock<Vec<Arc<SecretIndex>>>,
    memo: Mutex<HashMap<String, Memo>>,
}

/// What the cache says about a key set's Secret.
pub(super) enum CachedSecret {
    /// The cached Secret is the version last verified for this spec: its view holds.
    Verified(SecretSeen),
    /// No Secret of that name, none recorded, none ever seen for this key set.
    Absent,
    /// Anything else (a new version, one never verified, one that left the cache): read it.
    Unknown,
}

/// `namespace/name` of a key set: what the memo is keyed by.
fn memo_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn key(ks: &DataMinerKeySet) -> String {
    memo_key(&ks.namespace().unwrap_or_default(), &ks.name_any())
}

/// Every value present is proven at the revision its annotation names.
fn is_clean(seen: &SecretSeen) -> bool {
    match seen {
        SecretSeen::Absent => false,
        SecretSeen::Present { slots, .. } => Slot::BOTH.iter().all(|&slot| {
            let s = &slots[slot.index()];
            s.fingerprint.is_some() && s.proven.is_some() && s.proven == s.revision
        }),
    }
}

impl Cache {
    /// Called once, with the index of each Secret watch.
    pub(super) fn set_secret_indexes(&self, indexes: Vec<Arc<SecretIndex>>) {
        let _ = self.secrets.set(indexes);
    }

    /// `None` until every Secret watch has listed once; then the cached version, if any.
    fn cached_secret(&self, ks: &DataMinerKeySet) -> Option<Option<Version>> {
        let indexes = self.secrets.get()?;
        if !indexes.iter().all(|i| i.is_synced()) {
            return None;
        }
        let namespace = ks.namespace().unwrap_or_default();
        let name = ks.secret_name();
        Some(indexes.iter().find_map(|i| i.get(&namespace, &name)))
    }

    pub(super) fn secret(&self, ks: &DataMinerKeySet) -> CachedSecret {
        let Some(cached) = self.cached_secret(ks) else {
            return CachedSecret::Unknown;
        };
        let memo = self.memo.lock().expect("cache lock");
        let memo = memo.get(&key(ks));
        if memo.is_some_and(|m| m.must_read) {
            return CachedSecret::Unknown;
        }
        let verified = memo.and_then(|m| m.verified.as_ref());
        let recorded = ks.status.as_ref().and_then(|s| s.secret_uid.as_ref());
        match (cached, verified) {
            (Some(cached), Some(v))
                if v.is_version(&cached.uid, &cached.resource_version)
                    && ks.metadata.generation == v.generation =>
            {
                CachedSecret::Verified(v.seen.clone())
            }
            // A new key set. Should a Secret of that name exist all the same (someone else's,
            // not labelled as ours, so not cached), the create is refused and the retry reads.
            (None, None) if recorded.is_none() => CachedSecret::Absent,
            _ => CachedSecret::Unknown,
        }
    }

    /// After a read or a write: this version of the Secret is what `seen` says.
    pub(super) fn verified(
        &self,
        ks: &DataMinerKeySet,
        secret: Option<&Secret>,
        seen: &SecretSeen,
    ) {
        let mut memo = self.memo.lock().expect("cache lock");
        let entry = memo.entry(key(ks)).or_default();
        entry.must_read = false;
        let verified = secret.filter(|_| is_clean(seen)).and_then(|s| {
            Some(Verified {
                resource_version: s.resource_version()?,
                generation: ks.metadata.generation,
                seen: seen.clone(),
            })
        });
        // The view was observed from this very Secret, so their uids agree; checked all the same.
        entry.verified = verified
            .filter(|v| {
                v.uid().is_some() && v.uid() == secret.and_then(|s| s.metadata.uid.as_deref())
            })
            .map(Box::new);
    }

    /// Read the Secret before the next plan (a refused create, a write with unknown outcome).
    pub(super) fn must_read(&self, ks: &DataMinerKeySet) {
        let mut memo = self.memo.lock().expect("cache lock");
        let entry = memo.entry(key(ks)).or_default();
        entry.must_read = true;
        entry.verified = None;
    }

    /// After a status write made on `ks` as it was cached; `result` is the resourceVersion the
    /// API server gave the key set.
    pub(super) fn status_written(&self, ks: &DataMinerKeySet, result: Option<String>) {
        let mut memo = self.memo.lock().expect("cache lock");
        let entry = memo.entry(key(ks)).or_default();
        entry.status_written_on = ks.resource_version();
        entry.status_written_as = result;
        entry.awaited = false;
    }

    /// True when `ks` is the version the last status write was made on: the cache is behind, and
    /// the watch event of that write is now awaited.
    pub(super) fn is_stale(&self, ks: &DataMinerKeySet) -> bool {
        let mut memo = self.memo.lock().expect("cache lock");
        let Some(entry) = memo.get_mut(&key(ks)) else {
            return false;
        };
        let stale =
            entry.status_written_on.is_some() && entry.status_written_on == ks.resource_version();
        entry.awaited |= stale;
        stale
    }

    /// The watch event of our own last status write, nobody waiting for it: the key set is what
    /// the reconcile that wrote it planned, so reconciling it again would only find nothing to do.
    pub(super) fn is_own_status_write(&self, ks: &DataMinerKeySet) -> bool {
        let memo = self.memo.lock().expect("cache lock");
        memo.get(&key(ks)).is_some_and(|m| {
            !m.awaited
                && m.status_written_as.is_some()
                && m.status_written_as == ks.resource_version()
        })
    }

    /// The watch event of a Secret version this process wrote or read and verified for the key
    /// set that controls it: nothing in it is news.
    pub(super) fn is_known_secret(&self, secret: &PartialObjectMeta<Secret>) -> bool {
        let Some(owner) = secret
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == DataMinerKeySet::kind(&()))
        else {
            return false;
        };
        let (Some(uid), Some(rv)) = (&secret.metadata.uid, &secret.metadata.resource_version)
        else {
            return false;
        };
        let memo = self.memo.lock().expect("cache lock");
        let key = memo_key(&secret.namespace().unwrap_or_default(), &owner.name);
        memo.get(&key)
            .and_then(|m| m.verified.as_ref())
            .is_some_and(|v| v.is_version(uid, rv))
    }

    /// Records the key set's state for the metrics; returns the one it replaces.
    pub(super) fn swap_state(
        &self,
        ks: &DataMinerKeySet,
        state: Option<&'static str>,
    ) -> Option<&'static str> {
        let mut memo = self.memo.lock().expect("cache lock");
        match state {
            Some(_) => std::mem::replace(&mut memo.entry(key(ks)).or_default().state, state),
            None => memo.get_mut(&key(ks)).and_then(|m| m.state.take()),
        }
    }

    /// The key set is gone.
    pub(super) fn remove(&self, ks: &DataMinerKeySet) {
        self.memo.lock().expect("cache lock").remove(&key(ks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixtures, plan::SlotSeen};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn keyset_at(rv: &str) -> DataMinerKeySet {
        let mut ks = fixtures::keyset();
        ks.metadata.name = Some("ks".into());
        ks.metadata.namespace = Some("team".into());
        ks.metadata.resource_version = Some(rv.into());
        ks
    }

    #[test]
    fn the_echo_of_our_own_status_write_is_skipped_unless_a_reconcile_waits_for_it() {
        let cache = Cache::default();
        assert!(!cache.is_own_status_write(&keyset_at("11")));
        cache.status_written(&keyset_at("10"), Some("11".into()));
        assert!(cache.is_own_status_write(&keyset_at("11")));
        assert!(
            !cache.is_own_status_write(&keyset_at("12")),
            "a change by someone else"
        );
        // A reconcile (a Secret edited by hand, say) found the cache still at 10 and left its work
        // to the echo: the echo must now reach the reconciler.
        assert!(cache.is_stale(&keyset_at("10")));
        assert!(!cache.is_own_status_write(&keyset_at("11")));
        assert!(!cache.is_stale(&keyset_at("11")));
        // The next write starts over.
        cache.status_written(&keyset_at("11"), Some("12".into()));
        assert!(cache.is_own_status_write(&keyset_at("12")));
    }

    fn secret(uid: &str, rv: &str, owner: &str, controller: bool) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("ks-keys".into());
        s.metadata.namespace = Some("team".into());
        s.metadata.uid = Some(uid.into());
        s.metadata.resource_version = Some(rv.into());
        s.metadata.owner_references = Some(vec![OwnerReference {
            api_version: DataMinerKeySet::api_version(&()).into(),
            kind: DataMinerKeySet::kind(&()).into(),
            name: owner.into(),
            uid: "ks-uid".into(),
            controller: Some(controller),
            ..Default::default()
        }]);
        s
    }

    fn meta(s: &Secret) -> PartialObjectMeta<Secret> {
        PartialObjectMeta::<Secret> {
            metadata: s.metadata.clone(),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_exact_secret_version_verified_for_its_controller_is_known() {
        let cache = Cache::default();
        let ks = keyset_at("10");
        let written = secret("uid-1", "20", "ks", true);
        let proven = SlotSeen {
            revision: Some(1),
            fingerprint: Some("fp".into()),
            proven: Some(1),
        };
        let seen = SecretSeen::Present {
            uid: "uid-1".into(),
            slots: [proven.clone(), proven.clone()],
            layout_in_sync: true,
        };
        assert!(
            !cache.is_known_secret(&meta(&written)),
            "nothing verified yet"
        );
        cache.verified(&ks, Some(&written), &seen);
        assert!(cache.is_known_secret(&meta(&written)));
        for other in [
            secret("uid-1", "21", "ks", true),    // edited since
            secret("uid-2", "20", "ks", true),    // another Secret
            secret("uid-1", "20", "other", true), // controlled by another key set
            secret("uid-1", "20", "ks", false),   // not a controller reference
        ] {
            assert!(!cache.is_known_secret(&meta(&other)), "{other:?}");
        }
        // A view that is not clean is never remembered.
        let unproven = SecretSeen::Present {
            uid: "uid-1".into(),
            slots: [
                proven.clone(),
                SlotSeen {
                    proven: None,
                    ..proven
                },
            ],
            layout_in_sync: true,
        };
        cache.verified(&ks, Some(&written), &unproven);
        assert!(!cache.is_known_secret(&meta(&written)));
    }
}
