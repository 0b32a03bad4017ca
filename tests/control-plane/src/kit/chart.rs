//! The Helm chart's permissions, for tests that run the operator with exactly them: render the
//! chart's Roles for a namespace, apply them (optionally minus one rule), and start the operator
//! impersonating the chart's ServiceAccount.

use crate::ControlPlane;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde::Deserialize;

use super::operator::Operator;

pub const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../charts/dataminer-keys-operator"
);

/// With `DMK_TEST_AS_CHART=1`, every `Env` runs its operator with only the chart's permissions.
pub fn as_chart() -> bool {
    std::env::var_os("DMK_TEST_AS_CHART").is_some_and(|v| v == "1")
}

/// The objects `helm template` renders for `release` in `ns` (for the control plane's Kubernetes
/// release), with `args`.
pub fn render(release: &str, ns: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut helm = std::process::Command::new(crate::binaries().unwrap().join("helm"));
    helm.args(["template", release, CHART, "-n", ns])
        .args(crate::helm_capabilities())
        .args(args);
    let text = String::from_utf8(super::run_checked(&mut helm, None).stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| serde_json::Value::deserialize(doc).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// The Roles and RoleBindings the chart renders for `release` watching only `ns`.
pub fn rendered_roles(release: &str, ns: &str) -> Vec<serde_json::Value> {
    let watch = format!("watchNamespaces={{{ns}}}");
    // The requester webhook's rules are for the webhook, which these operators do not serve
    // (tests/requester.rs runs it as the chart's ServiceAccount).
    let no_webhook = "admissionPolicy.requesterWebhook.enabled=false";
    render(release, ns, &["--set", &watch, "--set", no_webhook])
        .into_iter()
        .filter(|v| v["kind"] == "Role" || v["kind"] == "RoleBinding")
        .collect()
}

/// Applies the chart's Roles and RoleBindings in `ns`, leaving out the rule at index `drop`
/// (counted across the Roles in rendering order).
pub async fn grant(cp: &ControlPlane, release: &str, ns: &str, drop: Option<usize>) {
    let admin = cp.client().await.unwrap();
    let pp = PatchParams::apply("test").force();
    let mut index = 0;
    for mut doc in rendered_roles(release, ns) {
        if doc["kind"] == "Role" {
            let rules = doc["rules"].as_array_mut().unwrap();
            let count = rules.len();
            if let Some(d) = drop.filter(|d| (index..index + count).contains(d)) {
                rules.remove(d - index);
            }
            index += count;
            let role: Role = serde_json::from_value(doc).unwrap();
            let name = role.metadata.name.clone().unwrap();
            Api::<Role>::namespaced(admin.clone(), ns)
                .patch(&name, &pp, &Patch::Apply(&role))
                .await
                .unwrap();
        } else {
            let binding: RoleBinding = serde_json::from_value(doc).unwrap();
            let name = binding.metadata.name.clone().unwrap();
            Api::<RoleBinding>::namespaced(admin.clone(), ns)
                .patch(&name, &pp, &Patch::Apply(&binding))
                .await
                .unwrap();
        }
    }
}

/// The operator for `ns`, acting as the chart's ServiceAccount of `release` (installed in `ns`).
pub fn operator(cp: &ControlPlane, release: &str, ns: &str) -> Operator {
    let fullname = format!("{release}-dataminer-keys-operator");
    let sa = format!("system:serviceaccount:{ns}:{fullname}");
    let groups = format!("system:serviceaccounts,system:serviceaccounts:{ns},system:authenticated");
    let lease = format!("--lease-name={fullname}");
    Operator::start_with_env(
        cp,
        ns,
        &[&lease],
        &[
            ("KUBE_RS_DEBUG_IMPERSONATE_USER", &sa),
            ("KUBE_RS_DEBUG_IMPERSONATE_GROUP", &groups),
        ],
    )
}
