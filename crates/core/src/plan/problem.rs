//! What a plan refuses or reports instead of acting, and how much each matters.

use super::{AdoptionRefusal, Slot};

/// Something the operator refuses or reports instead of acting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The spec breaks a rule the CRD should have enforced (message says which).
    InvalidSpec(String),
    /// A pending request's `confirmLabel` differs from `spec.label`.
    ConfirmationMismatch(Vec<&'static str>),
    /// A Secret of that name exists and is not the operator's: left untouched.
    SecretConflict,
    /// A slot's value is not the key the operator recorded (changed, removed, or set back).
    SecretDrift(Vec<Slot>),
    /// Warning that accompanies [`Change::SecretRecreated`](super::Change::SecretRecreated).
    SecretMissing,
    /// The API server refused a write, or did not answer in time (set by the apply layer; the
    /// text carries the server's reason).
    WriteFailed(String),
    /// New keys are needed (the Secret is gone) but these slots are at [`MAX_REVISION`](crate::api::MAX_REVISION): a key
    /// is never written at a revision it already had, so nothing is written.
    RevisionLimit(Vec<Slot>),
    /// A confirmed `spec.adopt` cannot be carried out.
    AdoptionRefused(AdoptionRefusal),
}

/// A key the Secret holds and the operator vouches for: its revision and fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub revision: i64,
    pub fingerprint: String,
}

impl Problem {
    /// Reason of its Event and of the `Ready` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::InvalidSpec(_) => "InvalidSpec",
            Problem::ConfirmationMismatch(_) => "ConfirmationMismatch",
            Problem::SecretConflict => "SecretConflict",
            Problem::SecretDrift(_) => "SecretDrift",
            Problem::SecretMissing => "SecretMissing",
            Problem::WriteFailed(_) => "SecretWriteFailed",
            Problem::RevisionLimit(_) => "RevisionLimit",
            Problem::AdoptionRefused(_) => "AdoptionRefused",
        }
    }

    /// False for a warning the same plan repairs (a missing Secret is recreated).
    pub fn blocks_readiness(&self) -> bool {
        !matches!(self, Problem::SecretMissing)
    }

    /// Which problem the `Ready` condition shows when there are several: the one the user must
    /// fix first (a spec that cannot work, then a Secret that is not ours, then a refused write,
    /// then a request to correct, then drift).
    pub fn severity(&self) -> u8 {
        match self {
            Problem::InvalidSpec(_) => 5,
            Problem::SecretConflict | Problem::RevisionLimit(_) | Problem::AdoptionRefused(_) => 4,
            Problem::WriteFailed(_) => 3,
            Problem::ConfirmationMismatch(_) => 2,
            Problem::SecretDrift(_) => 1,
            Problem::SecretMissing => 0,
        }
    }
}
