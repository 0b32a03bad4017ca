//! Where rotation is decided: key set (spec + status) + what the Secret looks like -> what to do.
//!
//! Pure: no API, no clock, no randomness. The apply layer generates the keys the plan asks for,
//! writes the Secret, and computes the status from what it wrote.
//!
//! Exactly-once rotation rests on one rule: a slot is regenerated when the requested revision is
//! above the revision *stored on the Secret* (its revision annotation), which is written in the
//! same request as the new key. A crash after the Secret write and before the status write
//! therefore cannot regenerate twice; the next run records the rotation it finds instead.

use crate::api::{DataMinerKeySetSpec, DataMinerKeySetStatus, RegenerateRequest};

/// One of the two keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Primary,
    Secondary,
}

impl Slot {
    pub const BOTH: [Slot; 2] = [Slot::Primary, Slot::Secondary];

    pub fn name(self) -> &'static str {
        match self {
            Slot::Primary => "primary",
            Slot::Secondary => "secondary",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one slot of the owned Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSeen {
    /// Revision annotation on the Secret, if present and a number.
    pub revision: Option<i64>,
    /// Fingerprint of the stored value; `None` when the data key is missing.
    pub fingerprint: Option<String>,
}

/// What the Secret named by the key set looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSeen {
    Absent,
    /// A Secret of that name that this key set does not control.
    Foreign,
    Owned {
        slots: [SlotSeen; 2],
        /// Labels, annotations, data key names and owner reference already as desired.
        layout_in_sync: bool,
    },
}

/// Everything the plan looks at.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    pub spec: &'a DataMinerKeySetSpec,
    pub status: &'a DataMinerKeySetStatus,
    /// The Secret name the spec asks for (`spec.secret.name` or `<name>-keys`).
    pub secret_name: &'a str,
    pub secret: SecretSeen,
}

/// How a slot's value is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotPlan {
    /// Keep the value in the Secret (at this revision).
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
    /// Rewrite the owned Secret: new keys where asked, layout brought in line.
    Update { slots: [SlotPlan; 2] },
    /// Delete the owned Secret (revocation).
    Delete,
}

/// An audited action: becomes an Event, a history entry and a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// First keys of the set.
    KeysCreated,
    /// A requested regeneration of one slot.
    Regenerated(Slot),
    /// The owned Secret was gone; both keys were generated anew.
    SecretRecreated,
    /// Both keys destroyed for good.
    Revoked,
}

/// Something the operator refuses or reports instead of acting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The spec breaks a rule the CRD should have enforced (message says which).
    InvalidSpec(String),
    /// A pending request's `confirmLabel` differs from `spec.label`.
    ConfirmationMismatch(Vec<&'static str>),
    /// A Secret of that name exists and is not ours: left untouched.
    SecretConflict,
    /// A stored key no longer matches its fingerprint in status (or is missing).
    SecretDrift(Vec<Slot>),
    /// Warning that accompanies [`Action::SecretRecreated`].
    SecretMissing,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub write: SecretWrite,
    /// Actions this plan performs, or finds already performed but not yet recorded in status.
    pub actions: Vec<Action>,
    pub problems: Vec<Problem>,
    /// The key set is (or becomes, by this plan) revoked.
    pub revoked: bool,
}

impl Plan {
    fn idle() -> Plan {
        Plan {
            write: SecretWrite::None,
            actions: Vec::new(),
            problems: Vec::new(),
            revoked: false,
        }
    }
}

fn request(spec: &DataMinerKeySetSpec, slot: Slot) -> Option<&RegenerateRequest> {
    let r = spec.regenerate.as_ref()?;
    match slot {
        Slot::Primary => r.primary.as_ref(),
        Slot::Secondary => r.secondary.as_ref(),
    }
}

pub fn status_slot(status: &DataMinerKeySetStatus, slot: Slot) -> Option<&crate::api::KeyStatus> {
    match slot {
        Slot::Primary => status.primary.as_ref(),
        Slot::Secondary => status.secondary.as_ref(),
    }
}

/// Rules the CRD enforces at admission, checked again for clusters where they were bypassed.
pub fn validate(input: &PlanInput) -> Result<(), String> {
    let spec = input.spec;
    let label = spec.label.as_str();
    if label.is_empty() || label.chars().count() > 100 {
        return Err("spec.label must be 1 to 100 characters".into());
    }
    if label.trim() != label {
        return Err("spec.label must not start or end with whitespace".into());
    }
    match (&spec.scope.organization, &spec.scope.system) {
        (Some(_), Some(_)) | (None, None) => {
            return Err("spec.scope needs exactly one of organization or system".into());
        }
        (Some(_), None) if spec.permissions.is_empty() => {
            return Err("an organization key set needs at least one permission".into());
        }
        (None, Some(_)) if !spec.permissions.is_empty() => {
            return Err("a system key set takes no permissions".into());
        }
        _ => {}
    }
    let mut perms = spec.permissions.clone();
    perms.sort();
    if perms.windows(2).any(|w| w[0] == w[1]) {
        return Err("spec.permissions lists a permission twice".into());
    }
    let names = crate::secret::data_key_names(spec);
    if names[0] == names[1] {
        return Err("spec.secret.primaryKeyName and secondaryKeyName must differ".into());
    }
    if let Some(recorded) = &input.status.secret_name
        && recorded != input.secret_name
    {
        return Err(format!(
            "spec.secret.name is immutable: the keys live in Secret {recorded}, the spec now names {}",
            input.secret_name
        ));
    }
    Ok(())
}

