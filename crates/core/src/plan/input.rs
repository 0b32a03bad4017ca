//! What the plan looks at: the key set's spec and record, and what its Secret holds.

use crate::api::{DataMinerKeySetSpec, DataMinerKeySetStatus};

/// What one slot of the Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSeen {
    /// Revision annotation on the Secret, if present and a number (a hint).
    pub revision: Option<i64>,
    /// Fingerprint of the stored value; `None` when the data key is missing.
    pub fingerprint: Option<String>,
    /// The revision at which the operator's proof of this value verifies; `None` when the value
    /// is missing or nobody can show the operator wrote it.
    pub proven: Option<i64>,
}

/// What the Secret named by the key set looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSeen {
    Absent,
    Present {
        uid: String,
        slots: [SlotSeen; 2],
        /// Labels, annotations (revision and proof annotations aside), type and controller
        /// owner reference already as desired, and proofs of the current scheme for the
        /// recorded lineage.
        layout_in_sync: bool,
        /// The lineage the Secret's proofs were verified for (`None` when no current proof
        /// verified: 0.1.0's proofs, or none).
        lineage: Option<String>,
        /// A controller owner reference names this key set (a hint: it tells a Secret written
        /// by this key set before a crash from one restored from a backup).
        controlled: bool,
        /// Its lineage was revoked, or deleted through a finalizer: never adopted.
        tombstoned: bool,
    },
}

impl SecretSeen {
    /// True when a value in it is proven to be a key the operator wrote for this key set's
    /// name (at any revision, of any lineage): a copy revocation and deletion must destroy.
    pub fn holds_a_key(&self) -> bool {
        match self {
            SecretSeen::Absent => false,
            SecretSeen::Present { slots, .. } => slots.iter().any(|s| s.proven.is_some()),
        }
    }
}

/// Everything the plan looks at.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    /// `metadata.name` of the key set.
    pub name: &'a str,
    pub spec: &'a DataMinerKeySetSpec,
    pub status: &'a DataMinerKeySetStatus,
    /// The Secret name the spec asks for (`spec.secret.name` or `<name>-keys`).
    pub secret_name: &'a str,
    pub secret: SecretSeen,
    /// Label and annotation key prefixes refused in `spec.secret` besides the built-in ones
    /// (the chart's `secretMetadata.deniedPrefixes`).
    pub denied_prefixes: &'a [String],
}
