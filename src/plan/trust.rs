//! Whose a Secret is, and how far each of its values can be trusted (docs/design.md, Trust).

use super::{SecretSeen, SlotSeen};
use crate::api::{DataMinerKeySetStatus, KeyStatus, Slot};

/// Whose a Secret of the key set's name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ownership {
    /// The one recorded in status.
    Recorded,
    /// Written by the operator just before a crash, not yet in status: the first keys of the
    /// set, or the recreation of a deleted Secret.
    Unrecorded,
    /// Anyone else's.
    Foreign,
}

pub(super) fn ownership(
    status: &DataMinerKeySetStatus,
    uid: &str,
    slots: &[SlotSeen; 2],
) -> Ownership {
    if status.secret_uid.as_deref() == Some(uid) {
        return Ownership::Recorded;
    }
    // Only the operator can prove values; both proven above what status records means the
    // operator wrote this Secret after its last status write.
    let proven_above_record = Slot::BOTH.iter().all(|&slot| {
        let proven = slots[slot.index()].proven;
        match status.slot(slot) {
            Some(k) => proven.is_some_and(|r| r > k.revision),
            None => proven.is_some(),
        }
    });
    if proven_above_record {
        Ownership::Unrecorded
    } else {
        Ownership::Foreign
    }
}

/// True when the Secret seen is the operator's own (recorded, or written just before a crash).
pub fn is_operators(status: &DataMinerKeySetStatus, seen: &SecretSeen) -> bool {
    match seen {
        SecretSeen::Absent => false,
        SecretSeen::Present { uid, slots, .. } => {
            ownership(status, uid, slots) != Ownership::Foreign
        }
    }
}

/// How far a slot of the operator's Secret can be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Trust {
    /// The recorded key, at this revision.
    Recorded(i64),
    /// A key the operator wrote after the record (a crash before the status write).
    Found { revision: i64, fingerprint: String },
    /// Not the recorded key, and nothing shows the operator wrote it.
    Drift,
}

pub(super) fn trust(seen: &SlotSeen, recorded: Option<&KeyStatus>) -> Trust {
    match (&seen.fingerprint, seen.proven, recorded) {
        (Some(fp), Some(r), Some(k)) if r == k.revision && *fp == k.fingerprint => {
            Trust::Recorded(r)
        }
        (Some(fp), Some(r), k) if k.is_none_or(|k| r > k.revision) => Trust::Found {
            revision: r,
            fingerprint: fp.clone(),
        },
        _ => Trust::Drift,
    }
}
