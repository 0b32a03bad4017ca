//! The way out of a lost proof key, on the real API server with the chart's admission policies
//! (issue 21): the operator cannot prove the keys in a Secret any more, so it reports drift or a
//! conflict and writes nothing; a label-confirmed `spec.adopt` takes the values as they are,
//! once per request, recorded with the user who asked. Revoked keys are never adopted.

mod common;

use common::{
    Env, LABEL, apply,
    backup::{backup, lose_both, restore, rotated},
    condition, event_count, event_note, keyset_where, org_keyset, revisions,
};
use dataminer_keys_operator::api::{ADOPTED_BY_ANNOTATION, DataMinerKeySet};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::json;

const ADMIN: &str = "alice@example.com";

/// The operator stopped, its proof key Secret deleted (a namespace rebuilt without it).
async fn lose_the_proof_key(e: &mut Env) {
    e.operator.stop();
    let secrets: Api<Secret> = Api::namespaced(e.client.clone(), &e.ns);
    let proof_keys: Vec<String> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .filter(|n| n.ends_with("-proof-key"))
        .collect();
    assert_eq!(proof_keys.len(), 1, "{proof_keys:?}");
    secrets
        .delete(&proof_keys[0], &DeleteParams::default())
        .await
        .unwrap();
}

/// The key set as an admin (impersonated, so the policy records a name) raising spec.adopt.
async fn adopt_as_admin(e: &Env, request: i64, confirm: &str) -> kube::Result<DataMinerKeySet> {
    let cp = common::control_plane().await;
    let admin = cp
        .client_as(ADMIN, &["system:masters", "system:authenticated"])
        .await
        .unwrap();
    let api: Api<DataMinerKeySet> = Api::namespaced(admin, &e.ns);
    let patch = json!({ "spec": { "adopt": { "request": request, "confirmLabel": confirm } } });
    api.patch("ks", &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// `kubectl dmkeys adopt ks` as the kubeconfig's user (dmk-admin), the label given.
async fn plugin_adopt(e: &Env) -> (i32, String, String) {
    let cp = common::control_plane().await;
    let plugin = common::plugin::Plugin::new(e, cp.kubeconfig_path().map(Into::into));
    plugin.run(&["adopt", "ks", "--confirm-label", LABEL, "--timeout", "30"])
}

fn reason(ks: &DataMinerKeySet) -> String {
    condition(ks, "Ready").map_or(String::new(), |c| c.reason.clone())
}

fn actions(ks: &DataMinerKeySet) -> Vec<String> {
    ks.status
        .iter()
        .flat_map(|s| s.history.iter().map(|h| h.action.clone()))
        .collect()
}

/// After the adoption: Ready at the old revisions with the old values, one Adopt entry naming
/// the admin, one Event; then nothing more (re-applied, restarted), and a regenerate works.
async fn assert_adopted_once(e: &mut Env, saved: &Secret, history_before: usize, by: &str) {
    let ks = keyset_where(&e.keysets, "ks", "adopted and Ready", |k| {
        common::is_ready(k) && actions(k).first().map(String::as_str) == Some("Adopt")
    })
    .await;
    let status = ks.status.clone().unwrap();
    assert_eq!(revisions(&ks), (2, 1), "the revisions are kept");
    assert_eq!(status.adopted_request, Some(1));
    assert_eq!(
        status.history.len(),
        history_before + 1,
        "one history entry"
    );
    assert_eq!(status.history[0].by.as_deref(), Some(by));
    let secret = e.secrets.get("ks-keys").await.unwrap();
    assert_eq!(
        common::key_values(&secret),
        common::key_values(saved),
        "the values in the Secret are the keys now"
    );
    assert_eq!(
        status.primary.unwrap().fingerprint,
        fingerprint(&common::key_values(saved).0)
    );
    let note = event_note(&e.client, &e.ns, "ks", "KeysAdoptedOnRequest").await;
    assert!(
        note.contains("nothing proved the operator wrote them")
            && note.contains(&format!("requested by {by}")),
        "{note}"
    );

    // Done once: a re-apply of the same request and a restart change nothing.
    adopt_as_admin(e, 1, LABEL).await.unwrap();
    e.operator.stop();
    e.operator.restart();
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"]["secondary"] = json!({ "revision": 2, "confirmLabel": LABEL });
    manifest["spec"]["regenerate"]["primary"] = json!({ "revision": 2, "confirmLabel": LABEL });
    apply(&e.keysets, &manifest).await.unwrap();
    let after = keyset_where(&e.keysets, "ks", "secondary regenerated", |k| {
        common::is_ready(k) && revisions(k) == (2, 2)
    })
    .await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    assert_eq!(
        actions(&after).iter().filter(|a| *a == "Adopt").count(),
        1,
        "{:?}",
        actions(&after)
    );
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "KeysAdoptedOnRequest").await,
        1
    );
}

fn fingerprint(value: &str) -> String {
    dataminer_keys_operator::keys::fingerprint(value.as_bytes())
}