/// Decides what to do. See the module documentation for the exactly-once rule.
pub fn plan(input: &PlanInput) -> Plan {
    let spec = input.spec;
    let status = input.status;
    let mut plan = Plan::idle();

    // Revocation is final: once recorded, the only thing left to do is make sure our Secret
    // stays gone. A Secret someone else creates under that name is not ours to touch.
    if status.revoked_at.is_some() {
        plan.revoked = true;
        if matches!(input.secret, SecretSeen::Owned { .. }) {
            plan.write = SecretWrite::Delete;
        }
        return plan;
    }

    if let Err(message) = validate(input) {
        plan.problems.push(Problem::InvalidSpec(message));
        return plan;
    }

    // Revision currently stored per slot: the Secret's annotation is the durable truth,
    // status is the fallback for a Secret that lost its annotations.
    let stored_revision = |slot: Slot| -> Option<i64> {
        let from_status = status_slot(status, slot).map(|k| k.revision);
        match &input.secret {
            SecretSeen::Owned { slots, .. } => slots[slot.index()].revision.or(from_status),
            _ => from_status,
        }
    };

    let pending = |slot: Slot| -> Option<&RegenerateRequest> {
        request(spec, slot).filter(|r| r.revision > stored_revision(slot).unwrap_or(0))
    };

    let mut mismatched = Vec::new();
    for slot in Slot::BOTH {
        if pending(slot).is_some_and(|r| r.confirm_label != spec.label) {
            mismatched.push(match slot {
                Slot::Primary => "spec.regenerate.primary",
                Slot::Secondary => "spec.regenerate.secondary",
            });
        }
    }
    if spec
        .revoke
        .as_ref()
        .is_some_and(|r| r.confirm_label != spec.label)
    {
        mismatched.push("spec.revoke");
    }
    // A mismatch blocks every pending request of this spec, so a manifest is never half-applied.
    let honored = mismatched.is_empty();
    if !honored {
        plan.problems
            .push(Problem::ConfirmationMismatch(mismatched));
    }

    if honored && spec.revoke.is_some() {
        plan.revoked = true;
        plan.actions.push(Action::Revoked);
        if matches!(input.secret, SecretSeen::Owned { .. }) {
            plan.write = SecretWrite::Delete;
        }
        return plan;
    }

    let requested = |slot: Slot| -> Option<i64> {
        if honored {
            pending(slot).map(|r| r.revision)
        } else {
            None
        }
    };

    match &input.secret {
        SecretSeen::Foreign => {
            plan.problems.push(Problem::SecretConflict);
        }
        SecretSeen::Absent => {
            let created_before = status.primary.is_some() || status.secondary.is_some();
            let slots = Slot::BOTH.map(|slot| {
                let base = match status_slot(status, slot) {
                    Some(k) => k.revision + 1,
                    None => 1,
                };
                SlotPlan::Generate {
                    revision: base.max(requested(slot).unwrap_or(0)),
                }
            });
            plan.write = SecretWrite::Create { slots };
            if created_before {
                plan.problems.push(Problem::SecretMissing);
                plan.actions.push(Action::SecretRecreated);
            } else {
                plan.actions.push(Action::KeysCreated);
            }
        }
        SecretSeen::Owned {
            slots: seen,
            layout_in_sync,
        } => {
            let never_recorded = status.primary.is_none() && status.secondary.is_none();
            if never_recorded && seen.iter().all(|s| s.fingerprint.is_none()) {
                // Created but never filled (a crash between the two writes of a create).
                let slots = Slot::BOTH.map(|slot| SlotPlan::Generate {
                    revision: requested(slot).unwrap_or(1).max(1),
                });
                plan.write = SecretWrite::Update { slots };
                plan.actions.push(Action::KeysCreated);
                return plan;
            }
            if never_recorded {
                // The Secret was written but the status write was lost (a crash in between).
                plan.actions.push(Action::KeysCreated);
            }
            let mut drift = Vec::new();
            let mut recovered = Vec::new();
            let slots = Slot::BOTH.map(|slot| {
                let s = &seen[slot.index()];
                let stored = stored_revision(slot).unwrap_or(1);
                if let Some(revision) = requested(slot) {
                    return SlotPlan::Generate { revision };
                }
                let recorded = status_slot(status, slot);
                if !never_recorded && recorded.is_some_and(|k| k.revision < stored) {
                    // Rotated on the Secret, not yet in status: record it, do not redo it.
                    recovered.push(Action::Regenerated(slot));
                }
                let drifted = match (&s.fingerprint, recorded) {
                    (None, _) => true,
                    (Some(fp), Some(k)) => k.revision == stored && &k.fingerprint != fp,
                    (Some(_), None) => false,
                };
                if drifted {
                    drift.push(slot);
                }
                SlotPlan::Keep { revision: stored }
            });
            plan.actions.extend(recovered);
            if !drift.is_empty() {
                plan.problems.push(Problem::SecretDrift(drift));
            }
            // A kept slot whose value is missing cannot be written back without inventing a
            // key, a rotation nobody asked for: then the Secret is left alone, and so are the
            // other requests of this spec (never half-applied) until the slot is regenerated.
            let missing_value = Slot::BOTH.iter().any(|&slot| {
                matches!(slots[slot.index()], SlotPlan::Keep { .. })
                    && seen[slot.index()].fingerprint.is_none()
            });
            if !missing_value {
                let revisions_in_sync = Slot::BOTH.iter().all(|&slot| {
                    seen[slot.index()].revision == Some(slots[slot.index()].revision())
                });
                for slot in Slot::BOTH {
                    if matches!(slots[slot.index()], SlotPlan::Generate { .. }) {
                        plan.actions.push(Action::Regenerated(slot));
                    }
                }
                let generates = slots.iter().any(|s| matches!(s, SlotPlan::Generate { .. }));
                if generates || !*layout_in_sync || !revisions_in_sync {
                    plan.write = SecretWrite::Update { slots };
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests;
