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
//!
//! Key sets enter the cache without `status.history`: nothing but the status write reads it,
//! and it is most of a long-lived key set's size. The history of the version the watch last
//! delivered is kept here as compact JSON, tagged with that version's resourceVersion; the
//! status write restates it only when it was planned on that very version (otherwise the
//! conditional write would be refused anyway).
//!
//! They enter it without labels and annotations too: the reconciler reads none but the requester
//! annotations (who asked, api/requester.rs), and only for an action. A map of them costs about
//! 600 bytes per key set (a B-tree node), whatever it holds (Argo CD's tracking annotation, say).
//! The requester annotations an action not yet in status may need are kept here with the
//! history, and put back on the key set when a plan has an action to record; a key set at rest
//! needs none (status holds the names).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, OnceLock},
};

use k8s_openapi::api::core::v1::Secret;
use kube::{Resource, ResourceExt, core::PartialObjectMeta, runtime::watcher};

use super::{
    secret_index::{SecretIndex, Version},
    token::Token,
};

use crate::{
    api::{DataMinerKeySet, HistoryEntry, REQUESTER_ANNOTATIONS},
    plan::{SecretSeen, SlotSeen},
};

/// A Secret version the reconciler has verified, and the plan's view of it, which is clean:
/// every value proven at its revision. Kept as that, not as the view itself: tokens, not strings.
#[derive(Clone, Debug)]
struct Verified {
    version: Version,
    generation: Option<i64>,
    /// Per slot, the revision the value is proven at and its fingerprint.
    slots: [(i64, Token); 2],
    layout_in_sync: bool,
    lineage: Option<Token>,
    controlled: bool,
}

impl Verified {
    /// `None` unless `seen` is clean (anything else depends on the record and the request, and is
    /// read again each time) and is a view of the Secret `uid`.
    fn new(
        uid: &str,
        resource_version: &str,
        generation: Option<i64>,
        seen: &SecretSeen,
    ) -> Option<Self> {
        // A tombstoned Secret is left to be read each time: the tombstones decide, not a memo.
        let SecretSeen::Present {
            uid: seen_uid,
            slots,
            layout_in_sync,
            lineage,
            controlled,
            tombstoned: false,
        } = seen
        else {
            return None;
        };
        // The view was observed from this very Secret, so their uids agree; checked all the same.
        if seen_uid != uid {
            return None;
        }
        let clean = |s: &SlotSeen| match (s.revision, s.proven, &s.fingerprint) {
            (Some(revision), Some(proven), Some(fp)) if revision == proven => {
                Some((revision, Token::new(fp)))
            }
            _ => None,
        };
        Some(Verified {
            version: Version {
                uid: Token::new(uid),
                resource_version: Token::new(resource_version),
            },
            generation,
            slots: [clean(&slots[0])?, clean(&slots[1])?],
            layout_in_sync: *layout_in_sync,
            lineage: lineage.as_deref().map(Token::new),
            controlled: *controlled,
        })
    }

    /// The view, as the plan takes it.
    fn seen(&self) -> SecretSeen {
        let slot = |(revision, fp): &(i64, Token)| SlotSeen {
            revision: Some(*revision),
            fingerprint: Some(fp.to_string()),
            proven: Some(*revision),
        };
        SecretSeen::Present {
            uid: self.version.uid.to_string(),
            slots: [slot(&self.slots[0]), slot(&self.slots[1])],
            layout_in_sync: self.layout_in_sync,
            lineage: self.lineage.as_ref().map(Token::to_string),
            controlled: self.controlled,
            tombstoned: false,
        }
    }
}

/// One per key set, so kept small: the map's slots hold it inline, the rarer parts are boxed.
#[derive(Default)]
struct Memo {
    verified: Option<Box<Verified>>,
    /// A create was refused or a write's outcome is unknown: read before planning again.
    must_read: bool,
    /// The last status write.
    status_written: Option<Box<StatusWrite>>,
    /// The state the metrics count it in (`Ready`, `NotReady`, `Revoked`).
    state: Option<&'static str>,
    /// What was taken out of the version the watch last delivered.
    taken: Option<Taken>,
}

