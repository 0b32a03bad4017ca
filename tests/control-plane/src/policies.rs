//! The chart's admission policies, rendered by the pinned helm and applied, so that tests and
//! `make run` see what a Helm install does (one source: the chart).

use kube::{
    Client,
    api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
};
use std::{path::Path, process::Command};

use crate::{Error, FIELD_MANAGER, Result, binaries, kube_err};

/// The release name the policies are rendered for.
pub const RELEASE: &str = "harness";
const GROUP: &str = "admissionregistration.k8s.io";
const CREATED_BY: &str = "keys.dataminer.services/created-by";
const REVOKED_BY: &str = "keys.dataminer.services/revoked-by";
const KINDS: [&str; 4] = [
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// Renders the chart at `chart` for the capabilities the cluster has (MutatingAdmissionPolicy
/// v1 only where it is served, as `helm install` decides from discovery) and applies every
/// admission policy and binding in it, returning their names. The policy that refuses deleting a
/// key set holding keys is left out: tests delete such key sets all the time, and the Helm chart
/// test installs it for real. Returns once the API server applies them (it loads new policies
/// within about a second), so the first key set a test creates is already stamped.
pub async fn install(client: &Client, chart: &Path) -> Result<Vec<String>> {
    let mutating = serves_mutating_policies(client).await?;
    let names = apply(client, chart, mutating).await?;
    if names.iter().any(|n| n.ends_with("-protect-requester")) {
        in_effect(client, mutating).await?;
    }
    Ok(names)
}

async fn apply(client: &Client, chart: &Path, mutating: bool) -> Result<Vec<String>> {
    let mut args = vec![
        "template".to_string(),
        // Not the release name the Helm chart test installs, so the two never collide.
        RELEASE.into(),
        chart.display().to_string(),
        "--kube-version".into(),
        "1.36.3".into(),
        "--set".into(),
        "admissionPolicy.preventDeletingActiveKeySets=false".into(),
    ];
    if mutating {
        args.push("--api-versions".into());
        args.push(format!("{GROUP}/v1/MutatingAdmissionPolicy"));
    }
    let out = Command::new(binaries()?.join("helm"))
        .args(&args)
        .output()
        .map_err(crate::io("run helm template"))?;
    if !out.status.success() {
        return Err(Error::Yaml(format!(
            "helm template {}: {}",
            chart.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let Ok(obj) = <DynamicObject as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        let Some(kind) = obj
            .types
            .as_ref()
            .map(|t| t.kind.as_str())
            .filter(|k| KINDS.contains(k))
        else {
            continue;
        };
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1", kind));
        let name = obj.metadata.name.clone().unwrap_or_default();
        Api::<DynamicObject>::all_with(client.clone(), &resource)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map_err(kube_err(format!("apply {kind} {name}")))?;
        names.push(format!("{kind}/{name}"));
    }
    Ok(names)
}

/// Waits until server-side dry runs show the policies at work: a forged requester annotation is
/// refused (the validating policy) and, where mutating policies are served, a new key set comes
/// back stamped with its creator.
async fn in_effect(client: &Client, mutating: bool) -> Result<()> {
    let gvk = GroupVersionKind::gvk("keys.dataminer.services", "v1alpha1", "DataMinerKeySet");
    let api = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "dataminerkeysets"),
    );
    let probe = |annotations: serde_json::Value| -> Result<DynamicObject> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "keys.dataminer.services/v1alpha1",
            "kind": "DataMinerKeySet",
            "metadata": { "name": "policy-probe", "annotations": annotations },
            "spec": { "label": "probe", "scope": { "organization": { "name": "probe" } },
                      "permissions": ["RegisterCatalogItems"] }
        }))
        .map_err(|e| Error::Yaml(format!("policy probe: {e}")))
    };
    let forged = probe(serde_json::json!({ REVOKED_BY: "someone-else" }))?;
    let plain = probe(serde_json::json!({}))?;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let refused = matches!(
            api.create(&dry, &forged).await,
            Err(kube::Error::Api(ref s)) if s.code == 403
        );
        let stamped = !mutating
            || api.create(&dry, &plain).await.is_ok_and(|o| {
                o.metadata
                    .annotations
                    .is_some_and(|a| a.contains_key(CREATED_BY))
            });
        if refused && stamped {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Yaml(format!(
                "the chart's requester policies were not in effect within 30s (forgery refused: {refused}, creator stamped: {stamped})"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Whether `admissionregistration.k8s.io/v1` lists mutatingadmissionpolicies (Kubernetes 1.36+).
async fn serves_mutating_policies(client: &Client) -> Result<bool> {
    let list = client
        .list_api_group_resources(&format!("{GROUP}/v1"))
        .await
        .map_err(kube_err(format!("discover {GROUP}/v1")))?;
    Ok(list
        .resources
        .iter()
        .any(|r| r.name == "mutatingadmissionpolicies"))
}
