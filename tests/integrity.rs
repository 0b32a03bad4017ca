//! Integrity on the real API server: the operator never takes a key it did not generate for its
//! own, and no failure is silent. Each test is one way a careless or hostile colleague (or a
//! crash) tried to break that; see docs/design.md, "Trust".

mod common;

use common::{Env, LABEL, apply, event_count, is_ready, keyset_where, org_keyset, revisions};
use dataminer_keys_operator::{api::DataMinerKeySet, controller::FINALIZER, keys::fingerprint};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use std::time::Duration;

async fn env(prefix: &str) -> Env {
    Env::new(common::control_plane().await, prefix).await
}

fn with_request(mut manifest: serde_json::Value, slot: &str, revision: i64) -> serde_json::Value {
    manifest["spec"]["regenerate"][slot] = json!({ "revision": revision, "confirmLabel": LABEL });
    manifest
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn ready_reason(ks: &DataMinerKeySet) -> String {
    common::condition(ks, "Ready").map_or_else(String::new, |c| c.reason.clone())
}

fn history_actions(ks: &DataMinerKeySet) -> Vec<(String, Option<i64>)> {
    ks.status
        .as_ref()
        .map(|s| {
            s.history
                .iter()
                .map(|h| (h.action.clone(), h.revision))
                .collect()
        })
        .unwrap_or_default()
}

async fn annotate(e: &Env, key: &str, value: &str) {
    let patch = json!({ "metadata": { "annotations": { key: value } } });
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Waits until the operator has seen generation `g` of the key set.
async fn observed(e: &Env, g: i64) -> DataMinerKeySet {
    keyset_where(&e.keysets, "ks", "the new generation observed", |k| {
        k.status.as_ref().and_then(|s| s.observed_generation) >= Some(g)
    })
    .await
}

// Item 1: a planted key is never blessed by a later, unrelated write.
#[tokio::test]
async fn a_tampered_key_is_not_blessed_by_an_unrelated_change() {
    let mut e = env("bless").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    let ks = e.ready("ks").await;
    let (p, _) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let recorded = ks.status.as_ref().unwrap().primary.clone().unwrap();

    let planted = "00000000000000000000000000000bad";
    e.ledger.record_value(planted);
    let patch = json!({ "data": { "primaryKey": base64_of(planted) } });
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    keyset_where(&e.keysets, "ks", "SecretDrift", |k| {
        ready_reason(k) == "SecretDrift"
    })
    .await;

    // Changes that make the operator rewrite the Secret's metadata.
    let mut m = org_keyset("ks");
    m["spec"]["secret"] = json!({ "labels": { "team": "platform" } });
    m["spec"]["permissions"] = json!(["RegisterCatalogItems"]);
    let g = apply(&e.keysets, &m)
        .await
        .unwrap()
        .metadata
        .generation
        .unwrap();
    let ks = observed(&e, g).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ks2 = e.keysets.get("ks").await.unwrap();
    assert_eq!(ready_reason(&ks), "SecretDrift");
    assert_eq!(
        ready_reason(&ks2),
        "SecretDrift",
        "still drift, never Ready"
    );
    let status = ks2.status.as_ref().unwrap();
    assert_eq!(
        status.primary.as_ref().unwrap(),
        &recorded,
        "status still records the key the operator generated"
    );
    assert_ne!(
        status.primary.as_ref().unwrap().fingerprint,
        fingerprint(planted.as_bytes())
    );
    assert_eq!(history_actions(&ks2), vec![("KeysCreated".into(), None)]);
    let secret = e.secrets.get("ks-keys").await.unwrap();
    assert_eq!(common::key_values(&secret).0, planted);
    // The planted value is not written under the operator's name.
    for entry in secret.managed_fields() {
        if entry.manager.as_deref() == Some("dataminer-keys-operator") {
            let fields = serde_json::to_string(&entry.fields_v1).unwrap();
            assert!(
                !(fields.contains("primaryKey") && entry.operation.as_deref() == Some("Apply")),
                "the operator applied the Secret's data after the tampering: {fields}"
            );
        }
    }

    // A regenerate request repairs it.
    let g = apply(&e.keysets, &with_request(m, "primary", 2))
        .await
        .unwrap()
        .metadata
        .generation
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "repaired", |k| {
        is_ready(k) && revisions(k) == (2, 1) && k.metadata.generation == Some(g)
    })
    .await;
    let (p2, _) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    assert!(p2 != planted && p2 != p);
    assert_eq!(
        ks.status
            .as_ref()
            .unwrap()
            .primary
            .as_ref()
            .unwrap()
            .fingerprint,
        fingerprint(p2.as_bytes())
    );
    e.finish().await;
}

// Item 2: a revision annotation is a hint, not proof of a rotation.
#[tokio::test]
async fn a_revision_annotation_alone_fakes_no_rotation() {
    let mut e = env("fake-rev").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let before = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    annotate(&e, "keys.dataminer.services/secondary-revision", "7").await;
    // The operator puts the annotation back to the revision it recorded.
    common::eventually(20, "the revision annotation restored", || async {
        let s = e.secrets.get("ks-keys").await.unwrap();
        (s.annotations()["keys.dataminer.services/secondary-revision"] == "1").then_some(())
    })
    .await;
    let ks = e.ready("ks").await;
    assert_eq!(revisions(&ks), (1, 1));
    assert_eq!(history_actions(&ks), vec![("KeysCreated".into(), None)]);
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "SecondaryKeyRegenerated").await,
        0
    );
    assert_eq!(
        common::key_values(&e.secrets.get("ks-keys").await.unwrap()),
        before
    );
    e.finish().await;
}

