//! Who asked, on the real API server with the chart's admission policies installed: users are
//! impersonated, and every action names its requester in status, history, Events, the action
//! log line and `kubectl dmkeys`; nobody can write someone else's name; the operator's own
//! writes are never stamped.

mod common;

use common::{Env, LABEL, action_lines, eventually, is_ready, keyset_where, org_keyset};
use dataminer_keys_operator::api::{
    CREATED_BY_ANNOTATION, DataMinerKeySet, ON_BEHALF_OF_ANNOTATION,
    PRIMARY_REQUESTED_BY_ANNOTATION, REVOKED_BY_ANNOTATION, SECONDARY_REQUESTED_BY_ANNOTATION,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use std::collections::BTreeMap;

const USER_A: &str = "user-a@example.com";
const USER_B: &str = "user-b@example.com";
const USER_C: &str = "user-c@example.com";
const USER_D: &str = "user-d@example.com";
const ARGOCD: &str = "system:serviceaccount:argocd:argocd-application-controller";

/// Lets the four users manage key sets in `ns` (what the chart's admin role grants),
/// and returns a client impersonating each.
async fn users(e: &Env) -> [Client; 4] {
    let cp = common::control_plane().await;
    let pp = PatchParams::apply("test").force();
    let role: Role = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": { "name": "keyset-admins" },
        "rules": [{ "apiGroups": ["keys.dataminer.services"], "resources": ["dataminerkeysets"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"] }]
    }))
    .unwrap();
    Api::<Role>::namespaced(e.client.clone(), &e.ns)
        .patch("keyset-admins", &pp, &Patch::Apply(&role))
        .await
        .unwrap();
    let mut subjects: Vec<_> = [USER_A, USER_B, USER_C, USER_D]
        .iter()
        .map(|u| json!({ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u }))
        .collect();
    subjects.push(
        json!({ "kind": "ServiceAccount", "name": "argocd-application-controller", "namespace": "argocd" }),
    );
    let binding: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": "keyset-admins" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "keyset-admins" },
        "subjects": subjects
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(e.client.clone(), &e.ns)
        .patch("keyset-admins", &pp, &Patch::Apply(&binding))
        .await
        .unwrap();
    let client = |user: &'static str| async move {
        cp.client_as(user, &["system:authenticated"]).await.unwrap()
    };
    [
        client(USER_A).await,
        client(USER_B).await,
        client(USER_C).await,
        client(USER_D).await,
    ]
}

/// The requester annotations (`keys.dataminer.services/*-by`) a key set carries.
fn stamps(ks: &DataMinerKeySet) -> BTreeMap<String, String> {
    ks.metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("keys.dataminer.services/") && k.ends_with("-by"))
        .collect()
}

