//! Whose a Secret is, and how far each of its values can be trusted (docs/design.md, Trust).

use super::{SecretSeen, SlotSeen};
use crate::api::{DataMinerKeySetStatus, KeyStatus, Slot};

/// Whose a Secret of the key set's name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ownership {
    /// The one recorded in status.
    Recorded,
    /// Written by this key set just before a crash, not yet in status: the first keys of the
    /// set, or the recreation of a deleted Secret.
    Unrecorded,
    /// Not the recorded Secret, but holding keys the operator proves it wrote for this key
    /// set's name and lineage: restored from a backup (the key set without status), or
    /// re-created by hand with the recorded keys. Taken as they are.
    Adopted,
    /// Anyone else's.
    Foreign,
}

pub(super) fn ownership(status: &DataMinerKeySetStatus, seen: &SecretSeen) -> Ownership {
    let SecretSeen::Present {
        uid,
        slots,
        lineage,
        controlled,
        tombstoned,
        ..
    } = seen
    else {
        return Ownership::Foreign;
    };
    if status.secret_uid.as_deref() == Some(uid) {
        return Ownership::Recorded;
    }
    // Keys of a revoked or deleted set never come back, and another generation of the name is
    // not this one.
    if *tombstoned || (status.lineage.is_some() && lineage.is_some() && status.lineage != *lineage)
    {
        return Ownership::Foreign;
    }
    let recorded = status.primary.is_some() || status.secondary.is_some();
    // Only the operator can prove values; both proven above what status records means the
    // operator wrote this Secret after its last status write, or (no record at all, and not
    // written by this key set) that it comes from a backup.
    let proven_above_record = Slot::BOTH.iter().all(|&slot| {
        let proven = slots[slot.index()].proven;
        match status.slot(slot) {
            Some(k) => proven.is_some_and(|r| r > k.revision),
            None => proven.is_some(),
        }
    });
    if proven_above_record {
        return match recorded || *controlled {
            true => Ownership::Unrecorded,
            false => Ownership::Adopted,
        };
    }
    // The recorded keys themselves, proven, in a Secret of another uid: a copy.
    let copy_of_record = Slot::BOTH.iter().all(|&slot| {
        let seen = &slots[slot.index()];
        status.slot(slot).is_some_and(|k| {
            seen.proven == Some(k.revision) && seen.fingerprint.as_ref() == Some(&k.fingerprint)
        })
    });
    match copy_of_record {
        true => Ownership::Adopted,
        false => Ownership::Foreign,
    }
}

/// True when the Secret seen is the operator's own (recorded, written just before a crash, or
/// one it would adopt).
pub fn is_operators(status: &DataMinerKeySetStatus, seen: &SecretSeen) -> bool {
    ownership(status, seen) != Ownership::Foreign
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
