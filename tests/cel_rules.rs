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

#[test]
fn an_adoption_is_confirmed_and_its_request_only_goes_up() {
    refused(
        &keyset(|v| v["spec"]["adopt"] = json!({"request": 1, "confirmLabel": "CI"})),
        "spec.adopt.confirmLabel must repeat the label exactly to confirm: set it to \\\"CI pipeline\\\"",
    );
    let adopt = |request: i64| {
        keyset(|v| v["spec"]["adopt"] = json!({"request": request, "confirmLabel": LABEL}))
    };
    validate_cel(&adopt(1)).unwrap();
    validate_cel_update(&adopt(2), &adopt(1)).expect("a raise asks again");
    let err = validate_cel_update(&adopt(1), &adopt(2)).expect_err("a request cannot decrease");
    assert!(format!("{err:?}").contains("spec.adopt.request cannot decrease"));
    let relabelled = keyset(|v| {
        v["spec"]["label"] = json!("renamed");
        v["spec"]["adopt"] = json!({"request": 2, "confirmLabel": "renamed"});
    });
    assert!(
        validate_cel_update(&relabelled, &adopt(1)).is_err(),
        "a label change cannot come with a raised request"
    );
}
