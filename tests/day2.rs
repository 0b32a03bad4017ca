//! Day 2 on the real API server (issue 21): what a platform team meets in its second week.
//! Refused Events never make status lie, another writer's condition never freezes a key set,
//! and a revision at its limit says so instead of failing silently.

mod common;

use common::{Env, LABEL, apply, condition, event_count, keyset_where, org_keyset, revisions};
use dataminer_keys_operator::api::{DataMinerKeySet, MAX_REVISION};
use k8s_openapi::api::{
    admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    events::v1::Event,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn env(prefix: &str) -> Env {
    Env::new(common::control_plane().await, prefix).await
}

fn reason(ks: &DataMinerKeySet, type_: &str) -> Option<(String, String)> {
    condition(ks, type_).map(|c| (c.status.clone(), c.reason.clone()))
}

/// An admission policy that refuses every Event created in `ns` (as EventRateLimit, a quota or
/// a tenant policy would), in force once this returns. Delete the returned binding to lift it.
async fn refuse_events(client: &Client, ns: &str) -> String {
    let name = common::refuse::refuse_creates(
        client,
        ns,
        &["", "events.k8s.io"],
        "events",
        "Events are refused in this namespace",
    )
    .await;
    // Policies take effect asynchronously: probe until an Event is refused.
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    common::eventually(30, "the Event refusal in force", || {
        let events = events.clone();
        let ns = ns.to_string();
        async move {
            let probe: Event = serde_json::from_value(json!({
                "metadata": { "generateName": "probe-" },
                "eventTime": "2026-01-01T00:00:00.000000Z",
                "reportingController": "test/probe", "reportingInstance": "probe",
                "action": "Probe", "reason": "Probe", "type": "Normal", "note": "probe",
                "regarding": { "kind": "ConfigMap", "namespace": ns, "name": "probe" }
            }))
            .unwrap();
            match events.create(&PostParams::default(), &probe).await {
                Err(kube::Error::Api(s)) if s.message.contains("Events are refused") => Some(()),
                Ok(made) => {
                    let name = made.metadata.name.unwrap();
                    events.delete(&name, &DeleteParams::default()).await.ok();
                    None
                }
                Err(e) => panic!("probe Event: {e}"),
            }
        }
    })
    .await;
    name
}

// Item 3: refused Events do not freeze status at a lie; they wait in status and are published
// later, each once.
#[tokio::test]
async fn refused_events_do_not_stop_status_and_are_published_later_once() {
    let mut e = env("events-refused").await;
    let binding = refuse_events(&e.client, &e.ns).await;

    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    // The new set's keys are in status (so delete protection and `kubectl dmkeys show` see
    // them), and status says the audit Event waits.
    let ks = keyset_where(&e.keysets, "ks", "keys recorded, Event pending", |k| {
        k.status.as_ref().is_some_and(|s| s.primary.is_some())
            && reason(k, "AuditPending") == Some(("True".into(), "EventRefused".into()))
    })
    .await;
    assert_eq!(
        reason(&ks, "Ready"),
        Some(("True".into(), "KeysReady".into()))
    );
    let status = ks.status.clone().unwrap();
    let pending: Vec<_> = status
        .pending_events
        .iter()
        .map(|p| p.reason.as_str())
        .collect();
    assert_eq!(pending, ["KeysCreated"]);
    assert!(
        condition(&ks, "AuditPending")
            .unwrap()
            .message
            .contains("Events are refused in this namespace"),
        "the condition carries the server's reason"
    );
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // A confirmed regenerate while Events are still refused: status follows the Secret.
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"]["primary"] = json!({ "revision": 2, "confirmLabel": LABEL });
    apply(&e.keysets, &manifest).await.unwrap();
    let ks = keyset_where(&e.keysets, "ks", "revision 2 recorded", |k| {
        k.status
            .as_ref()
            .is_some_and(|s| s.pending_events.len() == 2)
    })
    .await;
    assert_eq!(revisions(&ks), (2, 1));
    let secret = e.secrets.get("ks-keys").await.unwrap();
    e.ledger.record(&secret);
    assert_eq!(
        secret.metadata.annotations.unwrap()["keys.dataminer.services/primary-revision"],
        "2"
    );
    let ready = condition(&ks, "Ready").unwrap();
    assert!(
        ready.message.contains("primary key revision 2"),
        "{}",
        ready.message
    );
    assert_eq!(event_count(&e.client, &e.ns, "ks", "KeysCreated").await, 0);

    // Events allowed again: each pending one is published once, marked late, and the
    // condition goes away.
    common::refuse::lift(&e.client, &binding).await;
    let ks = common::eventually(90, "the pending Events published", || async {
        let ks = e.keysets.get("ks").await.unwrap();
        let s = ks.status.as_ref()?;
        (s.pending_events.is_empty() && condition(&ks, "AuditPending").is_none()).then_some(ks)
    })
    .await;
    assert_eq!(revisions(&ks), (2, 1));
    for reason in ["KeysCreated", "PrimaryKeyRegenerated"] {
        assert_eq!(
            event_count(&e.client, &e.ns, "ks", reason).await,
            1,
            "{reason}"
        );
    }
    let note = common::event_note(&e.client, &e.ns, "ks", "KeysCreated").await;
    assert!(note.contains("published late"), "{note}");
    e.finish().await;
}

// Item 4: a condition another field manager adds to status is kept, and the key set is still
// reconciled afterwards (a write the API server answers unchanged used to freeze it).
#[tokio::test]
async fn a_foreign_condition_is_kept_and_does_not_freeze_the_key_set() {
    let mut e = env("foreign-condition").await;
    apply(&e.keysets, &org_keyset("ks")).await.unwrap();
    e.ready("ks").await;
    let (old_primary, _) = e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    let auditor = json!({
        "apiVersion": "keys.dataminer.services/v1alpha1",
        "kind": "DataMinerKeySet",
        "metadata": { "name": "ks" },
        "status": { "conditions": [{
            "type": "audit.example.com/Reviewed", "status": "True", "reason": "Reviewed",
            "message": "checked by the audit tool", "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]}
    });
    e.keysets
        .patch_status(
            "ks",
            &PatchParams::apply("auditor").force(),
            &Patch::Apply(&auditor),
        )
        .await
        .unwrap();
    // Give the operator the auditor's write to reconcile, then break the Secret.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    e.secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    let recreated = common::eventually(30, "the Secret recreated", || async {
        e.secrets.get_opt("ks-keys").await.unwrap()
    })
    .await;
    let (new_primary, _) = e.ledger.record(&recreated);
    assert_ne!(new_primary, old_primary);
    let ks = keyset_where(&e.keysets, "ks", "revision 2 recorded", |k| {
        revisions(k) == (2, 2)
    })
    .await;
    let foreign = condition(&ks, "audit.example.com/Reviewed").expect("kept");
    assert_eq!(foreign.message, "checked by the audit tool");
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "SecretMissing").await,
        1
    );
    e.finish().await;
}