// Item 3: a Secret whose annotation fell behind status never causes a second new key.
#[tokio::test]
async fn a_secret_behind_its_status_is_not_regenerated_twice() {
    let mut e = env("behind").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    apply(&e.keysets, &with_request(org_keyset("ks"), "primary", 2))
        .await
        .unwrap();
    keyset_where(&e.keysets, "ks", "primary 2", |k| {
        is_ready(k) && revisions(k) == (2, 1)
    })
    .await;
    let rotated = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    annotate(&e, "keys.dataminer.services/primary-revision", "1").await;
    common::eventually(20, "the revision annotation restored", || async {
        let s = e.secrets.get("ks-keys").await.unwrap();
        (s.annotations()["keys.dataminer.services/primary-revision"] == "2").then_some(())
    })
    .await;
    let ks = e.ready("ks").await;
    assert_eq!(
        common::key_values(&e.secrets.get("ks-keys").await.unwrap()),
        rotated,
        "no second key for revision 2"
    );
    let regenerations: Vec<_> = history_actions(&ks)
        .into_iter()
        .filter(|(a, _)| a == "RegeneratePrimary")
        .collect();
    assert_eq!(regenerations, vec![("RegeneratePrimary".into(), Some(2))]);
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "PrimaryKeyRegenerated").await,
        1
    );
    e.finish().await;
}

// Item 4: a Secret the API server refuses to change is a visible failure.
#[tokio::test]
async fn a_write_the_api_server_refuses_is_reported_once_and_retried_with_backoff() {
    let mut e = env("refused").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let patch = json!({ "immutable": true });
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    apply(&e.keysets, &with_request(org_keyset("ks"), "primary", 2))
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "SecretWriteFailed", |k| {
        ready_reason(k) == "SecretWriteFailed"
    })
    .await;
    let ready = common::condition(&ks, "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("field is immutable"),
        "the API server's reason is in the message: {}",
        ready.message
    );
    assert_eq!(
        revisions(&ks),
        (1, 1),
        "nothing recorded that did not happen"
    );
    // Retried with backoff meanwhile, announced once.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "SecretWriteFailed").await,
        1
    );
    // Retried meanwhile (the failure is counted per attempt), yet announced once.
    let failures = e
        .operator
        .metric_sum("dataminer_keys_write_failures_total")
        .await
        .unwrap();
    assert!(failures >= 2.0, "{failures} failed attempts in 8 s");

    // Once the Secret can be written again, the request goes through and Ready returns.
    e.secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "Ready again", is_ready).await;
    assert_eq!(
        ks.status.as_ref().unwrap().history[0].action,
        "SecretRecreated"
    );
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.finish().await;
}

