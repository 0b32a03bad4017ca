//! What one reconcile sends, request by request, against a scripted API (the test kit's
//! `kit::scripted`): fast, and exact where the real-API suites and the bench only count. Each
//! test lists the requests in order; anything else, or anything left out, fails it.
//!
//! The controller runs here without its watches: most tests leave it so, and each reconcile
//! then reads the Secret once. `the_request_budget_with_the_watches` feeds it the Secret watch's
//! events (a test hook) and holds the budget the bench checks on the real API server: 3 writes
//! and no read for a new set, nothing at rest, 1 read per rotation.

mod common;

use std::sync::Arc;

use common::scripted::{ScriptedApi, ready_condition, status};
use dataminer_keys_operator::{
    api::DataMinerKeySet,
    controller::{self, Context, FINALIZER},
    error::{Error, Kind, WriteError},
    metrics::Metrics,
    proof::ProofKey,
};
use http::Method;
use k8s_openapi::api::core::v1::Secret;
use kube::{core::PartialObjectMeta, runtime::watcher};
use serde_json::{Value, json};

const STATUS: &str =
    "/apis/keys.dataminer.services/v1alpha1/namespaces/ns/dataminerkeysets/ks/status";
const SECRETS: &str = "/api/v1/namespaces/ns/secrets";
const SECRET: &str = "/api/v1/namespaces/ns/secrets/ks-keys";
const REVOKED: &str = "/api/v1/namespaces/ns/secrets/dataminer-keys-operator-revoked";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";
const LABEL: &str = "CI";

/// Key set `ks` as stored: with the finalizer, `status` as given, and a primary request at
/// `primary` (none when 1).
fn keyset(status: &Value, primary: i64) -> Value {
    let mut ks = json!({
        "apiVersion": "keys.dataminer.services/v1alpha1",
        "kind": "DataMinerKeySet",
        "metadata": {
            "name": "ks", "namespace": "ns", "uid": "keyset-uid", "generation": primary,
            "resourceVersion": "10", "finalizers": [FINALIZER]
        },
        "spec": {
            "label": LABEL,
            "scope": { "organization": { "name": "org" } },
            "permissions": ["ReadCatalogItems"]
        },
        "status": status
    });
    if primary > 1 {
        ks["spec"]["regenerate"] =
            json!({ "primary": { "revision": primary, "confirmLabel": LABEL } });
    }
    ks
}

fn context(api: &ScriptedApi) -> Arc<Context> {
    Arc::new(Context::new(
        api.client("ns"),
        Arc::new(Metrics::default()),
        ProofKey::generate().unwrap(),
        Some("test".into()),
    ))
}

async fn reconcile(ks: &Value, ctx: &Arc<Context>) -> Result<(), Error> {
    let ks: DataMinerKeySet = serde_json::from_value(ks.clone()).unwrap();
    controller::reconcile(Arc::new(ks), ctx.clone())
        .await
        .map(|_| ())
}

/// The Secret as the API server stores a create or an apply: with a uid and a version.
fn stored(body: &Value, resource_version: &str) -> Value {
    let mut secret = body.clone();
    secret["metadata"]["uid"] = json!("secret-uid");
    secret["metadata"]["resourceVersion"] = json!(resource_version);
    secret
}

/// The resourceVersion the last read of the Secret asked for (`None`: the latest).
fn read_at(api: &ScriptedApi) -> Option<String> {
    let query = api
        .last_query(Method::GET, SECRET)
        .expect("a read of the Secret");
    query
        .split('&')
        .find_map(|p| p.strip_prefix("resourceVersion="))
        .map(String::from)
}

fn not_found() -> (u16, Value) {
    (
        404,
        status(404, "NotFound", "secrets \"ks-keys\" not found"),
    )
}

/// The status apply as the API server answers it: the key set with that status.
fn status_echo(ks: Value) -> impl Fn(&Value) -> (u16, Value) + Send + Sync {
    move |body| {
        let mut ks = ks.clone();
        ks["status"] = body["status"].clone();
        (200, ks)
    }
}

fn last_body(api: &ScriptedApi, method: Method, path: &str) -> Value {
    api.seen()
        .into_iter()
        .rfind(|(m, p, _)| *m == method && p == path)
        .map(|(_, _, body)| body)
        .unwrap_or_else(|| panic!("no {method} {path}"))
}

fn ready(status: &Value) -> (String, String) {
    let ready = ready_condition(status);
    (
        ready["status"].as_str().unwrap().into(),
        ready["reason"].as_str().unwrap().into(),
    )
}