/// A status write: a cached key set still at the version it was made on predates it.
struct StatusWrite {
    /// The key set's resourceVersion it was made on, and the one it produced.
    on: Option<Token>,
    produced: Option<Token>,
    /// A reconcile found the cache behind and left the work to the watch event of this write:
    /// that event must not be skipped.
    awaited: bool,
}

/// What was taken out of one version of a key set: its history as JSON (empty for none) and
/// its requester annotations (by their index in [`REQUESTER_ANNOTATIONS`]).
struct Taken {
    resource_version: Token,
    json: Box<str>,
    requesters: Option<Requesters>,
}

/// Requester annotations as (index in [`REQUESTER_ANNOTATIONS`], value).
type Requesters = Box<[(u8, Box<str>)]>;

#[derive(Default)]
pub struct Cache {
    /// One per Secret watch. Until every one has listed, absence means nothing.
    secrets: OnceLock<Vec<Arc<SecretIndex>>>,
    /// By [`memo_key`].
    memo: Mutex<HashMap<Box<str>, Memo>>,
}

/// Follows one key set watch, before its cache does: takes each version's history out of the
/// object and keeps it in the record, and forgets a key set the watch reports deleted, or that a
/// re-list of the watch's namespace (or of all, `None`) no longer holds.
pub(super) struct Follower {
    namespace: Option<String>,
    /// A re-list in progress: the key sets it has delivered so far.
    listing: Option<HashSet<Box<str>>>,
}

impl Follower {
    pub fn new(namespace: Option<String>) -> Self {
        Follower {
            namespace,
            listing: None,
        }
    }

    /// Returns the metrics states the forgotten key sets were still counted in (a finalizer
    /// removed by hand, so no cleanup ran).
    pub fn follow(
        &mut self,
        cache: &Cache,
        event: &mut watcher::Event<DataMinerKeySet>,
    ) -> Vec<&'static str> {
        match event {
            watcher::Event::Apply(ks) => cache.take_out(ks),
            watcher::Event::Delete(ks) => return cache.remove(ks).into_iter().collect(),
            watcher::Event::Init => self.listing = Some(HashSet::new()),
            watcher::Event::InitApply(ks) => {
                cache.take_out(ks);
                if let Some(listing) = &mut self.listing {
                    listing.insert(key(ks).into());
                }
            }
            watcher::Event::InitDone => {
                let Some(listed) = self.listing.take() else {
                    return Vec::new();
                };
                let prefix = self.namespace.as_deref().map(|ns| memo_key(ns, ""));
                let mut memo = cache.memo.lock().expect("cache lock");
                let gone: Vec<Box<str>> = memo
                    .keys()
                    .filter(|k| prefix.as_deref().is_none_or(|p| k.starts_with(p)))
                    .filter(|k| !listed.contains(*k))
                    .cloned()
                    .collect();
                return gone
                    .iter()
                    .filter_map(|k| memo.remove(k).and_then(|m| m.state))
                    .collect();
            }
        }
        Vec::new()
    }
}