fn stamped(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The refusal a request met: (HTTP code, message).
fn refusal<T: std::fmt::Debug>(result: kube::Result<T>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn plugin(e: &Env, args: &[&str]) -> String {
    let kubeconfig = common::control_plane()
        .await
        .kubeconfig_path()
        .map(|p| format!("--kubeconfig={}", p.display()));
    let out = std::process::Command::new(common::plugin::binary())
        .args(kubeconfig)
        .arg(format!("--namespace={}", e.ns))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Key set `ks`, created by the user of `client`, once it is Ready (its keys recorded).
async fn created_by(e: &mut Env, client: Client) -> DataMinerKeySet {
    let api: Api<DataMinerKeySet> = Api::namespaced(client, &e.ns);
    common::apply(&api, &org_keyset("ks")).await.unwrap();
    let ks = e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    ks
}

/// Raises `slot` to revision 2 as the user of `api` (with `annotations` in the same request) and
/// waits until the operator reports `revisions`.
async fn regenerate(
    e: &Env,
    api: &Api<DataMinerKeySet>,
    annotations: serde_json::Value,
    slot: &str,
    revisions: (i64, i64),
) -> DataMinerKeySet {
    let request = json!({
        "metadata": { "annotations": annotations },
        "spec": { "regenerate": { slot: { "revision": 2, "confirmLabel": LABEL } } }
    });
    api.patch("ks", &PatchParams::default(), &Patch::Merge(&request))
        .await
        .unwrap();
    keyset_where(&e.keysets, "ks", &format!("{slot} revision 2"), |k| {
        is_ready(k) && common::revisions(k) == revisions
    })
    .await
}

#[tokio::test]
async fn each_action_names_the_user_who_asked() {
    let mut e = Env::new(common::control_plane().await, "requester").await;
    let [a, b, c, _] = users(&e).await;
    let as_argocd: Api<DataMinerKeySet> = Api::namespaced(
        common::control_plane()
            .await
            .client_as_service_account("argocd", "argocd-application-controller")
            .await
            .unwrap(),
        &e.ns,
    );
    let (as_a, as_b, as_c): (
        Api<DataMinerKeySet>,
        Api<DataMinerKeySet>,
        Api<DataMinerKeySet>,
    ) = (
        Api::namespaced(a, &e.ns),
        Api::namespaced(b, &e.ns),
        Api::namespaced(c, &e.ns),
    );

    // user-a creates.
    common::apply(&as_a, &org_keyset("ks")).await.unwrap();
    let ks = e.ready("ks").await;
    let status = ks.status.clone().unwrap();
    assert_eq!(status.created_by.as_deref(), Some(USER_A));
    assert_eq!(status.history[0].action, "KeysCreated");
    assert_eq!(status.history[0].by.as_deref(), Some(USER_A));
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    // Re-applying the same manifest, as GitOps does forever, is a no-op: nothing is stamped.
    let again = common::apply(&as_a, &org_keyset("ks")).await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        ks.metadata.resource_version
    );

    // user-b regenerates the secondary key.
    let ks = regenerate(&e, &as_b, json!({}), "secondary", (1, 2)).await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let entry = &ks.status.as_ref().unwrap().history[0];
    assert_eq!(entry.action, "RegenerateSecondary");
    assert_eq!(
        (entry.by.as_deref(), entry.on_behalf_of.as_deref()),
        (Some(USER_B), None)
    );
    // The creator stays who it was.
    assert_eq!(
        ks.status.as_ref().unwrap().created_by.as_deref(),
        Some(USER_A)
    );

    // Argo CD syncs a commit that raises the primary revision; the pipeline that wrote the
    // commit put its author in the manifest.
    let author = json!({ ON_BEHALF_OF_ANNOTATION: "Alice Example <alice@example.com>" });
    let ks = regenerate(&e, &as_argocd, author, "primary", (2, 2)).await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let entry = &ks.status.as_ref().unwrap().history[0];
    assert_eq!(entry.action, "RegeneratePrimary");
    assert_eq!(
        (entry.by.as_deref(), entry.on_behalf_of.as_deref()),
        (Some(ARGOCD), Some("Alice Example <alice@example.com>"))
    );

    // The operator's own writes (finalizer, status, Secret) stamped nothing.
    let mut stamped_so_far = stamped(&[
        (CREATED_BY_ANNOTATION, USER_A),
        (
            SECONDARY_REQUESTED_BY_ANNOTATION,
            "user-b@example.com (revision 2)",
        ),
        (
            PRIMARY_REQUESTED_BY_ANNOTATION,
            &format!("{ARGOCD} (revision 2)"),
        ),
    ]);
    assert_eq!(stamps(&ks), stamped_so_far);
    let secret = e.secrets.get("ks-keys").await.unwrap();
    let secret_annotations = secret.metadata.annotations.clone().unwrap_or_default();
    assert!(
        secret_annotations.keys().all(|k| !k.ends_with("-by")),
        "{secret_annotations:?}"
    );

    // The key age gauge carries the generation time of each slot, as status records it.
    let key_age = |text: &str| -> Vec<(String, i64)> {
        let prefix = format!(
            "dataminer_keys_key_generated_timestamp_seconds{{keyset_namespace=\"{}\",keyset=\"ks\",slot=\"",
            e.ns
        );
        text.lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (slot, value) = rest.split_once("\"} ")?;
                Some((slot.to_string(), value.parse().ok()?))
            })
            .collect()
    };
    let status = ks.status.clone().unwrap();
    let expected = vec![
        (
            "primary".to_string(),
            status.primary.unwrap().generated_at.0.as_second(),
        ),
        (
            "secondary".to_string(),
            status.secondary.unwrap().generated_at.0.as_second(),
        ),
    ];
    let text = e.operator.metrics_text().await.expect("/metrics answers");
    assert_eq!(key_age(&text), expected, "{text}");

    // user-c revokes.
    as_c.patch(
        "ks",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "revoke": { "confirmLabel": LABEL } } })),
    )
    .await
    .unwrap();
    let ks = keyset_where(&e.keysets, "ks", "Revoked=True", |k| {
        common::condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    let status = ks.status.clone().unwrap();
    assert_eq!(status.revoked_by.as_deref(), Some(USER_C));
    assert_eq!(status.history[0].action, "Revoke");
    // user-c acted for themselves: Argo CD's "on behalf of", still on the object, is not theirs.
    assert_eq!(
        (
            status.history[0].by.as_deref(),
            status.history[0].on_behalf_of.as_deref()
        ),
        (Some(USER_C), None)
    );
    stamped_so_far.insert(REVOKED_BY_ANNOTATION.into(), USER_C.into());
    assert_eq!(stamps(&ks), stamped_so_far);

    // A revoked key set has no keys, so no key age.
    eventually(10, "the key age series to go", || async {
        let text = e.operator.metrics_text().await?;
        key_age(&text).is_empty().then_some(())
    })
    .await;

    // Events name each of them.
    let notes = eventually(30, "the four Events", || async {
        let events = common::events(&e.client, &e.ns, "ks").await;
        let note = |reason: &str| {
            events
                .iter()
                .find(|ev| ev.0 == reason)
                .map(|ev| ev.1.clone())
        };
        Some([
            note("KeysCreated")?,
            note("SecondaryKeyRegenerated")?,
            note("PrimaryKeyRegenerated")?,
            note("KeysRevoked")?,
        ])
    })
    .await;
    let expected = [
        "; requested by user-a@example.com".to_string(),
        "; requested by user-b@example.com".to_string(),
        format!(
            "; requested by {ARGOCD} on behalf of Alice Example <alice@example.com> (unverified)"
        ),
        "; requested by user-c@example.com".to_string(),
    ];
    for (note, tail) in notes.iter().zip(&expected) {
        assert!(note.ends_with(tail.as_str()), "{note}");
    }
    assert!(
        notes[1].starts_with("regenerated the secondary key: now revision 2"),
        "{}",
        notes[1]
    );

    // So do the action log lines.
    let lines = action_lines(&e.operator.logs());
    let by = |action: &str| {
        lines
            .iter()
            .find(|l| l["action"] == action)
            .map(|l| l["requested_by"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(by("KeysCreated").as_deref(), Some(USER_A), "{lines:?}");
    assert_eq!(by("RegenerateSecondary").as_deref(), Some(USER_B));
    assert_eq!(by("RegeneratePrimary").as_deref(), Some(ARGOCD));
    assert_eq!(
        lines
            .iter()
            .find(|l| l["action"] == "RegeneratePrimary")
            .unwrap()["on_behalf_of"],
        "Alice Example <alice@example.com>"
    );
    assert_eq!(by("Revoke").as_deref(), Some(USER_C));

    // And `kubectl dmkeys describe` / `list -o wide`.
    let described = plugin(&e, &["describe", "ks"]).await;
    assert!(
        described.contains("Created by:   user-a@example.com"),
        "{described}"
    );
    assert!(described.contains("by user-b@example.com\n"), "{described}");
    assert!(
        described.contains(&format!(
            "by {ARGOCD}  on behalf of Alice Example <alice@example.com> (unverified)"
        )),
        "{described}"
    );
    assert!(described.contains("by user-c@example.com"), "{described}");
    let wide = plugin(&e, &["list", "-o", "wide"]).await;
    assert!(
        wide.lines().next().unwrap().ends_with("CREATED-BY"),
        "{wide}"
    );
    assert!(wide.lines().nth(1).unwrap().ends_with(USER_A), "{wide}");

    e.finish().await;
}

#[tokio::test]
async fn nobody_can_write_someone_elses_name() {
    let mut e = Env::new(common::control_plane().await, "forgery").await;
    let [a, _, _, d] = users(&e).await;
    let as_d: Api<DataMinerKeySet> = Api::namespaced(d, &e.ns);
    let ks = created_by(&mut e, a).await;

    // user-d claims user-a revoked it, or asked for a secondary key, or made it.
    for (key, value) in [
        (REVOKED_BY_ANNOTATION, USER_A),
        (
            SECONDARY_REQUESTED_BY_ANNOTATION,
            "user-a@example.com (revision 1)",
        ),
        (CREATED_BY_ANNOTATION, USER_D),
    ] {
        let forged = json!({ "metadata": { "annotations": { key: value } } });
        let (code, message) = refusal(
            as_d.patch("ks", &PatchParams::default(), &Patch::Merge(&forged))
                .await,
        );
        assert_eq!(code, 403, "{message}");
        assert!(
            message.contains(&format!("annotation {key} records who"))
                && message.contains("written by the cluster, not by hand")
                && message.contains("(this request is by \"user-d@example.com\")"),
            "{message}"
        );
    }
    // Even naming themselves where no such change happens is refused.
    let (code, message) = refusal(
        as_d.patch(
            "ks",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "annotations": { REVOKED_BY_ANNOTATION: USER_D } } }),
            ),
        )
        .await,
    );
    assert_eq!(code, 403, "{message}");

    // Removing one does not erase it: the stored value is put back.
    let removed = as_d
        .patch(
            "ks",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "annotations": { CREATED_BY_ANNOTATION: null } } }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        stamps(&removed),
        stamped(&[(CREATED_BY_ANNOTATION, USER_A)])
    );

    // A request that carries a change records its own user whatever the manifest says: a
    // manifest exported with someone else's name creates a key set in the creator's name, and
    // a raise of the revision is user-d's even when it names user-a.
    let mut exported = org_keyset("copy");
    exported["metadata"]["annotations"] = json!({ CREATED_BY_ANNOTATION: USER_A });
    let copy = as_d
        .create(&PostParams::default(), &common::keyset(exported))
        .await
        .unwrap();
    assert_eq!(stamps(&copy), stamped(&[(CREATED_BY_ANNOTATION, USER_D)]));
    let raised = as_d
        .patch(
            "ks",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "annotations": { SECONDARY_REQUESTED_BY_ANNOTATION: "user-a@example.com (revision 2)" } },
                "spec": { "regenerate": { "secondary": { "revision": 2, "confirmLabel": LABEL } } }
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        stamps(&raised)
            .get(SECONDARY_REQUESTED_BY_ANNOTATION)
            .map(String::as_str),
        Some("user-d@example.com (revision 2)")
    );
    let ks2 = keyset_where(&e.keysets, "ks", "secondary revision 2", |k| {
        is_ready(k) && common::revisions(k).1 == 2
    })
    .await;
    assert_eq!(ks2.status.unwrap().history[0].by.as_deref(), Some(USER_D));
    assert_eq!(ks.status.unwrap().created_by.as_deref(), Some(USER_A));
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    e.ready("copy").await;
    e.ledger.record(&e.secrets.get("copy-keys").await.unwrap());
    e.finish().await;
}

