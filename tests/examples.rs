//! Every manifest in examples/ is accepted by the real API server and does what its comments
//! say, with the operator running: the README's walkthrough, executed.

mod common;

use common::{apply, is_ready, keyset_where, revisions};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::Value;
use std::path::Path;

fn manifest(path: &str) -> Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(path);
    serde_yaml::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
}

fn value(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

#[tokio::test]
async fn the_examples_run_the_whole_life_cycle() {
    let mut e = common::Env::new(common::control_plane().await, "examples").await;
    let (keysets, secrets, ledger) = (e.keysets.clone(), e.secrets.clone(), &mut e.ledger);

    // kubectl apply -f examples/
    apply(&keysets, &manifest("organization-keyset.yaml"))
        .await
        .unwrap();
    apply(&keysets, &manifest("system-keyset.yaml"))
        .await
        .unwrap();
    keyset_where(&keysets, "catalog-ci", "Ready", is_ready).await;
    keyset_where(&keysets, "dms-prod-deploy", "Ready", is_ready).await;

    let org = secrets.get("catalog-ci-keys").await.unwrap();
    let token = value(&org, "DATAMINER_TOKEN");
    ledger.record_value(&token);
    ledger.record_value(&value(&org, "DATAMINER_TOKEN_SECONDARY"));
    assert_eq!(token.len(), 32);
    assert_eq!(org.labels()["team"], "platform");
    let sys = secrets.get("dms-prod-deploy-key").await.unwrap();
    let deploy = value(&sys, "DATAMINER_DEPLOY_KEY");
    ledger.record_value(&deploy);
    ledger.record_value(&value(&sys, "secondaryKey"));
    assert_eq!(deploy.len(), 43, "Base64Url256 keys are 43 characters");
    assert_eq!(sys.annotations()["keys.dataminer.services/scope"], "System");

    // examples/lifecycle, one step at a time.
    let steps = [
        ("lifecycle/1-create.yaml", (1, 1)),
        ("lifecycle/2-regenerate-secondary.yaml", (1, 2)),
        ("lifecycle/3-regenerate-primary.yaml", (2, 2)),
    ];
    for (file, expected) in steps {
        apply(&keysets, &manifest(file)).await.unwrap();
        keyset_where(&keysets, "lifecycle-demo", file, |k| {
            is_ready(k) && revisions(k) == expected
        })
        .await;
        ledger.record(&secrets.get("lifecycle-demo-keys").await.unwrap());
    }
    apply(&keysets, &manifest("lifecycle/4-revoke.yaml"))
        .await
        .unwrap();
    keyset_where(&keysets, "lifecycle-demo", "revoked", |k| {
        common::condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    assert!(
        secrets
            .get_opt("lifecycle-demo-keys")
            .await
            .unwrap()
            .is_none()
    );
    e.finish().await;
}

/// The consumer examples (a Job and a Deployment using the Secret) are valid for the API server.
#[tokio::test]
async fn the_consumer_examples_are_accepted_by_the_api_server() {
    use kube::api::{Api, DynamicObject, PostParams};
    use kube::discovery::ApiResource;
    let cp = common::control_plane().await;
    let ns = cp.namespace("consumers").await.unwrap();
    let client = cp.client().await.unwrap();
    for (file, ar) in [
        (
            "consumers/pipeline-job.yaml",
            ApiResource::erase::<k8s_openapi::api::batch::v1::Job>(&()),
        ),
        (
            "consumers/deployment-mounted-keys.yaml",
            ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        ),
    ] {
        let obj: DynamicObject = serde_json::from_value(manifest(file)).unwrap();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let pp = PostParams {
            dry_run: true,
            ..Default::default()
        };
        api.create(&pp, &obj)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // Argo CD's CRDs are not installed here: the Applications must at least parse and name
    // the chart path and the key set folder they promise.
    let operator_app = manifest("argocd/application-operator.yaml");
    assert_eq!(
        operator_app["spec"]["source"]["path"],
        "charts/dataminer-keys-operator"
    );
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("charts/dataminer-keys-operator/Chart.yaml")
            .exists()
    );
    let keysets_app = manifest("argocd/application-keysets.yaml");
    assert_eq!(keysets_app["kind"], "Application");
}

/// The key set the chart's README (Artifact Hub's page) shows is one the API server accepts.
#[tokio::test]
async fn the_chart_readme_key_set_is_accepted_by_the_api_server() {
    use dataminer_keys_operator::api::DataMinerKeySet;
    use kube::api::{Api, PostParams};
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/dataminer-keys-operator/README.md"),
    )
    .unwrap();
    let block = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block");
    let keyset: DataMinerKeySet = serde_yaml::from_str(block).unwrap();
    let cp = common::control_plane().await;
    let ns = cp.namespace("chart-readme").await.unwrap();
    let api: Api<DataMinerKeySet> = Api::namespaced(cp.client().await.unwrap(), &ns);
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let accepted = api.create(&pp, &keyset).await.unwrap();
    assert_eq!(accepted.secret_name(), "catalog-ci-keys");
}
