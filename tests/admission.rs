//! Invalid specs are refused by the real API server (CRD schema + CEL rules), each with a
//! message that says what to type. No operator runs here: this is admission alone.

mod common;

use common::LABEL;
use dataminer_keys_operator::api::DataMinerKeySet;
use dataminer_keys_operator::controller::FINALIZER;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

fn base() -> Value {
    common::org_keyset("ks")
}

async fn api(prefix: &str) -> Api<DataMinerKeySet> {
    let (client, ns) = common::client_and_namespace(prefix).await;
    Api::namespaced(client, &ns)
}

async fn apply(api: &Api<DataMinerKeySet>, manifest: &Value) -> Result<(), String> {
    // As `kubectl apply --server-side`; a refusal comes back as the API server's message.
    common::apply(api, manifest)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 422, "refusals are 422 Invalid: {s:?}");
                s.message
            }
            other => panic!("unexpected error {other:?}"),
        })
}

/// Creating `manifest` fails with a message containing every part of `expected`.
async fn refused_on_create(api: &Api<DataMinerKeySet>, manifest: Value, expected: &[&str]) {
    let message = apply(api, &manifest).await.expect_err("must be refused");
    for part in expected {
        assert!(message.contains(part), "expected {part:?} in: {message}");
    }
    let name = manifest["metadata"]["name"].as_str().unwrap();
    assert!(
        api.get_opt(name).await.unwrap().is_none(),
        "nothing was stored"
    );
}

/// Creating `before` works; updating it to `after` fails with `expected`, and the stored
/// object is still `before`.
async fn refused_on_update(
    api: &Api<DataMinerKeySet>,
    before: Value,
    after: Value,
    expected: &[&str],
) {
    apply(api, &before).await.expect("the original is valid");
    let name = before["metadata"]["name"].as_str().unwrap();
    let stored = api.get(name).await.unwrap();
    let message = apply(api, &after)
        .await
        .expect_err("the update must be refused");
    for part in expected {
        assert!(message.contains(part), "expected {part:?} in: {message}");
    }
    assert_eq!(
        api.get(name).await.unwrap().spec,
        stored.spec,
        "nothing changed"
    );
}

/// A change to a manifest.
type Edit = Box<dyn Fn(&mut Value)>;

fn named(mut v: Value, name: &str) -> Value {
    v["metadata"]["name"] = json!(name);
    v
}

