//! The operator on the real API server: create, regenerate, re-apply, restart, revoke, drift.
//! Every test ends by checking that no key value reached a log line, an Event or a status.

mod common;

use common::{Env, LABEL, apply, event_count, is_ready, keyset_where, org_keyset, revisions};
use dataminer_keys_operator::keys::fingerprint;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use std::time::Duration;

fn is_hex32(v: &str) -> bool {
    v.len() == 32
        && v.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

async fn env(prefix: &str) -> Env {
    Env::new(common::control_plane().await, prefix).await
}

fn with_request(mut manifest: serde_json::Value, slot: &str, revision: i64) -> serde_json::Value {
    manifest["spec"]["regenerate"][slot] = json!({ "revision": revision, "confirmLabel": LABEL });
    manifest
}

#[tokio::test]
async fn creating_a_key_set_creates_its_secret_status_and_event() {
    let mut e = env("create").await;
    apply(&e.keysets, &org_keyset("catalog-ci")).await.unwrap();
    let ks = e.ready("catalog-ci").await;

    let secret = e.secrets.get("catalog-ci-keys").await.unwrap();
    let (p, s) = e.ledger.record(&secret);
    assert!(
        is_hex32(&p) && is_hex32(&s),
        "keys are 32 lowercase hex characters"
    );
    assert_ne!(p, s, "the two keys differ");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let labels = secret.labels();
    assert_eq!(
        labels["app.kubernetes.io/managed-by"],
        "dataminer-keys-operator"
    );
    assert_eq!(labels["keys.dataminer.services/keyset"], "catalog-ci");
    let annotations = secret.annotations();
    assert_eq!(annotations["keys.dataminer.services/label"], LABEL);
    assert_eq!(annotations["keys.dataminer.services/scope"], "Organization");
    assert_eq!(
        annotations["keys.dataminer.services/target"],
        "skyline-demo"
    );
    assert_eq!(
        annotations["keys.dataminer.services/permissions"],
        "RegisterCatalogItems,AddDataMinerNodes"
    );
    assert_eq!(annotations["keys.dataminer.services/primary-revision"], "1");
    assert_eq!(
        annotations["keys.dataminer.services/secondary-revision"],
        "1"
    );
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.controller, owner.uid.as_str()),
        (Some(true), ks.uid().unwrap().as_str())
    );

    let status = ks.status.as_ref().unwrap();
    assert_eq!(revisions(&ks), (1, 1));
    assert_eq!(
        status.primary.as_ref().unwrap().fingerprint,
        fingerprint(p.as_bytes())
    );
    assert_eq!(
        status.secondary.as_ref().unwrap().fingerprint,
        fingerprint(s.as_bytes())
    );
    assert_eq!(status.secret_name.as_deref(), Some("catalog-ci-keys"));
    assert_eq!(status.scope.as_deref(), Some("Organization"));
    assert!(status.created_at.is_some());
    assert_eq!(status.history[0].action, "KeysCreated");
    assert_eq!(
        common::condition(&ks, "Revoked").map(|c| c.status.as_str()),
        Some("False")
    );
    common::eventually(10, "a KeysCreated Event", || async {
        (event_count(&e.client, &e.ns, "catalog-ci", "KeysCreated").await == 1).then_some(())
    })
    .await;
    e.finish().await;
}

