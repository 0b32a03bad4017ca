//! What the reconciler knows without asking the API server: one record per key set, made of
//! typed parts (each in its own file), beside the Secret versions its watches hold.
//!
//! - [`verified`]: the Secret version last verified, and the plan's view of it;
//! - [`echo`]: the last status write, to tell the watch's copies from its echo;
//! - [`taken`]: the history and requester annotations taken out of the cached key set;
//! - the gauge state the key set is counted in, moved here so the gauge needs no map of its own;
//! - [`secrets`]: the Secrets' versions, kept by their watches; [`follower`] follows the key
//!   set watches.
//!
//! A reconcile makes two calls: [`Index::gather`] (what a plan may start from, or that the
//! Secret must be read, at the version its watch holds or the latest, or that the cache is
//! behind our own write) and [`Index::record`] (what a step learnt). The watch filters ask
//! [`Index::is_echo`] and [`Index::is_echo_of_secret`] whether an event is the echo of our own
//! write.

mod echo;
mod follower;
mod secrets;
mod taken;
mod token;
mod verified;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, OnceLock},
};

use k8s_openapi::api::core::v1::Secret;
use kube::{Resource, ResourceExt, core::PartialObjectMeta};

pub(super) use follower::Follower;
pub(super) use secrets::SecretVersions;
pub(super) use taken::Kept;

use crate::{
    api::{DataMinerKeySet, HistoryEntry},
    metrics::Metrics,
    plan::SecretSeen,
    status::Standing,
};
use echo::StatusWrite;
use secrets::Version;
use taken::Taken;
use verified::Verified;

/// One per key set, so kept small: the map's slots hold it inline, the rarer parts are boxed.
#[derive(Default)]
struct Record {
    verified: Option<Box<Verified>>,
    /// A create was refused or a write's outcome is unknown: read before planning again.
    must_read: bool,
    status_write: Option<Box<StatusWrite>>,
    standing: Option<Standing>,
    taken: Option<Taken>,
}

/// What a reconcile may start from.
#[derive(Debug, PartialEq)]
pub(super) enum Gathered {
    /// The cached key set predates our own last status write: its echo reconciles again.
    Behind,
    /// What the Secret is, known without a read: the version last verified for this spec, or
    /// no Secret at all for a new key set.
    Known(SecretSeen),
    /// Read the Secret, at the latest version: nothing is known of it (the watches have not
    /// listed, a recorded Secret left the cache) or a write's outcome is unknown.
    MustRead,
    /// Read the Secret (a new version, one never verified, a new spec), which its watch holds
    /// at this resourceVersion: the read may be answered at it or newer.
    ReadWatched(String),
}

/// What a step learnt.
pub(super) enum Outcome<'a> {
    /// The Secret was read, or a write was answered with it; `None`: there is none.
    Secret(Option<&'a Secret>, &'a SecretSeen),
    /// A write was refused or its outcome is unknown: read before planning again.
    SecretUnknown,
    /// Status was written onto the key set as cached; the API server answered with this
    /// resourceVersion.
    StatusWritten(Option<String>),
    /// The state the gauge counts the key set in now.
    Standing(Standing),
    /// The key set is being deleted: no longer counted, nothing kept.
    Gone,
}

pub struct Index {
    /// One per Secret watch. Until every one has listed, absence means nothing.
    secrets: OnceLock<Vec<Arc<SecretVersions>>>,
    /// By [`key`].
    records: Mutex<HashMap<Box<str>, Record>>,
    metrics: Arc<Metrics>,
}

