//! The audited actions a plan performs or finds performed.

use crate::api::Slot;

/// An audited action: becomes an Event, a history entry and a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// First keys of the set.
    KeysCreated,
    /// A requested regeneration of one slot, to `revision`. `found` is the fingerprint of a key
    /// this plan found already written (a crash before its status write); `None` when this plan
    /// generates it.
    Regenerated {
        slot: Slot,
        revision: i64,
        found: Option<String>,
    },
    /// The operator's Secret was gone; both keys were generated anew.
    SecretRecreated,
    /// Both keys destroyed for good.
    Revoked,
    /// Keys the operator proved it wrote for this key set's name and lineage, found in a Secret
    /// it has no record of (a restore from backup, a hand re-create): taken as they are.
    KeysAdopted,
    /// The values in the Secret taken as the keys on a confirmed `spec.adopt` request, without
    /// proof (a lost proof key).
    Adopt { request: i64 },
}

impl Change {
    /// Name in history and log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Change::KeysCreated => "KeysCreated",
            Change::Regenerated {
                slot: Slot::Primary,
                ..
            } => "RegeneratePrimary",
            Change::Regenerated {
                slot: Slot::Secondary,
                ..
            } => "RegenerateSecondary",
            Change::SecretRecreated => "SecretRecreated",
            Change::Revoked => "Revoke",
            Change::KeysAdopted => "KeysAdopted",
            Change::Adopt { .. } => "Adopt",
        }
    }

    /// Reason of its Event.
    pub fn event_reason(&self) -> &'static str {
        match self {
            Change::KeysCreated => "KeysCreated",
            Change::Regenerated {
                slot: Slot::Primary,
                ..
            } => "PrimaryKeyRegenerated",
            Change::Regenerated {
                slot: Slot::Secondary,
                ..
            } => "SecondaryKeyRegenerated",
            Change::SecretRecreated => "SecretMissing",
            Change::Revoked => "KeysRevoked",
            Change::KeysAdopted => "KeysAdopted",
            Change::Adopt { .. } => "KeysAdoptedOnRequest",
        }
    }
}
