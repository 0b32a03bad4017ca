//! The test control plane is a real Kubernetes API server: objects persist in etcd, watches
//! deliver them, CRD CEL rules run at admission and RBAC is enforced.

mod common;

use dataminer_keys_operator::api::DataMinerKeySet;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{PostParams, WatchEvent, WatchParams},
};
use serde_json::json;
use std::time::Duration;

fn keyset(name: &str, label: &str, confirm: &str) -> DataMinerKeySet {
    serde_json::from_value(json!({
        "apiVersion": "keys.dataminer.services/v1alpha1",
        "kind": "DataMinerKeySet",
        "metadata": { "name": name },
        "spec": {
            "label": label,
            "scope": { "organization": { "name": "skyline-demo" } },
            "permissions": ["RegisterCatalogItems"],
            "regenerate": { "primary": { "revision": 2, "confirmLabel": confirm } }
        }
    }))
    .expect("valid DataMinerKeySet")
}

/// Name of the first object the watch reports as added, if any within 20 s.
async fn first_added<K: kube::Resource>(
    mut stream: futures::stream::BoxStream<'static, kube::Result<WatchEvent<K>>>,
) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(obj)))) => return Some(kube::ResourceExt::name_any(&obj)),
            Ok(Ok(Some(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn objects_arrive_through_a_watch() {
    let (client, ns) = common::client_and_namespace("smoke-watch").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let keysets: Api<DataMinerKeySet> = Api::namespaced(client, &ns);

    // Watch from "now" (resourceVersion 0 would replay a possibly cached list).
    let secret_rv = secrets
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let keyset_rv = keysets
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = WatchParams::default().timeout(20);
    let secret_watch = secrets.watch(&wp, &secret_rv).await.unwrap().boxed();
    let keyset_watch = keysets.watch(&wp, &keyset_rv).await.unwrap().boxed();

    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "plain" },
        "stringData": { "hello": "world" }
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let good = keyset("good", "CI pipeline", "CI pipeline");
    keysets.create(&PostParams::default(), &good).await.unwrap();

    let secret_name = first_added(secret_watch).await;
    let keyset_name = first_added(keyset_watch).await;
    assert_eq!(secret_name.as_deref(), Some("plain"));
    assert_eq!(keyset_name.as_deref(), Some("good"));

    // And it was really stored: a fresh read returns what was written.
    let stored = secrets.get("plain").await.unwrap();
    assert_eq!(stored.data.unwrap()["hello"].0, b"world");
}

#[tokio::test]
async fn a_crd_cel_rule_rejects_a_bad_object_with_its_message() {
    let (client, ns) = common::client_and_namespace("smoke-cel").await;
    let keysets: Api<DataMinerKeySet> = Api::namespaced(client, &ns);
    let bad = keyset("bad", "CI pipeline", "CI pipelin");
    let err = keysets
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains(
            "spec.regenerate.primary.confirmLabel must repeat the label exactly to confirm: set it to \"CI pipeline\""
        ),
        "message was: {}",
        status.message
    );
    assert!(
        keysets.get_opt("bad").await.unwrap().is_none(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn rbac_is_enforced() {
    let cp = common::control_plane().await;
    let ns = cp.namespace("smoke-rbac").await.unwrap();
    let nobody = cp
        .client_as("nobody@example.com", &["system:authenticated"])
        .await
        .unwrap();
    let err = Api::<Secret>::namespaced(nobody, &ns)
        .list(&Default::default())
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("expected 403, got {other:?}"),
    }
    // The admin identity (system:masters) can.
    let admin = cp.client().await.unwrap();
    Api::<Secret>::namespaced(admin, &ns)
        .list(&Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_local_api_server_reports_the_pinned_version() {
    if std::env::var(dmk_control_plane::CLUSTER_ENV).as_deref() == Ok("kubeconfig") {
        return; // another cluster has its own version
    }
    let client = common::control_plane().await.client().await.unwrap();
    let info = client.apiserver_version().await.unwrap();
    let pinned = dmk_control_plane::kubernetes_version();
    assert_eq!(info.git_version, pinned);
    let minor = dmk_control_plane::versions::minor().to_string();
    assert_eq!(
        (info.major.as_str(), info.minor.as_str()),
        ("1", minor.as_str())
    );
}

/// The existing-cluster mode (`DMK_TEST_CLUSTER=kubeconfig`, used by `make e2e-kind`) attaches
/// to a kubeconfig, installs the CRDs idempotently and hands out clients and namespaces. Here it
/// attaches to this binary's own control plane through its kubeconfig file.
#[tokio::test]
async fn the_existing_cluster_mode_attaches_through_a_kubeconfig() {
    let local = common::control_plane().await;
    let Some(path) = local.kubeconfig_path() else {
        return; // already running in that mode
    };
    let opts = dmk_control_plane::Options {
        crd_dir: Some(common::crd_dir()),
        ..Default::default()
    };
    let attached = dmk_control_plane::ControlPlane::existing_at(path, &opts)
        .await
        .unwrap();
    assert!(attached.pids().is_empty(), "attaching starts nothing");
    let ns = attached.namespace("attached").await.unwrap();
    let keysets: Api<DataMinerKeySet> = Api::namespaced(attached.client().await.unwrap(), &ns);
    keysets
        .create(
            &PostParams::default(),
            &keyset("via-kubeconfig", "CI", "CI"),
        )
        .await
        .unwrap();
}
