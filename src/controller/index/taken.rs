//! Part of a key set's record: what was taken out of the version the watch last delivered.
//!
//! Key sets enter the watch cache without `status.history`: nothing but the status write reads
//! it, and it is most of a long-lived key set's size. It is kept here as compact JSON, tagged
//! with that version's resourceVersion; the status write restates it only when it was planned on
//! that very version (otherwise the conditional write would be refused anyway).
//!
//! They enter it without labels and annotations too: the reconciler reads none but the requester
//! annotations (who asked, api/requester.rs), and only for an action. A map of them costs about
//! 600 bytes per key set (a B-tree node), whatever it holds (Argo CD's tracking annotation, say).
//! The requester annotations are kept here with the history, and put back on the key set when a
//! plan has an action to record; a key set at rest needs none (status holds the names).

use std::collections::BTreeMap;

use crate::api::{DataMinerKeySet, HistoryEntry, REQUESTER_ANNOTATIONS};

use super::token::Token;

pub(super) struct Taken {
    resource_version: Token,
    /// The history as JSON; empty for none.
    json: Box<str>,
    requesters: Option<Requesters>,
}

/// Requester annotations as (index in [`REQUESTER_ANNOTATIONS`], value).
type Requesters = Box<[(u8, Box<str>)]>;

/// What the index holds for a key set of a given version.
#[derive(Debug, PartialEq)]
pub(in crate::controller) enum Kept<T> {
    /// What was taken out of this very version.
    This(T),
    /// The watch has delivered another version since: a write planned on this one is outdated.
    ForAnotherVersion,
    /// Nothing taken: this key set did not come through the watch, and carries its history.
    Nothing,
}

impl Taken {
    /// Takes the history, labels and annotations out of `ks` (`None` for a key set without a
    /// resourceVersion, which is left as it is).
    pub fn take_out(ks: &mut DataMinerKeySet) -> Option<Self> {
        let rv = ks.metadata.resource_version.as_deref()?;
        let resource_version = Token::new(rv);
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
        Some(Taken {
            resource_version,
            json,
            requesters: (!requesters.is_empty()).then(|| requesters.into_boxed_slice()),
        })
    }

    /// `f` of what was taken, if it was taken out of `ks` as it is.
    pub fn of<T>(this: Option<&Self>, ks: &DataMinerKeySet, f: impl FnOnce(&Self) -> T) -> Kept<T> {
        let Some(taken) = this else {
            return Kept::Nothing;
        };
        match ks.metadata.resource_version.as_deref() {
            Some(rv) if taken.resource_version.is(rv) => Kept::This(f(taken)),
            _ => Kept::ForAnotherVersion,
        }
    }

    pub fn history(&self) -> Vec<HistoryEntry> {
        match self.json.is_empty() {
            true => Vec::new(),
            false => serde_json::from_str(&self.json).expect("history kept as written"),
        }
    }

    pub fn requesters(&self) -> BTreeMap<String, String> {
        self.requesters
            .iter()
            .flatten()
            .map(|(i, v)| {
                (
                    REQUESTER_ANNOTATIONS[*i as usize].to_string(),
                    v.to_string(),
                )
            })
            .collect()
    }
}