/// `namespace/name` of a key set.
fn key_of(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn key(ks: &DataMinerKeySet) -> String {
    key_of(&ks.namespace().unwrap_or_default(), &ks.name_any())
}

impl Index {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Index {
            secrets: OnceLock::new(),
            records: Mutex::default(),
            metrics,
        }
    }

    /// Called once, with the Secret versions of each Secret watch.
    pub(super) fn set_secret_watches(&self, watches: Vec<Arc<SecretVersions>>) {
        let _ = self.secrets.set(watches);
    }

    /// The one Secret watch of an index whose controllers never ran (the test hook
    /// `Context::follow_secret_watch`).
    pub(super) fn lone_secret_watch(&self) -> Arc<SecretVersions> {
        self.secrets.get_or_init(|| vec![Arc::default()])[0].clone()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Record>> {
        self.records.lock().expect("index lock")
    }

    /// `None` until every Secret watch has listed once; then the watched version, if any.
    fn watched_secret(&self, ks: &DataMinerKeySet) -> Option<Option<Version>> {
        let watches = self.secrets.get()?;
        if !watches.iter().all(|w| w.is_synced()) {
            return None;
        }
        let namespace = ks.namespace().unwrap_or_default();
        let name = ks.secret_name();
        Some(watches.iter().find_map(|w| w.get(&namespace, &name)))
    }

    /// The resourceVersion of the key set's Secret as its watch last delivered it, if any.
    pub(super) fn watched_resource_version(&self, ks: &DataMinerKeySet) -> Option<String> {
        let watched = self.watched_secret(ks)??;
        Some(watched.resource_version.to_string())
    }

    pub(super) fn gather(&self, ks: &DataMinerKeySet) -> Gathered {
        // Read before the records' lock: each Secret watch has a lock of its own.
        let watched = self.watched_secret(ks);
        let mut records = self.records();
        let mut record = records.get_mut(key(ks).as_str());
        let rv = ks.metadata.resource_version.as_deref();
        if let Some(r) = record.as_deref_mut() {
            if r.status_write.as_mut().is_some_and(|w| w.is_behind(rv)) {
                return Gathered::Behind;
            }
            if r.must_read {
                return Gathered::MustRead;
            }
        }
        let Some(watched) = watched else {
            return Gathered::MustRead;
        };
        let verified = record.and_then(|r| r.verified.as_ref());
        let recorded = ks.status.as_ref().and_then(|s| s.secret_uid.as_ref());
        match (watched, verified) {
            (Some(watched), Some(v))
                if v.version == watched && ks.metadata.generation == v.generation =>
            {
                Gathered::Known(v.seen())
            }
            // A new key set. Should a Secret of that name exist all the same (someone else's,
            // not labelled as ours, so not watched), the create is refused and the retry reads.
            (None, None) if recorded.is_none() => Gathered::Known(SecretSeen::Absent),
            (Some(watched), _) => Gathered::ReadWatched(watched.resource_version.to_string()),
            (None, _) => Gathered::MustRead,
        }
    }

    pub(super) fn record(&self, ks: &DataMinerKeySet, outcome: Outcome) {
        let key = key(ks);
        if let Outcome::Gone = outcome {
            return self.forget(&key);
        }
        let mut records = self.records();
        let record = records.entry(key.into()).or_default();
        match outcome {
            Outcome::Secret(secret, seen) => {
                record.must_read = false;
                record.verified = secret
                    .and_then(|s| {
                        Verified::new(
                            s.metadata.uid.as_deref()?,
                            s.metadata.resource_version.as_deref()?,
                            ks.metadata.generation,
                            seen,
                        )
                    })
                    .map(Box::new);
            }
            Outcome::SecretUnknown => {
                record.must_read = true;
                record.verified = None;
            }
            Outcome::StatusWritten(produced) => {
                record.status_write =
                    StatusWrite::new(ks.metadata.resource_version.as_deref(), produced.as_deref())
                        .map(Box::new);
            }
            Outcome::Standing(standing) => {
                let before = record.standing.replace(standing);
                self.metrics.keyset_moved(before, Some(standing));
            }
            Outcome::Gone => unreachable!("handled above"),
        }
    }

    /// The history taken out of `ks` when the watch delivered it.
    pub(super) fn history(&self, ks: &DataMinerKeySet) -> Kept<Vec<HistoryEntry>> {
        let records = self.records();
        let taken = records.get(key(ks).as_str()).and_then(|r| r.taken.as_ref());
        Taken::of(taken, ks, Taken::history)
    }

    /// The requester annotations taken out of `ks` when the watch delivered it.
    pub(super) fn requesters(&self, ks: &DataMinerKeySet) -> Kept<BTreeMap<String, String>> {
        let records = self.records();
        let taken = records.get(key(ks).as_str()).and_then(|r| r.taken.as_ref());
        Taken::of(taken, ks, Taken::requesters)
    }

    /// The watch event of our own last status write, nobody waiting for it: nothing in it is
    /// news (echo.rs).
    pub(super) fn is_echo(&self, ks: &DataMinerKeySet) -> bool {
        let records = self.records();
        records
            .get(key(ks).as_str())
            .and_then(|r| r.status_write.as_ref())
            .is_some_and(|w| w.is_unawaited_echo(ks.metadata.resource_version.as_deref()))
    }

    /// The watch event of a Secret version this process wrote or read and verified for the key
    /// set that controls it: nothing in it is news.
    pub(super) fn is_echo_of_secret(&self, secret: &PartialObjectMeta<Secret>) -> bool {
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
        let records = self.records();
        let key = key_of(&secret.namespace().unwrap_or_default(), &owner.name);
        records
            .get(key.as_str())
            .and_then(|r| r.verified.as_ref())
            .is_some_and(|v| v.version.is(uid, rv))
    }

    /// A version the watch delivers: what the reconciler does not plan from leaves it.
    fn take_in(&self, ks: &mut DataMinerKeySet) {
        if let Some(taken) = Taken::take_out(ks) {
            self.records().entry(key(ks).into()).or_default().taken = Some(taken);
        }
    }

    /// The key set is gone: no longer counted, nothing kept.
    fn forget(&self, key: &str) {
        let gone = self.records().remove(key);
        if let Some(standing) = gone.and_then(|r| r.standing) {
            self.metrics.keyset_moved(Some(standing), None);
        }
    }

    /// A re-list of `namespace` (all when `None`) is complete: forgets what it did not hold.
    fn forget_unlisted(&self, namespace: Option<&str>, listed: &HashSet<Box<str>>) {
        let prefix = namespace.map(|ns| key_of(ns, ""));
        let gone: Vec<Box<str>> = self
            .records()
            .keys()
            .filter(|k| prefix.as_deref().is_none_or(|p| k.starts_with(p)))
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.forget(&key);
        }
    }

    /// The state the gauge counts `ks` in (tests).
    #[cfg(test)]
    fn standing(&self, ks: &DataMinerKeySet) -> Option<Standing> {
        self.records()
            .get(key(ks).as_str())
            .and_then(|r| r.standing)
    }
}

#[cfg(test)]
mod tests;
