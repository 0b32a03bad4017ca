//! The requester webhook (what records who asked where no MutatingAdmissionPolicy is served),
//! on the real API server of every release `make matrix` runs, installed from the chart as it
//! renders for Kubernetes 1.34 and run as the chart's ServiceAccount with only the chart's rules:
//! - it stamps who asked, adds the finalizer, and the chart's validating policy still refuses a
//!   forged name;
//! - it keeps the configuration's caBundle and rotates its own CA and certificate, and requests
//!   made through the rotations are all answered;
//! - while nothing answers, exactly the requests that record something are refused (the failure
//!   policy in docs/audit.md), and re-applies, label edits and status writes go through.

mod common;

use common::org_keyset;
use dataminer_keys_operator::api::{
    CREATED_BY_ANNOTATION, DataMinerKeySet, FINALIZER, PRIMARY_REQUESTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION,
};
use dmk_control_plane::{ControlPlane, Options};
use k8s_openapi::api::{admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Secret};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
};
use serde_json::json;
use std::time::{Duration, Instant};

const RELEASE: &str = "wh";
const CONFIG: &str = "wh-dataminer-keys-operator-record-requester";
const TLS_SECRET: &str = "wh-dataminer-keys-operator-webhook-tls";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// A control plane of its own with the CRD, the chart's webhook configuration, validating
/// requester policy and webhook RBAC as rendered for 1.34, and users allowed to manage key sets.
async fn set_up() -> (ControlPlane, Client, String, u16) {
    let cp = ControlPlane::start(&Options {
        crd_dir: Some(common::crd_dir()),
        ..Default::default()
    })
    .await
    .unwrap();
    let admin = cp.client().await.unwrap();
    let ns = cp.namespace("webhook").await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("admissionPolicy.requesterWebhook.url=https://127.0.0.1:{port}/requester");
    let mut helm = std::process::Command::new(dmk_control_plane::binaries().unwrap().join("helm"));
    helm.args(["template", RELEASE, common::chart::CHART, "-n", &ns])
        .args(["--kube-version", "1.34.4", "--set", &url]);
    let text = String::from_utf8(common::run_checked(&mut helm, None).stdout).unwrap();
    let pp = PatchParams::apply("test").force();
    let wanted = [
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    ];
    let mut applied = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let Ok(obj) = <DynamicObject as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        let Some(types) = obj.types.clone() else {
            continue;
        };
        let name = obj.metadata.name.clone().unwrap_or_default();
        // The webhook's own objects, its validating policy, and the key set rules the operator
        // needs to start (it lists key sets before serving anything).
        let ours = name.ends_with("-webhook")
            || name.ends_with("-record-requester")
            || name.ends_with("-protect-requester")
            || name == format!("{RELEASE}-dataminer-keys-operator");
        if !wanted.contains(&types.kind.as_str()) || !ours {
            continue;
        }
        let (group, version) = types
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &types.api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &types.kind));
        let api = match obj.metadata.namespace.as_deref() {
            Some(n) => Api::<DynamicObject>::namespaced_with(admin.clone(), n, &resource),
            None if types.kind.starts_with("Cluster")
                || types.kind.contains("Admission")
                || types.kind.contains("Webhook") =>
            {
                Api::all_with(admin.clone(), &resource)
            }
            None => Api::namespaced_with(admin.clone(), &ns, &resource),
        };
        api.patch(&name, &pp, &Patch::Apply(&obj)).await.unwrap();
        applied.push(format!("{}/{name}", types.kind));
    }
    assert!(
        applied.contains(&format!("MutatingWebhookConfiguration/{CONFIG}"))
            && applied.iter().filter(|a| a.ends_with("-webhook")).count() == 4,
        "{applied:?}"
    );
    // The users' rights, as the chart's admin role gives them.
    let subjects: Vec<_> = [ALICE, BOB]
        .map(|u| json!({ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u }))
        .to_vec();
    let rbac = json!([
        { "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
          "metadata": { "name": "keyset-admins", "namespace": ns },
          "rules": [{ "apiGroups": ["keys.dataminer.services"], "resources": ["dataminerkeysets"],
                      "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"] }] },
        { "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
          "metadata": { "name": "keyset-admins", "namespace": ns },
          "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "keyset-admins" },
          "subjects": subjects }
    ]);
    for obj in rbac.as_array().unwrap() {
        let obj: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
        let kind = obj.types.as_ref().unwrap().kind.clone();
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "rbac.authorization.k8s.io",
            "v1",
            &kind,
        ));
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &resource)
            .patch("keyset-admins", &pp, &Patch::Apply(&obj))
            .await
            .unwrap();
    }
    (cp, admin, ns, port)
}

