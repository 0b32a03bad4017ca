//! `POST /requester`: the AdmissionReview the API server sends for a create or update of a key
//! set, answered with the JSON patch that stamps who asked ([`crate::core::stamp`]).
//! It only ever adds annotations and the finalizer: it never refuses a request (the validating
//! policies judge), so a bug here cannot lock anyone out of their key sets.

use axum::{Json, extract::State, http::StatusCode};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
};
use serde_json::{Value, json};

use crate::{
    api::FINALIZER,
    stamp::{Facts, Request, Stamp, stamp},
};

/// What the handler needs to know besides the request.
#[derive(Clone, Copy, Debug)]
pub struct Stamping {
    pub add_finalizer: bool,
}

pub async fn requester(
    State(stamping): State<Stamping>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Result<Json<AdmissionReview<DynamicObject>>, (StatusCode, String)> {
    let req: AdmissionRequest<DynamicObject> = review.try_into().map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("not an AdmissionReview request: {e}"),
        )
    })?;
    Ok(Json(answer(&req, stamping).into_review()))
}

/// The response to one request: allowed, with a patch when something must be stamped.
pub fn answer(req: &AdmissionRequest<DynamicObject>, stamping: Stamping) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    let ours = req.kind.group == "keys.dataminer.services" && req.kind.kind == "DataMinerKeySet";
    let (Some(object), true) = (req.object.as_ref(), ours) else {
        return response;
    };
    let object = serde_json::to_value(object).unwrap_or(Value::Null);
    let old = match req.operation {
        Operation::Create => None,
        Operation::Update => req
            .old_object
            .as_ref()
            .map(|o| Facts::read(&serde_json::to_value(o).unwrap_or(Value::Null))),
        _ => return response,
    };
    if req.operation == Operation::Update && old.is_none() {
        return response;
    }
    let user = req.user_info.username.as_deref().unwrap_or("");
    let decided = stamp(&Request {
        user,
        object: &Facts::read(&object),
        old: old.as_ref(),
        add_finalizer: stamping.add_finalizer,
    });
    if decided.is_empty() {
        return response;
    }
    let patch = patch(&object, &decided);
    match serde_json::from_value::<json_patch::Patch>(patch) {
        Ok(p) => response.clone().with_patch(p).unwrap_or(response),
        Err(_) => response,
    }
}

/// The JSON patch (RFC 6902) that applies `stamp` to `object`.
fn patch(object: &Value, stamp: &Stamp) -> Value {
    let mut ops = Vec::new();
    if !stamp.annotations.is_empty() {
        if object["metadata"]["annotations"].is_object() {
            for (key, value) in &stamp.annotations {
                let path = format!("/metadata/annotations/{}", escape(key));
                ops.push(json!({ "op": "add", "path": path, "value": value }));
            }
        } else {
            let all: serde_json::Map<String, Value> = stamp
                .annotations
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
                .collect();
            ops.push(json!({ "op": "add", "path": "/metadata/annotations", "value": all }));
        }
    }
    if stamp.finalizer {
        if object["metadata"]["finalizers"].is_array() {
            ops.push(json!({ "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER }));
        } else {
            ops.push(json!({ "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] }));
        }
    }
    Value::Array(ops)
}

/// A JSON pointer token: `~` and `/` escaped (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CREATED_BY_ANNOTATION, PRIMARY_REQUESTED_BY_ANNOTATION};

    fn review(
        operation: &str,
        user: &str,
        object: Value,
        old: Option<Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0d4f",
                "kind": { "group": "keys.dataminer.services", "version": "v1alpha1", "kind": "DataMinerKeySet" },
                "resource": { "group": "keys.dataminer.services", "version": "v1alpha1", "resource": "dataminerkeysets" },
                "name": "ci", "namespace": "team-a",
                "operation": operation,
                "userInfo": { "username": user },
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn keyset(meta: Value, spec: Value) -> Value {
        json!({ "apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
                "metadata": meta, "spec": spec })
    }

    const FINALIZING: Stamping = Stamping {
        add_finalizer: true,
    };

    fn unpatched(req: &AdmissionRequest<DynamicObject>) -> bool {
        answer(req, FINALIZING).patch.is_none()
    }

    fn applied(req: &AdmissionRequest<DynamicObject>, stamping: Stamping) -> Value {
        let response = answer(req, stamping);
        assert!(response.allowed);
        let mut object = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        if let Some(bytes) = &response.patch {
            let patch: json_patch::Patch = serde_json::from_slice(bytes).unwrap();
            json_patch::patch(&mut object, &patch).unwrap();
        }
        object
    }

    #[test]
    fn a_create_gets_its_creator_and_the_finalizer_whatever_metadata_it_has() {
        for meta in [
            json!({ "name": "ci" }),
            json!({ "name": "ci", "annotations": { "team": "a" }, "finalizers": ["other/x"] }),
        ] {
            let req = review(
                "CREATE",
                "alice",
                keyset(meta, json!({ "label": "CI" })),
                None,
            );
            let out = applied(
                &req,
                Stamping {
                    add_finalizer: true,
                },
            );
            assert_eq!(
                out["metadata"]["annotations"][CREATED_BY_ANNOTATION],
                "alice"
            );
            let finalizers = out["metadata"]["finalizers"].as_array().unwrap();
            assert_eq!(finalizers.last().unwrap(), FINALIZER, "{out}");
        }
    }

    #[test]
    fn an_update_that_asks_for_nothing_gets_no_patch() {
        let stored = keyset(
            json!({ "name": "ci", "annotations": { CREATED_BY_ANNOTATION: "alice" } }),
            json!({ "label": "CI" }),
        );
        let req = review("UPDATE", "argocd", stored.clone(), Some(stored));
        assert!(unpatched(&req));
    }

    #[test]
    fn a_raised_revision_is_stamped_with_the_user() {
        let spec = |r: i64| json!({ "label": "CI", "regenerate": { "primary": { "revision": r, "confirmLabel": "CI" } } });
        let meta = json!({ "name": "ci", "annotations": { CREATED_BY_ANNOTATION: "alice" } });
        let req = review(
            "UPDATE",
            "bob",
            keyset(meta.clone(), spec(2)),
            Some(keyset(meta, spec(1))),
        );
        let out = applied(
            &req,
            Stamping {
                add_finalizer: false,
            },
        );
        assert_eq!(
            out["metadata"]["annotations"][PRIMARY_REQUESTED_BY_ANNOTATION],
            "bob (revision 2)"
        );
        assert_eq!(
            out["metadata"]["annotations"][CREATED_BY_ANNOTATION],
            "alice"
        );
    }

    #[test]
    fn other_kinds_and_deletes_pass_untouched() {
        let mut req = review(
            "CREATE",
            "alice",
            keyset(json!({ "name": "ci" }), json!({})),
            None,
        );
        req.kind.kind = "Secret".into();
        req.kind.group = String::new();
        assert!(unpatched(&req));
        let obj = keyset(json!({ "name": "ci" }), json!({}));
        let req = review("DELETE", "alice", obj.clone(), Some(obj));
        assert!(unpatched(&req));
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(
            escape("keys.dataminer.services/created-by"),
            "keys.dataminer.services~1created-by"
        );
        assert_eq!(escape("a~b/c"), "a~0b~1c");
    }
}