/// A new key set reconciled once, without the watches: GET (none), POST Secret, POST Event,
/// status apply. Returns the Secret as stored and the status as written.
async fn create_new_set(api: &ScriptedApi, ctx: &Arc<Context>) -> (Value, Value) {
    let new = keyset(&Value::Null, 1);
    api.expect(Method::GET, SECRET, |_| not_found())
        .expect(Method::POST, SECRETS, |b| (201, stored(b, "1")))
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::PATCH, STATUS, status_echo(new.clone()));
    reconcile(&new, ctx).await.unwrap();
    api.assert_done();
    let created = stored(&last_body(api, Method::POST, SECRETS), "1");
    let recorded = last_body(api, Method::PATCH, STATUS)["status"].clone();
    (created, recorded)
}

/// The primary regenerated to revision 2: one GET (the secondary's value to keep), the Secret
/// applied, one Event, the status apply. Returns the status as written.
async fn rotate_primary(
    api: &ScriptedApi,
    ctx: &Arc<Context>,
    secret: &Value,
    recorded: &Value,
) -> Value {
    let rotating = keyset(recorded, 2);
    let secret = secret.clone();
    api.expect(Method::GET, SECRET, move |_| (200, secret.clone()))
        .expect(Method::PATCH, SECRET, |b| (200, stored(b, "2")))
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::PATCH, STATUS, status_echo(rotating.clone()));
    reconcile(&rotating, ctx).await.unwrap();
    api.assert_done();
    let rotated = last_body(api, Method::PATCH, STATUS)["status"].clone();
    assert_eq!(rotated["primary"]["revision"], 2);
    rotated
}

// A new key set: the Secret created, one Event, one status apply. At rest: no write.
// A rotation: one read (the values to keep), the Secret applied, one Event, one status apply.
#[tokio::test]
async fn a_new_set_a_set_at_rest_and_a_rotation() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let (created, recorded) = create_new_set(&api, &ctx).await;
    assert_eq!(ready(&recorded), ("True".into(), "KeysReady".into()));
    assert_eq!(
        last_body(&api, Method::POST, EVENTS)["reason"],
        "KeysCreated"
    );

    // At rest (the key set as the status apply left it): the Secret read (without the watch,
    // nothing says it is unchanged) and not a single write.
    let secret = created.clone();
    api.expect(Method::GET, SECRET, move |_| (200, secret.clone()));
    reconcile(&keyset(&recorded, 1), &ctx).await.unwrap();
    api.assert_done();

    // A rotation of the primary to revision 2. Without the watch, the latest version is read.
    let rotated = rotate_primary(&api, &ctx, &created, &recorded).await;
    assert_eq!(read_at(&api), None);
    assert_eq!(rotated["secondary"], recorded["secondary"], "untouched");
    assert_eq!(
        last_body(&api, Method::POST, EVENTS)["reason"],
        "PrimaryKeyRegenerated"
    );
}

// A refused Secret write: reported once (a Warning Event and the Ready condition), nothing
// recorded as done, and the error goes back to the controller for the retry with backoff.
#[tokio::test]
async fn a_refused_secret_write_is_reported_and_retried() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let new = keyset(&Value::Null, 1);
    api.expect(Method::GET, SECRET, |_| not_found())
        .expect(Method::POST, SECRETS, |_| {
            (403, status(403, "Forbidden", "secrets is forbidden: quota"))
        })
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::PATCH, STATUS, status_echo(new.clone()));
    let result = reconcile(&new, &ctx).await;
    api.assert_done();
    assert!(
        matches!(result, Err(Error::Write(WriteError::Refused { .. }))),
        "{result:?}"
    );
    let event = last_body(&api, Method::POST, EVENTS);
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("SecretWriteFailed"))
    );
    let recorded = last_body(&api, Method::PATCH, STATUS)["status"].clone();
    assert_eq!(
        ready(&recorded),
        ("False".into(), "SecretWriteFailed".into())
    );
    assert!(
        recorded.get("primary").is_none(),
        "nothing recorded as done"
    );
}

// A conflict (the name taken between the read and the create): nothing reported, nothing
// recorded; the reconcile ends for a quick retry that reads again.
#[tokio::test]
async fn a_conflict_reports_nothing_and_reads_again() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let new = keyset(&Value::Null, 1);
    api.expect(Method::GET, SECRET, |_| not_found())
        .expect(Method::POST, SECRETS, |_| {
            (
                409,
                status(409, "AlreadyExists", "secrets \"ks-keys\" already exists"),
            )
        });
    let result = reconcile(&new, &ctx).await;
    api.assert_done();
    assert!(
        matches!(result.as_ref().map_err(Error::kind), Err(Kind::Changed)),
        "{result:?}"
    );

    // The retry reads the Secret again (someone else's now): a conflict, reported.
    let foreign = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "ks-keys", "namespace": "ns", "uid": "other", "resourceVersion": "5" },
        "data": { "primaryKey": "YQ==", "secondaryKey": "Yg==" }
    });
    api.expect(Method::GET, SECRET, move |_| (200, foreign.clone()))
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::PATCH, STATUS, status_echo(new.clone()));
    reconcile(&new, &ctx).await.unwrap();
    api.assert_done();
    let recorded = last_body(&api, Method::PATCH, STATUS)["status"].clone();
    assert_eq!(ready(&recorded), ("False".into(), "SecretConflict".into()));
}