// The proof key lost, the key set and Secret still there: both keys are drift (not rotated, not
// written) until an admin confirms them with spec.adopt.
#[tokio::test]
async fn a_lost_proof_key_is_mended_by_a_confirmed_adoption() {
    let mut e = Env::new(common::control_plane().await, "lost-proof-key").await;
    let (before, saved) = rotated(&mut e).await;
    lose_the_proof_key(&mut e).await;
    e.operator.restart();
    let drift = keyset_where(&e.keysets, "ks", "SecretDrift", |k| {
        reason(k) == "SecretDrift"
    })
    .await;
    let message = condition(&drift, "Ready").unwrap().message.clone();
    assert!(message.contains("spec.adopt"), "{message}");
    assert_eq!(
        common::key_values(&e.secrets.get("ks-keys").await.unwrap()),
        common::key_values(&saved),
        "nothing written"
    );

    // A wrong confirmation is refused at admission with what to type.
    let refused = adopt_as_admin(&e, 1, "not the label").await.unwrap_err();
    let kube::Error::Api(status) = refused else {
        panic!("{refused:?}")
    };
    assert!(
        status.code == 422 && status.message.contains(&format!("set it to \"{LABEL}\"")),
        "{status:?}"
    );

    let stamped = adopt_as_admin(&e, 1, LABEL).await.unwrap();
    assert_eq!(
        stamped
            .annotations()
            .get(ADOPTED_BY_ANNOTATION)
            .map(String::as_str),
        Some("alice@example.com (request 1)")
    );
    let history_before = before.status.unwrap().history.len();
    assert_adopted_once(&mut e, &saved, history_before, ADMIN).await;

    // A request never goes back.
    let patch = json!({ "spec": { "adopt": { "request": 1, "confirmLabel": LABEL } } });
    let lowered = json!({ "spec": { "adopt": { "request": 0 } } });
    e.keysets
        .patch("ks", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert!(
        e.keysets
            .patch("ks", &PatchParams::default(), &Patch::Merge(&lowered))
            .await
            .is_err()
    );
    e.finish().await;
}

// The realistic disaster: the key set and its Secret restored from a backup that did not hold
// the proof key. The Secret is a conflict (nothing proven, no record) until it is adopted.
#[tokio::test]
async fn a_restore_without_the_proof_key_is_mended_by_a_confirmed_adoption() {
    let mut e = Env::new(common::control_plane().await, "lost-proof-key-restore").await;
    let (before, saved) = rotated(&mut e).await;
    let (saved_ks, saved_secret) = (backup(&before), backup(&saved));
    lose_the_proof_key(&mut e).await;
    lose_both(&mut e).await;
    restore(&e.secrets, &saved_secret).await;
    restore(&e.keysets, &saved_ks).await;
    e.operator.restart();
    keyset_where(&e.keysets, "ks", "SecretConflict", |k| {
        reason(k) == "SecretConflict"
    })
    .await;

    // Through the plugin this time, as the kubeconfig's user: it asks for the label, raises
    // the request, and reports the adopted keys (fingerprints only).
    let (code, out, err) = plugin_adopt(&e).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Adopted the keys in Secret ks-keys for ks: primary revision 2, sha256:"),
        "{out}"
    );
    // A restored key set has no history: the adoption is its first entry, and it is Ready at
    // the revisions the Secret's annotations carried.
    assert_adopted_once(&mut e, &saved, 0, "dmk-admin").await;
    let secret = e.secrets.get("ks-keys").await.unwrap();
    let ks = e.keysets.get("ks").await.unwrap();
    assert_eq!(
        secret.owner_references().first().map(|o| o.uid.clone()),
        ks.uid(),
        "owner reference repaired"
    );
    e.finish().await;
}

// Revoked keys never come back, not even by a confirmed adoption: a revoked set's Secret from a
// backup, with the proof key lost, is refused (its lineage is tombstoned).
#[tokio::test]
async fn revoked_keys_are_never_adopted_on_request() {
    let mut e = Env::new(common::control_plane().await, "lost-proof-key-revoked").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    let ks = e.ready("ks").await;
    let secret = e.secrets.get("ks-keys").await.unwrap();
    e.ledger.record(&secret);
    let (saved_ks, saved_secret) = (backup(&ks), backup(&secret));
    let mut manifest = org_keyset("ks");
    manifest["spec"]["revoke"] = json!({ "confirmLabel": LABEL });
    apply(&e.keysets, &manifest).await.unwrap();
    keyset_where(&e.keysets, "ks", "revoked", |k| {
        condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    e.keysets
        .delete("ks", &DeleteParams::default())
        .await
        .unwrap();
    common::gone(&e.keysets, "ks", "the key set deleted").await;
    lose_the_proof_key(&mut e).await;

    restore(&e.secrets, &saved_secret).await;
    restore(&e.keysets, &saved_ks).await;
    e.operator.restart();
    keyset_where(&e.keysets, "ks", "SecretConflict", |k| {
        reason(k) == "SecretConflict"
    })
    .await;
    // The plugin says so at once, instead of waiting for its timeout.
    let (code, out, err) = plugin_adopt(&e).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("revoked keys never come back"), "{err}");
    let refused = keyset_where(&e.keysets, "ks", "AdoptionRefused", |k| {
        reason(k) == "AdoptionRefused"
    })
    .await;
    let message = condition(&refused, "Ready").unwrap().message.clone();
    assert!(
        message.contains("revoked keys never come back"),
        "{message}"
    );
    let status = refused.status.unwrap();
    assert!(status.primary.is_none() && status.adopted_request.is_none());
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "KeysAdoptedOnRequest").await,
        0
    );
    e.finish().await;
}