/// What [`Cache::history`] and [`Cache::requesters`] hold for a key set.
#[derive(Debug, PartialEq)]
pub(super) enum Kept<T> {
    /// What was taken out of this very version.
    This(T),
    /// The watch has delivered another version since: a write planned on this one is outdated.
    ForAnotherVersion,
    /// Nothing taken: this key set did not come through the watch, and carries its history.
    Nothing,
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

/// Whether `token` is the key set's resourceVersion.
fn is_at(token: &Option<Token>, ks: &DataMinerKeySet) -> bool {
    match (token, &ks.metadata.resource_version) {
        (Some(t), Some(rv)) => t.is(rv),
        _ => false,
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
        let memo = memo.get(key(ks).as_str());
        if memo.is_some_and(|m| m.must_read) {
            return CachedSecret::Unknown;
        }
        let verified = memo.and_then(|m| m.verified.as_ref());
        let recorded = ks.status.as_ref().and_then(|s| s.secret_uid.as_ref());
        match (cached, verified) {
            (Some(cached), Some(v))
                if v.version == cached && ks.metadata.generation == v.generation =>
            {
                CachedSecret::Verified(v.seen())
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
        let verified = secret.and_then(|s| {
            Verified::new(
                s.metadata.uid.as_deref()?,
                s.metadata.resource_version.as_deref()?,
                ks.metadata.generation,
                seen,
            )
        });
        let mut memo = self.memo.lock().expect("cache lock");
        let entry = memo.entry(key(ks).into()).or_default();
        entry.must_read = false;
        entry.verified = verified.map(Box::new);
    }

    /// Read the Secret before the next plan (a refused create, a write with unknown outcome).
    pub(super) fn must_read(&self, ks: &DataMinerKeySet) {
        let mut memo = self.memo.lock().expect("cache lock");
        let entry = memo.entry(key(ks).into()).or_default();
        entry.must_read = true;
        entry.verified = None;
    }

    /// After a status write made on `ks` as it was cached; `result` is the resourceVersion the
    /// API server gave the key set. A write the API server answered with the same
    /// resourceVersion changed nothing and causes no watch event: waiting for one would freeze
    /// the key set (issue 21), so it is forgotten instead.
    pub(super) fn status_written(&self, ks: &DataMinerKeySet, result: Option<String>) {
        let on = ks.metadata.resource_version.as_deref();
        let mut memo = self.memo.lock().expect("cache lock");
        let entry = memo.entry(key(ks).into()).or_default();
        entry.status_written = match (on, result.as_deref()) {
            (Some(on), Some(produced)) if on != produced => Some(Box::new(StatusWrite {
                on: Some(Token::new(on)),
                produced: Some(Token::new(produced)),
                awaited: false,
            })),
            // Unchanged, or a version we cannot compare: no echo to wait for.
            _ => None,
        };
    }

    /// True when `ks` is the version the last status write was made on: the cache is behind, and
    /// the watch event of that write is now awaited.
    pub(super) fn is_stale(&self, ks: &DataMinerKeySet) -> bool {
        let mut memo = self.memo.lock().expect("cache lock");
        let Some(write) = memo
            .get_mut(key(ks).as_str())
            .and_then(|m| m.status_written.as_mut())
        else {
            return false;
        };
        let stale = is_at(&write.on, ks);
        write.awaited |= stale;
        stale
    }

    /// The watch event of our own last status write, nobody waiting for it: the key set is what
    /// the reconcile that wrote it planned, so reconciling it again would only find nothing to do.
    /// The write is kept (until the next one): a reconcile dispatched before this event may still
    /// hold the copy the write was made on, and must find it stale.
    pub(super) fn is_own_status_write(&self, ks: &DataMinerKeySet) -> bool {
        let memo = self.memo.lock().expect("cache lock");
        memo.get(key(ks).as_str())
            .and_then(|m| m.status_written.as_ref())
            .is_some_and(|w| !w.awaited && is_at(&w.produced, ks))
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
        memo.get(key.as_str())
            .and_then(|m| m.verified.as_ref())
            .is_some_and(|v| v.version.is(uid, rv))
    }

    /// Records the key set's state for the metrics; returns the one it replaces.
    pub(super) fn swap_state(
        &self,
        ks: &DataMinerKeySet,
        state: Option<&'static str>,
    ) -> Option<&'static str> {
        let mut memo = self.memo.lock().expect("cache lock");
        match state {
            Some(_) => std::mem::replace(&mut memo.entry(key(ks).into()).or_default().state, state),
            None => memo.get_mut(key(ks).as_str()).and_then(|m| m.state.take()),
        }
    }

    /// Takes out of a key set the watch delivered what the reconciler does not plan from (module
    /// documentation), keeping the history and the requester annotations for this version.
    fn take_out(&self, ks: &mut DataMinerKeySet) {
        let Some(rv) = ks.metadata.resource_version.as_deref() else {
            return;
        };
        let requesters: Vec<(u8, Box<str>)> = ks
            .awaited_requesters()
            .into_iter()
            .map(|(i, value)| (i as u8, value.into()))
            .collect();
        ks.metadata.annotations = None;
        ks.metadata.labels = None;
        let history = ks
            .status
            .as_mut()
            .map(|s| std::mem::take(&mut s.history))
            .unwrap_or_default();
        let json = match history.is_empty() {
            true => Box::default(),
            false => serde_json::to_string(&history)
                .expect("history entries serialize")
                .into(),
        };
        let kept = Taken {
            resource_version: Token::new(rv),
            json,
            requesters: (!requesters.is_empty()).then(|| requesters.into_boxed_slice()),
        };
        let mut memo = self.memo.lock().expect("cache lock");
        memo.entry(key(ks).into()).or_default().taken = Some(kept);
    }

    /// What was taken out of `ks` when the watch delivered it, if it was this very version.
    fn taken<T>(&self, ks: &DataMinerKeySet, f: impl FnOnce(&Taken) -> T) -> Kept<T> {
        let memo = self.memo.lock().expect("cache lock");
        let Some(kept) = memo.get(key(ks).as_str()).and_then(|m| m.taken.as_ref()) else {
            return Kept::Nothing;
        };
        if !ks
            .metadata
            .resource_version
            .as_deref()
            .is_some_and(|rv| kept.resource_version.is(rv))
        {
            return Kept::ForAnotherVersion;
        }
        Kept::This(f(kept))
    }

    /// The history taken out of `ks` when the watch delivered it.
    pub(super) fn history(&self, ks: &DataMinerKeySet) -> Kept<Vec<HistoryEntry>> {
        self.taken(ks, |kept| match kept.json.is_empty() {
            true => Vec::new(),
            false => serde_json::from_str(&kept.json).expect("history kept as written"),
        })
    }

    /// The requester annotations taken out of `ks` when the watch delivered it.
    pub(super) fn requesters(&self, ks: &DataMinerKeySet) -> Kept<BTreeMap<String, String>> {
        self.taken(ks, |kept| {
            kept.requesters
                .iter()
                .flatten()
                .map(|(i, v)| {
                    (
                        REQUESTER_ANNOTATIONS[*i as usize].to_string(),
                        v.to_string(),
                    )
                })
                .collect()
        })
    }

    /// The key set is gone; returns the metrics state it was counted in.
    pub(super) fn remove(&self, ks: &DataMinerKeySet) -> Option<&'static str> {
        let mut memo = self.memo.lock().expect("cache lock");
        memo.remove(key(ks).as_str()).and_then(|m| m.state)
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
        assert!(
            !cache.is_own_status_write(&keyset_at("12")),
            "a change by someone else"
        );
        assert!(cache.is_stale(&keyset_at("10")), "still behind");
        // A reconcile (a Secret edited by hand, say) found the cache still at 10 and left its work
        // to the echo: the echo must now reach the reconciler.
        assert!(!cache.is_own_status_write(&keyset_at("11")));
        assert!(!cache.is_stale(&keyset_at("11")));

        // Nobody waiting: the echo is skipped. The write is kept: a reconcile that took the
        // cached copy before the echo arrived still finds that copy stale.
        cache.status_written(&keyset_at("11"), Some("12".into()));
        assert!(cache.is_own_status_write(&keyset_at("12")));
        assert!(cache.is_stale(&keyset_at("11")));
        assert!(!cache.is_stale(&keyset_at("12")));

        // A write the API server answered unchanged (same resourceVersion) has no echo: the key
        // set at that version is not stale, or it would never be reconciled again.
        cache.status_written(&keyset_at("12"), Some("12".into()));
        assert!(!cache.is_stale(&keyset_at("12")));
        assert!(!cache.is_own_status_write(&keyset_at("12")));
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
            lineage: None,
            controlled: true,
            tombstoned: false,
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
            lineage: None,
            controlled: true,
            tombstoned: false,
        };
        cache.verified(&ks, Some(&written), &unproven);
        assert!(!cache.is_known_secret(&meta(&written)));
    }

