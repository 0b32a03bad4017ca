//! The words: what each problem and each change says, in Events, conditions and logs.

use super::{Applied, requester::requester};
use crate::{
    api::{DRIFT_PHRASE, DataMinerKeySet},
    plan::{AdoptionRefusal, Change, Held, Problem, Slot},
};

pub(super) fn describe(held: Option<&Held>) -> String {
    match held {
        Some(h) => format!("revision {} ({})", h.revision, h.fingerprint),
        None => "unknown revision".into(),
    }
}

/// The message for `problem`: what is wrong and what to type to fix it.
pub(super) fn problem_message(
    ks: &DataMinerKeySet,
    problem: &Problem,
    applied: &Applied,
) -> String {
    let secret = ks.secret_name();
    match problem {
        Problem::InvalidSpec(m) => format!("invalid spec, nothing was changed: {m}"),
        Problem::ConfirmationMismatch(fields) => format!(
            "{} confirmLabel does not match spec.label, so no pending request was applied; set confirmLabel to \"{}\"",
            fields.join(" and "),
            ks.spec.label
        ),
        Problem::SecretConflict => format!(
            "Secret {secret} exists and is not owned by this key set; it was left untouched. Delete or rename that Secret, or create the key set with another spec.secret.name. If it holds this set's keys and the operator's proof key was lost, confirm them with spec.adopt (docs/backup.md)"
        ),
        Problem::SecretDrift(slots) => {
            let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
            format!(
                "the {} key in Secret {secret}{DRIFT_PHRASE}; it was not rotated silently, and nothing in the Secret is written until you raise spec.regenerate.{}.revision to issue a new key (or, if the operator's proof key was lost, confirm the values with spec.adopt: docs/backup.md)",
                names.join(" and "),
                names[0]
            )
        }
        Problem::SecretMissing => format!(
            "Secret {secret} was deleted; its keys are gone. Generated new keys: primary {}, secondary {}",
            describe(applied.held(Slot::Primary)),
            describe(applied.held(Slot::Secondary)),
        ),
        Problem::RevisionLimit(slots) => {
            let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
            format!(
                "Secret {secret} is gone and new keys are needed, but the {} key is at revision {}, the highest a revision can be; nothing was written. Create a new key set for new keys (and revoke this one)",
                names.join(" and "),
                crate::api::MAX_REVISION
            )
        }
        Problem::AdoptionRefused(why) => {
            let request = ks.spec.adopt.as_ref().map_or(0, |a| a.request);
            let why = match why {
                AdoptionRefusal::NoSecret => format!(
                    "Secret {secret} does not exist, so there are no values to adopt. Restore it (docs/backup.md), or remove spec.adopt to have new keys generated"
                ),
                AdoptionRefusal::Empty(slots) => {
                    let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
                    format!(
                        "the {} key in Secret {secret} is missing or empty, and adopting only one key would half-apply the request. Put the value back, or remove spec.adopt and raise spec.regenerate.{}.revision for a new key",
                        names.join(" and "),
                        names[0]
                    )
                }
                AdoptionRefusal::Revoked => format!(
                    "Secret {secret} holds keys of a key set that was revoked or deleted, and revoked keys never come back. Delete that Secret and remove spec.adopt to have new keys generated"
                ),
            };
            format!(
                "spec.adopt (request {request}) was not carried out, nothing was written: {why}"
            )
        }
        Problem::WriteFailed(m) => format!(
            "writing Secret {secret} failed, nothing was recorded as done: {m}; retrying with backoff"
        ),
    }
}

/// Revision and fingerprint of a regenerated key: the one found, or the one now held.
pub(super) fn regenerated<'a>(applied: &'a Applied, change: &'a Change) -> Option<Held> {
    match change {
        Change::Regenerated {
            revision,
            found: Some(fingerprint),
            ..
        } => Some(Held {
            revision: *revision,
            fingerprint: fingerprint.clone(),
        }),
        Change::Regenerated { slot, .. } => applied.held(*slot).cloned(),
        _ => None,
    }
}

/// The Event note for `change`: slot, revision and fingerprint, never a key; then who asked.
pub(super) fn change_note(ks: &DataMinerKeySet, change: &Change, applied: &Applied) -> String {
    let mut note = what_changed(ks, change, applied);
    if let Some(r) = requester(ks, change) {
        note.push_str(&r.phrase());
    }
    note
}

fn what_changed(ks: &DataMinerKeySet, change: &Change, applied: &Applied) -> String {
    let secret = ks.secret_name();
    let p = describe(applied.held(Slot::Primary));
    let s = describe(applied.held(Slot::Secondary));
    match change {
        Change::KeysCreated => {
            format!("created primary key {p} and secondary key {s} in Secret {secret}")
        }
        Change::KeysAdopted => format!(
            "adopted primary key {p} and secondary key {s} in Secret {secret}: keys the operator proved it wrote for this key set (restored from a backup, or a re-created Secret); no key was regenerated"
        ),
        Change::SecretRecreated => {
            format!("recreated Secret {secret}: primary key {p}, secondary key {s}")
        }
        Change::Regenerated { slot, .. } => {
            let this = describe(regenerated(applied, change).as_ref());
            let (other, other_name) = match slot {
                Slot::Primary => (&s, "secondary"),
                Slot::Secondary => (&p, "primary"),
            };
            format!(
                "regenerated the {} key: now {this}; the {other_name} key is unchanged at {other}",
                slot.name()
            )
        }
        Change::Adopt { request } => format!(
            "adopted the values in Secret {secret} as primary key {p} and secondary key {s}, as confirmed by spec.adopt (request {request}): nothing proved the operator wrote them (a lost proof key, docs/backup.md); they are proven from now on"
        ),
        Change::Revoked => format!(
            "revoked: both keys destroyed (Secret {secret} deleted); this key set will never hold keys again"
        ),
    }
}

/// One sentence per regenerate request that asks for nothing: a revision at or below the one
/// the slot holds (revision 1 is where every key starts; the operator's own revisions can pass
/// a request, after a recreation or an adoption). A request equal to a revision above 1 is the
/// normal state after the rotation it asked for, and is not mentioned.
pub(super) fn idle_requests(ks: &DataMinerKeySet, applied: &Applied) -> Vec<String> {
    [Slot::Primary, Slot::Secondary]
        .into_iter()
        .filter_map(|slot| {
            let asked = ks.spec.request(slot)?.revision;
            let held = applied.held(slot)?.revision;
            (asked < held || asked == 1 && held == 1).then(|| {
                format!(
                    "spec.regenerate.{name}.revision {asked} asks for nothing, as the {name} key is at revision {held}: set it to {next} to regenerate that key",
                    name = slot.name(),
                    next = held + 1
                )
            })
        })
        .collect()
}