#[tokio::test]
async fn regenerating_one_key_leaves_the_other_byte_for_byte() {
    let mut e = env("regen").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let (p1, s1) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // Primary 1 -> 2.
    apply(&e.keysets, &with_request(org_keyset("ks"), "primary", 2))
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "primary revision 2", |k| {
        is_ready(k) && revisions(k) == (2, 1)
    })
    .await;
    let secret = e.secrets.get("ks-keys").await.unwrap();
    let (p2, s2) = e.ledger.record(&secret);
    assert_ne!(p1, p2, "the primary key changed");
    assert_eq!(s1, s2, "the secondary key is unchanged");
    assert_eq!(
        secret.annotations()["keys.dataminer.services/primary-revision"],
        "2"
    );
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

    // Primary 2 -> 5 is one regeneration.
    apply(&e.keysets, &with_request(org_keyset("ks"), "primary", 5))
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "primary revision 5", |k| {
        is_ready(k) && revisions(k) == (5, 1)
    })
    .await;
    let (p5, s5) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    assert_ne!(p5, p2);
    assert_eq!(s5, s1);
    let regenerations = ks
        .status
        .as_ref()
        .unwrap()
        .history
        .iter()
        .filter(|h| h.action == "RegeneratePrimary")
        .count();
    assert_eq!(
        regenerations, 2,
        "1->2 and 2->5: two regenerations, not four"
    );

    // Secondary 1 -> 2, primary untouched.
    let manifest = with_request(with_request(org_keyset("ks"), "primary", 5), "secondary", 2);
    apply(&e.keysets, &manifest).await.unwrap();
    keyset_where(&e.keysets, "ks", "secondary revision 2", |k| {
        is_ready(k) && revisions(k) == (5, 2)
    })
    .await;
    let (p, s) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    assert_eq!(p, p5, "the primary key is unchanged");
    assert_ne!(s, s1, "the secondary key changed");
    common::eventually(10, "the regeneration Events", || async {
        let primary = event_count(&e.client, &e.ns, "ks", "PrimaryKeyRegenerated").await;
        let secondary = event_count(&e.client, &e.ns, "ks", "SecondaryKeyRegenerated").await;
        (primary == 2 && secondary == 1).then_some(())
    })
    .await;
    e.finish().await;
}

#[tokio::test]
async fn reapplying_the_same_manifest_and_restarting_change_nothing() {
    let mut e = env("reapply").await;
    let manifest = with_request(org_keyset("ks"), "primary", 2);
    apply(&e.keysets, &manifest).await.unwrap();
    keyset_where(&e.keysets, "ks", "ready at revision 2", |k| {
        is_ready(k) && revisions(k) == (2, 1)
    })
    .await;
    // Let the Events land before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let secret_before = e.secrets.get("ks-keys").await.unwrap();
    e.ledger.record(&secret_before);
    let ks_before = e.keysets.get("ks").await.unwrap();
    let events_before = common::events(&e.client, &e.ns, "ks").await;

    // An Argo CD re-sync, a kubectl apply loop, and an operator restart (which replays every
    // object through the controller).
    for _ in 0..3 {
        apply(&e.keysets, &manifest).await.unwrap();
    }
    e.operator.stop();
    e.operator.restart();
    // The restarted operator reconciled the key set (and the re-applies before it).
    e.operator.reconciled(1).await;

    let secret_after = e.secrets.get("ks-keys").await.unwrap();
    let ks_after = e.keysets.get("ks").await.unwrap();
    assert_eq!(
        secret_before.resource_version(),
        secret_after.resource_version(),
        "no Secret write"
    );
    assert_eq!(
        ks_before.resource_version(),
        ks_after.resource_version(),
        "no status write"
    );
    assert_eq!(
        events_before,
        common::events(&e.client, &e.ns, "ks").await,
        "no new Event"
    );
    e.finish().await;
}

#[tokio::test]
async fn a_request_made_while_the_operator_is_down_is_applied_exactly_once() {
    let mut e = env("restart").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    e.operator.kill();
    apply(&e.keysets, &with_request(org_keyset("ks"), "primary", 3))
        .await
        .unwrap();
    e.operator.restart();
    keyset_where(&e.keysets, "ks", "primary revision 3", |k| {
        is_ready(k) && revisions(k) == (3, 1)
    })
    .await;
    let (p, _) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // Crash and restart twice more: the request stays applied once.
    for _ in 0..2 {
        e.operator.kill();
        e.operator.restart();
        e.operator.reconciled(1).await;
    }
    let ks = e.ready("ks").await;
    assert_eq!(revisions(&ks), (3, 1));
    assert_eq!(
        common::key_values(&e.secrets.get("ks-keys").await.unwrap()).0,
        p
    );
    let history = &ks.status.as_ref().unwrap().history;
    assert_eq!(
        history
            .iter()
            .filter(|h| h.action == "RegeneratePrimary")
            .count(),
        1,
        "{history:#?}\n{}",
        e.operator.logs()
    );
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "PrimaryKeyRegenerated").await,
        1
    );
    e.finish().await;
}