#[tokio::test]
async fn a_long_odd_on_behalf_of_is_cut_not_refused() {
    let mut e = Env::new(common::control_plane().await, "behalf").await;
    users(&e).await;
    let as_argocd: Api<DataMinerKeySet> = Api::namespaced(
        common::control_plane()
            .await
            .client_as_service_account("argocd", "argocd-application-controller")
            .await
            .unwrap(),
        &e.ns,
    );
    // 4 KiB of combining marks, right-to-left text and line breaks, as a careless pipeline
    // might paste a whole commit message.
    let odd = format!(
        "Zoë\u{301}\u{202e} <zoe@example.com>\n{}",
        "e\u{301}\u{200d}\n".repeat(700)
    );
    let mut manifest = org_keyset("ks");
    manifest["metadata"]["annotations"] = json!({ ON_BEHALF_OF_ANNOTATION: odd });
    common::apply(&as_argocd, &manifest).await.unwrap();
    let ks = e.ready("ks").await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    let entry = &ks.status.as_ref().unwrap().history[0];
    assert_eq!(entry.by.as_deref(), Some(ARGOCD));
    let recorded = entry.on_behalf_of.clone().unwrap();
    assert!(recorded.len() <= 256, "{}", recorded.len());
    assert!(
        recorded.starts_with("Zoë\u{301}\u{202e} <zoe@example.com> "),
        "{recorded:?}"
    );
    assert!(
        recorded.ends_with('…') && !recorded.contains('\n'),
        "{recorded:?}"
    );
    // The Event went out, within what the API server accepts for a note.
    let note = common::event_note(&e.client, &e.ns, "ks", "KeysCreated").await;
    assert!(
        note.len() <= 1024 && note.ends_with("… (unverified)"),
        "{note}"
    );
    e.finish().await;
}