#[tokio::test]
async fn invalid_new_key_sets_are_refused_with_what_to_type() {
    let api = api("admission-create").await;
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "empty-label",
            Box::new(|v| v["spec"]["label"] = json!("")),
            vec!["spec.label", "at least 1 chars long"],
        ),
        (
            "padded-label",
            Box::new(|v| v["spec"]["label"] = json!(" CI ")),
            vec!["spec.label must not start or end with whitespace"],
        ),
        (
            "long-label",
            Box::new(|v| v["spec"]["label"] = json!("x".repeat(101))),
            vec!["spec.label: Too long: may not be more than 100 bytes"],
        ),
        (
            "both-scopes",
            Box::new(|v| v["spec"]["scope"]["system"] = json!({"name": "dms-prod-01"})),
            vec![
                "spec.scope needs exactly one of organization: {name: ...} or system: {name: ...}",
            ],
        ),
        (
            "no-scope",
            Box::new(|v| v["spec"]["scope"] = json!({})),
            vec!["spec.scope needs exactly one of organization"],
        ),
        (
            "org-no-permissions",
            Box::new(|v| v["spec"]["permissions"] = json!([])),
            vec![
                "spec.permissions",
                "an organization key set needs at least one permission: set spec.permissions, for example [RegisterCatalogItems]",
            ],
        ),
        (
            "system-with-permissions",
            Box::new(|v| v["spec"]["scope"] = json!({"system": {"name": "dms-prod-01"}})),
            vec![
                "a system key set takes no permissions",
                "remove spec.permissions",
            ],
        ),
        (
            "unknown-permission",
            Box::new(|v| {
                v["spec"]["permissions"] = json!(["RegisterCatalogItems", "DeleteEverything"])
            }),
            vec![
                "Unsupported value: \"DeleteEverything\"",
                "\"RetrieveUsageData\"",
            ],
        ),
        (
            "duplicate-permission",
            Box::new(|v| {
                v["spec"]["permissions"] = json!(["RegisterCatalogItems", "RegisterCatalogItems"])
            }),
            vec!["spec.permissions lists a permission more than once: list each permission once"],
        ),
        (
            "mismatched-primary",
            Box::new(|v| {
                v["spec"]["regenerate"] =
                    json!({"primary": {"revision": 2, "confirmLabel": "GitHub catalog"}})
            }),
            vec![
                "spec.regenerate.primary.confirmLabel",
                "set it to \"GitHub catalog pipeline\"",
            ],
        ),
        (
            "mismatched-secondary",
            Box::new(|v| {
                v["spec"]["regenerate"] =
                    json!({"secondary": {"revision": 2, "confirmLabel": "github catalog pipeline"}})
            }),
            vec![
                "spec.regenerate.secondary.confirmLabel",
                "set it to \"GitHub catalog pipeline\"",
            ],
        ),
        (
            "mismatched-revoke",
            Box::new(|v| v["spec"]["revoke"] = json!({"confirmLabel": "yes"})),
            vec![
                "spec.revoke.confirmLabel",
                "set it to \"GitHub catalog pipeline\"",
            ],
        ),
        (
            "same-key-names",
            Box::new(|v| {
                v["spec"]["secret"] = json!({"primaryKeyName": "key", "secondaryKeyName": "key"})
            }),
            vec!["must differ: pick two names"],
        ),
        (
            "bad-secret-name",
            Box::new(|v| v["spec"]["secret"] = json!({"name": "Keys_For_CI"})),
            vec!["spec.secret.name must be a valid Secret name"],
        ),
        (
            "unknown-format",
            Box::new(|v| v["spec"]["keyFormat"] = json!("Hex64")),
            vec!["Unsupported value: \"Hex64\"", "\"Base64Url256\""],
        ),
    ];
    for (name, edit, expected) in cases {
        let mut manifest = named(base(), name);
        edit(&mut manifest);
        refused_on_create(&api, manifest, &expected).await;
    }
}

#[tokio::test]
async fn valid_key_sets_are_accepted_with_defaults() {
    let api = api("admission-valid").await;
    let mut system = named(base(), "system");
    system["spec"]["scope"] =
        json!({"system": {"name": "dms-prod-01", "organization": "skyline-demo"}});
    system["spec"]
        .as_object_mut()
        .unwrap()
        .remove("permissions");
    apply(&api, &system).await.unwrap();
    let mut requested = named(base(), "requested");
    requested["spec"]["regenerate"] = json!({"primary": {"revision": 2, "confirmLabel": LABEL}});
    requested["spec"]["keyFormat"] = json!("Base64Url256");
    apply(&api, &requested).await.unwrap();
    let stored = api.get("system").await.unwrap();
    assert_eq!(
        stored.spec.key_format,
        dataminer_keys_operator::api::KeyFormat::Hex32,
        "keyFormat defaults to Hex32"
    );
}