// A refused Event: status is written anyway, with the change in it and the Event kept in
// status.pendingEvents under an AuditPending condition, for a later retry.
#[tokio::test]
async fn a_refused_event_still_writes_status() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let new = keyset(&Value::Null, 1);
    api.expect(Method::GET, SECRET, |_| not_found())
        .expect(Method::POST, SECRETS, |b| (201, stored(b, "1")))
        .expect(Method::POST, EVENTS, |_| {
            (403, status(403, "Forbidden", "events are refused here"))
        })
        .expect(Method::PATCH, STATUS, status_echo(new.clone()));
    reconcile(&new, &ctx).await.ok();
    api.assert_done();
    let recorded = last_body(&api, Method::PATCH, STATUS)["status"].clone();
    assert_eq!(recorded["primary"]["revision"], 1, "the keys are recorded");
    assert_eq!(recorded["pendingEvents"][0]["reason"], "KeysCreated");
    let pending = recorded["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "AuditPending")
        .expect("AuditPending");
    assert_eq!(pending["status"], "True");
}

/// The Secret watch's event for `secret` as stored.
fn watched(secret: &Value) -> watcher::Event<PartialObjectMeta<Secret>> {
    let meta: PartialObjectMeta<Secret> = PartialObjectMeta {
        metadata: serde_json::from_value(secret["metadata"].clone()).unwrap(),
        ..Default::default()
    };
    watcher::Event::Apply(meta)
}

/// A new key set reconciled once with the watches listed (no Secret of ours in the namespace):
/// POST Secret, POST Event, status apply; then the Secret's watch event of that write. Returns
/// the Secret as stored and the status as written.
async fn create_watched_set(api: &ScriptedApi, ctx: &Arc<Context>) -> (Value, Value) {
    ctx.follow_secret_watch(&watcher::Event::Init);
    ctx.follow_secret_watch(&watcher::Event::InitDone);
    let new = keyset(&Value::Null, 1);
    api.expect(Method::POST, SECRETS, |b| (201, stored(b, "1")))
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::PATCH, STATUS, status_echo(new.clone()));
    reconcile(&new, ctx).await.unwrap();
    api.assert_done();
    let created = stored(&last_body(api, Method::POST, SECRETS), "1");
    let recorded = last_body(api, Method::PATCH, STATUS)["status"].clone();
    ctx.follow_secret_watch(&watched(&created));
    (created, recorded)
}

// With the watches (their events fed by hand): the budget. A new set: POST Secret, POST Event,
// apply status, no GET. At rest, the Secret's watch event of our own write included: not a
// single request. A rotation: one GET (the value to keep) of the watched version or newer, then
// the three writes.
#[tokio::test]
async fn the_request_budget_with_the_watches() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let (created, recorded) = create_watched_set(&api, &ctx).await;
    assert_eq!(
        api.sequence(),
        [
            format!("POST {SECRETS}"),
            format!("POST {EVENTS}"),
            format!("PATCH {STATUS}")
        ]
    );

    let before = api.seen().len();
    for _ in 0..3 {
        reconcile(&keyset(&recorded, 1), &ctx).await.unwrap();
    }
    api.assert_done();
    assert_eq!(api.seen().len(), before, "nothing at rest");

    rotate_primary(&api, &ctx, &created, &recorded).await;
    // The read asks for the version the watch holds, or newer: the API server's watch cache
    // answers it, not etcd.
    assert_eq!(read_at(&api), Some("1".into()));
}