#[tokio::test]
async fn a_rotation_recovered_after_a_crash_still_names_its_requester() {
    let mut e = Env::new(common::control_plane().await, "requester-crash").await;
    let [a, b, _, _] = users(&e).await;
    let as_b: Api<DataMinerKeySet> = Api::namespaced(b, &e.ns);
    created_by(&mut e, a).await;

    // user-b asks; the operator writes the Secret and dies before recording anything.
    e.operator
        .crash_after_secret_write(async {
            let request = json!({
                "spec": { "regenerate": { "primary": { "revision": 2, "confirmLabel": LABEL } } }
            });
            as_b.patch("ks", &PatchParams::default(), &Patch::Merge(&request))
                .await
                .unwrap();
        })
        .await;
    e.operator.restart();
    let ks = keyset_where(&e.keysets, "ks", "primary revision 2", |k| {
        is_ready(k) && common::revisions(k) == (2, 1)
    })
    .await;
    e.ledger.record(&e.secrets.get("ks-keys").await.unwrap());
    // The restarted operator found the rotation in the Secret and records it as user-b's.
    let entry = &ks.status.as_ref().unwrap().history[0];
    assert_eq!(
        (entry.action.as_str(), entry.revision, entry.by.as_deref()),
        ("RegeneratePrimary", Some(2), Some(USER_B))
    );
    let note = common::event_note(&e.client, &e.ns, "ks", "PrimaryKeyRegenerated").await;
    assert!(
        note.ends_with("; requested by user-b@example.com"),
        "{note}"
    );
    e.finish().await;
}