#[tokio::test]
async fn a_rotation_written_just_before_a_crash_is_recorded_not_repeated() {
    let mut e = env("crash-window").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let secret = e.secrets.get("ks-keys").await.unwrap();
    let (_, s) = e.ledger.record(&secret);

    // A real crash between the Secret write and the status write: the operator aborts right
    // after writing primary revision 2 (test hook), with the status still at 1.
    let keysets = e.keysets.clone();
    e.operator
        .crash_after_secret_write(async {
            apply(&keysets, &with_request(org_keyset("ks"), "primary", 2))
                .await
                .unwrap();
        })
        .await;
    let ks = e.keysets.get("ks").await.unwrap();
    assert_eq!(revisions(&ks), (1, 1), "the status write never happened");
    let written = e.secrets.get("ks-keys").await.unwrap();
    assert_eq!(
        written.annotations()["keys.dataminer.services/primary-revision"],
        "2"
    );
    let (rotated, _) = e.ledger.record(&written);
    let rotated = rotated.as_str();

    e.operator.restart();
    let ks = keyset_where(&e.keysets, "ks", "revision 2 recorded", |k| {
        is_ready(k) && revisions(k) == (2, 1)
    })
    .await;
    let (p_now, s_now) = common::key_values(&e.secrets.get("ks-keys").await.unwrap());
    assert_eq!(p_now, rotated, "the rotation was recorded, not redone");
    assert_eq!(s_now, s);
    let status = ks.status.as_ref().unwrap();
    assert_eq!(
        status.primary.as_ref().unwrap().fingerprint,
        fingerprint(rotated.as_bytes())
    );
    assert_eq!(
        status
            .history
            .iter()
            .filter(|h| h.action == "RegeneratePrimary")
            .count(),
        1
    );
    e.finish().await;
}

#[tokio::test]
async fn revoking_destroys_the_keys_for_good() {
    let mut e = env("revoke").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    let mut manifest = org_keyset("ks");
    manifest["spec"]["revoke"] = json!({ "confirmLabel": LABEL });
    apply(&e.keysets, &manifest).await.unwrap();
    let ks = keyset_where(&e.keysets, "ks", "Revoked=True", |k| {
        common::condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    assert!(
        e.secrets.get_opt("ks-keys").await.unwrap().is_none(),
        "the Secret is gone"
    );
    assert!(ks.status.as_ref().unwrap().revoked_at.is_some());
    // Done as asked: Ready, reason Revoked (kstatus counts it current; docs/flux.md).
    let ready = common::condition(&ks, "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Revoked")
    );

    // A hand-made Secret of that name afterwards is not adopted, not filled, not deleted.
    let hand_made: Secret = serde_json::from_value(json!({
        "metadata": { "name": "ks-keys", "labels": { "app.kubernetes.io/managed-by": "dataminer-keys-operator" } },
        "stringData": { "note": "made by hand" }
    }))
    .unwrap();
    let created = e
        .secrets
        .create(&PostParams::default(), &hand_made)
        .await
        .unwrap();
    e.operator.stop();
    e.operator.restart();
    e.operator.reconciled(1).await;
    let after = e.secrets.get("ks-keys").await.unwrap();
    assert_eq!(
        after.resource_version(),
        created.resource_version(),
        "left untouched"
    );
    assert!(after.owner_references().is_empty());
    assert_eq!(
        common::event_count(&e.client, &e.ns, "ks", "KeysRevoked").await,
        1
    );
    e.finish().await;
}

#[tokio::test]
async fn a_deleted_secret_is_recreated_with_new_keys_and_a_warning() {
    let mut e = env("missing").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let (p1, s1) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    e.secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "revisions 2/2", |k| {
        is_ready(k) && revisions(k) == (2, 2)
    })
    .await;
    let (p2, s2) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    assert!(p2 != p1 && s2 != s1, "new keys (the old values are gone)");
    assert_eq!(
        ks.status.as_ref().unwrap().history[0].action,
        "SecretRecreated"
    );
    common::eventually(10, "a SecretMissing warning", || async {
        (event_count(&e.client, &e.ns, "ks", "SecretMissing").await == 1).then_some(())
    })
    .await;
    e.finish().await;
}