/// The webhook alone, as the chart's ServiceAccount, with a certificate lifetime of `lifetime`.
fn webhook(
    cp: &ControlPlane,
    ns: &str,
    port: u16,
    lifetime: Option<u64>,
) -> common::operator::Operator {
    let fullname = format!("{RELEASE}-dataminer-keys-operator");
    let sa = format!("system:serviceaccount:{ns}:{fullname}");
    let groups = format!("system:serviceaccounts,system:serviceaccounts:{ns},system:authenticated");
    let mut env = vec![
        ("KUBE_RS_DEBUG_IMPERSONATE_USER", sa.as_str()),
        ("KUBE_RS_DEBUG_IMPERSONATE_GROUP", groups.as_str()),
    ];
    let seconds = lifetime.map(|s| s.to_string());
    if let Some(s) = &seconds {
        env.push(("DMK_TEST_WEBHOOK_CERTIFICATE_SECONDS", s));
    }
    let args = [
        "--webhook-only".to_string(),
        format!("--requester-webhook={CONFIG}"),
        format!("--webhook-address=127.0.0.1:{port}"),
        "--webhook-host=127.0.0.1".to_string(),
        format!("--webhook-secret={TLS_SECRET}"),
        "--webhook-add-finalizer=true".to_string(),
        format!("--lease-name={fullname}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::operator::Operator::start_with_env(cp, ns, &args, &env)
}

fn keysets(client: &Client, ns: &str) -> Api<DataMinerKeySet> {
    Api::namespaced(client.clone(), ns)
}

fn annotation<'a>(ks: &'a DataMinerKeySet, key: &str) -> Option<&'a str> {
    ks.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

async fn create(client: &Client, ns: &str, name: &str) -> kube::Result<DataMinerKeySet> {
    let ks: DataMinerKeySet = serde_json::from_value(org_keyset(name)).unwrap();
    keysets(client, ns)
        .create(&PostParams::default(), &ks)
        .await
}

/// Retries `request` until the webhook answers it (it starts, issues its certificate and puts
/// its CA into the configuration first), for up to 60 s; fails with the last error and the
/// webhook's log.
async fn answered<F, Fut>(webhook: &common::operator::Operator, mut request: F) -> DataMinerKeySet
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<DataMinerKeySet>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match request().await {
            Ok(ks) => return ks,
            Err(e) if Instant::now() > deadline => {
                panic!(
                    "the webhook did not answer within 60 s: {e}\n{}",
                    webhook.logs()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The serving certificate the webhook's Secret holds now.
async fn serving_cert(admin: &Client, ns: &str) -> Option<Vec<u8>> {
    let secret = Api::<Secret>::namespaced(admin.clone(), ns)
        .get_opt(TLS_SECRET)
        .await
        .unwrap()?;
    Some(secret.data?.get("tls.crt")?.0.clone())
}

#[tokio::test]
async fn the_webhook_stamps_who_asked_and_rotates_its_certificate_unnoticed() {
    let (cp, admin, ns, port) = set_up().await;
    let alice = cp
        .client_as(ALICE, &["system:authenticated"])
        .await
        .unwrap();
    let bob = cp.client_as(BOB, &["system:authenticated"]).await.unwrap();
    // Rotations every ~20 s: a third of 30 s before the end.
    let _webhook = webhook(&cp, &ns, port, Some(30));

    // Ready once the API server trusts it: the caBundle is in and a create goes through.
    let first = answered(&_webhook, || create(&alice, &ns, "first")).await;
    assert_eq!(annotation(&first, CREATED_BY_ANNOTATION), Some(ALICE));
    assert!(
        first
            .metadata
            .finalizers
            .as_deref()
            .unwrap_or_default()
            .contains(&FINALIZER.to_string()),
        "the finalizer is added at admission: {:?}",
        first.metadata.finalizers
    );

    // A rotation request names its user; a forged name is refused by the validating policy.
    let regen = json!({ "spec": { "regenerate": { "primary": { "revision": 1, "confirmLabel": common::LABEL } } } });
    let raised = keysets(&bob, &ns)
        .patch("first", &PatchParams::default(), &Patch::Merge(&regen))
        .await
        .unwrap();
    assert_eq!(
        annotation(&raised, PRIMARY_REQUESTED_BY_ANNOTATION),
        Some(format!("{BOB} (revision 1)").as_str())
    );
    // (The API server loads a new validating policy within moments: dry runs until it does.)
    let forged = json!({ "metadata": { "annotations": { REVOKED_BY_ANNOTATION: ALICE } } });
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let dry = PatchParams {
            dry_run: true,
            ..Default::default()
        };
        match keysets(&bob, &ns)
            .patch("first", &dry, &Patch::Merge(&forged))
            .await
        {
            Err(e) => break e,
            Ok(_) if Instant::now() > deadline => panic!("a forged name was accepted for 30 s"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403 && s.message.contains("revoked-by")),
        "{refused}"
    );

    // Through three certificates, every request is answered and stamped.
    let mut seen = vec![serving_cert(&admin, &ns).await.unwrap()];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 0;
    while seen.len() < 3 {
        assert!(Instant::now() < deadline, "fewer than 2 rotations in 120 s");
        n += 1;
        let ks = create(&alice, &ns, &format!("through-{n}"))
            .await
            .unwrap_or_else(|e| panic!("request {n} during rotations: {e}"));
        assert_eq!(annotation(&ks, CREATED_BY_ANNOTATION), Some(ALICE));
        let now = serving_cert(&admin, &ns).await.unwrap();
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The configuration trusts the current CA and the previous ones still valid.
    let config = Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .get(CONFIG)
        .await
        .unwrap();
    let bundle = config.webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    let cas = String::from_utf8(bundle.0)
        .unwrap()
        .matches("BEGIN CERTIFICATE")
        .count();
    assert!(
        cas >= 2,
        "the old CA stays trusted while it is valid: {cas}"
    );
    println!(
        "{n} requests through {} certificates, {cas} CAs trusted",
        seen.len()
    );
}

#[tokio::test]
async fn without_a_webhook_only_requests_that_record_something_are_refused() {
    let (cp, admin, ns, port) = set_up().await;
    let alice = cp
        .client_as(ALICE, &["system:authenticated"])
        .await
        .unwrap();
    let mut webhook = webhook(&cp, &ns, port, None);
    answered(&webhook, || create(&alice, &ns, "kept")).await;
    webhook.stop();

    // A create, a raised revision and a revoke need their requester: refused, saying why.
    let refused = create(&alice, &ns, "while-down").await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 500 && s.message.contains("record-requester.keys.dataminer.services")),
        "{refused}"
    );
    let api = keysets(&alice, &ns);
    let regen = json!({ "spec": { "regenerate": { "secondary": { "revision": 1, "confirmLabel": common::LABEL } } } });
    assert!(
        api.patch("kept", &PatchParams::default(), &Patch::Merge(&regen))
            .await
            .is_err()
    );
    // What records nothing goes through: a re-apply, a label edit, a status write.
    let same: DataMinerKeySet = serde_json::from_value(org_keyset("kept")).unwrap();
    api.patch("kept", &PatchParams::apply("gitops"), &Patch::Apply(&same))
        .await
        .unwrap();
    let label = json!({ "metadata": { "labels": { "team": "a" } } });
    api.patch("kept", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let status = json!({ "status": { "observedGeneration": 1 } });
    keysets(&admin, &ns)
        .patch_status("kept", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let kept = api.get("kept").await.unwrap();
    assert_eq!(annotation(&kept, CREATED_BY_ANNOTATION), Some(ALICE));

    // Back up: the refused request now goes through, stamped.
    webhook.restart();
    let back = answered(&webhook, || create(&alice, &ns, "while-down")).await;
    assert_eq!(annotation(&back, CREATED_BY_ANNOTATION), Some(ALICE));

    // A hand edit that breaks the CA bundle: the webhook starts again from a new CA instead of
    // copying garbage into the configuration, and keeps answering.
    let before = serving_cert(&admin, &ns).await.unwrap();
    let broken = json!({ "data": { "ca.crt": "bm90IGEgY2VydGlmaWNhdGU=" } });
    Api::<Secret>::namespaced(admin.clone(), &ns)
        .patch(TLS_SECRET, &PatchParams::default(), &Patch::Merge(&broken))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while serving_cert(&admin, &ns).await.as_ref() == Some(&before) {
        assert!(
            Instant::now() < deadline,
            "no new certificate after the broken bundle"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = answered(&webhook, || create(&alice, &ns, "after-edit")).await;
    assert_eq!(annotation(&after, CREATED_BY_ANNOTATION), Some(ALICE));
}