// Item 6: an owner reference is a hint anyone can write, not proof of ownership.
#[tokio::test]
async fn a_secret_with_a_forged_owner_reference_is_not_adopted() {
    let mut e = env("forged-owner").await;
    e.operator.kill();
    let ks = apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    let owner = ks.controller_owner_ref(&()).unwrap();
    let forged: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "ks-keys",
            "labels": {
                "app.kubernetes.io/managed-by": "dataminer-keys-operator",
                "keys.dataminer.services/keyset": "ks"
            },
            "annotations": {
                "keys.dataminer.services/primary-revision": "1",
                "keys.dataminer.services/secondary-revision": "1"
            },
            "ownerReferences": [owner]
        },
        "data": {
            "primaryKey": base64_of("1111111111111111111111111111aaaa"),
            "secondaryKey": base64_of("2222222222222222222222222222bbbb")
        }
    }))
    .unwrap();
    e.ledger.record_value("1111111111111111111111111111aaaa");
    let created = e
        .secrets
        .create(&PostParams::default(), &forged)
        .await
        .unwrap();
    e.operator.restart();
    let ks = keyset_where(&e.keysets, "ks", "SecretConflict", |k| {
        ready_reason(k) == "SecretConflict"
    })
    .await;
    let status = ks.status.as_ref().unwrap();
    assert!(status.primary.is_none() && status.secondary.is_none());
    assert!(status.history.is_empty(), "{:?}", status.history);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        e.secrets.get("ks-keys").await.unwrap().resource_version(),
        created.resource_version(),
        "left untouched"
    );
    assert_eq!(event_count(&e.client, &e.ns, "ks", "KeysCreated").await, 0);
    e.finish().await;
}

// Item 8: a request raised before the previous rotation's status write keeps both in history.
#[tokio::test]
async fn a_rotation_found_after_a_crash_is_recorded_even_when_a_newer_request_follows() {
    let mut e = env("two-rotations").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let keysets = e.keysets.clone();
    e.operator
        .crash_after_secret_write(async {
            apply(&keysets, &with_request(org_keyset("ks"), "primary", 2))
                .await
                .unwrap();
        })
        .await;
    // The newer request arrives while the crashed operator is still down, then it restarts.
    apply(&e.keysets, &with_request(org_keyset("ks"), "primary", 3))
        .await
        .unwrap();
    e.operator.restart();
    let ks = keyset_where(&e.keysets, "ks", "primary 3", |k| {
        is_ready(k) && revisions(k) == (3, 1)
    })
    .await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let regenerations: Vec<_> = history_actions(&ks)
        .into_iter()
        .filter(|(a, _)| a == "RegeneratePrimary")
        .collect();
    assert_eq!(
        regenerations,
        vec![
            ("RegeneratePrimary".into(), Some(3)),
            ("RegeneratePrimary".into(), Some(2))
        ]
    );
    e.finish().await;
}

// Item 8: a crash after re-creating a deleted Secret is recorded as the recreation it was.
#[tokio::test]
async fn a_recreation_found_after_a_crash_is_recorded_as_a_recreation() {
    let mut e = env("recreate-crash").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let secrets = e.secrets.clone();
    e.operator
        .crash_after_secret_write(async {
            secrets
                .delete("ks-keys", &DeleteParams::default())
                .await
                .unwrap();
        })
        .await;
    e.operator.restart();
    let ks = keyset_where(&e.keysets, "ks", "revisions 2/2", |k| {
        is_ready(k) && revisions(k) == (2, 2)
    })
    .await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    assert_eq!(
        history_actions(&ks),
        vec![
            ("SecretRecreated".into(), None),
            ("KeysCreated".into(), None)
        ]
    );
    common::eventually(10, "a SecretMissing warning", || async {
        (event_count(&e.client, &e.ns, "ks", "SecretMissing").await >= 1).then_some(())
    })
    .await;
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "PrimaryKeyRegenerated").await,
        0
    );
    e.finish().await;
}

// Item 8: deleting a key set destroys its keys whatever the propagation policy.
#[tokio::test]
async fn deleting_a_key_set_with_orphan_propagation_still_destroys_its_keys() {
    let mut e = env("orphan").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.keysets
        .delete("ks", &DeleteParams::orphan())
        .await
        .unwrap();
    common::gone(&e.secrets, "ks-keys", "the Secret deleted").await;
    common::gone(&e.keysets, "ks", "the key set gone").await;
    e.finish().await;
}

// The chart's policy adds the finalizer at creation; without it (an older cluster, the policy
// off, a hand edit) the operator adds it, so deletion still takes the keys along.
#[tokio::test]
async fn a_finalizer_removed_by_hand_is_put_back_before_the_key_set_can_go_without_its_keys() {
    let mut e = env("refinalize").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let removed = common::remove_finalizers(&e.keysets, "ks").await;
    assert!(removed.metadata.finalizers.unwrap_or_default().is_empty());
    common::eventually(20, "the finalizer put back", || async {
        let ks = e.keysets.get("ks").await.unwrap();
        ks.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&FINALIZER.to_string())
            .then_some(())
    })
    .await;
    e.keysets
        .delete("ks", &DeleteParams::orphan())
        .await
        .unwrap();
    common::gone(&e.secrets, "ks-keys", "the Secret deleted").await;
    common::gone(&e.keysets, "ks", "the key set gone").await;
    e.finish().await;
}

