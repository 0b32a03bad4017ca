//! Where rotation is decided: key set (spec + status) + what the Secret looks like -> what to do.
//!
//! Pure: no API, no clock, no randomness. The apply layer generates the keys the plan asks for,
//! writes the Secret, and computes the status from what it wrote.
//!
//! Trust (docs/design.md): status is the record of the keys the operator generated. A value in
//! the Secret counts only when the operator's proof of it verifies (see `proof`), and a Secret
//! counts as the operator's only when its uid is the one recorded in status, or, for a Secret
//! written just before a crash, when the operator's proofs cover both its values at revisions
//! above the record. Annotations, labels and owner references are hints anyone can edit.
//!
//! Exactly once: a slot is regenerated when the requested revision is above both the recorded
//! revision and the revision the operator can prove it already wrote to the Secret (key and
//! proof go in one request). A crash after the Secret write therefore records the rotation it
//! finds instead of redoing it; a Secret set back to an older state is drift, never a reason to
//! generate again.
//!
//! Files: this one holds the plan's output and [`plan`]; `input` what it looks at; `change` and
//! `problem` what it reports; `trust` decides whose a Secret is and which values count;
//! `validate` checks the spec again; `adopt` plans a confirmed adoption; `settle` says what a
//! plan whose Secret write failed may still report.

mod adopt;
mod change;
mod input;
mod problem;
mod settle;
mod trust;
mod validate;

pub use crate::api::Slot;
pub use adopt::AdoptionRefusal;
pub use change::Change;
pub use input::{PlanInput, SecretSeen, SlotSeen};
pub use problem::{Held, Problem};
pub use settle::{Reached, settle_failed};
pub use trust::is_operators;
pub use validate::validate;

use crate::api::MAX_REVISION;
use trust::{Ownership, Trust, ownership, trust};

/// How a slot's value is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotPlan {
    /// Keep the (proven) value in the Secret, at this revision.
    Keep { revision: i64 },
    /// Draw a new value, stored at this revision.
    Generate { revision: i64 },
}

impl SlotPlan {
    pub fn revision(self) -> i64 {
        match self {
            SlotPlan::Keep { revision } | SlotPlan::Generate { revision } => revision,
        }
    }
}

/// What happens to the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretWrite {
    /// Leave it as it is.
    None,
    /// Create it (it does not exist) with two new keys.
    Create { slots: [SlotPlan; 2] },
    /// Rewrite the operator's Secret: new keys where asked, proven values kept, layout, revision
    /// annotations and proofs brought in line.
    Update { slots: [SlotPlan; 2] },
    /// Delete the operator's Secret (revocation).
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub write: SecretWrite,
    /// Actions this plan performs, or finds performed but not yet recorded, oldest first.
    pub changes: Vec<Change>,
    pub problems: Vec<Problem>,
    /// The key set is (or becomes, by this plan) revoked.
    pub revoked: bool,
    /// The uid of the operator's Secret, to record, when the plan found it (a create learns it
    /// from the API server instead).
    pub secret_uid: Option<String>,
    /// Per slot, the key the Secret holds and the operator vouches for before any write
    /// (`None`: no such key; status keeps its record).
    pub holds: [Option<Held>; 2],
    /// The lineage of the keys, to write and record: the one proven on the Secret or recorded.
    /// `None` for keys without one yet (a new set, or 0.1.0's): the apply step draws one.
    pub lineage: Option<String>,
}

impl Plan {
    /// The write rewrites or deletes the Secret, which needs its current values and version: a
    /// plan made from the index alone must be made again from a read first.
    pub fn needs_secret_read(&self) -> bool {
        matches!(self.write, SecretWrite::Update { .. } | SecretWrite::Delete)
    }

    fn idle() -> Plan {
        Plan {
            write: SecretWrite::None,
            changes: Vec::new(),
            problems: Vec::new(),
            revoked: false,
            secret_uid: None,
            holds: [None, None],
            lineage: None,
        }
    }
}

