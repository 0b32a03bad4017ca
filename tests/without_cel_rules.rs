//! Clusters where the admission rules were bypassed (an older CRD, a forced apply): this test
//! binary installs the CRD with every CEL rule stripped, and the controller must still refuse
//! what the rules would have refused, change nothing, and say why.

mod common;

use common::{Env, LABEL, apply, is_ready, keyset_where, org_keyset, revisions};
use dataminer_keys_operator::api::DataMinerKeySet;
use dmk_control_plane::{ControlPlane, Options};
use kube::ResourceExt;
use serde_json::{Value, json};

fn strip_rules(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("x-kubernetes-validations");
            map.values_mut().for_each(strip_rules);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_rules),
        _ => {}
    }
}

async fn control_plane() -> &'static ControlPlane {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut crd: Value =
            serde_yaml::from_str(&dataminer_keys_operator::api::crd_yaml()).unwrap();
        strip_rules(&mut crd);
        assert!(!crd.to_string().contains("x-kubernetes-validations"));
        std::fs::write(
            dir.path().join("crd.yaml"),
            serde_yaml::to_string(&crd).unwrap(),
        )
        .unwrap();
        dir
    });
    let opts = Options {
        crd_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    dmk_control_plane::shared(&opts)
        .await
        .expect("control plane")
}

fn ready_reason(ks: &DataMinerKeySet) -> (String, String) {
    let c = common::condition(ks, "Ready").expect("Ready condition");
    (c.reason.clone(), c.message.clone())
}