    #[test]
    fn a_clean_view_is_kept_exactly_and_nothing_else_is_kept() {
        let slot = |revision: i64, fp: &str| SlotSeen {
            revision: Some(revision),
            fingerprint: Some(fp.into()),
            proven: Some(revision),
        };
        let uid = "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e11";
        let clean = SecretSeen::Present {
            uid: uid.into(),
            slots: [slot(3, "sha256:0123abcd"), slot(1, "sha256:4567ef01")],
            layout_in_sync: false,
            lineage: None,
            controlled: true,
            tombstoned: false,
        };
        let v = Verified::new(uid, "41", Some(2), &clean).expect("a clean view");
        assert_eq!(v.seen(), clean);
        assert!(v.version.is(uid, "41"));
        assert!(Verified::new("another-uid", "41", Some(2), &clean).is_none());
        assert!(Verified::new(uid, "41", Some(2), &SecretSeen::Absent).is_none());
        for unclean in [
            SlotSeen {
                proven: Some(2),
                ..slot(3, "fp")
            },
            SlotSeen {
                proven: None,
                ..slot(3, "fp")
            },
            SlotSeen {
                fingerprint: None,
                ..slot(3, "fp")
            },
            SlotSeen {
                revision: None,
                ..slot(3, "fp")
            },
        ] {
            let seen = SecretSeen::Present {
                uid: uid.into(),
                slots: [slot(1, "fp"), unclean.clone()],
                layout_in_sync: true,
                lineage: None,
                controlled: true,
                tombstoned: false,
            };
            assert!(
                Verified::new(uid, "41", Some(2), &seen).is_none(),
                "{unclean:?}"
            );
        }
    }