#[tokio::test]
async fn unsafe_updates_are_refused_with_what_to_type() {
    let api = api("admission-update").await;
    let with = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut v = named(base(), name);
        edit(&mut v);
        v
    };
    let req = |rev: i64| json!({"primary": {"revision": rev, "confirmLabel": LABEL}});

    refused_on_update(
        &api,
        with("decrease", &|v| v["spec"]["regenerate"] = req(3)),
        with("decrease", &|v| v["spec"]["regenerate"] = req(2)),
        &[
            "spec.regenerate.primary.revision",
            "a regenerate revision cannot decrease",
        ],
    )
    .await;
    refused_on_update(
        &api,
        with("unrevoke", &|v| {
            v["spec"]["revoke"] = json!({"confirmLabel": LABEL})
        }),
        with("unrevoke", &|_| {}),
        &[
            "spec.revoke cannot be removed",
            "create a new DataMinerKeySet",
        ],
    )
    .await;
    refused_on_update(
        &api,
        with("rescope", &|_| {}),
        with("rescope", &|v| {
            v["spec"]["scope"]["organization"]["name"] = json!("other-org")
        }),
        &["spec.scope is immutable"],
    )
    .await;
    refused_on_update(
        &api,
        with("rename", &|_| {}),
        with("rename", &|v| {
            v["spec"]["secret"] = json!({"name": "other-keys"})
        }),
        &["spec.secret.name is immutable"],
    )
    .await;
    refused_on_update(
        &api,
        with("rekey", &|_| {}),
        with("rekey", &|v| {
            v["spec"]["secret"] = json!({"primaryKeyName": "DATAMINER_TOKEN"})
        }),
        &["primaryKeyName and secondaryKeyName are immutable"],
    )
    .await;
    refused_on_update(
        &api,
        with("relabel", &|v| v["spec"]["regenerate"] = req(2)),
        with("relabel", &|v| {
            v["spec"]["label"] = json!("New label");
            v["spec"]["regenerate"] = json!({"primary": {"revision": 3, "confirmLabel": "New label"}});
        }),
        &["spec.label cannot change in the same update that adds or raises a regenerate, revoke or adopt request"],
    )
    .await;

    // The allowed paths stay open: label first, then the request; raising a revision.
    let step1 = with("relabel-ok", &|v| v["spec"]["regenerate"] = req(2));
    apply(&api, &step1).await.unwrap();
    let step2 = with("relabel-ok", &|v| {
        v["spec"]["label"] = json!("New label");
        v["spec"]["regenerate"] = json!({"primary": {"revision": 2, "confirmLabel": "New label"}});
    });
    apply(&api, &step2).await.unwrap();
    let step3 = with("relabel-ok", &|v| {
        v["spec"]["label"] = json!("New label");
        v["spec"]["regenerate"] = json!({"primary": {"revision": 7, "confirmLabel": "New label"}});
    });
    apply(&api, &step3).await.unwrap();
}

#[tokio::test]
async fn the_operator_never_needs_to_write_spec() {
    // The status subresource is on: a status write cannot touch spec, and a spec write
    // cannot touch status.
    let api = api("admission-status").await;
    apply(&api, &base()).await.unwrap();
    let patch = json!({"apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
        "spec": {"label": "changed through status"}, "status": {"scope": "Organization"}});
    api.patch_status(
        "ks",
        &PatchParams::apply("status-writer").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
    let stored = api.get("ks").await.unwrap();
    assert_eq!(stored.spec.label, LABEL);
    assert_eq!(
        stored.status.unwrap().scope.as_deref(),
        Some("Organization")
    );
}

fn finalizers(ks: &DataMinerKeySet) -> Vec<String> {
    ks.metadata.finalizers.clone().unwrap_or_default()
}

/// The chart's MutatingAdmissionPolicy (installed by the harness from the chart): a key set has
/// the operator's finalizer from its creation, so the operator need not patch it in; it joins
/// the finalizers the manifest lists, and a re-apply that does not list it keeps it (no field
/// manager owns it, so GitOps tools neither remove it nor show a diff).
#[tokio::test]
async fn a_new_key_set_carries_the_operators_finalizer_from_admission() {
    let api = api("finalizer").await;
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    // The API server loads a new policy asynchronously.
    let probe: DataMinerKeySet = serde_json::from_value(named(base(), "probe")).unwrap();
    common::eventually(30, "the finalizer policy in force", || async {
        let created = api.create(&dry_run, &probe).await.unwrap();
        finalizers(&created)
            .contains(&FINALIZER.to_string())
            .then_some(())
    })
    .await;

    apply(&api, &base()).await.unwrap();
    let created = api.get("ks").await.unwrap();
    assert_eq!(finalizers(&created), [FINALIZER]);
    let owned = serde_json::to_string(&created.metadata.managed_fields).unwrap();
    assert!(!owned.contains("finalizers"), "no manager owns it: {owned}");
    apply(&api, &base()).await.unwrap();
    assert_eq!(finalizers(&api.get("ks").await.unwrap()), [FINALIZER]);

    let mut own = named(base(), "own");
    own["metadata"]["finalizers"] = serde_json::json!(["example.com/hold"]);
    apply(&api, &own).await.unwrap();
    assert_eq!(
        finalizers(&api.get("own").await.unwrap()),
        ["example.com/hold", FINALIZER]
    );
}
