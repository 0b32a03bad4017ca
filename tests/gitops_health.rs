//! What the GitOps tools see, computed by their own code: kstatus (sigs.k8s.io/cli-utils, what
//! Flux's `wait` and cli-utils read) and the Argo CD health script (docs/argocd-health.lua) in
//! gopher-lua, the Lua runtime Argo CD embeds, with only the libraries Argo CD opens. Both are
//! built from their Go modules by tests/control-plane/build-health.sh. The key sets are brought
//! into each state by the operator on the real API server.

mod common;

use std::process::Command;

use common::{Env, LABEL, apply, is_ready, keyset_where, org_keyset};
use dataminer_keys_operator::api::DataMinerKeySet;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Condition};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// (status, message) each tool reports for `obj`: `kstatus`, or `argocd`.
fn health(mode: &str, obj: &Value) -> (String, String) {
    let bin = dmk_control_plane::built_by("build-health.sh").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/argocd-health.lua");
    let mut cmd = Command::new(bin);
    cmd.arg(mode);
    if mode == "argocd" {
        cmd.arg(script);
    }
    let out = common::run_checked(&mut cmd, Some(obj.to_string().as_bytes()));
    let line = String::from_utf8(out.stdout).unwrap();
    let mut fields = line.trim_end().splitn(3, '\t').skip(1);
    (
        fields.next().unwrap_or_default().to_string(),
        fields.next().unwrap_or_default().to_string(),
    )
}

/// The key set as the API server serves it (what the tools read).
async fn served(keysets: &Api<DataMinerKeySet>, name: &str) -> Value {
    let mut obj = serde_json::to_value(keysets.get(name).await.unwrap()).unwrap();
    obj["apiVersion"] = json!("keys.dataminer.services/v1alpha1");
    obj["kind"] = json!("DataMinerKeySet");
    obj
}

fn true_condition<'a>(ks: &'a DataMinerKeySet, type_: &str) -> Option<&'a Condition> {
    common::condition(ks, type_).filter(|c| c.status == "True")
}

/// Checks what kstatus and Argo CD say of `name` now.
async fn check(e: &Env, name: &str, kstatus: &str, argocd: &str, message: &str) {
    let obj = served(&e.keysets, name).await;
    let (k, km) = health("kstatus", &obj);
    let (a, am) = health("argocd", &obj);
    assert_eq!(
        (k.as_str(), a.as_str()),
        (kstatus, argocd),
        "{name}: kstatus {km:?}, Argo CD {am:?}\n{obj:#}"
    );
    // kstatus carries the condition's message; Argo CD the script's (with the reason).
    assert!(!km.is_empty(), "{name}: kstatus gives no message");
    assert!(am.contains(message), "{name}: Argo CD says {am:?}");
}

