//! Follows one key set watch, before its cache does: takes out of each version what the
//! reconciler does not plan from (taken.rs), and forgets a key set the watch reports deleted, or
//! that a re-list of the watch's namespace (or of all, `None`) no longer holds (a finalizer
//! removed by hand, so no cleanup ran).

use std::collections::HashSet;

use kube::runtime::watcher;

use crate::api::DataMinerKeySet;

use super::{Index, key};

pub(in crate::controller) struct Follower {
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

    pub fn follow(&mut self, index: &Index, event: &mut watcher::Event<DataMinerKeySet>) {
        match event {
            watcher::Event::Apply(ks) => index.take_in(ks),
            watcher::Event::Delete(ks) => index.forget(&key(ks)),
            watcher::Event::Init => self.listing = Some(HashSet::new()),
            watcher::Event::InitApply(ks) => {
                index.take_in(ks);
                if let Some(listing) = &mut self.listing {
                    listing.insert(key(ks).into());
                }
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.listing.take() {
                    index.forget_unlisted(self.namespace.as_deref(), &listed);
                }
            }
        }
    }
}