    #[test]
    fn labels_and_annotations_leave_the_cache_and_only_the_requesters_come_back() {
        use crate::api::{CREATED_BY_ANNOTATION, ON_BEHALF_OF_ANNOTATION};
        let cache = Cache::default();
        let mut ks = keyset_at("10");
        let pairs = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ks.metadata.annotations = Some(pairs(&[
            (CREATED_BY_ANNOTATION, "user-a"),
            (ON_BEHALF_OF_ANNOTATION, "Alice"),
            (
                "argocd.argoproj.io/tracking-id",
                "app:keys.dataminer.services/DataMinerKeySet:team/ks",
            ),
        ]));
        ks.metadata.labels = Some(pairs(&[("app.kubernetes.io/instance", "app")]));
        let mut event = watcher::Event::Apply(ks);
        Follower::new(None).follow(&cache, &mut event);
        let watcher::Event::Apply(cached) = event else {
            unreachable!()
        };
        assert_eq!(
            (&cached.metadata.annotations, &cached.metadata.labels),
            (&None, &None)
        );
        assert_eq!(
            cache.requesters(&cached),
            Kept::This(pairs(&[
                (CREATED_BY_ANNOTATION, "user-a"),
                (ON_BEHALF_OF_ANNOTATION, "Alice"),
            ]))
        );
        assert_eq!(cache.requesters(&keyset_at("9")), Kept::ForAnotherVersion);
        // A version without any: nothing comes back, not the older version's.
        let mut event = watcher::Event::Apply(keyset_at("11"));
        Follower::new(None).follow(&cache, &mut event);
        assert_eq!(
            cache.requesters(&keyset_at("11")),
            Kept::This(BTreeMap::new())
        );
    }