/// Refuses every Secret created in `ns`, as a quota or a tenant policy would. Returns once a
/// probe is refused.
async fn refuse_secret_creates(client: &kube::Client, ns: &str) -> String {
    let name = common::refuse::refuse_creates(
        client,
        ns,
        &[""],
        "secrets",
        "no new Secrets here (test quota)",
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    common::eventually(30, "the Secret refusal in force", || {
        let secrets = secrets.clone();
        async move {
            let probe: Secret =
                serde_json::from_value(json!({ "metadata": { "generateName": "probe-" } }))
                    .unwrap();
            let pp = PostParams {
                dry_run: true,
                ..Default::default()
            };
            match secrets.create(&pp, &probe).await {
                Err(kube::Error::Api(s)) if s.message.contains("no new Secrets here") => Some(()),
                _ => None,
            }
        }
    })
    .await;
    name
}

#[tokio::test]
async fn kstatus_and_argocd_read_every_state_the_operator_reports() {
    let mut e = Env::new(common::control_plane().await, "gitops").await;

    // Keys ready: Current, Healthy.
    apply(&e.keysets, &org_keyset("ready")).await.unwrap();
    e.ready("ready").await;
    check(&e, "ready", "Current", "Healthy", "holds primary key").await;

    // A Secret someone else owns: Stalled, so Failed at once (not a wait until time-out).
    let foreign: Secret = serde_json::from_value(json!({
        "metadata": { "name": "conflict-keys" },
        "stringData": { "primaryKey": "someone else's" }
    }))
    .unwrap();
    e.secrets
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    apply(&e.keysets, &org_keyset("conflict")).await.unwrap();
    keyset_where(&e.keysets, "conflict", "Stalled SecretConflict", |k| {
        true_condition(k, "Stalled").is_some_and(|c| c.reason == "SecretConflict")
    })
    .await;
    check(&e, "conflict", "Failed", "Degraded", "SecretConflict").await;

    // A key edited by hand: Stalled until someone regenerates or adopts.
    apply(&e.keysets, &org_keyset("drift")).await.unwrap();
    e.ready("drift").await;
    e.ledger.record(&e.secrets.get("drift-keys").await.unwrap());
    e.ledger.record_value("edited-by-hand-0123456789abcdef");
    let patch = json!({ "stringData": { "primaryKey": "edited-by-hand-0123456789abcdef" } });
    e.secrets
        .patch("drift-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    keyset_where(&e.keysets, "drift", "Stalled SecretDrift", |k| {
        true_condition(k, "Stalled").is_some_and(|c| c.reason == "SecretDrift")
    })
    .await;
    check(&e, "drift", "Failed", "Degraded", "SecretDrift").await;

    // Revoked: the desired state, so Current and Healthy; `kubectl wait --for=condition=Ready`
    // returns.
    apply(&e.keysets, &org_keyset("revoked")).await.unwrap();
    e.ready("revoked").await;
    let mut revoke = org_keyset("revoked");
    revoke["spec"]["revoke"] = json!({ "confirmLabel": LABEL });
    apply(&e.keysets, &revoke).await.unwrap();
    let ks = keyset_where(&e.keysets, "revoked", "Revoked=True", |k| {
        true_condition(k, "Revoked").is_some()
    })
    .await;
    assert!(is_ready(&ks), "Ready, reason Revoked: {:?}", ks.status);
    check(&e, "revoked", "Current", "Healthy", "Revoked").await;
    // The real kubectl agrees: `kubectl wait --for=condition=Ready` returns for a revoked set.
    if let Some(kubeconfig) = common::control_plane().await.kubeconfig_path() {
        let kubectl = dmk_control_plane::binaries().unwrap().join("kubectl");
        let mut wait = Command::new(kubectl);
        wait.args([
            "wait",
            "--for=condition=Ready",
            "dmks/revoked",
            "--timeout=20s",
        ])
        .args(["-n", &e.ns])
        .env("KUBECONFIG", kubeconfig);
        common::run_checked(&mut wait, None);
        // `kubectl get` says why a revoked set is Ready: the Reason column.
        let out = Command::new(dmk_control_plane::binaries().unwrap().join("kubectl"))
            .args(["get", "dmks", "revoked", "-n", &e.ns])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        let (header, row) = table.split_once('\n').unwrap();
        let column = header.find("REASON").expect("a REASON column");
        assert!(row[column..].starts_with("Revoked"), "{table}");
    }

    // A spec the operator has not seen yet (it is stopped): in progress for both.
    e.operator.stop();
    let mut newer = org_keyset("ready");
    newer["spec"]["regenerate"] = json!({ "primary": { "revision": 2, "confirmLabel": LABEL } });
    apply(&e.keysets, &newer).await.unwrap();
    check(&e, "ready", "InProgress", "Progressing", "").await;
    // The same key set while the operator works on it (the condition it writes when a request
    // waits for the next reconcile): in progress, not failed.
    let mut working = served(&e.keysets, "ready").await;
    working["status"]["observedGeneration"] = working["metadata"]["generation"].clone();
    working["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "type": "Reconciling", "status": "True", "reason": "RequestPending",
            "message": "spec.regenerate.primary revision 2 is not carried out yet",
            "lastTransitionTime": "2026-12-01T00:00:00Z"
        }));
    assert_eq!(health("kstatus", &working).0, "InProgress");
    assert_eq!(health("argocd", &working).0, "Progressing");
    e.operator.restart();

    // A write the API server keeps refusing: Stalled after the retry.
    let refusal = refuse_secret_creates(&e.client, &e.ns).await;
    apply(&e.keysets, &org_keyset("refused")).await.unwrap();
    keyset_where(&e.keysets, "refused", "Stalled SecretWriteFailed", |k| {
        true_condition(k, "Stalled").is_some_and(|c| c.reason == "SecretWriteFailed")
    })
    .await;
    check(&e, "refused", "Failed", "Degraded", "no new Secrets here").await;
    common::refuse::lift(&e.client, &refusal).await;
    e.finish().await;
}

/// Objects no operator wrote: a key set without status, and the health codes of a script that
/// must stay valid for Argo CD.
#[test]
fn before_the_operator_answers() {
    let bare = json!({
        "apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
        "metadata": { "name": "new", "generation": 1 }, "spec": {}
    });
    // kstatus cannot tell a resource no controller has seen from a settled one (docs/flux.md).
    assert_eq!(health("kstatus", &bare).0, "Current");
    assert_eq!(
        health("argocd", &bare),
        ("Progressing".into(), "Waiting for the operator".into())
    );
}
