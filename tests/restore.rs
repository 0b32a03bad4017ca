//! Day 2 on the real API server (issue 21, items 1 and 2): a restore from backup keeps the keys,
//! revocation and deletion destroy every copy, and revoked or deleted keys never come back.
//!
//! A backup here is what Velero or `kubectl get -o yaml` keeps: the objects without uid,
//! resourceVersion, status or owner references, created again with new uids.

mod common;

use common::{
    Env, LABEL, apply,
    backup::{backup, lose_both, restore, rotated},
    condition, event_count, keyset_where, org_keyset, revisions,
};
use dataminer_keys_operator::api::DataMinerKeySet;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

async fn env(prefix: &str) -> Env {
    Env::new(common::control_plane().await, prefix).await
}

fn history(ks: &DataMinerKeySet) -> Vec<String> {
    ks.status
        .iter()
        .flat_map(|s| s.history.iter().map(|h| h.action.clone()))
        .collect()
}

/// Waits for the restored key set to be Ready with the keys it had, and checks what a user sees.
async fn assert_adopted(e: &Env, before: &DataMinerKeySet, saved_secret: &Secret) {
    let ks = keyset_where(&e.keysets, "ks", "adopted and Ready", |k| {
        common::is_ready(k) && history(k).contains(&"KeysAdopted".to_string())
    })
    .await;
    let (was, now) = (before.status.clone().unwrap(), ks.status.clone().unwrap());
    assert_eq!(revisions(&ks), (2, 1), "no regeneration");
    assert_eq!(
        (
            now.primary.unwrap().fingerprint,
            now.secondary.unwrap().fingerprint
        ),
        (
            was.primary.unwrap().fingerprint,
            was.secondary.unwrap().fingerprint
        )
    );
    assert_eq!(now.lineage, was.lineage, "the same lineage");
    assert_eq!(history(&ks), ["KeysAdopted"], "one history entry");
    let secret = e.secrets.get("ks-keys").await.unwrap();
    assert_eq!(
        common::key_values(&secret),
        common::key_values(saved_secret),
        "the same keys"
    );
    assert_eq!(now.secret_uid, secret.uid());
    let owner = secret
        .owner_references()
        .first()
        .cloned()
        .expect("owner reference repaired");
    assert_eq!(
        (owner.uid, owner.controller),
        (ks.uid().unwrap(), Some(true))
    );
    assert_eq!(event_count(&e.client, &e.ns, "ks", "KeysAdopted").await, 1);
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "SecretConflict").await,
        0
    );
}

// Item 1: restored in either order while the operator was stopped, the set comes back Ready
// with the same keys, fingerprints and revisions (it reported SecretConflict for ever).
#[tokio::test]
async fn a_restore_keeps_the_keys_in_either_order() {
    for secret_first in [true, false] {
        let mut e = env(if secret_first {
            "restore-secret-first"
        } else {
            "restore-keyset-first"
        })
        .await;
        let (before, secret) = rotated(&mut e).await;
        let (saved_ks, saved_secret) = (backup(&before), backup(&secret));
        lose_both(&mut e).await;
        if secret_first {
            restore(&e.secrets, &saved_secret).await;
            restore(&e.keysets, &saved_ks).await;
        } else {
            restore(&e.keysets, &saved_ks).await;
            restore(&e.secrets, &saved_secret).await;
        }
        e.operator.restart();
        assert_adopted(&e, &before, &secret).await;
        e.finish().await;
    }
}