#[tokio::test]
async fn a_mismatched_request_changes_nothing_and_says_why() {
    let mut e = Env::new(control_plane().await, "no-cel").await;
    let (client, ns) = (e.client.clone(), e.ns.clone());
    let (keysets, secrets) = (e.keysets.clone(), e.secrets.clone());

    apply(&keysets, &org_keyset("ks")).await.unwrap();
    let created = keyset_where(&keysets, "ks", "Ready", is_ready).await;
    let before = secrets.get("ks-keys").await.unwrap();
    e.ledger.record(&before);
    // No admission policies on this cluster (as before Kubernetes 1.36, or with the chart's
    // recordRequester off): who asked reads "unknown", in status and in the Event.
    let status = created.status.clone().unwrap();
    assert_eq!(status.created_by.as_deref(), Some("unknown"));
    assert_eq!(status.history[0].by.as_deref(), Some("unknown"));
    let created_note = common::event_note(&client, &ns, "ks", "KeysCreated").await;
    assert!(
        created_note.ends_with("; requested by unknown"),
        "{created_note}"
    );

    // A regenerate with the wrong label, and a valid-looking revoke with the wrong label.
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"] =
        json!({"primary": {"revision": 2, "confirmLabel": "GitHub catalog"}});
    apply(&keysets, &manifest)
        .await
        .expect("accepted: the CRD has no rules here");
    let ks = keyset_where(&keysets, "ks", "ConfirmationMismatch", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "ConfirmationMismatch")
    })
    .await;
    let (_, message) = ready_reason(&ks);
    assert!(
        message.contains(&format!("set confirmLabel to \"{LABEL}\"")),
        "{message}"
    );
    assert_eq!(revisions(&ks), (1, 1));

    manifest["spec"]["revoke"] = json!({"confirmLabel": "nope"});
    let generation = apply(&keysets, &manifest)
        .await
        .unwrap()
        .metadata
        .generation;
    // The operator saw this spec (and says which requests it refused) before we look.
    keyset_where(&keysets, "ks", "the revoke mismatch reported", |k| {
        k.status.as_ref().and_then(|s| s.observed_generation) == generation
            && ready_reason(k).1.contains("spec.revoke")
    })
    .await;
    let after = secrets
        .get("ks-keys")
        .await
        .expect("the Secret still exists");
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "the Secret was not written"
    );
    let ks = keysets.get("ks").await.unwrap();
    assert_eq!(revisions(&ks), (1, 1));
    assert_eq!(common::condition(&ks, "Revoked").unwrap().status, "False");
    assert!(common::event_count(&client, &ns, "ks", "ConfirmationMismatch").await >= 1);

    // Correcting the label lets both requests through: the revoke wins.
    manifest["spec"]["regenerate"]["primary"]["confirmLabel"] = json!(LABEL);
    manifest["spec"]["revoke"]["confirmLabel"] = json!(LABEL);
    apply(&keysets, &manifest).await.unwrap();
    keyset_where(&keysets, "ks", "Revoked", |k| {
        common::condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    assert!(secrets.get_opt("ks-keys").await.unwrap().is_none());
    e.finish().await;
}

#[tokio::test]
async fn invalid_specs_get_no_keys_and_an_invalid_spec_warning() {
    let e = Env::new(control_plane().await, "no-cel-invalid").await;
    let (client, ns) = (e.client.clone(), e.ns.clone());
    let (keysets, secrets) = (e.keysets.clone(), e.secrets.clone());

    let mut both = org_keyset("both");
    both["spec"]["scope"]["system"] = json!({"name": "dms"});
    let mut none = org_keyset("noperm");
    none["spec"]["permissions"] = json!([]);
    for (name, manifest) in [("both", both), ("noperm", none)] {
        apply(&keysets, &manifest).await.unwrap();
        let ks = keyset_where(&keysets, name, "InvalidSpec", |k| {
            common::condition(k, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
        })
        .await;
        assert!(ks.status.as_ref().unwrap().primary.is_none());
        assert!(
            secrets
                .get_opt(&format!("{name}-keys"))
                .await
                .unwrap()
                .is_none()
        );
        common::eventually(10, "an InvalidSpec warning", || async {
            (common::event_count(&client, &ns, name, "InvalidSpec").await == 1).then_some(())
        })
        .await;
    }

    // A Secret name changed after creation is refused too: the keys stay where they are.
    apply(&keysets, &org_keyset("moved")).await.unwrap();
    keyset_where(&keysets, "moved", "Ready", is_ready).await;
    let mut moved = org_keyset("moved");
    moved["spec"]["secret"] = json!({"name": "elsewhere"});
    apply(&keysets, &moved).await.unwrap();
    let ks = keyset_where(&keysets, "moved", "InvalidSpec", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
    })
    .await;
    assert!(
        ready_reason(&ks)
            .1
            .contains("spec.secret.name is immutable")
    );
    assert!(secrets.get_opt("moved-keys").await.unwrap().is_some());
    assert!(secrets.get_opt("elsewhere").await.unwrap().is_none());
}

#[tokio::test]
async fn revocation_goes_through_a_spec_that_only_the_controller_refuses() {
    let mut e = Env::new(control_plane().await, "no-cel-revoke").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    keyset_where(&e.keysets, "ks", "Ready", is_ready).await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    let mut manifest = org_keyset("ks");
    manifest["spec"]["permissions"] = json!(["ReadCatalogItems", "ReadCatalogItems"]);
    apply(&e.keysets, &manifest).await.unwrap();
    keyset_where(&e.keysets, "ks", "InvalidSpec", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
    })
    .await;
    manifest["spec"]["revoke"] = json!({"confirmLabel": LABEL});
    apply(&e.keysets, &manifest).await.unwrap();
    keyset_where(&e.keysets, "ks", "Revoked", |k| {
        common::condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    assert!(e.secrets.get_opt("ks-keys").await.unwrap().is_none());
    e.finish().await;
}

#[tokio::test]
async fn names_and_metadata_that_cannot_be_written_get_no_secret_at_all() {
    let e = Env::new(control_plane().await, "no-cel-unwritable").await;
    let long = "k".repeat(64);
    let mut bad_label = org_keyset("badlabel");
    bad_label["spec"]["secret"] = json!({"labels": {"bad key!": "x"}});
    let mut nbsp = org_keyset("nbsp");
    nbsp["spec"]["label"] = json!("\u{a0}CI");
    for (name, manifest, says) in [
        (long.as_str(), org_keyset(&long), "63"),
        ("badlabel", bad_label, "spec.secret.labels"),
        ("nbsp", nbsp, "whitespace"),
    ] {
        apply(&e.keysets, &manifest).await.unwrap();
        let ks = keyset_where(&e.keysets, name, "InvalidSpec", |k| {
            common::condition(k, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
        })
        .await;
        assert!(
            ready_reason(&ks).1.contains(says),
            "{:?}",
            ready_reason(&ks)
        );
        assert!(
            e.secrets
                .get_opt(&format!("{name}-keys"))
                .await
                .unwrap()
                .is_none(),
            "no Secret for {name}"
        );
    }
}

// Issue 21, item 6: a problem below the one Ready shows is announced once while it lasts, not
// on every re-check (SecretConflict plus a mismatch used to repeat the mismatch Warning on every
// reconcile, for ever).
#[tokio::test]
async fn every_problem_is_announced_once_while_it_lasts() {
    use k8s_openapi::api::core::v1::Secret;
    let cp = control_plane().await;
    let ns = cp.namespace("no-cel-once").await.unwrap();
    let client = cp.client().await.unwrap();
    // Re-checked every second, so a repeat would show within the wait below.
    let operator = common::operator::Operator::start_with(cp, &ns, &["--resync-seconds=1"]);
    let keysets: kube::Api<DataMinerKeySet> = kube::Api::namespaced(client.clone(), &ns);
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), &ns);
    let foreign: Secret = serde_json::from_value(json!({
        "metadata": { "name": "ks-keys" },
        "stringData": { "token": "someone else's" }
    }))
    .unwrap();
    secrets
        .create(&kube::api::PostParams::default(), &foreign)
        .await
        .unwrap();
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"] = json!({"primary": {"revision": 2, "confirmLabel": "wrong"}});
    apply(&keysets, &manifest).await.unwrap();
    let ks = keyset_where(&keysets, "ks", "SecretConflict", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "SecretConflict")
    })
    .await;
    let (_, message) = ready_reason(&ks);
    assert!(
        message.contains("not owned by this key set") && message.contains("set confirmLabel to"),
        "Ready names both problems: {message}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    for reason in ["SecretConflict", "ConfirmationMismatch"] {
        assert_eq!(
            common::event_count(&client, &ns, "ks", reason).await,
            1,
            "{reason} announced once; operator log:\n{}",
            operator.logs()
        );
    }
}

