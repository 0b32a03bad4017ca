//! `DataMinerKeySet` status: written only by the operator, by server-side apply.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The `reportingController` of the operator's Events: `kubectl dmkeys describe` shows only
/// those as the audit trail.
pub const REPORTING_CONTROLLER: &str = "dataminer-keys-operator";

/// Between the problems the `Ready` message names (the most severe first).
pub const ALSO: &str = " Also: ";
/// What a `SecretDrift` problem says in the `Ready` message after "the <slots> key in Secret
/// <name>": the plugin reads the drifted slots from it.
pub const DRIFT_PHRASE: &str =
    " is not the key the operator recorded (changed, removed or set back outside the operator)";

/// The slots a `Ready` message reports as drifted (`kubectl dmkeys show` refuses them), also
/// when drift is not the first problem it names.
pub fn drifted_slots(ready_message: &str) -> Vec<super::Slot> {
    let Some(part) = ready_message
        .split(ALSO)
        .find(|p| p.starts_with("the ") && p.contains(DRIFT_PHRASE))
    else {
        return Vec::new();
    };
    let named = part["the ".len()..]
        .split(" key in Secret ")
        .next()
        .unwrap_or_default();
    super::Slot::BOTH
        .into_iter()
        .filter(|s| named.split(" and ").any(|n| n == s.name()))
        .collect()
}

/// Condition types.
pub const READY: &str = "Ready";
pub const REVOKED: &str = "Revoked";
/// True while audit Events the API server refused wait in `status.pendingEvents`.
pub const AUDIT_PENDING: &str = "AuditPending";
/// kstatus's abnormal-true conditions, present only while true: the operator still has work it
/// will do on its own (`Reconciling`), or waits for a person (`Stalled`).
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
/// The condition types this operator writes. Any other condition in status belongs to another
/// writer (an audit tool, a policy engine) and is left alone.
pub const OWN_CONDITIONS: [&str; 5] = [READY, REVOKED, RECONCILING, STALLED, AUDIT_PENDING];

/// What the operator last did and saw. Fingerprints are short SHA-256 prefixes, never keys.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DataMinerKeySetStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Organization` or `System` (shown by `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Organization or system name (shown by `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The Secret that holds the keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// The uid of the Secret the operator created: any other Secret of that name is not its own,
    /// whatever owner reference it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_uid: Option<String>,
    /// The keys' lineage: a random id drawn with the set's first keys and kept through
    /// rotations, recreations and restores; the operator's proofs are bound to it, and a
    /// revoked lineage is never adopted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// When the keys were first generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// Who created the key set: the user the chart's admission policy recorded, `unknown`
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<KeyStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary: Option<KeyStatus>,
    /// When the key set was revoked; it never gets keys again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Time>,
    /// Who revoked it: the user the chart's admission policy recorded, `unknown` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// The last `spec.adopt.request` honoured: a request at or below it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_request: Option<i64>,
    /// `Ready` and `Revoked`, following Kubernetes API conventions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The most recent actions, newest first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Audit Events the API server refused (a rate limit, a quota, an admission policy), oldest
    /// first: published later with backoff, each once, then removed. The change itself is
    /// already in the keys and history above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_events: Vec<PendingEvent>,
}

/// An audit Event not yet published.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PendingEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub action: String,
    /// The Event's note: fingerprints and revisions, never a key.
    pub note: String,
    /// When the operator first tried to publish it.
    pub at: Time,
}

/// One key slot as last generated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    pub revision: i64,
    pub generated_at: Time,
    /// `sha256:` + the first 8 hex characters of SHA-256 of the key.
    pub fingerprint: String,
}

/// An audited action.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// `KeysCreated`, `RegeneratePrimary`, `RegenerateSecondary`, `Revoke`, `SecretRecreated`,
    /// `KeysAdopted`, `Adopt`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    pub at: Time,
    /// The user whose request this was, as the API server authenticated it and the chart's
    /// admission policy recorded it; `unknown` without that policy; absent when nobody asked
    /// (a Secret recreated after it was deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Unverified: the `keys.dataminer.services/on-behalf-of` annotation the key set carried
    /// (for example the Git commit author a pipeline sets). Anyone who may edit the key set can
    /// write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}