// Item 1: a whole namespace deleted (the operator running, elsewhere) and restored.
#[tokio::test]
async fn a_namespace_deleted_and_restored_keeps_the_keys() {
    let cp = common::control_plane().await;
    let mut e = env("restore-namespace").await;
    // The operator's own namespace (proof key, tombstones, Lease) is not the one deleted.
    let home = cp.namespace("restore-namespace-operator").await.unwrap();
    // Killed, not stopped: it may not have installed its signal handler yet.
    e.operator.kill();
    e.operator = common::operator::Operator::start_with(
        cp,
        &e.ns,
        &[&format!("--leader-election-namespace={home}")],
    );
    let (before, secret) = rotated(&mut e).await;
    let (saved_ks, saved_secret) = (backup(&before), backup(&secret));
    let namespaces: Api<Namespace> = Api::all(e.client.clone());
    namespaces
        .delete(&e.ns, &DeleteParams::default())
        .await
        .unwrap();
    common::eventually(90, "the namespace gone", || async {
        namespaces
            .get_opt(&e.ns)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": e.ns } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    // As Velero orders it (Secrets before custom resources), the operator running all along.
    restore(&e.secrets, &saved_secret).await;
    restore(&e.keysets, &saved_ks).await;
    assert_adopted(&e, &before, &secret).await;
    e.finish().await;
}

/// A Ready key set whose Secret was deleted and created again with the same content while the
/// operator was stopped (it stays stopped): the Secret as it was, and the copy.
async fn re_created_copy(e: &mut Env) -> (Secret, Secret) {
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let secret = e.secrets.get("ks-keys").await.unwrap();
    e.ledger.record(&secret);
    e.operator.stop();
    e.secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    let copy = restore(&e.secrets, &backup(&secret)).await;
    (secret, copy)
}

// Item 2: a Secret deleted and created again with the same content while the operator was
// stopped is adopted, so a revoke destroys it (it used to say "Secret deleted" while the copy
// kept serving the keys).
#[tokio::test]
async fn revoke_destroys_a_re_created_copy() {
    let mut e = env("revoke-copy").await;
    let (secret, copy) = re_created_copy(&mut e).await;
    e.operator.restart();
    keyset_where(&e.keysets, "ks", "the copy adopted", |k| {
        k.status.as_ref().and_then(|s| s.secret_uid.clone()) == copy.uid()
    })
    .await;
    assert_eq!(revisions(&e.keysets.get("ks").await.unwrap()), (1, 1));

    let mut manifest = org_keyset("ks");
    manifest["spec"]["revoke"] = json!({ "confirmLabel": LABEL });
    apply(&e.keysets, &manifest).await.unwrap();
    keyset_where(&e.keysets, "ks", "revoked", |k| {
        condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    assert!(
        e.secrets.get_opt("ks-keys").await.unwrap().is_none(),
        "the copy serving the keys is destroyed"
    );

    // A copy restored later still: destroyed again, never served.
    restore(&e.secrets, &backup(&secret)).await;
    common::gone(&e.secrets, "ks-keys", "the restored copy destroyed").await;
    e.finish().await;
}

// Items 1 and 2: the finalizer destroys a copy too (it skipped it silently).
#[tokio::test]
async fn deleting_a_key_set_destroys_a_re_created_copy() {
    let mut e = env("delete-copy").await;
    re_created_copy(&mut e).await;
    e.keysets
        .delete("ks", &DeleteParams::default())
        .await
        .unwrap();
    e.operator.restart();
    common::gone(&e.keysets, "ks", "the key set deleted").await;
    common::gone(&e.secrets, "ks-keys", "the copy destroyed").await;
    e.finish().await;
}

// Revoked keys never come back: a backup taken before a revocation, or before a deletion
// through the finalizer, replayed under a key set created later with the same name, is not
// adopted.
#[tokio::test]
async fn revoked_or_deleted_keys_are_never_adopted_again() {
    for revoke_first in [true, false] {
        let mut e = env(if revoke_first {
            "replay-revoked"
        } else {
            "replay-deleted"
        })
        .await;
        apply(&e.keysets, &org_keyset("ks")).await.unwrap();
        let ks = e.ready("ks").await;
        let secret = e.secrets.get("ks-keys").await.unwrap();
        e.ledger.record(&secret);
        let (saved_ks, saved_secret) = (backup(&ks), backup(&secret));
        if revoke_first {
            let mut manifest = org_keyset("ks");
            manifest["spec"]["revoke"] = json!({ "confirmLabel": LABEL });
            apply(&e.keysets, &manifest).await.unwrap();
            keyset_where(&e.keysets, "ks", "revoked", |k| {
                condition(k, "Revoked").is_some_and(|c| c.status == "True")
            })
            .await;
        }
        e.keysets
            .delete("ks", &DeleteParams::default())
            .await
            .unwrap();
        common::gone(&e.keysets, "ks", "the key set deleted").await;
        assert!(e.secrets.get_opt("ks-keys").await.unwrap().is_none());

        // The replay: the old Secret, then a new key set of the same name.
        restore(&e.secrets, &saved_secret).await;
        restore(&e.keysets, &saved_ks).await;
        let replayed = keyset_where(&e.keysets, "ks", "SecretConflict", |k| {
            condition(k, "Ready").is_some_and(|c| c.reason == "SecretConflict")
        })
        .await;
        assert!(!history(&replayed).contains(&"KeysAdopted".to_string()));
        assert_eq!(event_count(&e.client, &e.ns, "ks", "KeysAdopted").await, 0);
        assert!(
            replayed.status.unwrap().primary.is_none(),
            "no key recorded"
        );
        e.finish().await;
    }
}

// The lineage annotation is a hint like the revision annotations: removed or edited by hand, it
// is put back from the record, and the keys stay trusted (no SecretDrift).
#[tokio::test]
async fn an_edited_lineage_annotation_is_put_back() {
    let mut e = env("lineage-edit").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    let ks = e.ready("ks").await;
    let lineage = ks
        .status
        .as_ref()
        .unwrap()
        .lineage
        .clone()
        .expect("recorded");
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    for edit in [json!(null), json!("0123456789abcdef0123456789abcdef")] {
        let patch = json!({ "metadata": { "annotations": {
            "keys.dataminer.services/lineage": edit
        }}});
        e.secrets
            .patch(
                "ks-keys",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
        let restored = common::eventually(30, "the lineage annotation put back", || async {
            let s = e.secrets.get("ks-keys").await.unwrap();
            (s.annotations().get("keys.dataminer.services/lineage") == Some(&lineage)).then_some(s)
        })
        .await;
        assert_eq!(e.ledger.record(&restored), common::key_values(&restored));
        let ks = e.keysets.get("ks").await.unwrap();
        assert!(common::is_ready(&ks), "{:?}", condition(&ks, "Ready"));
        assert_eq!(revisions(&ks), (1, 1));
    }
    assert_eq!(event_count(&e.client, &e.ns, "ks", "SecretDrift").await, 0);
    e.finish().await;
}
