//! An admission policy that refuses every create of one resource in one namespace, as a quota,
//! EventRateLimit or a tenant's policy would: the day-2 suites use it to make the API server
//! refuse the operator's writes.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::{
    Client,
    api::{Api, DeleteParams, PostParams},
};
use serde_json::json;

/// Refuses creates of `resource` (in API group `group`, "" for the core group) in `ns` with
/// `message`. Policies take effect asynchronously: the caller probes until a create is refused.
/// Returns the name to pass to [`lift`].
pub async fn refuse_creates(
    client: &Client,
    ns: &str,
    groups: &[&str],
    resource: &str,
    message: &str,
) -> String {
    let name = format!("refuse-{resource}-{ns}");
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": { "resourceRules": [{
                "apiGroups": groups, "apiVersions": ["*"],
                "operations": ["CREATE"], "resources": [resource]
            }]},
            "validations": [{ "expression": "false", "message": message }]
        }
    }))
    .unwrap();
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": { "namespaceSelector": { "matchLabels": {
                "kubernetes.io/metadata.name": ns
            }}}
        }
    }))
    .unwrap();
    let pp = PostParams::default();
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .create(&pp, &policy)
        .await
        .unwrap();
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .create(&pp, &binding)
        .await
        .unwrap();
    name
}

/// Removes the policy [`refuse_creates`] made.
pub async fn lift(client: &Client, name: &str) {
    let dp = DeleteParams::default();
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .delete(name, &dp)
        .await
        .unwrap();
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .delete(name, &dp)
        .await
        .unwrap();
}