/// Decides what to do. See the module documentation for the rules.
pub fn plan(input: &PlanInput) -> Plan {
    let spec = input.spec;
    let status = input.status;
    let mut plan = Plan::idle();
    let owner = match &input.secret {
        SecretSeen::Absent => None,
        seen @ SecretSeen::Present { .. } => Some(ownership(status, seen)),
    };
    let ours = matches!(
        owner,
        Some(Ownership::Recorded | Ownership::Unrecorded | Ownership::Adopted)
    );
    let seen_lineage = match &input.secret {
        SecretSeen::Present { lineage, .. } if ours => lineage.clone(),
        _ => None,
    };
    plan.lineage = seen_lineage.or_else(|| status.lineage.clone());
    // Revocation destroys every copy of the set's keys: the operator's Secret, and any Secret
    // of the name holding a value it proves it wrote (a restored or hand-made copy).
    let destroy = ours || input.secret.holds_a_key();

    // Revocation is final: once recorded, only make sure no copy of the keys comes back.
    if status.revoked_at.is_some() {
        plan.revoked = true;
        if destroy {
            plan.write = SecretWrite::Delete;
        }
        return plan;
    }
    // Revocation is always possible, even for a spec the controller refuses otherwise.
    if spec
        .revoke
        .as_ref()
        .is_some_and(|r| r.confirm_label == spec.label)
    {
        plan.revoked = true;
        plan.changes.push(Change::Revoked);
        if destroy {
            plan.write = SecretWrite::Delete;
        }
        return plan;
    }

    if let Err(message) = validate(input) {
        plan.problems.push(Problem::InvalidSpec(message));
        return plan;
    }

    let (uid, seen, layout_in_sync) = match &input.secret {
        SecretSeen::Present {
            uid,
            slots,
            layout_in_sync,
            ..
        } => (Some(uid), Some(slots), *layout_in_sync),
        SecretSeen::Absent => (None, None, false),
    };
    // In a Secret written before a crash, or adopted, both values are the baseline, not
    // rotations.
    let unrecorded = matches!(owner, Some(Ownership::Unrecorded | Ownership::Adopted));
    let trusted: [Option<Trust>; 2] = Slot::BOTH.map(|slot| {
        let seen = &seen?[slot.index()];
        Some(if unrecorded {
            match seen.proven {
                Some(r) => Trust::Recorded(r),
                None => Trust::Drift,
            }
        } else {
            trust(seen, status.slot(slot))
        })
    });

    // The revision a slot is at: what status records, or what the operator proved it wrote.
    let stored = |slot: Slot| -> i64 {
        let recorded = status.slot(slot).map_or(0, |k| k.revision);
        match &trusted[slot.index()] {
            Some(Trust::Recorded(r)) | Some(Trust::Found { revision: r, .. }) if ours => {
                recorded.max(*r)
            }
            _ => recorded,
        }
    };
    let pending = |slot: Slot| spec.request(slot).filter(|r| r.revision > stored(slot));

    let mut mismatched = Vec::new();
    for slot in Slot::BOTH {
        if pending(slot).is_some_and(|r| r.confirm_label != spec.label) {
            mismatched.push(match slot {
                Slot::Primary => "spec.regenerate.primary",
                Slot::Secondary => "spec.regenerate.secondary",
            });
        }
    }
    if spec.revoke.is_some() {
        mismatched.push("spec.revoke");
    }
    let adoption = spec.pending_adoption(status);
    if adoption.is_some_and(|a| a.confirm_label != spec.label) {
        mismatched.push("spec.adopt");
    }
    // A mismatch blocks every pending request of this spec, so a manifest is never half-applied.
    let honored = mismatched.is_empty();
    if !honored {
        plan.problems
            .push(Problem::ConfirmationMismatch(mismatched));
    }
    let requested = |slot: Slot| honored.then(|| pending(slot).map(|r| r.revision)).flatten();
    // A confirmed adoption goes first and alone: the requests of the same spec are weighed
    // against the adopted keys at the next reconcile.
    if let Some(a) = adoption.filter(|_| honored) {
        adopt::adopt(input, a.request, &mut plan);
        return plan;
    }

    match owner {
        Some(Ownership::Foreign) => plan.problems.push(Problem::SecretConflict),
        None => {
            let created_before = status.primary.is_some() || status.secondary.is_some();
            let slots = Slot::BOTH.map(|slot| SlotPlan::Generate {
                revision: (stored(slot) + 1).max(requested(slot).unwrap_or(0)),
            });
            let over: Vec<Slot> = Slot::BOTH
                .into_iter()
                .filter(|s| slots[s.index()].revision() > MAX_REVISION)
                .collect();
            if !over.is_empty() {
                plan.problems.push(Problem::RevisionLimit(over));
                return plan;
            }
            plan.write = SecretWrite::Create { slots };
            if created_before {
                plan.problems.push(Problem::SecretMissing);
                plan.changes.push(Change::SecretRecreated);
            } else {
                plan.changes.push(Change::KeysCreated);
            }
        }
        Some(_) => {
            let seen = seen.expect("a present Secret was seen");
            plan.secret_uid = uid.cloned();
            if owner == Some(Ownership::Adopted) {
                plan.changes.push(Change::KeysAdopted);
            } else if unrecorded {
                if status.primary.is_some() || status.secondary.is_some() {
                    plan.problems.push(Problem::SecretMissing);
                    plan.changes.push(Change::SecretRecreated);
                } else {
                    plan.changes.push(Change::KeysCreated);
                }
            }
            let mut drift = Vec::new();
            let mut generated = Vec::new();
            let slots: [Option<SlotPlan>; 2] = Slot::BOTH.map(|slot| {
                let trust = trusted[slot.index()].clone().expect("a present Secret");
                plan.holds[slot.index()] = match &trust {
                    Trust::Recorded(revision) => Some(Held {
                        revision: *revision,
                        fingerprint: seen[slot.index()].fingerprint.clone().unwrap_or_default(),
                    }),
                    Trust::Found {
                        revision,
                        fingerprint,
                    } => Some(Held {
                        revision: *revision,
                        fingerprint: fingerprint.clone(),
                    }),
                    Trust::Drift => None,
                };
                if let Trust::Found {
                    revision,
                    fingerprint,
                } = &trust
                {
                    // Rotated on the Secret, not yet in status: record it, never redo it.
                    plan.changes.push(Change::Regenerated {
                        slot,
                        revision: *revision,
                        found: Some(fingerprint.clone()),
                    });
                }
                if let Some(revision) = requested(slot) {
                    generated.push(Change::Regenerated {
                        slot,
                        revision,
                        found: None,
                    });
                    return Some(SlotPlan::Generate { revision });
                }
                match trust {
                    Trust::Recorded(revision) | Trust::Found { revision, .. } => {
                        Some(SlotPlan::Keep { revision })
                    }
                    Trust::Drift => {
                        drift.push(slot);
                        None
                    }
                }
            });
            if !drift.is_empty() {
                plan.problems.push(Problem::SecretDrift(drift));
            }
            // A slot that holds no key of the operator's cannot be written back without
            // blessing a value nobody can vouch for, or inventing a key nobody asked for: the
            // Secret is left alone, and so are the other requests of this spec (never
            // half-applied), until that slot is regenerated.
            if let [Some(p), Some(s)] = slots {
                let slots = [p, s];
                let in_sync = Slot::BOTH.iter().all(|&slot| {
                    let kept = slots[slot.index()];
                    let seen = &seen[slot.index()];
                    matches!(kept, SlotPlan::Keep { .. })
                        && seen.revision == Some(kept.revision())
                        && seen.proven == Some(kept.revision())
                });
                plan.changes.extend(generated);
                if !in_sync || !layout_in_sync {
                    plan.write = SecretWrite::Update { slots };
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests;
