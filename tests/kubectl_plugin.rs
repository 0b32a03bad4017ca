//! `kubectl dmkeys` against the real API server with the operator running: every command's
//! happy path and its errors, the viewer refused the key, `copy` never printing it, and the
//! interactive confirmation typed into a real pseudo-terminal (util-linux `script`).

mod common;

use common::{
    Env, LABEL,
    plugin::{Plugin, binary as plugin_binary, decode},
    revisions,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

fn keys(secret: &Secret) -> (String, String) {
    common::key_values(secret)
}

#[tokio::test]
async fn the_admin_workflows_from_the_terminal() {
    let cp = common::control_plane().await;
    let mut e = Env::new(cp, "plugin").await;
    let p = Plugin::new(&e, cp.kubeconfig_path().map(PathBuf::from));

    // create --dry-run prints the manifest and creates nothing.
    let (code, out, _) = p.run(&[
        "create",
        "ks",
        "--label",
        LABEL,
        "--organization",
        "skyline-demo",
        "--permission",
        "RegisterCatalogItems",
        "--dry-run",
        "-o",
        "yaml",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("kind: DataMinerKeySet") && out.contains("RegisterCatalogItems"),
        "{out}"
    );
    assert!(e.keysets.get_opt("ks").await.unwrap().is_none());

    // create waits for the keys and prints the fingerprints.
    let (code, out, err) = p.run(&[
        "create",
        "ks",
        "--label",
        LABEL,
        "--organization",
        "skyline-demo",
        "--permission",
        "RegisterCatalogItems",
        "--permission",
        "AddDataMinerNodes",
    ]);
    assert_eq!(code, 0, "{err}");
    let ks = e.keysets.get("ks").await.unwrap();
    let status = ks.status.clone().unwrap();
    assert!(
        out.contains(&status.primary.clone().unwrap().fingerprint),
        "{out}"
    );
    let (primary, secondary) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // Completion as kubectl does it: `kubectl __complete dmkeys ...` runs the
    // kubectl_complete-dmkeys script the README tells users to install, which asks the plugin.
    if let Some(kubeconfig) = cp.kubeconfig_path() {
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(plugin_binary(), bin.path().join("kubectl-dmkeys")).unwrap();
        std::os::unix::fs::symlink(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/plugin/kubectl_complete-dmkeys"),
            bin.path().join("kubectl_complete-dmkeys"),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap()
        );
        let kubectl = dmk_control_plane::binaries().unwrap().join("kubectl");
        let complete = |words: &[&str]| {
            let out = Command::new(&kubectl)
                .args(["__complete", "dmkeys"])
                .args(p.args(words))
                .env("PATH", &path)
                .env("KUBECONFIG", kubeconfig)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let names = complete(&["describe", ""]);
        assert!(names.starts_with("ks\n:4"), "{names}");
        assert!(complete(&["regenerate", "ks", "s"]).starts_with("secondary\n:4"));
        assert!(complete(&["rev"]).starts_with("revoke\n:4"));
    }

    // list, -o json, filters.
    let (code, out, _) = p.run(&["list"]);
    assert_eq!(code, 0);
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    assert!(
        out.contains("ks")
            && out.contains(LABEL)
            && out.contains("RegisterCatalogItems,AddDataMinerNodes"),
        "{out}"
    );
    // -o as kubectl prints it: a List of typed objects, one typed object, names.
    let (_, out, _) = p.run(&["list", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&list["apiVersion"], &list["kind"]),
        (&json!("v1"), &json!("List"))
    );
    assert_eq!(list["items"][0]["metadata"]["name"], "ks");
    assert_eq!(list["items"][0]["kind"], "DataMinerKeySet");
    let (_, out, _) = p.run(&["list", "-o", "yaml"]);
    let list: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(list["kind"], "List");
    let (_, out, _) = p.run(&["list", "-o", "name"]);
    assert_eq!(out, "dataminerkeyset.keys.dataminer.services/ks\n");
    let (code, out, _) = p.run(&["describe", "ks", "-o", "json"]);
    assert_eq!(code, 0);
    let one: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&one["apiVersion"], &one["kind"], &one["metadata"]["name"]),
        (
            &json!("keys.dataminer.services/v1alpha1"),
            &json!("DataMinerKeySet"),
            &json!("ks")
        )
    );
    // kubectl's config flags: --as (and --as-group) impersonate, --request-timeout bounds a
    // request; durations read as kubectl writes them.
    let (code, _, err) = p.run(&[
        "--as",
        "nobody@example.com",
        "--request-timeout",
        "20s",
        "list",
    ]);
    assert_eq!(code, 6, "impersonating a user without rights: {err}");
    assert!(err.contains("nobody@example.com"), "{err}");
    let (code, _, err) = p.run(&["regenerate", "ks", "primary", "--timeout", "soon"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("use for example 90s, 2m or 1h30m"), "{err}");
    let (_, out, err) = p.run(&["list", "--organization", "someone-else"]);
    assert!(
        !out.contains(LABEL) && err.contains("No key sets"),
        "{out}{err}"
    );

    // describe: revisions, fingerprints, history and Events, never a key.
    let (code, out, _) = p.run(&["describe", "ks"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("revision 1") && out.contains("KeysCreated"),
        "{out}"
    );
    assert!(!out.contains(&primary) && !out.contains(&secondary));

    // show prints exactly the key; copy never does.
    let (code, out, _) = p.run(&["show", "ks", "secondary"]);
    assert_eq!((code, out.trim()), (0, secondary.as_str()));
    // Tracing on (every level): the API calls show, the key does not, raw or as the API sends it.
    let traced = Command::new(plugin_binary())
        .args(p.args(&["show", "ks", "secondary"]))
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = decode(traced);
    assert_eq!((code, out.trim()), (0, secondary.as_str()));
    assert!(
        err.contains("secret") && err.contains("name=\"ks-keys\""),
        "{err}"
    );
    for leak in [
        secondary.clone(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &secondary),
    ] {
        assert!(!err.contains(&leak), "the key is in the trace output");
    }
    let (code, text) = p.run_in_pty(&["copy", "ks"], "");
    assert_eq!(code, 0, "{text}");
    // No clipboard tool here: it says what it did (an OSC 52 request), not that it worked.
    assert!(
        text.contains("Sent the primary key of ks") && text.contains("Many terminals ignore it"),
        "{text}"
    );
    assert!(!text.contains(&primary), "copy printed the key");
    assert!(
        text.contains(&render_osc52(&primary)),
        "the key went to the clipboard by OSC 52"
    );

    // regenerate: a mismatched label changes nothing and says so; the right one rotates.
    let generation = ks.metadata.generation;
    let (code, _, err) = p.run(&[
        "regenerate",
        "ks",
        "primary",
        "--confirm-label",
        "GitHub catalog",
    ]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        e.keysets.get("ks").await.unwrap().metadata.generation,
        generation
    );
    let (code, out, err) = p.run(&["regenerate", "ks", "primary", "--confirm-label", LABEL]);
    assert_eq!(code, 0, "{err}");
    let secret = e.secrets.get("ks-keys").await.unwrap();
    let (p2, s2) = e.ledger.record(&secret);
    assert!(p2 != primary && s2 == secondary);
    assert!(
        out.contains("revision 2")
            && out.contains(&dataminer_keys_operator::keys::fingerprint(p2.as_bytes())),
        "{out}"
    );

    // Interactive: the wrong label typed at the prompt aborts, the right one proceeds.
    let (code, text) = p.run_in_pty(&["regenerate", "ks", "secondary"], "not the label\n");
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("Type the key set's label"), "{text}");
    assert_eq!(keys(&e.secrets.get("ks-keys").await.unwrap()).1, secondary);
    let (code, text) = p.run_in_pty(&["regenerate", "ks", "secondary"], &format!("{LABEL}\n"));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Regenerated the secondary key of ks: revision 2"),
        "{text}"
    );
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // Without a terminal and without --confirm-label, nothing happens.
    let (code, _, err) = p.run(&["revoke", "ks"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--confirm-label"));

    // Errors that name the problem.
    let (code, _, err) = p.run(&["describe", "nope"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("key set nope not found"), "{err}");

    // The viewer (key sets only, no Secrets) is told who they are and what they lack.
    if let Some(kubeconfig) = cp.kubeconfig_path() {
        let admin = cp.client().await.unwrap();
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "viewer"},
            "rules": [{"apiGroups": ["keys.dataminer.services"], "resources": ["dataminerkeysets"], "verbs": ["get", "list"]}]});
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "viewer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer@example.com"}]});
        let pp = PatchParams::apply("test").force();
        Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(admin.clone(), &e.ns)
            .patch("viewer", &pp, &Patch::Apply(&role))
            .await
            .unwrap();
        Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), &e.ns)
            .patch("viewer", &pp, &Patch::Apply(&binding))
            .await
            .unwrap();
        let mut as_viewer: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
        as_viewer["users"][0]["user"]["as"] = "viewer@example.com".into();
        as_viewer["users"][0]["user"]["as-groups"] =
            serde_yaml::to_value(["system:authenticated"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("viewer");
        std::fs::write(&path, serde_yaml::to_string(&as_viewer).unwrap()).unwrap();
        let viewer = Plugin::new(&e, Some(path));
        let (code, out, _) = viewer.run(&["list"]);
        assert_eq!(code, 0);
        assert!(out.contains(LABEL));
        let (code, out, err) = viewer.run(&["show", "ks"]);
        assert_eq!(code, 6, "{out}{err}");
        assert!(
            err.contains("you (viewer@example.com) may not read Secret ks-keys"),
            "{err}"
        );
        assert!(out.is_empty());
    }

    // revoke with --confirm-label waits for the operator.
    let (code, out, err) = p.run(&["revoke", "ks", "--confirm-label", LABEL]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Revoked ks"), "{out}");
    assert!(e.secrets.get_opt("ks-keys").await.unwrap().is_none());
    e.finish().await;
}

#[tokio::test]
async fn a_silent_operator_is_a_timeout() {
    // A namespace with no operator: the request is written, nobody answers.
    let cp = common::control_plane().await;
    let ns = cp.namespace("plugin-timeout").await.unwrap();
    let keysets: Api<dataminer_keys_operator::api::DataMinerKeySet> =
        Api::namespaced(cp.client().await.unwrap(), &ns);
    let mut manifest = common::org_keyset("ks");
    manifest["status"] = json!(null);
    common::apply(&keysets, &manifest).await.unwrap();
    // Give it a status as if keys existed, so that regenerate has something to raise.
    let status = json!({"apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
        "status": {"primary": {"revision": 1, "generatedAt": "2026-11-26T10:00:00Z", "fingerprint": "sha256:00000000"}}});
    keysets
        .patch_status(
            "ks",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    let mut args: Vec<String> = vec![];
    if let Some(k) = cp.kubeconfig_path() {
        args.push(format!("--kubeconfig={}", k.display()));
    }
    args.extend([
        format!("-n={ns}"),
        "regenerate".into(),
        "ks".into(),
        "primary".into(),
        format!("--confirm-label={LABEL}"),
        "--timeout=2".into(),
    ]);
    let out = Command::new(plugin_binary())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (code, _, err) = decode(out);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("did not report the result within 2s"), "{err}");
}

fn render_osc52(value: &str) -> String {
    dataminer_keys_operator::plugin::render::osc52(value)
}

#[tokio::test]
async fn a_request_owned_by_gitops_is_not_overridden() {
    let cp = common::control_plane().await;
    let mut e = Env::new(cp, "plugin-gitops").await;
    // Argo CD (server-side apply) owns the manifest, including spec.regenerate.primary.
    let mut manifest = common::org_keyset("ks");
    manifest["spec"]["regenerate"] = json!({"primary": {"revision": 1, "confirmLabel": LABEL}});
    e.keysets
        .patch(
            "ks",
            &PatchParams::apply("argocd-controller").force(),
            &Patch::Apply(&manifest),
        )
        .await
        .unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let p = Plugin::new(&e, cp.kubeconfig_path().map(PathBuf::from));
    let (code, _, err) = p.run(&["regenerate", "ks", "primary", "--confirm-label", LABEL]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("field manager \"argocd-controller\"")
            && err.contains(
                "set spec.regenerate.primary.revision to 2 in Git and let Argo CD sync it"
            ),
        "{err}"
    );
    assert!(
        !err.contains("--force-conflicts"),
        "no take-over for GitOps: {err}"
    );
    assert_eq!(
        common::revisions(&e.keysets.get("ks").await.unwrap()),
        (1, 1)
    );
    // The field Argo CD does not own is free: the secondary rotates.
    let (code, _, err) = p.run(&["regenerate", "ks", "secondary", "--confirm-label", LABEL]);
    assert_eq!(code, 0, "{err}");
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.finish().await;
}

// `show` and `copy` print only a key the operator recorded, from the Secret it created.
#[tokio::test]
async fn show_and_copy_refuse_a_key_the_operator_did_not_record() {
    let cp = common::control_plane().await;
    let mut e = Env::new(cp, "plugin-untrusted").await;
    let p = Plugin::new(&e, cp.kubeconfig_path().map(PathBuf::from));
    common::apply(&e.keysets, &common::org_keyset("ks"))
        .await
        .unwrap();
    e.ready("ks").await;
    let (_, secondary) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // A drifted value.
    let planted = "0000000000000000000000000000beef";
    e.ledger.record_value(planted);
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(planted);
    let patch = json!({ "data": { "primaryKey": encoded } });
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let (code, out, err) = p.run(&["show", "ks", "primary"]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(!out.contains(planted) && !err.contains(planted));
    // Refused by the fingerprint check, or by the operator's SecretDrift if it was faster.
    assert!(
        err.contains("does not match the fingerprint") || err.contains("drifted (SecretDrift)"),
        "{err}"
    );
    let (code, text) = p.run_in_pty(&["copy", "ks", "primary"], "");
    assert_eq!(code, 8, "{text}");
    assert!(!text.contains(planted));
    // The other slot is still the recorded one.
    let (code, out, err) = p.run(&["show", "ks", "secondary"]);
    assert_eq!((code, out.trim()), (0, secondary.as_str()), "{err}");

    // A Secret of that name that the operator did not create (same keys, other uid).
    e.operator.kill();
    let mut copy = e.secrets.get("ks-keys").await.unwrap();
    copy.metadata = kube::api::ObjectMeta {
        name: Some("ks-keys".into()),
        owner_references: copy.metadata.owner_references.clone(),
        ..Default::default()
    };
    e.secrets
        .delete("ks-keys", &Default::default())
        .await
        .unwrap();
    e.secrets.create(&Default::default(), &copy).await.unwrap();
    let (code, out, err) = p.run(&["show", "ks", "secondary"]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(!out.contains(&secondary));
    assert!(err.contains("not the Secret the operator created"), "{err}");

    // A revoked set has no keys, whatever a Secret of that name holds.
    e.secrets
        .delete("ks-keys", &Default::default())
        .await
        .unwrap();
    e.operator.restart();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let (code, _, err) = p.run(&["revoke", "ks", "--confirm-label", LABEL]);
    assert_eq!(code, 0, "{err}");
    let hand_made: Secret = serde_json::from_value(json!({
        "metadata": { "name": "ks-keys" },
        "stringData": { "primaryKey": "hand-made-not-a-key" }
    }))
    .unwrap();
    e.ledger.record_value("hand-made-not-a-key");
    e.secrets
        .create(&Default::default(), &hand_made)
        .await
        .unwrap();
    let (code, out, err) = p.run(&["show", "ks"]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(err.contains("revoked"), "{err}");
    assert!(!out.contains("hand-made"));
    e.finish().await;
}

// Issue 21, item 8: `show` and `copy` believe the operator over the fingerprint (a value whose
// proof was removed keeps its fingerprint), refuse a set being revoked, and `describe` shows
// only the Events the operator reported.
#[tokio::test]
async fn the_plugin_trusts_the_operator_not_what_anyone_can_write() {
    let cp = common::control_plane().await;
    let mut e = Env::new(cp, "plugin-trust").await;
    let p = Plugin::new(&e, cp.kubeconfig_path().map(PathBuf::from));
    common::apply(&e.keysets, &common::org_keyset("ks"))
        .await
        .unwrap();
    let ks = e.ready("ks").await;
    let (primary, secondary) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // The primary's proof removed: same value, same fingerprint, but the operator cannot vouch
    // for it any more and reports SecretDrift.
    let patch = json!({ "metadata": { "annotations": {
        "keys.dataminer.services/primary-proof": null
    }}});
    e.secrets
        .patch("ks-keys", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    common::keyset_where(&e.keysets, "ks", "SecretDrift", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "SecretDrift")
    })
    .await;
    let (code, out, err) = p.run(&["show", "ks", "primary"]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(!out.contains(&primary) && err.contains("drifted"), "{err}");
    let (code, out, _) = p.run(&["show", "ks", "secondary"]);
    assert_eq!((code, out.trim()), (0, secondary.as_str()));

    // A forged audit line: an Event about the key set from someone else.
    let forged: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": { "generateName": "ks-forged-" },
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "mallory.example.com/tool", "reportingInstance": "x",
        "action": "Revoke", "reason": "KeysRevoked", "type": "Normal",
        "note": "revoked by the security team, ignore the keys",
        "regarding": {
            "apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
            "namespace": e.ns, "name": "ks", "uid": ks.metadata.uid
        }
    }))
    .unwrap();
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(e.client.clone(), &e.ns)
        .create(&Default::default(), &forged)
        .await
        .unwrap();
    let (code, out, _) = p.run(&["describe", "ks"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("KeysCreated"),
        "the operator's Events are shown: {out}"
    );
    assert!(
        !out.contains("ignore the keys"),
        "a forged Event is shown: {out}"
    );

    // A revoke the operator has not carried out yet: the keys are not handed out any more.
    e.operator.stop();
    let mut manifest = common::org_keyset("ks");
    manifest["spec"]["revoke"] = json!({ "confirmLabel": LABEL });
    common::apply(&e.keysets, &manifest).await.unwrap();
    let (code, out, err) = p.run(&["show", "ks", "secondary"]);
    assert_eq!(code, 8, "{out}");
    assert!(err.contains("being revoked"), "{err}");
    e.operator.restart();
    e.finish().await;
}

/// The README's walk-through: a manifest applied with kubectl (client-side, as `kubectl apply -f`
/// does) sets a slot; the plugin says so in kubectl's words, `--force-conflicts` takes the slot
/// over, and the old manifest is then refused rather than turning the revision back.
#[tokio::test]
async fn a_slot_set_by_a_kubectl_manifest_is_explained_in_kubectl_words() {
    let cp = common::control_plane().await;
    let Some(kubeconfig) = cp.kubeconfig_path() else {
        return; // kubectl needs the file
    };
    let mut e = Env::new(cp, "plugin-kubectl").await;
    let kubectl = dmk_control_plane::binaries().unwrap().join("kubectl");
    let dir = tempfile::tempdir().unwrap();
    let manifest_file = dir.path().join("ks.json");
    let mut manifest = common::org_keyset("ks");
    manifest["metadata"]["namespace"] = json!(e.ns);
    // Revision 1 asks for nothing (keys start at 1): said in Ready and in one Normal Event.
    manifest["spec"]["regenerate"] = json!({"secondary": {"revision": 1, "confirmLabel": LABEL}});
    std::fs::write(&manifest_file, manifest.to_string()).unwrap();
    let kubectl_apply = || {
        let out = Command::new(&kubectl)
            .args(["apply", "-f"])
            .arg(&manifest_file)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap();
        decode(out)
    };
    let (code, _, err) = kubectl_apply();
    assert_eq!(code, 0, "{err}");
    let ks = e.ready("ks").await;
    let ready = common::condition(&ks, "Ready").unwrap().message.clone();
    assert!(
        ready.contains("spec.regenerate.secondary.revision 1 asks for nothing")
            && ready.contains("set it to 2"),
        "{ready}"
    );
    let note = common::event_note(&e.client, &e.ns, "ks", "RegenerateNotNeeded").await;
    assert!(note.contains("set it to 2"), "{note}");
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    let p = Plugin::new(&e, Some(kubeconfig.to_path_buf()));
    let (code, _, err) = p.run(&["regenerate", "ks", "secondary", "--confirm-label", LABEL]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("field manager \"kubectl-client-side-apply\"")
            && err.contains("set spec.regenerate.secondary.revision to 2 in that manifest and run kubectl apply again")
            && err.contains("--force-conflicts"),
        "{err}"
    );
    assert!(!err.contains("Git"), "{err}");
    assert_eq!(revisions(&e.keysets.get("ks").await.unwrap()), (1, 1));

    // Taken over: the plugin's request runs.
    let (code, out, err) = p.run(&[
        "regenerate",
        "ks",
        "secondary",
        "--confirm-label",
        LABEL,
        "--force-conflicts",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revision 2"), "{out}");
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    // The manifest still says 1: kubectl apply is refused with what to type, nothing changes.
    let (code, _, err) = kubectl_apply();
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("a regenerate revision cannot decrease"),
        "{err}"
    );
    assert_eq!(revisions(&e.keysets.get("ks").await.unwrap()), (1, 2));
    e.finish().await;
}

/// A revoked key set is refused before any request is made (exit 8, as `show`), and no
/// command prints the debug form of an API error.
#[tokio::test]
async fn regenerate_on_a_revoked_set_says_so_and_exits_8() {
    let cp = common::control_plane().await;
    let mut e = Env::new(cp, "plugin-revoked").await;
    common::apply(&e.keysets, &common::org_keyset("ks"))
        .await
        .unwrap();
    e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let p = Plugin::new(&e, cp.kubeconfig_path().map(PathBuf::from));
    let (code, _, err) = p.run(&["revoke", "ks", "--confirm-label", LABEL]);
    assert_eq!(code, 0, "{err}");
    for slot in ["primary", "secondary"] {
        let (code, out, err) = p.run(&["regenerate", "ks", slot, "--confirm-label", LABEL]);
        assert_eq!(code, 8, "{out}{err}");
        assert!(
            err.contains("key set ks is revoked: its keys were destroyed"),
            "{err}"
        );
    }
    // `list` says why it is "Ready": the reason column.
    let (_, out, _) = p.run(&["list"]);
    assert!(out.lines().nth(1).unwrap().contains("Revoked"), "{out}");
    // An API refusal the plugin has no words of its own for: the server's message, no dump.
    let (code, _, err) = p.run(&[
        "create",
        "bad",
        "--label",
        "x\u{7}",
        "--organization",
        "o",
        "--permission",
        "ReadCatalogItems",
    ]);
    assert_eq!(code, 2, "{err}");
    for dump in ["ErrorResponse", "Status {", "ApiError"] {
        assert!(!err.contains(dump), "{err}");
    }
    let (code, _, err) = p.run(&[
        "create",
        "ks",
        "--label",
        LABEL,
        "--organization",
        "o",
        "--permission",
        "ReadCatalogItems",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("key set ks already exists"), "{err}");
    e.finish().await;
}
