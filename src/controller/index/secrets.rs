//! The operator's Secrets as the index needs them: name, uid and resourceVersion, nothing else.
//!
//! A reflector store would keep every Secret's whole metadata (labels, annotations, owner
//! references, each in its own allocations: about 2.5 KiB per Secret); the index only compares
//! a version, so this index keeps a name and two compact tokens (token.rs) per Secret. It
//! follows the watch like a store: a re-list replaces the contents at once, so a Secret deleted
//! while the watch was down leaves it.

use std::{collections::HashMap, sync::RwLock};

use k8s_openapi::api::core::v1::Secret;
use kube::{ResourceExt, core::PartialObjectMeta, runtime::watcher};

use super::token::Token;

type Meta = PartialObjectMeta<Secret>;

/// One Secret version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub uid: Token,
    pub resource_version: Token,
}

impl Version {
    /// Whether this is the version `uid`/`resource_version`.
    pub fn is(&self, uid: &str, resource_version: &str) -> bool {
        self.uid.is(uid) && self.resource_version.is(resource_version)
    }
}

#[derive(Default)]
struct State {
    /// By `namespace/name`.
    live: HashMap<Box<str>, Version>,
    /// A re-list in progress: what it has delivered so far.
    relisting: Option<HashMap<Box<str>, Version>>,
    /// The first list completed.
    synced: bool,
}

/// The Secrets of one watch.
#[derive(Default)]
pub struct SecretVersions(RwLock<State>);

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn entry(meta: &Meta) -> Option<(Box<str>, Version)> {
    Some((
        key(&meta.namespace().unwrap_or_default(), &meta.name_any()).into(),
        Version {
            uid: Token::new(meta.metadata.uid.as_deref()?),
            resource_version: Token::new(meta.metadata.resource_version.as_deref()?),
        },
    ))
}

impl SecretVersions {
    /// Follows one watch event.
    pub fn apply(&self, event: &watcher::Event<Meta>) {
        let mut state = self.0.write().expect("secret index lock");
        match event {
            watcher::Event::Apply(meta) => {
                if let Some((k, v)) = entry(meta) {
                    state.live.insert(k, v);
                }
            }
            watcher::Event::Delete(meta) => {
                state
                    .live
                    .remove(key(&meta.namespace().unwrap_or_default(), &meta.name_any()).as_str());
            }
            watcher::Event::Init => state.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(meta) => {
                if let (Some(list), Some((k, v))) = (state.relisting.as_mut(), entry(meta)) {
                    list.insert(k, v);
                }
            }
            watcher::Event::InitDone => {
                if let Some(list) = state.relisting.take() {
                    state.live = list;
                    state.live.shrink_to_fit();
                }
                state.synced = true;
            }
        }
    }

    /// The version of Secret `name` in `namespace`, if the watch has it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Version> {
        let state = self.0.read().expect("secret index lock");
        state.live.get(key(namespace, name).as_str()).cloned()
    }

    /// The watch has listed once: absence now means something.
    pub fn is_synced(&self) -> bool {
        self.0.read().expect("secret index lock").synced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, rv: &str) -> Meta {
        let mut m = Meta::default();
        m.metadata.name = Some(name.into());
        m.metadata.namespace = Some("team".into());
        m.metadata.uid = Some(format!("uid-{name}"));
        m.metadata.resource_version = Some(rv.into());
        m
    }

    #[test]
    fn follows_the_watch_and_a_relist_drops_what_went_away() {
        let index = SecretVersions::default();
        assert!(!index.is_synced());
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(meta("a", "1")));
        index.apply(&watcher::Event::InitApply(meta("b", "2")));
        assert_eq!(
            index.get("team", "a"),
            None,
            "not before the list is complete"
        );
        index.apply(&watcher::Event::InitDone);
        assert!(index.is_synced());
        assert_eq!(
            index.get("team", "a").unwrap().resource_version.to_string(),
            "1"
        );

        index.apply(&watcher::Event::Apply(meta("a", "3")));
        assert_eq!(
            index.get("team", "a").unwrap().resource_version.to_string(),
            "3"
        );
        index.apply(&watcher::Event::Delete(meta("b", "2")));
        assert_eq!(index.get("team", "b"), None);

        // The watch was down; "a" was deleted and "c" created meanwhile.
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(meta("c", "5")));
        assert_eq!(
            index.get("team", "a").unwrap().resource_version.to_string(),
            "3"
        );
        index.apply(&watcher::Event::InitDone);
        assert_eq!(index.get("team", "a"), None);
        assert!(index.get("team", "c").unwrap().is("uid-c", "5"));
        assert_eq!(index.get("other", "c"), None);
    }
}
