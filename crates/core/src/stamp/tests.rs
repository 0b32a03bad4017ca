use serde_json::json;

use super::*;

fn keyset(annotations: Value, spec: Value) -> Facts {
    let mut spec_all = json!({ "label": "CI", "scope": { "organization": { "name": "o" } } });
    spec_all
        .as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    Facts::read(&json!({ "metadata": { "annotations": annotations }, "spec": spec_all }))
}

fn regen(primary: i64, secondary: i64) -> Value {
    json!({ "regenerate": { "primary": { "revision": primary, "confirmLabel": "CI" },
                            "secondary": { "revision": secondary, "confirmLabel": "CI" } } })
}

fn run(user: &str, object: &Facts, old: Option<&Facts>) -> Stamp {
    stamp(&Request {
        user,
        object,
        old,
        add_finalizer: true,
    })
}

fn set(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

#[test]
fn a_create_names_its_user_over_any_forged_name_and_adds_the_finalizer() {
    let new = keyset(json!({ CREATED_BY_ANNOTATION: "someone-else" }), json!({}));
    let s = run("alice", &new, None);
    assert_eq!(s.annotations, set(&[(CREATED_BY_ANNOTATION, "alice")]));
    assert!(s.finalizer);
    let without = stamp(&Request {
        user: "alice",
        object: &new,
        old: None,
        add_finalizer: false,
    });
    assert!(!without.finalizer, "only when the chart asks for it");
}

#[test]
fn a_create_that_asks_for_everything_records_everything() {
    let mut spec = regen(2, 3);
    spec["revoke"] = json!({ "confirmLabel": "CI" });
    spec["adopt"] = json!({ "request": 1 });
    let s = run("bob", &keyset(json!({}), spec), None);
    assert_eq!(
        s.annotations,
        set(&[
            (CREATED_BY_ANNOTATION, "bob"),
            (PRIMARY_REQUESTED_BY_ANNOTATION, "bob (revision 2)"),
            (SECONDARY_REQUESTED_BY_ANNOTATION, "bob (revision 3)"),
            (REVOKED_BY_ANNOTATION, "bob"),
            (ADOPTED_BY_ANNOTATION, "bob (request 1)"),
        ])
    );
}

#[test]
fn only_a_rising_revision_is_recorded_and_a_re_apply_is_left_alone() {
    let stored = keyset(
        json!({ CREATED_BY_ANNOTATION: "alice", PRIMARY_REQUESTED_BY_ANNOTATION: "alice (revision 1)" }),
        regen(1, 1),
    );
    // The same manifest again (a GitOps re-sync, which keeps annotations it does not own).
    assert_eq!(
        run("argocd", &stored.clone(), Some(&stored)),
        Stamp::default()
    );
    // The secondary rises; the primary stays: only the secondary is stamped.
    let raised = keyset(
        json!({ CREATED_BY_ANNOTATION: "alice", PRIMARY_REQUESTED_BY_ANNOTATION: "alice (revision 1)" }),
        regen(1, 2),
    );
    assert_eq!(
        run("carol", &raised, Some(&stored)).annotations,
        set(&[(SECONDARY_REQUESTED_BY_ANNOTATION, "carol (revision 2)")])
    );
    // A lower revision is no request (admission refuses it anyway).
    let lowered = keyset(json!({ CREATED_BY_ANNOTATION: "alice" }), regen(1, 0));
    assert_eq!(
        run("carol", &lowered, Some(&stored)).annotations,
        set(&[(PRIMARY_REQUESTED_BY_ANNOTATION, "alice (revision 1)")]),
        "the dropped annotation is put back; nothing new is recorded"
    );
}

#[test]
fn a_replace_that_drops_the_annotations_gets_them_back() {
    let stored = keyset(
        json!({ CREATED_BY_ANNOTATION: "alice", REVOKED_BY_ANNOTATION: "dave",
                ADOPTED_BY_ANNOTATION: "erin (request 4)" }),
        json!({ "revoke": { "confirmLabel": "CI" }, "adopt": { "request": 4 } }),
    );
    let replaced = keyset(
        json!({}),
        json!({ "revoke": { "confirmLabel": "CI" }, "adopt": { "request": 4 } }),
    );
    let s = run("mallory", &replaced, Some(&stored));
    assert_eq!(
        s.annotations,
        set(&[
            (CREATED_BY_ANNOTATION, "alice"),
            (REVOKED_BY_ANNOTATION, "dave"),
            (ADOPTED_BY_ANNOTATION, "erin (request 4)"),
        ])
    );
    assert!(!s.finalizer, "an update never adds the finalizer");
}

#[test]
fn a_revoke_is_recorded_once_when_it_appears() {
    let stored = keyset(json!({ CREATED_BY_ANNOTATION: "alice" }), json!({}));
    let revoking = keyset(
        json!({ CREATED_BY_ANNOTATION: "alice" }),
        json!({ "revoke": { "confirmLabel": "CI" } }),
    );
    assert_eq!(
        run("dave", &revoking, Some(&stored)).annotations,
        set(&[(REVOKED_BY_ANNOTATION, "dave")])
    );
    // Already revoked: a later writer (a re-apply by someone else) does not take it over.
    let revoked = keyset(
        json!({ CREATED_BY_ANNOTATION: "alice", REVOKED_BY_ANNOTATION: "dave" }),
        json!({ "revoke": { "confirmLabel": "CI" } }),
    );
    assert_eq!(run("argocd", &revoked, Some(&revoked)), Stamp::default());
}

#[test]
fn odd_objects_read_as_asking_for_nothing() {
    for object in [
        json!({}),
        json!({ "metadata": { "annotations": null }, "spec": null }),
        json!({ "spec": { "regenerate": { "primary": { "revision": "2" } }, "revoke": null } }),
        json!({ "metadata": { "annotations": { CREATED_BY_ANNOTATION: 7 }, "finalizers": "x" } }),
    ] {
        let facts = Facts::read(&object);
        assert_eq!(facts, Facts::default(), "{object}");
        assert_eq!(run("u", &facts, Some(&facts)), Stamp::default());
    }
    // A finalizer already there is not added twice.
    let with = Facts::read(&json!({ "metadata": { "finalizers": [FINALIZER] } }));
    assert!(!run("u", &with, None).finalizer);
}