// Item 7: a slot at the highest revision cannot be given a higher one; the operator says so
// instead of writing a revision admission would refuse.
#[tokio::test]
async fn a_slot_at_the_revision_limit_says_so() {
    let mut e = env("revision-limit").await;
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"]["primary"] =
        json!({ "revision": MAX_REVISION, "confirmLabel": LABEL });
    apply(&e.keysets, &manifest).await.unwrap();
    let ks = e.ready("ks").await;
    assert_eq!(revisions(&ks), (MAX_REVISION, 1));
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());

    // Admission refuses a request above the limit, with the limit in the message.
    let mut over = manifest.clone();
    over["spec"]["regenerate"]["primary"]["revision"] = json!(MAX_REVISION + 1);
    let refused = apply(&e.keysets, &over).await.unwrap_err();
    assert!(
        refused.to_string().contains("1e+09") || refused.to_string().contains("1000000000"),
        "{refused}"
    );

    // `kubectl dmkeys regenerate` does not ask for a revision admission would refuse.
    let cp = common::control_plane().await;
    let plugin = common::plugin::Plugin::new(&e, cp.kubeconfig_path().map(Into::into));
    let (code, _, err) = plugin.run(&["regenerate", "ks", "primary", "--confirm-label", LABEL]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the highest a revision can be"), "{err}");
    assert_eq!(
        revisions(&e.keysets.get("ks").await.unwrap()),
        (MAX_REVISION, 1)
    );

    // The Secret is deleted: new keys would need revision MAX_REVISION + 1. Nothing is written,
    // and the condition says what to do.
    e.secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "RevisionLimit", |k| {
        reason(k, "Ready") == Some(("False".into(), "RevisionLimit".into()))
    })
    .await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(message.contains("Create a new key set"), "{message}");
    assert!(e.secrets.get_opt("ks-keys").await.unwrap().is_none());
    assert_eq!(
        event_count(&e.client, &e.ns, "ks", "RevisionLimit").await,
        1
    );
    e.finish().await;
}