// A rotation whose read of the watched version finds this API server's watch cache behind (504,
// as another replica of the API server may answer): the latest version is read at once, with no
// error reported, and the rotation goes on.
#[tokio::test]
async fn a_watch_cache_behind_is_read_past() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let (created, recorded) = create_watched_set(&api, &ctx).await;

    let rotating = keyset(&recorded, 2);
    let secret = created.clone();
    let too_large = "Too large resource version: 1, current: 0";
    api.expect(Method::GET, SECRET, move |_| {
        (504, status(504, "Timeout", too_large))
    })
    .expect(Method::GET, SECRET, move |_| (200, secret.clone()))
    .expect(Method::PATCH, SECRET, |b| (200, stored(b, "2")))
    .expect(Method::POST, EVENTS, |b| (201, b.clone()))
    .expect(Method::PATCH, STATUS, status_echo(rotating.clone()));
    reconcile(&rotating, &ctx).await.unwrap();
    api.assert_done();
    assert_eq!(read_at(&api), None, "the second read asks for the latest");
    let rotated = last_body(&api, Method::PATCH, STATUS)["status"].clone();
    assert_eq!(rotated["primary"]["revision"], 2);
    assert_eq!(ready(&rotated).0, "True");
}

// A key set being deleted: its Secret read (for its lineage and uid), a dry-run Event asking
// whether the namespace is going, the lineage tombstoned (read, then created), the Secret
// deleted on its uid only, then the finalizer removed on the version read.
#[tokio::test]
async fn a_deleted_set_tombstones_its_lineage_then_deletes_its_secret_then_lets_go() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let (created, recorded) = create_new_set(&api, &ctx).await;
    let lineage = recorded["lineage"].as_str().expect("a lineage").to_string();

    let mut deleting = keyset(&recorded, 1);
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-02T10:00:00Z");
    deleting["metadata"]["finalizers"] = json!(["example.com/other", FINALIZER]);
    const KEYSET: &str = "/apis/keys.dataminer.services/v1alpha1/namespaces/ns/dataminerkeysets/ks";
    let secret = created.clone();
    let answered = deleting.clone();
    api.expect(Method::GET, SECRET, move |_| (200, secret.clone()))
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::GET, REVOKED, |_| not_found())
        .expect(Method::GET, REVOKED, |_| not_found())
        .expect(Method::POST, SECRETS, |b| (201, stored(b, "7")))
        .expect(Method::DELETE, SECRET, |_| (200, status(200, "", "")))
        .expect(Method::PATCH, KEYSET, move |_| (200, answered.clone()));
    reconcile(&deleting, &ctx).await.unwrap();
    api.assert_done();

    let tombstones = last_body(&api, Method::POST, SECRETS);
    assert_eq!(
        tombstones["metadata"]["name"],
        "dataminer-keys-operator-revoked"
    );
    let written = base64_decode(tombstones["data"]["lineages"].as_str().unwrap());
    assert_eq!(written, format!("{lineage}\n"));
    let delete = last_body(&api, Method::DELETE, SECRET);
    assert_eq!(delete["preconditions"]["uid"], "secret-uid");
    let patch = last_body(&api, Method::PATCH, KEYSET);
    assert_eq!(
        patch["metadata"],
        json!({ "finalizers": ["example.com/other"], "resourceVersion": "10" })
    );
}

fn base64_decode(text: &str) -> String {
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    )
    .unwrap()
}

// The status write refused with 409 (the key set changed meanwhile): a quick retry, which reads
// the Secret, finds the keys it wrote and records them; nothing is generated twice.
#[tokio::test]
async fn a_status_conflict_is_retried_and_records_what_was_written() {
    let api = ScriptedApi::new();
    let ctx = context(&api);
    let new = keyset(&Value::Null, 1);
    api.expect(Method::GET, SECRET, |_| not_found())
        .expect(Method::POST, SECRETS, |b| (201, stored(b, "1")))
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::PATCH, STATUS, |_| {
            (409, status(409, "Conflict", "the object has been modified"))
        });
    let result = reconcile(&new, &ctx).await;
    api.assert_done();
    assert!(
        matches!(result.as_ref().map_err(Error::kind), Err(Kind::Changed)),
        "{result:?}"
    );
    let created = stored(&last_body(&api, Method::POST, SECRETS), "1");
    let fingerprint_event = last_body(&api, Method::POST, EVENTS)["note"].clone();

    // Not yet recorded: its proven lineage is checked against the revoked ones first.
    let secret = created.clone();
    api.expect(Method::GET, SECRET, move |_| (200, secret.clone()))
        .expect(Method::GET, REVOKED, |_| not_found())
        .expect(Method::POST, EVENTS, |b| (201, b.clone()))
        .expect(Method::PATCH, STATUS, status_echo(new.clone()));
    reconcile(&new, &ctx).await.unwrap();
    api.assert_done();
    let recorded = last_body(&api, Method::PATCH, STATUS)["status"].clone();
    assert_eq!(ready(&recorded), ("True".into(), "KeysReady".into()));
    assert_eq!(recorded["secretUid"], "secret-uid");
    assert_eq!(
        last_body(&api, Method::POST, EVENTS)["note"],
        fingerprint_event,
        "the same keys, announced again (at least once), not new ones"
    );
}
