//! The chart's admission policies, rendered by the pinned helm and applied, so that tests and
//! `make run` see what a Helm install does (one source: the chart).

use kube::{
    Client,
    api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use std::{path::Path, process::Command};

use crate::{Error, FIELD_MANAGER, Result, binaries, kube_err};

/// The release name the policies are rendered for.
pub const RELEASE: &str = "harness";
const GROUP: &str = "admissionregistration.k8s.io";
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
/// test installs it for real. The API server loads new policies within about a second.
pub async fn install(client: &Client, chart: &Path) -> Result<Vec<String>> {
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
    if serves_mutating_policies(client).await? {
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
