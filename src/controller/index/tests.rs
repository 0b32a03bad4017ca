use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::watcher;

use super::*;
use crate::{fixtures, plan::SlotSeen};

fn keyset_at(rv: &str) -> DataMinerKeySet {
    let mut ks = fixtures::keyset();
    ks.metadata.name = Some("ks".into());
    ks.metadata.namespace = Some("team".into());
    ks.metadata.resource_version = Some(rv.into());
    ks
}

fn index() -> Index {
    Index::new(Arc::new(Metrics::default()))
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

fn proven() -> SlotSeen {
    SlotSeen {
        revision: Some(1),
        fingerprint: Some("fp".into()),
        proven: Some(1),
    }
}

fn clean_view(uid: &str) -> SecretSeen {
    SecretSeen::Present {
        uid: uid.into(),
        slots: [proven(), proven()],
        layout_in_sync: true,
        lineage: None,
        controlled: true,
        tombstoned: false,
    }
}

/// An index whose one Secret watch has listed `secrets`.
fn watching(secrets: &[&Secret]) -> Index {
    let index = index();
    let watch = Arc::new(SecretVersions::default());
    watch.apply(&watcher::Event::Init);
    for s in secrets {
        watch.apply(&watcher::Event::InitApply(meta(s)));
    }
    watch.apply(&watcher::Event::InitDone);
    index.set_secret_watches(vec![watch]);
    index
}

#[test]
fn gather_knows_only_the_secret_version_verified_for_this_spec() {
    let written = secret("uid-1", "20", "ks", true);
    let ks = keyset_at("10");
    assert_eq!(
        index().gather(&ks),
        Gathered::MustRead,
        "before the watches list"
    );
    assert_eq!(
        watching(&[]).gather(&ks),
        Gathered::Known(SecretSeen::Absent),
        "a new key set"
    );
    let mut recorded = ks.clone();
    recorded.status.get_or_insert_default().secret_uid = Some("uid-1".into());
    assert_eq!(
        watching(&[]).gather(&recorded),
        Gathered::MustRead,
        "a recorded Secret that left the cache"
    );

    let index = watching(&[&written]);
    let watched = || Gathered::ReadWatched("20".into());
    assert_eq!(index.gather(&ks), watched(), "never verified");
    index.record(&ks, Outcome::Secret(Some(&written), &clean_view("uid-1")));
    assert_eq!(index.gather(&ks), Gathered::Known(clean_view("uid-1")));
    let mut respecified = ks.clone();
    respecified.metadata.generation = Some(ks.metadata.generation.unwrap_or(0) + 1);
    assert_eq!(index.gather(&respecified), watched(), "a new spec");

    index.record(&ks, Outcome::SecretUnknown);
    assert_eq!(
        index.gather(&ks),
        Gathered::MustRead,
        "a write's outcome unknown"
    );
}

#[test]
fn gather_waits_for_the_echo_of_our_own_status_write() {
    let index = watching(&[]);
    index.record(&keyset_at("10"), Outcome::StatusWritten(Some("11".into())));
    assert_eq!(index.gather(&keyset_at("10")), Gathered::Behind);
    // Awaited now: the echo reaches the reconciler.
    assert!(!index.is_echo(&keyset_at("11")));
    assert_eq!(
        index.gather(&keyset_at("11")),
        Gathered::Known(SecretSeen::Absent)
    );

    index.record(&keyset_at("11"), Outcome::StatusWritten(Some("12".into())));
    assert!(index.is_echo(&keyset_at("12")), "nobody waits: skipped");
    assert!(!index.is_echo(&keyset_at("13")), "someone else's change");
    // The API server answered unchanged: no echo comes, nothing waits for one.
    index.record(&keyset_at("12"), Outcome::StatusWritten(Some("12".into())));
    assert_ne!(index.gather(&keyset_at("12")), Gathered::Behind);
}

#[test]
fn only_the_exact_secret_version_verified_for_its_controller_is_an_echo() {
    let index = index();
    let ks = keyset_at("10");
    let written = secret("uid-1", "20", "ks", true);
    assert!(
        !index.is_echo_of_secret(&meta(&written)),
        "nothing verified yet"
    );
    index.record(&ks, Outcome::Secret(Some(&written), &clean_view("uid-1")));
    assert!(index.is_echo_of_secret(&meta(&written)));
    for other in [
        secret("uid-1", "21", "ks", true),    // edited since
        secret("uid-2", "20", "ks", true),    // another Secret
        secret("uid-1", "20", "other", true), // controlled by another key set
        secret("uid-1", "20", "ks", false),   // not a controller reference
    ] {
        assert!(!index.is_echo_of_secret(&meta(&other)), "{other:?}");
    }
    // A view that is not clean is never kept.
    let mut unproven = clean_view("uid-1");
    if let SecretSeen::Present { slots, .. } = &mut unproven {
        slots[1].proven = None;
    }
    index.record(&ks, Outcome::Secret(Some(&written), &unproven));
    assert!(!index.is_echo_of_secret(&meta(&written)));
}

fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn labels_and_annotations_leave_the_cache_and_only_the_requesters_come_back() {
    use crate::api::{CREATED_BY_ANNOTATION, ON_BEHALF_OF_ANNOTATION};
    let index = index();
    let mut ks = keyset_at("10");
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
    Follower::new(None).follow(&index, &mut event);
    let watcher::Event::Apply(cached) = event else {
        unreachable!()
    };
    assert_eq!(
        (&cached.metadata.annotations, &cached.metadata.labels),
        (&None, &None)
    );
    assert_eq!(
        index.requesters(&cached),
        Kept::This(pairs(&[
            (CREATED_BY_ANNOTATION, "user-a"),
            (ON_BEHALF_OF_ANNOTATION, "Alice"),
        ]))
    );
    assert_eq!(index.requesters(&keyset_at("9")), Kept::ForAnotherVersion);
    // A version without any: nothing comes back, not the older version's.
    let mut event = watcher::Event::Apply(keyset_at("11"));
    Follower::new(None).follow(&index, &mut event);
    assert_eq!(
        index.requesters(&keyset_at("11")),
        Kept::This(BTreeMap::new())
    );
}

#[test]
fn the_history_leaves_the_cached_key_set_and_comes_back_for_that_version_only() {
    let index = index();
    let mut ks = keyset_at("10");
    let status = crate::api::DataMinerKeySetStatus {
        secret_uid: Some("uid-1".into()),
        history: vec![HistoryEntry {
            action: "KeysCreated".into(),
            slot: None,
            revision: None,
            at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(fixtures::at(0)),
            by: None,
            on_behalf_of: None,
            fingerprint: Some("sha256:0123abcd".into()),
        }],
        ..Default::default()
    };
    ks.status = Some(status.clone());

    let mut follower = Follower::new(None);
    let mut event = watcher::Event::Apply(ks);
    follower.follow(&index, &mut event);
    let watcher::Event::Apply(cached) = event else {
        unreachable!()
    };
    assert!(cached.status.as_ref().unwrap().history.is_empty());
    assert_eq!(index.history(&cached), Kept::This(status.history.clone()));
    assert_eq!(
        index.history(&keyset_at("9")),
        Kept::ForAnotherVersion,
        "planned on another version"
    );

    // A key set without status keeps an empty history; a newer version replaces the old.
    let mut event = watcher::Event::Apply(keyset_at("11"));
    follower.follow(&index, &mut event);
    assert_eq!(index.history(&keyset_at("11")), Kept::This(vec![]));
    assert_eq!(index.history(&cached), Kept::ForAnotherVersion);

    // Deleted: forgotten, and no longer counted.
    index.record(&cached, Outcome::Standing(Standing::Ready));
    let mut event = watcher::Event::Delete(keyset_at("12"));
    follower.follow(&index, &mut event);
    assert_eq!(index.history(&keyset_at("11")), Kept::Nothing);
    assert!(
        index
            .metrics
            .render()
            .contains("dataminer_keys_keysets{state=\"Ready\"} 0")
    );
}

#[test]
fn a_relist_forgets_the_key_sets_deleted_while_the_watch_was_down() {
    let index = index();
    let named = |ns: &str, name: &str, rv: &str| {
        let mut ks = keyset_at(rv);
        ks.metadata.namespace = Some(ns.into());
        ks.metadata.name = Some(name.into());
        ks
    };
    let mut team = Follower::new(Some("team".into()));
    let mut other = Follower::new(Some("other".into()));
    for ks in [named("team", "a", "1"), named("team", "b", "2")] {
        team.follow(&index, &mut watcher::Event::Apply(ks.clone()));
        index.record(&ks, Outcome::Standing(Standing::Ready));
    }
    let c = named("other", "c", "3");
    other.follow(&index, &mut watcher::Event::Apply(c.clone()));
    index.record(&c, Outcome::Standing(Standing::NotReady));

    // "team" is listed again: "b" went away meanwhile.
    for mut event in [
        watcher::Event::Init,
        watcher::Event::InitApply(named("team", "a", "4")),
        watcher::Event::InitDone,
    ] {
        team.follow(&index, &mut event);
    }
    let text = index.metrics.render();
    assert!(
        text.contains("dataminer_keys_keysets{state=\"Ready\"} 1"),
        "b, counted as Ready, is no longer: {text}"
    );
    assert_eq!(
        index.standing(&named("team", "a", "4")),
        Some(Standing::Ready)
    );
    assert_eq!(index.history(&named("team", "b", "2")), Kept::Nothing);
    assert!(
        matches!(index.history(&c), Kept::This(_)),
        "another namespace's watch is not concerned"
    );
    // Without a namespace, a re-list covers all.
    let mut all = Follower::new(None);
    for mut event in [watcher::Event::Init, watcher::Event::InitDone] {
        all.follow(&index, &mut event);
    }
    assert_eq!(index.history(&c), Kept::Nothing);
    let text = index.metrics.render();
    assert!(
        text.contains("dataminer_keys_keysets{state=\"NotReady\"} 0"),
        "{text}"
    );
}
