//! `DataMinerKeySet` status: written only by the operator, by server-side apply.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Condition types.
pub const READY: &str = "Ready";
pub const REVOKED: &str = "Revoked";
/// True while audit Events the API server refused wait in `status.pendingEvents`.
pub const AUDIT_PENDING: &str = "AuditPending";
/// The condition types this operator writes. Any other condition in status belongs to another
/// writer (an audit tool, a policy engine) and is left alone.
pub const OWN_CONDITIONS: [&str; 3] = [READY, REVOKED, AUDIT_PENDING];

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
    /// `KeysCreated`, `RegeneratePrimary`, `RegenerateSecondary`, `Revoke`, `SecretRecreated`.
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