// Issue 21, item 5: text from users is data. On a cluster without the CRD's rules a label can
// hold escape sequences: the controller refuses the spec as admission would, and the plugin
// prints every user's string escaped (an OSC 52 sequence would otherwise rewrite the admin's
// clipboard, a cursor movement hide rows).
#[tokio::test]
async fn escape_sequences_in_a_label_are_refused_and_never_reach_the_terminal() {
    use common::plugin::Plugin;
    let cp = control_plane().await;
    let e = Env::new(cp, "no-cel-escape").await;
    let p = Plugin::new(&e, cp.kubeconfig_path().map(std::path::PathBuf::from));
    let clipboard = "\u{1b}]52;c;aGFja2Vk\u{7}";
    let hostile = format!("Pipeline{clipboard}\u{1b}[1A\u{9b}2K done");
    let mut manifest = org_keyset("ks");
    manifest["spec"]["label"] = json!(hostile);
    manifest["spec"]["scope"]["organization"]["name"] = json!(format!("org{clipboard}"));
    // Created from JSON: the YAML of a server-side apply cannot carry a raw C1 character.
    e.keysets
        .create(&Default::default(), &common::keyset(manifest))
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "InvalidSpec", |k| {
        common::condition(k, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
    })
    .await;
    assert!(
        ready_reason(&ks).1.contains("control characters"),
        "{:?}",
        ready_reason(&ks)
    );
    assert!(e.secrets.get_opt("ks-keys").await.unwrap().is_none());

    let raw =
        |text: &str| text.contains('\u{1b}') || text.contains('\u{9b}') || text.contains('\u{7}');
    for args in [
        &["list", "--all-namespaces"][..],
        &["list", "-o", "wide"],
        &["describe", "ks"],
        &["list", "-o", "yaml"],
    ] {
        let (code, out, err) = p.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            !raw(&out) && !raw(&err),
            "{args:?} printed a control character"
        );
        assert!(
            out.contains("Pipeline") && out.contains("52;c;aGFja2Vk"),
            "{args:?} still shows the text: {out}"
        );
    }
    let (_, out, _) = p.run(&["describe", "ks"]);
    assert!(
        out.contains(r"Pipeline\u{1b}]52;c;aGFja2Vk\u{7}\u{1b}[1A\u{9b}2K done"),
        "{out}"
    );

    // The revoke prompt shows the label escaped; typing something else changes nothing.
    let (code, screen) = p.run_in_pty(&["revoke", "ks"], "nope\n");
    assert_eq!(code, 4, "{screen}");
    assert!(
        !raw(&screen),
        "the prompt printed a control character: {screen:?}"
    );
    assert!(screen.contains(r"Pipeline\u{1b}]52"), "{screen}");
    assert!(e.keysets.get("ks").await.unwrap().spec.revoke.is_none());
}

// Issue 21, item 9: without the CRD's rules the controller refuses metadata that makes another
// controller copy the Secret, the built-in prefixes and those the chart adds (a flag).
#[tokio::test]
async fn secret_metadata_that_copies_the_secret_gets_no_secret() {
    let cp = control_plane().await;
    let ns = cp.namespace("no-cel-deny").await.unwrap();
    let client = cp.client().await.unwrap();
    let _operator = common::operator::Operator::start_with(
        cp,
        &ns,
        &["--deny-secret-metadata-prefix=sync.example.com/"],
    );
    let keysets: kube::Api<DataMinerKeySet> = kube::Api::namespaced(client.clone(), &ns);
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), &ns);
    for (name, key) in [
        ("builtin", "replicator.v1.mittwald.de/replicate-to"),
        ("extra", "sync.example.com/to"),
    ] {
        let mut manifest = org_keyset(name);
        manifest["spec"]["secret"]["annotations"] = json!({ key: "team-b" });
        apply(&keysets, &manifest).await.expect("no CEL rules here");
        let ks = keyset_where(&keysets, name, "InvalidSpec", |k| {
            common::condition(k, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
        })
        .await;
        assert!(
            ready_reason(&ks).1.contains("copy or expose"),
            "{:?}",
            ready_reason(&ks)
        );
        assert!(
            secrets
                .get_opt(&format!("{name}-keys"))
                .await
                .unwrap()
                .is_none()
        );
    }
}