// Item 5: admission refuses a label with control characters, with a message that says so.
#[tokio::test]
async fn a_label_with_control_characters_is_refused_at_admission() {
    let e = env("label-controls").await;
    for hostile in ["Pipeline\u{1b}]52;c;aGk=\u{7}", "two\nlines", "c1\u{9b}2J"] {
        let mut manifest = org_keyset("ks");
        manifest["spec"]["label"] = json!(hostile);
        let refused = e
            .keysets
            .create(&Default::default(), &common::keyset(manifest))
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("must not contain control characters"),
            "{hostile:?}: {refused}"
        );
    }
    assert!(e.keysets.get_opt("ks").await.unwrap().is_none());
}

// Item 9: labels and annotations that make another controller copy the Secret are refused at
// admission: the built-in prefixes by the CRD, the chart's own by its policy.
#[tokio::test]
async fn secret_metadata_that_copies_the_secret_is_refused_at_admission() {
    let e = env("deny-metadata").await;
    let with = |field: &str, key: &str| {
        let mut m = org_keyset("ks");
        m["spec"]["secret"][field] = json!({ key: "team-b" });
        m
    };
    for (field, key) in [
        ("annotations", "replicator.v1.mittwald.de/replicate-to"),
        (
            "annotations",
            "reflector.v1.k8s.emberstack.com/reflection-allowed",
        ),
        ("labels", "kubed.appscode.com/sync"),
    ] {
        let refused = apply(&e.keysets, &with(field, key)).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("make other controllers copy the Secret"),
            "{key}: {refused}"
        );
    }

    // The chart adds a prefix of its own: its policy refuses it too.
    let docs = common::chart::render(
        "deny",
        &e.ns,
        &[
            "--set",
            "secretMetadata.deniedPrefixes={sync.example.com/}",
            "--show-only",
            "templates/secret-metadata-policy.yaml",
        ],
    );
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(docs[0].clone()).unwrap();
    let mut binding: ValidatingAdmissionPolicyBinding =
        serde_json::from_value(docs[1].clone()).unwrap();
    // Only this test's namespace: other tests share the control plane.
    binding.spec.as_mut().unwrap().match_resources = Some(
        serde_json::from_value(json!({ "namespaceSelector": { "matchLabels": {
            "kubernetes.io/metadata.name": e.ns
        }}}))
        .unwrap(),
    );
    let pp = PostParams::default();
    Api::<ValidatingAdmissionPolicy>::all(e.client.clone())
        .create(&pp, &policy)
        .await
        .unwrap();
    Api::<ValidatingAdmissionPolicyBinding>::all(e.client.clone())
        .create(&pp, &binding)
        .await
        .unwrap();
    let dry = PatchParams::apply(common::USER_MANAGER).force().dry_run();
    let refused = common::eventually(30, "the chart's policy in force", || async {
        let m = with("annotations", "sync.example.com/to");
        e.keysets.patch("ks", &dry, &Patch::Apply(&m)).await.err()
    })
    .await;
    assert!(
        refused.to_string().contains("keys under sync.example.com/"),
        "{refused}"
    );
    // Harmless metadata still goes through.
    apply(
        &e.keysets,
        &with("annotations", "reloader.stakater.com/match"),
    )
    .await
    .unwrap();
}
