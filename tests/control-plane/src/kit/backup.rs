//! Backups as Velero or `kubectl get -o yaml` keep objects: without uid, resourceVersion,
//! status or owner references, created again with new uids.

use dataminer_keys_api::DataMinerKeySet;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Resource,
    api::{DeleteParams, PostParams},
};
use serde_json::{Value, json};

use super::{Env, LABEL, apply, keyset_where, org_keyset, revisions};

/// An object as a backup keeps it.
pub fn backup<K: serde::Serialize>(obj: &K) -> Value {
    let mut v = serde_json::to_value(obj).unwrap();
    let meta = v["metadata"].as_object_mut().unwrap();
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "ownerReferences",
        "generation",
        "namespace",
    ] {
        meta.remove(field);
    }
    v.as_object_mut().unwrap().remove("status");
    v
}

/// Creates the object a backup kept.
pub async fn restore<K>(api: &Api<K>, saved: &Value) -> K
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(saved.clone()).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

/// Key set `ks` with history: created, then its primary regenerated to revision 2. Returns it
/// and its Secret as they are then (the Secret's keys recorded in the ledger).
pub async fn rotated(e: &mut Env) -> (DataMinerKeySet, Secret) {
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"]["primary"] = json!({ "revision": 2, "confirmLabel": LABEL });
    apply(&e.keysets, &manifest).await.unwrap();
    let ks = keyset_where(&e.keysets, "ks", "primary at 2", |k| {
        super::is_ready(k) && revisions(k) == (2, 1)
    })
    .await;
    let secret = e.secrets.get("ks-keys").await.unwrap();
    e.ledger.record(&secret);
    (ks, secret)
}

/// `ks` and its Secret gone without the operator (it is stopped): the Secret deleted, then the
/// key set's finalizer removed by hand, as after a lost cluster.
pub async fn lose_both(e: &mut Env) {
    e.operator.stop();
    e.secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    super::remove_finalizers(&e.keysets, "ks").await;
    e.keysets.delete("ks", &DeleteParams::default()).await.ok();
    super::gone(&e.keysets, "ks", "the key set deleted").await;
}