#[tokio::test]
async fn a_tampered_key_is_reported_and_not_rotated_until_asked() {
    let mut e = env("drift").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let (_, s) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    let tampered = "ffffffffffffffffffffffffffffffff";
    e.ledger.record_value(tampered);
    let patch = json!({ "data": { "primaryKey": base64_of(tampered) } });
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    let ks = keyset_where(&e.keysets, "ks", "Ready=False SecretDrift", |k| {
        common::condition(k, "Ready")
            .is_some_and(|c| c.status == "False" && c.reason == "SecretDrift")
    })
    .await;
    assert_eq!(revisions(&ks), (1, 1), "no silent rotation");
    assert_eq!(
        common::key_values(&e.secrets.get("ks-keys").await.unwrap()),
        (tampered.to_string(), s.clone())
    );
    common::eventually(10, "a SecretDrift warning", || async {
        (event_count(&e.client, &e.ns, "ks", "SecretDrift").await == 1).then_some(())
    })
    .await;

    // A regenerate request clears it.
    apply(&e.keysets, &with_request(org_keyset("ks"), "primary", 2))
        .await
        .unwrap();
    keyset_where(&e.keysets, "ks", "ready at revision 2", |k| {
        is_ready(k) && revisions(k) == (2, 1)
    })
    .await;
    let (p, s2) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    assert_ne!(p, tampered);
    assert_eq!(s2, s);
    e.finish().await;
}

#[tokio::test]
async fn a_foreign_secret_of_that_name_is_a_conflict_and_stays_untouched() {
    let mut e = env("conflict").await;
    let foreign: Secret = serde_json::from_value(json!({
        "metadata": { "name": "ks-keys" },
        "stringData": { "primaryKey": "not-ours" }
    }))
    .unwrap();
    let created = e
        .secrets
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    e.ledger.record_value("not-ours-placeholder-never-a-key");
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    let ks = keyset_where(&e.keysets, "ks", "Ready=False SecretConflict", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "SecretConflict")
    })
    .await;
    assert!(
        ks.status.as_ref().unwrap().primary.is_none(),
        "no keys were generated"
    );
    let after = e.secrets.get("ks-keys").await.unwrap();
    assert_eq!(
        after.resource_version(),
        created.resource_version(),
        "the foreign Secret is untouched"
    );
    common::eventually(10, "a SecretConflict warning", || async {
        (event_count(&e.client, &e.ns, "ks", "SecretConflict").await == 1).then_some(())
    })
    .await;

    // Once the foreign Secret is gone, the key set gets its own (after the conflict retry).
    e.secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    e.operator.stop();
    e.operator.restart();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.finish().await;
}

#[tokio::test]
async fn deleting_a_key_set_deletes_its_secret() {
    let mut e = env("delete").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.keysets
        .delete("ks", &DeleteParams::default())
        .await
        .unwrap();
    // The controller owner reference lets kube-controller-manager's garbage collector do it.
    common::gone(&e.secrets, "ks-keys", "the Secret to be garbage collected").await;
    e.finish().await;
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn secret_labels_and_annotations_follow_the_spec_and_leave_others_alone() {
    let mut e = env("metadata").await;
    let mut manifest = org_keyset("ks");
    manifest["spec"]["secret"] = json!({
        "labels": { "team": "platform", "app.kubernetes.io/managed-by": "someone-else" },
        "annotations": { "reloader.stakater.com/match": "true" }
    });
    apply(&e.keysets, &manifest).await.unwrap();
    e.ready("ks").await;
    let secret = e.secrets.get("ks-keys").await.unwrap();
    let (p, s) = e.ledger.record(&secret);
    assert_eq!(secret.labels()["team"], "platform");
    assert_eq!(
        secret.labels()["app.kubernetes.io/managed-by"],
        "dataminer-keys-operator",
        "the operator's own labels win"
    );
    assert_eq!(secret.annotations()["reloader.stakater.com/match"], "true");

    // Another tool labels the Secret; then the user drops "team" and changes the annotation.
    let other = json!({"metadata": {"labels": {"backup": "daily"}}});
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&other))
        .await
        .unwrap();
    manifest["spec"]["secret"] =
        json!({ "annotations": { "reloader.stakater.com/match": "false" } });
    apply(&e.keysets, &manifest).await.unwrap();
    let secret = common::eventually(30, "the Secret metadata to follow the spec", || async {
        let s = e.secrets.get("ks-keys").await.unwrap();
        (!s.labels().contains_key("team")
            && s.annotations()
                .get("reloader.stakater.com/match")
                .map(String::as_str)
                == Some("false"))
        .then_some(s)
    })
    .await;
    assert_eq!(
        secret.labels()["backup"],
        "daily",
        "another manager's label is kept"
    );
    assert_eq!(
        common::key_values(&secret),
        (p, s),
        "metadata changes never touch the keys"
    );
    let ks = e.ready("ks").await;
    assert_eq!(revisions(&ks), (1, 1));
    e.finish().await;
}

