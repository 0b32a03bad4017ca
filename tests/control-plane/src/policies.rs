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
const KINDS: [&str; 5] = [
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
];

/// Who records the requester on this cluster, as the chart decides it from discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorder {
    /// A MutatingAdmissionPolicy of this version (`v1`, or `v1beta1` where turned on).
    Policy(String),
    /// The operator's webhook, run here on its own (`--webhook-only`) at this address.
    Webhook(std::net::SocketAddr),
    /// Nobody: an attached cluster without MutatingAdmissionPolicy, whose API server could not
    /// reach a webhook on this machine (and would then refuse every create: `Fail`).
    Nobody,
}

/// Renders the chart at `chart` for the capabilities the cluster has (as `helm install` decides
/// from discovery: a MutatingAdmissionPolicy where one is served, else the operator's requester
/// webhook, which is then started here as its own process, reached by URL) and applies every
/// admission policy, binding and webhook configuration in it, returning their names. The policy
/// that refuses deleting a key set holding keys is left out: tests delete such key sets all the
/// time, and the Helm chart test installs it for real. Returns once the API server applies them
/// (it loads new policies within about a second), so the first key set a test creates is
/// already stamped.
pub async fn install(
    client: &Client,
    kubeconfig: Option<&Path>,
    // The local control plane's directory (the webhook logs there); `None` when attached.
    log_dir: Option<&Path>,
    chart: &Path,
) -> Result<Vec<String>> {
    let recorder = match served_policy_version(client).await? {
        Some(version) => Recorder::Policy(version),
        None if log_dir.is_none() => {
            eprintln!(
                "[control-plane] this cluster serves no MutatingAdmissionPolicy: the requester webhook is left out (it must run in the cluster: install the chart), so requesters read \"unknown\""
            );
            Recorder::Nobody
        }
        None => Recorder::Webhook(
            format!("127.0.0.1:{}", crate::binaries::free_port()?)
                .parse()
                .expect("an address"),
        ),
    };
    let names = apply(client, chart, &recorder).await?;
    if let Recorder::Webhook(address) = &recorder {
        let config = names
            .iter()
            .find_map(|n| n.strip_prefix("MutatingWebhookConfiguration/"))
            .ok_or_else(|| Error::Yaml("the chart rendered no requester webhook".into()))?;
        start_webhook(*address, config, kubeconfig, log_dir)?;
    }
    if names.iter().any(|n| n.ends_with("-protect-requester")) {
        in_effect(client, recorder != Recorder::Nobody).await?;
    }
    Ok(names)
}

/// The cluster's `major.minor.patch`, for `helm template --kube-version`.
async fn server_version(client: &Client) -> Result<String> {
    let info = client
        .apiserver_version()
        .await
        .map_err(kube_err("read the API server version"))?;
    Ok(info
        .git_version
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .to_string())
}

async fn apply(client: &Client, chart: &Path, recorder: &Recorder) -> Result<Vec<String>> {
    let mut args = vec![
        "template".to_string(),
        // Not the release name the Helm chart test installs, so the two never collide.
        RELEASE.into(),
        chart.display().to_string(),
        "--kube-version".into(),
        server_version(client).await?,
        "--set".into(),
        "admissionPolicy.preventDeletingActiveKeySets=false".into(),
    ];
    match recorder {
        Recorder::Policy(version) => {
            args.push("--api-versions".into());
            args.push(format!("{GROUP}/{version}/MutatingAdmissionPolicy"));
        }
        Recorder::Webhook(address) => {
            args.push("--set".into());
            args.push(format!(
                "admissionPolicy.requesterWebhook.url=https://{address}/requester"
            ));
        }
        Recorder::Nobody => {
            args.push("--set".into());
            args.push("admissionPolicy.requesterWebhook.enabled=false".into());
        }
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
        let Some(types) = obj
            .types
            .as_ref()
            .filter(|t| KINDS.contains(&t.kind.as_str()))
        else {
            continue;
        };
        let kind = types.kind.as_str();
        let version = types.api_version.rsplit('/').next().unwrap_or("v1");
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, version, kind));
        let name = obj.metadata.name.clone().unwrap_or_default();
        Api::<DynamicObject>::all_with(client.clone(), &resource)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map_err(kube_err(format!("apply {kind} {name}")))?;
        names.push(format!("{kind}/{name}"));
    }
    Ok(names)
}

/// Starts the operator serving only the requester webhook, as the chart's Deployment would on
/// such a cluster, for as long as this process lives. It keeps the configuration's caBundle and
/// its certificate Secret in kube-system, out of every test's namespace.
fn start_webhook(
    address: std::net::SocketAddr,
    configuration: &str,
    kubeconfig: Option<&Path>,
    log_dir: Option<&Path>,
) -> Result<()> {
    static RUNNING: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());
    // Beside the control plane's own logs (removed with it), else in the temporary directory.
    let log = log_dir
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
        .join(format!(
            "requester-webhook-{}-{}.log",
            std::process::id(),
            address.port()
        ));
    let out = std::fs::File::create(&log).map_err(crate::io("create the webhook log"))?;
    let err = out
        .try_clone()
        .map_err(crate::io("create the webhook log"))?;
    let mut cmd = Command::new(crate::kit::workspace_binary("dataminer-keys-operator"));
    cmd.args([
        "--webhook-only",
        &format!("--requester-webhook={configuration}"),
        &format!("--webhook-address={address}"),
        &format!("--webhook-host={}", address.ip()),
        "--webhook-add-finalizer=true",
        "--leader-election-namespace=kube-system",
        "--lease-name=dmk-kit",
        "--metrics-address=127.0.0.1:0",
        "--log-format=json",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(out)
    .stderr(err);
    if let Some(path) = kubeconfig {
        cmd.env("KUBECONFIG", path);
    }
    let child = crate::process::spawn(cmd).map_err(crate::io("start the requester webhook"))?;
    RUNNING.lock().expect("not poisoned").push(child);
    Ok(())
}

/// Waits until server-side dry runs show the policies at work: a forged requester annotation is
/// refused (the validating policy) and, where mutating policies are served, a new key set comes
/// back stamped with its creator.
async fn in_effect(client: &Client, stamps: bool) -> Result<()> {
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
        let stamped = !stamps
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

/// The newest version of MutatingAdmissionPolicy the cluster serves (`v1` from Kubernetes
/// 1.36; `v1beta1` on 1.34 and 1.35 where turned on), or `None`.
async fn served_policy_version(client: &Client) -> Result<Option<String>> {
    for version in ["v1", "v1beta1"] {
        let Ok(list) = client
            .list_api_group_resources(&format!("{GROUP}/{version}"))
            .await
        else {
            continue;
        };
        if list
            .resources
            .iter()
            .any(|r| r.name == "mutatingadmissionpolicies")
        {
            return Ok(Some(version.to_string()));
        }
    }
    Ok(None)
}