    #[test]
    fn the_history_leaves_the_cached_key_set_and_comes_back_for_that_version_only() {
        let cache = Cache::default();
        let mut ks = keyset_at("10");
        let status = crate::api::DataMinerKeySetStatus {
            secret_uid: Some("uid-1".into()),
            history: vec![HistoryEntry {
                action: "KeysCreated".into(),
                slot: None,
                revision: None,
                at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(crate::fixtures::at(0)),
                by: None,
                on_behalf_of: None,
                fingerprint: Some("sha256:0123abcd".into()),
            }],
            ..Default::default()
        };
        ks.status = Some(status.clone());

        let mut follower = Follower::new(None);
        let mut event = watcher::Event::Apply(ks);
        assert_eq!(follower.follow(&cache, &mut event), Vec::<&str>::new());
        let watcher::Event::Apply(cached) = event else {
            unreachable!()
        };
        assert!(cached.status.as_ref().unwrap().history.is_empty());
        assert_eq!(cache.history(&cached), Kept::This(status.history.clone()));
        assert_eq!(
            cache.history(&keyset_at("9")),
            Kept::ForAnotherVersion,
            "planned on another version"
        );

        // A key set without status keeps an empty history; a newer version replaces the old.
        let mut event = watcher::Event::Apply(keyset_at("11"));
        follower.follow(&cache, &mut event);
        assert_eq!(cache.history(&keyset_at("11")), Kept::This(vec![]));
        assert_eq!(cache.history(&cached), Kept::ForAnotherVersion);

        // Deleted: forgotten, and the state it was counted in is handed back.
        cache.swap_state(&cached, Some("Ready"));
        let mut event = watcher::Event::Delete(keyset_at("12"));
        assert_eq!(follower.follow(&cache, &mut event), vec!["Ready"]);
        assert_eq!(cache.history(&keyset_at("11")), Kept::Nothing);
    }

    #[test]
    fn a_relist_forgets_the_key_sets_deleted_while_the_watch_was_down() {
        let cache = Cache::default();
        let named = |ns: &str, name: &str, rv: &str| {
            let mut ks = keyset_at(rv);
            ks.metadata.namespace = Some(ns.into());
            ks.metadata.name = Some(name.into());
            ks
        };
        let mut team = Follower::new(Some("team".into()));
        let mut other = Follower::new(Some("other".into()));
        for ks in [named("team", "a", "1"), named("team", "b", "2")] {
            team.follow(&cache, &mut watcher::Event::Apply(ks.clone()));
            cache.swap_state(&ks, Some("Ready"));
        }
        let c = named("other", "c", "3");
        other.follow(&cache, &mut watcher::Event::Apply(c.clone()));
        cache.swap_state(&c, Some("NotReady"));

        // "team" is listed again: "b" went away meanwhile.
        let mut events = [
            watcher::Event::Init,
            watcher::Event::InitApply(named("team", "a", "4")),
            watcher::Event::InitDone,
        ];
        let forgotten: Vec<_> = events
            .iter_mut()
            .flat_map(|e| team.follow(&cache, e))
            .collect();
        assert_eq!(forgotten, vec!["Ready"], "b, still counted as Ready");
        assert!(matches!(
            cache.history(&named("team", "a", "4")),
            Kept::This(_)
        ));
        assert_eq!(cache.history(&named("team", "b", "2")), Kept::Nothing);
        assert!(
            matches!(cache.history(&c), Kept::This(_)),
            "another namespace's watch is not concerned"
        );
        // Without a namespace, a re-list covers all.
        let mut all = Follower::new(None);
        let mut events = [watcher::Event::Init, watcher::Event::InitDone];
        let forgotten: Vec<_> = events
            .iter_mut()
            .flat_map(|e| all.follow(&cache, e))
            .collect();
        assert_eq!(forgotten.len(), 2);
        assert_eq!(cache.history(&c), Kept::Nothing);
    }
}