/// (action, slot, revision) of each history entry, newest first.
fn history(
    ks: &dataminer_keys_operator::api::DataMinerKeySet,
) -> Vec<(String, Option<String>, Option<i64>)> {
    ks.status
        .as_ref()
        .unwrap()
        .history
        .iter()
        .map(|h| (h.action.clone(), h.slot.clone(), h.revision))
        .collect()
}

// Issue 11: the operator caches key sets without their history (it keeps it apart, compact),
// so every status write must restate the history of the version it was planned on: after a
// rotation, after a restart (the cache filled by a list), after a write that changes only a
// condition, and at the limit.
#[tokio::test]
async fn the_history_is_kept_whole_through_every_kind_of_status_write() {
    use dataminer_keys_operator::status::HISTORY_LIMIT;
    let mut e = env("history").await;
    let entry = |action: &str, slot: Option<&str>, revision: Option<i64>| {
        (action.to_string(), slot.map(String::from), revision)
    };
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let mut expected = vec![entry("KeysCreated", None, None)];
    // Requests both slots at these revisions, and waits until both are recorded.
    let rotate = |primary: i64, secondary: i64| {
        let keysets = e.keysets.clone();
        async move {
            let manifest = with_request(
                with_request(org_keyset("ks"), "primary", primary),
                "secondary",
                secondary,
            );
            apply(&keysets, &manifest).await.unwrap();
            keyset_where(&keysets, "ks", "rotated", |k| {
                is_ready(k) && revisions(k) == (primary, secondary)
            })
            .await
        }
    };
    rotate(2, 1).await;
    expected.insert(0, entry("RegeneratePrimary", Some("primary"), Some(2)));
    e.operator.kill();
    e.operator.restart();
    let ks = rotate(2, 2).await;
    expected.insert(0, entry("RegenerateSecondary", Some("secondary"), Some(2)));
    assert_eq!(history(&ks), expected, "after a restart");

    // A write that changes a condition only (drift) and one that repairs it.
    let tampered = "ffffffffffffffffffffffffffffffff";
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.ledger.record_value(tampered);
    let patch = json!({ "data": { "secondaryKey": base64_of(tampered) } });
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "Ready=False SecretDrift", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "SecretDrift")
    })
    .await;
    assert_eq!(history(&ks), expected, "after a condition-only write");
    rotate(2, 3).await;
    expected.insert(0, entry("RegenerateSecondary", Some("secondary"), Some(3)));

    // Past the limit: the newest entries stay, the oldest go.
    let mut revision = 3;
    while expected.len() <= HISTORY_LIMIT {
        revision += 1;
        rotate(2, revision).await;
        expected.insert(
            0,
            entry("RegenerateSecondary", Some("secondary"), Some(revision)),
        );
    }
    expected.truncate(HISTORY_LIMIT);
    let ks = e.ready("ks").await;
    assert_eq!(history(&ks), expected, "at the limit");
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.finish().await;
}
