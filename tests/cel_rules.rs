//! The CRD's CEL rules evaluated client-side (kube's `cel` feature): no API server, so they
//! run in milliseconds and pin down each rule. `tests/admission.rs` proves the same rules on
//! the real API server, where cost limits and messages are the real ones.

use dataminer_keys_operator::api::DataMinerKeySet;
use kube::core::cel::{validate_cel, validate_cel_update};
use serde_json::{Value, json};

const LABEL: &str = "CI pipeline";

fn keyset(edit: impl FnOnce(&mut Value)) -> DataMinerKeySet {
    let mut v = json!({
        "apiVersion": "keys.dataminer.services/v1alpha1",
        "kind": "DataMinerKeySet",
        "metadata": { "name": "ks", "namespace": "ns" },
        "spec": {
            "label": LABEL,
            "scope": { "organization": { "name": "org" } },
            "permissions": ["RegisterCatalogItems"]
        }
    });
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

fn refused(ks: &DataMinerKeySet, expected: &str) {
    let err = validate_cel(ks).expect_err("the rules must refuse this");
    let text = format!("{err:?}");
    assert!(text.contains(expected), "expected {expected:?} in {text}");
}

#[test]
fn a_valid_key_set_passes() {
    validate_cel(&keyset(|_| {})).unwrap();
    validate_cel(&keyset(|v| {
        v["spec"]["regenerate"] = json!({"primary": {"revision": 2, "confirmLabel": LABEL}});
        v["spec"]["revoke"] = json!({"confirmLabel": LABEL});
    }))
    .unwrap();
}

#[test]
fn scope_and_permissions_rules() {
    refused(
        &keyset(|v| v["spec"]["scope"] = json!({})),
        "exactly one of organization",
    );
    refused(
        &keyset(|v| v["spec"]["scope"]["system"] = json!({"name": "dms"})),
        "exactly one of organization",
    );
    refused(
        &keyset(|v| v["spec"]["permissions"] = json!([])),
        "at least one permission",
    );
    refused(
        &keyset(|v| v["spec"]["scope"] = json!({"system": {"name": "dms"}})),
        "takes no permissions",
    );
}

#[test]
fn confirmations_must_repeat_the_label() {
    refused(
        &keyset(|v| {
            v["spec"]["regenerate"] =
                json!({"secondary": {"revision": 2, "confirmLabel": "ci pipeline"}})
        }),
        "spec.regenerate.secondary.confirmLabel",
    );
    refused(
        &keyset(|v| v["spec"]["revoke"] = json!({"confirmLabel": ""})),
        "spec.revoke.confirmLabel",
    );
}

#[test]
fn transition_rules() {
    let old = keyset(|v| {
        v["spec"]["regenerate"] = json!({"primary": {"revision": 3, "confirmLabel": LABEL}});
        v["spec"]["revoke"] = json!({"confirmLabel": LABEL});
    });
    let lower = keyset(|v| {
        v["spec"]["regenerate"] = json!({"primary": {"revision": 2, "confirmLabel": LABEL}});
        v["spec"]["revoke"] = json!({"confirmLabel": LABEL});
    });
    assert!(
        validate_cel_update(&lower, &old).is_err(),
        "a revision cannot decrease"
    );
    let unrevoked = keyset(|v| {
        v["spec"]["regenerate"] = json!({"primary": {"revision": 3, "confirmLabel": LABEL}})
    });
    assert!(
        validate_cel_update(&unrevoked, &old).is_err(),
        "revoke cannot be removed"
    );
    let rescoped = keyset(|v| v["spec"]["scope"]["organization"]["name"] = json!("other"));
    assert!(
        validate_cel_update(&rescoped, &keyset(|_| {})).is_err(),
        "scope is immutable"
    );
    validate_cel_update(&old, &old).expect("re-applying the same spec is fine");
}