// Item 4: what can never be written is refused at admission, with what to type.
#[tokio::test]
async fn names_and_secret_metadata_that_cannot_be_written_are_refused_at_admission() {
    let (client, ns) = common::client_and_namespace("refuse-names").await;
    let keysets: kube::Api<DataMinerKeySet> = kube::Api::namespaced(client, &ns);
    let long = "k".repeat(64);
    let err = apply(&keysets, &org_keyset(&long)).await.unwrap_err();
    assert!(err.to_string().contains("at most 63 characters"), "{err}");
    apply(&keysets, &org_keyset(&"k".repeat(63)))
        .await
        .expect("63 characters is fine");

    let cases = [
        (
            json!({ "labels": { "bad key!": "x" } }),
            "spec.secret.labels",
        ),
        (
            json!({ "labels": { "team": "x".repeat(64) } }),
            "spec.secret.labels",
        ),
        (json!({ "labels": { "team": "-x" } }), "spec.secret.labels"),
        (
            json!({ "annotations": { "no spaces/allowed here": "x" } }),
            "spec.secret.annotations",
        ),
        (
            json!({ "annotations": { "/empty-prefix": "x" } }),
            "spec.secret.annotations",
        ),
    ];
    for (secret, field) in cases {
        let mut m = org_keyset("meta");
        m["spec"]["secret"] = secret.clone();
        let err = apply(&keysets, &m).await.unwrap_err();
        assert!(err.to_string().contains(field), "{secret}: {err}");
    }
    let mut ok = org_keyset("meta");
    ok["spec"]["secret"] = json!({
        "labels": { "example.com/team": "platform", "tier": "" },
        "annotations": { "reloader.stakater.com/match": "any value: at all, even spaces" }
    });
    apply(&keysets, &ok)
        .await
        .expect("valid metadata is accepted");
}

// Item 5: admission and the controller agree on what whitespace is.
#[tokio::test]
async fn a_label_with_unicode_whitespace_around_it_is_refused_at_admission() {
    let (client, ns) = common::client_and_namespace("whitespace").await;
    let keysets: kube::Api<DataMinerKeySet> = kube::Api::namespaced(client, &ns);
    for &c in dataminer_keys_operator::api::WHITESPACE {
        for label in [format!("{c}CI"), format!("CI{c}")] {
            let mut m = org_keyset("ws");
            m["spec"]["label"] = json!(label);
            let err = apply(&keysets, &m).await.err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| e.to_string().contains("whitespace")),
                "U+{:04X} around the label: {err:?}",
                c as u32
            );
        }
    }
    // Not whitespace for either side: accepted.
    for c in ['\u{200B}', '\u{180E}', 'x'] {
        let mut m = org_keyset(&format!("ok-{:x}", c as u32));
        m["spec"]["label"] = json!(format!("{c}CI{c}"));
        apply(&keysets, &m)
            .await
            .unwrap_or_else(|e| panic!("U+{:04X}: {e}", c as u32));
    }
}

// A key set whose finalizer was removed by hand and that was deleted at once never passes the
// operator's cleanup; the watch's delete event still takes it out of the operator's memory and
// off the `dataminer_keys_keysets` gauge (which counted it for ever before).
#[tokio::test]
async fn a_key_set_deleted_without_its_finalizer_leaves_the_gauge() {
    let mut e = env("gone-unfinalized").await;
    for name in ["a", "b"] {
        apply(&e.keysets, &org_keyset(name)).await.unwrap();
        e.ready(name).await;
        let secret = e.secrets.get(&format!("{name}-keys")).await.unwrap();
        e.ledger.record(&secret);
    }
    let counted = |n: f64| {
        let operator = &e.operator;
        async move { (operator.metric_sum("dataminer_keys_keysets").await == Some(n)).then_some(()) }
    };
    common::eventually(20, "both key sets counted", || counted(2.0)).await;

    // Frozen, the operator cannot put the finalizer back before the delete goes through.
    e.operator.signal(19);
    common::remove_finalizers(&e.keysets, "a").await;
    e.keysets
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    e.operator.signal(18);
    common::gone(&e.keysets, "a", "key set a").await;
    common::eventually(30, "one key set counted", || counted(1.0)).await;
    e.finish().await;
}
