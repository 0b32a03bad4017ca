//! An API server that accepts a Secret write and never answers: the reconcile must end at the
//! per-request timeout, say so in status (`SecretWriteFailed`) and a Warning Event, and hand the
//! error to the controller for backoff, instead of holding a worker forever.
//!
//! A hung server is an odd error path, hard to produce on the real one without also hanging the
//! status write that reports it, so this one test uses a scripted in-process API (tokio's paused
//! clock makes the 10 s pass at once). Refusals are proven on the real API server
//! (tests/integrity.rs).

use std::sync::{Arc, Mutex};

use dataminer_keys_operator::{
    api::DataMinerKeySet,
    controller::{self, Context, FINALIZER, REQUEST_TIMEOUT},
    error::{Error, Kind, Operation},
    metrics::Metrics,
    proof::ProofKey,
};
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

fn keyset() -> Value {
    json!({
        "apiVersion": "keys.dataminer.services/v1alpha1",
        "kind": "DataMinerKeySet",
        "metadata": {
            "name": "ks", "namespace": "ns", "uid": "keyset-uid", "generation": 1,
            "resourceVersion": "10", "finalizers": [FINALIZER]
        },
        "spec": {
            "label": "CI",
            "scope": { "organization": { "name": "org" } },
            "permissions": ["ReadCatalogItems"]
        }
    })
}

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// What the scripted API server saw: (method, path, body).
type Seen = Arc<Mutex<Vec<(Method, String, Value)>>>;

#[tokio::test(start_paused = true)]
async fn a_secret_write_that_never_answers_ends_at_the_timeout_and_is_reported() {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let service = tower::service_fn(move |req: Request<Body>| {
        let log = log.clone();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            log.lock()
                .unwrap()
                .push((method.clone(), path.clone(), body.clone()));
            let keysets =
                "/apis/keys.dataminer.services/v1alpha1/namespaces/ns/dataminerkeysets/ks";
            let response = match (method, path.as_str()) {
                (Method::GET, p) if p == keysets => respond(StatusCode::OK, &keyset()),
                (Method::GET, "/api/v1/namespaces/ns/secrets/ks-keys") => respond(
                    StatusCode::NOT_FOUND,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "secrets \"ks-keys\" not found"}),
                ),
                // The Secret write: accepted, never answered.
                (Method::POST, "/api/v1/namespaces/ns/secrets") => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                (Method::POST, p) if p.contains("/events") => respond(StatusCode::CREATED, &body),
                (Method::PATCH, p) if p == format!("{keysets}/status") => {
                    let mut ks = keyset();
                    ks["status"] = body["status"].clone();
                    respond(StatusCode::OK, &ks)
                }
                (m, p) => panic!("unexpected request {m} {p}"),
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let client = kube::Client::new(service, "ns");
    let ctx = Arc::new(Context::new(
        client,
        Arc::new(Metrics::default()),
        ProofKey::generate().unwrap(),
        Some("test".into()),
    ));
    let ks: DataMinerKeySet = serde_json::from_value(keyset()).unwrap();

    let started = tokio::time::Instant::now();
    // Without the per-request timeout the reconcile would wait for ever: give up after an hour
    // (of paused, instantly advancing time).
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(3600),
        controller::reconcile(Arc::new(ks), ctx.clone()),
    )
    .await
    .expect("the reconcile still waits for the Secret write after an hour");
    let took = started.elapsed();

    assert!(
        matches!(
            result.as_ref().map_err(Error::kind),
            Err(Kind::TimedOut(Operation::CreateSecret))
        ),
        "{result:?}"
    );
    assert!(
        took >= REQUEST_TIMEOUT && took < REQUEST_TIMEOUT * 2,
        "ended after {took:?}"
    );
    let seen = seen.lock().unwrap();
    let posted = seen
        .iter()
        .find(|(m, p, _)| m == Method::POST && p.ends_with("/secrets"))
        .expect("the Secret write was sent");
    let keys: Vec<String> = ["primaryKey", "secondaryKey"]
        .iter()
        .map(|k| posted.2["data"][k].as_str().unwrap().to_string())
        .collect();
    let status = &seen
        .iter()
        .find(|(m, p, _)| m == Method::PATCH && p.ends_with("/status"))
        .expect("status written")
        .2["status"];
    let ready = dmk_control_plane::kit::scripted::ready_condition(status);
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "SecretWriteFailed");
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains("did not answer within 10s"), "{message}");
    assert!(status.get("primary").is_none(), "nothing recorded as done");
    let event = seen
        .iter()
        .find(|(m, p, _)| m == Method::POST && p.contains("/events"))
        .expect("a Warning Event");
    assert_eq!(event.2["reason"], "SecretWriteFailed");
    assert_eq!(event.2["type"], "Warning");
    // The keys that were being written appear nowhere else (base64 as sent, and decoded).
    let others = serde_json::to_string(
        &seen
            .iter()
            .filter(|(m, p, _)| !(m == Method::POST && p.ends_with("/secrets")))
            .map(|r| &r.2)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for key in &keys {
        use base64::Engine;
        let plain = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert!(!others.contains(key.as_str()));
        assert!(!others.contains(std::str::from_utf8(&plain).unwrap()));
    }
    let metrics = ctx.metrics.render();
    assert!(
        metrics.contains("dataminer_keys_write_failures_total{operation=\"create\"} 1"),
        "{metrics}"
    );
}

// Issue 21, item 10: the finalizer's patches go through the same guard as every other write.
// Before, kube's finalizer helper sent them without the per-request bound: a patch the API
// server never answered held the worker for ever.
#[tokio::test(start_paused = true)]
async fn a_finalizer_patch_that_never_answers_ends_at_the_timeout() {
    let patched: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = patched.clone();
    let service = tower::service_fn(move |req: Request<Body>| {
        let log = log.clone();
        async move {
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let bytes = req.into_body().collect_bytes().await.unwrap();
            match (method, path.as_str()) {
                (
                    Method::PATCH,
                    "/apis/keys.dataminer.services/v1alpha1/namespaces/ns/dataminerkeysets/ks",
                ) => {
                    log.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&bytes).unwrap());
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                (m, p) => panic!("unexpected request {m} {p}"),
            }
            #[allow(unreachable_code)]
            Ok::<Response<Body>, std::convert::Infallible>(respond(StatusCode::OK, &json!({})))
        }
    });
    let ctx = Arc::new(Context::new(
        kube::Client::new(service, "ns"),
        Arc::new(Metrics::default()),
        ProofKey::generate().unwrap(),
        Some("test".into()),
    ));
    let mut ks = keyset();
    ks["metadata"]["finalizers"] = json!(["example.com/other"]);
    let ks: DataMinerKeySet = serde_json::from_value(ks).unwrap();
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(3600),
        controller::reconcile(Arc::new(ks), ctx),
    )
    .await
    .expect("the reconcile still waits for the finalizer patch after an hour");
    assert!(
        matches!(
            result.as_ref().map_err(Error::kind),
            Err(Kind::TimedOut(Operation::AddFinalizer))
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < REQUEST_TIMEOUT * 2);
    // The patch keeps the other finalizer and is conditional on the version read.
    let sent = patched.lock().unwrap();
    assert_eq!(
        sent[0]["metadata"],
        json!({ "finalizers": ["example.com/other", FINALIZER], "resourceVersion": "10" })
    );
}
