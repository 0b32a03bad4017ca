//! The confirmed adoption (`spec.adopt`): the way out when the operator's proof key is lost
//! (docs/backup.md). The values now in the Secret become the key set's keys as they are, without
//! proof that the operator wrote them: the user vouches for them by typing the label, and the
//! operator proves them from now on. Revoked keys stay revoked.

use super::{Change, Held, Plan, PlanInput, Problem, SecretSeen, SecretWrite, SlotPlan};
use crate::api::{MAX_REVISION, Slot};

/// Why a confirmed adoption cannot be carried out (nothing is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdoptionRefusal {
    /// There is no Secret to take values from.
    NoSecret,
    /// These slots hold no value: adopting the other one alone would half-apply the request.
    Empty(Vec<Slot>),
    /// The Secret names a lineage that was revoked or deleted through a finalizer.
    Revoked,
}

/// Plans the adoption asked for by `request`.
pub(super) fn adopt(input: &PlanInput, request: i64, plan: &mut Plan) {
    let refuse = |plan: &mut Plan, why| plan.problems.push(Problem::AdoptionRefused(why));
    let SecretSeen::Present {
        uid,
        slots: seen,
        layout_in_sync,
        lineage,
        tombstoned,
        ..
    } = &input.secret
    else {
        return refuse(plan, AdoptionRefusal::NoSecret);
    };
    if *tombstoned {
        return refuse(plan, AdoptionRefusal::Revoked);
    }
    let empty: Vec<Slot> = Slot::BOTH
        .into_iter()
        .filter(|s| seen[s.index()].fingerprint.is_none())
        .collect();
    if !empty.is_empty() {
        return refuse(plan, AdoptionRefusal::Empty(empty));
    }
    let status = input.status;
    // Revisions never go back: the higher of the record and what the Secret says (proven, else
    // its annotation), so a regenerate already done before the loss is not done again.
    let revision = |slot: Slot| {
        let seen = &seen[slot.index()];
        let recorded = status.slot(slot).map_or(0, |k| k.revision);
        let claimed = seen.proven.or(seen.revision).unwrap_or(0);
        recorded.max(claimed).clamp(1, MAX_REVISION)
    };
    let slots = Slot::BOTH.map(|slot| SlotPlan::Keep {
        revision: revision(slot),
    });
    plan.holds = Slot::BOTH.map(|slot| {
        Some(Held {
            revision: revision(slot),
            fingerprint: seen[slot.index()].fingerprint.clone().unwrap_or_default(),
        })
    });
    plan.secret_uid = Some(uid.clone());
    plan.lineage = status.lineage.clone().or_else(|| lineage.clone());
    // Already the operator's, proven at those revisions: only the request is recorded.
    let in_sync = *layout_in_sync
        && status.secret_uid.as_ref() == Some(uid)
        && Slot::BOTH.iter().all(|&slot| {
            let seen = &seen[slot.index()];
            seen.proven == Some(revision(slot)) && seen.revision == Some(revision(slot))
        });
    if !in_sync {
        plan.write = SecretWrite::Update { slots };
    }
    plan.changes.push(Change::Adopt { request });
}

#[cfg(test)]
mod tests {
    use super::super::{SlotSeen, plan};
    use super::*;
    use crate::api::{DataMinerKeySetSpec, DataMinerKeySetStatus};
    use crate::fixtures::{LABEL, spec, status, with_adopt, with_request};

    /// A Secret whose values nobody can prove (the proof key is gone), at these annotated
    /// revisions (`None`: no value).
    fn unproven(uid: &str, revisions: [i64; 2], values: [Option<&str>; 2]) -> SecretSeen {
        SecretSeen::Present {
            uid: uid.into(),
            slots: Slot::BOTH.map(|s| SlotSeen {
                revision: Some(revisions[s.index()]),
                fingerprint: values[s.index()].map(str::to_string),
                proven: None,
            }),
            layout_in_sync: false,
            lineage: None,
            controlled: true,
            tombstoned: false,
        }
    }

    fn run(spec: &DataMinerKeySetSpec, status: &DataMinerKeySetStatus, seen: SecretSeen) -> Plan {
        plan(&PlanInput {
            name: "ks",
            spec,
            status,
            secret_name: "ks-keys",
            secret: seen,
            denied_prefixes: &[],
        })
    }

    fn recorded() -> DataMinerKeySetStatus {
        DataMinerKeySetStatus {
            secret_uid: Some("uid-1".into()),
            lineage: Some("lineage-1".into()),
            ..status(2, "a", 1, "b")
        }
    }

    const KEEP: fn(i64) -> SlotPlan = |revision| SlotPlan::Keep { revision };

    #[test]
    fn a_lost_proof_key_is_drift_until_the_values_are_adopted_on_request() {
        let seen = unproven("uid-1", [2, 1], [Some("a"), Some("b")]);
        let before = run(&spec(), &recorded(), seen.clone());
        assert_eq!(before.problems, [Problem::SecretDrift(Slot::BOTH.to_vec())]);
        assert_eq!(before.write, SecretWrite::None);

        let adopt = with_adopt(spec(), 1, LABEL);
        let p = run(&adopt, &recorded(), seen);
        assert_eq!(p.problems, []);
        assert_eq!(p.changes, [Change::Adopt { request: 1 }]);
        assert_eq!(
            p.write,
            SecretWrite::Update {
                slots: [KEEP(2), KEEP(1)]
            }
        );
        assert_eq!(p.secret_uid.as_deref(), Some("uid-1"));
        assert_eq!(
            p.lineage.as_deref(),
            Some("lineage-1"),
            "the lineage is kept"
        );
        let fps = p.holds.map(|h| h.map(|h| (h.revision, h.fingerprint)));
        assert_eq!(fps, [Some((2, "a".into())), Some((1, "b".into()))]);

        // Honoured once: with the request recorded the set is back to the usual rules.
        let done = DataMinerKeySetStatus {
            adopted_request: Some(1),
            ..recorded()
        };
        let again = run(
            &adopt,
            &done,
            unproven("uid-1", [2, 1], [Some("a"), Some("b")]),
        );
        assert!(
            !again
                .changes
                .iter()
                .any(|c| matches!(c, Change::Adopt { .. }))
        );
    }

    #[test]
    fn a_restore_without_status_keeps_the_annotated_revisions_and_the_secret() {
        let seen = unproven("uid-restored", [3, 7], [Some("a"), Some("b")]);
        let p = run(&with_adopt(spec(), 4, LABEL), &Default::default(), seen);
        assert_eq!(
            p.write,
            SecretWrite::Update {
                slots: [KEEP(3), KEEP(7)]
            }
        );
        assert_eq!(p.secret_uid.as_deref(), Some("uid-restored"));
        assert_eq!(
            p.lineage, None,
            "a fresh lineage is drawn by the apply step"
        );
        assert_eq!(p.changes, [Change::Adopt { request: 4 }]);
    }

    #[test]
    fn revisions_never_go_back_and_stay_within_the_limit() {
        let seen = unproven("uid-1", [1, MAX_REVISION + 5], [Some("a"), Some("b")]);
        let p = run(&with_adopt(spec(), 1, LABEL), &recorded(), seen);
        assert_eq!(
            p.write,
            SecretWrite::Update {
                slots: [KEEP(2), KEEP(MAX_REVISION)]
            }
        );
    }

    #[test]
    fn an_adoption_goes_alone_and_a_regenerate_follows_against_the_adopted_keys() {
        let both = with_request(with_adopt(spec(), 1, LABEL), Slot::Primary, 3, LABEL);
        let seen = unproven("uid-1", [2, 1], [Some("a"), Some("b")]);
        let first = run(&both, &recorded(), seen);
        assert_eq!(first.changes, [Change::Adopt { request: 1 }]);
        assert_eq!(
            first.write,
            SecretWrite::Update {
                slots: [KEEP(2), KEEP(1)]
            }
        );

        // Recorded and now proven: the regenerate to 3 is what remains.
        let adopted = DataMinerKeySetStatus {
            adopted_request: Some(1),
            ..recorded()
        };
        let mut proven = unproven("uid-1", [2, 1], [Some("a"), Some("b")]);
        if let SecretSeen::Present {
            slots,
            layout_in_sync,
            lineage,
            ..
        } = &mut proven
        {
            slots[0].proven = Some(2);
            slots[1].proven = Some(1);
            *layout_in_sync = true;
            *lineage = Some("lineage-1".into());
        }
        let next = run(&both, &adopted, proven);
        assert_eq!(
            next.write,
            SecretWrite::Update {
                slots: [SlotPlan::Generate { revision: 3 }, KEEP(1)]
            }
        );
    }

    #[test]
    fn keys_already_proven_are_not_rewritten_only_the_request_is_recorded() {
        let mut seen = unproven("uid-1", [2, 1], [Some("a"), Some("b")]);
        if let SecretSeen::Present {
            slots,
            layout_in_sync,
            ..
        } = &mut seen
        {
            slots[0].proven = Some(2);
            slots[1].proven = Some(1);
            *layout_in_sync = true;
        }
        let p = run(&with_adopt(spec(), 1, LABEL), &recorded(), seen);
        assert_eq!(p.write, SecretWrite::None);
        assert_eq!(p.changes, [Change::Adopt { request: 1 }]);
    }

    #[test]
    fn an_unconfirmed_adoption_blocks_every_request() {
        let s = with_request(with_adopt(spec(), 1, "wrong"), Slot::Primary, 3, LABEL);
        let p = run(
            &s,
            &recorded(),
            unproven("uid-1", [2, 1], [Some("a"), Some("b")]),
        );
        assert_eq!(p.write, SecretWrite::None);
        assert!(p.changes.is_empty());
        assert!(
            p.problems
                .contains(&Problem::ConfirmationMismatch(vec!["spec.adopt"]))
        );
    }

    #[test]
    fn nothing_is_adopted_from_no_secret_an_empty_slot_or_revoked_keys() {
        let adopt = with_adopt(spec(), 1, LABEL);
        let refused = |seen| {
            let p = run(&adopt, &recorded(), seen);
            assert_eq!(p.write, SecretWrite::None);
            assert!(p.changes.is_empty());
            p.problems
        };
        assert_eq!(
            refused(SecretSeen::Absent),
            [Problem::AdoptionRefused(AdoptionRefusal::NoSecret)]
        );
        assert_eq!(
            refused(unproven("uid-1", [2, 1], [Some("a"), None])),
            [Problem::AdoptionRefused(AdoptionRefusal::Empty(vec![
                Slot::Secondary
            ]))]
        );
        let mut revoked = unproven("uid-1", [2, 1], [Some("a"), Some("b")]);
        if let SecretSeen::Present { tombstoned, .. } = &mut revoked {
            *tombstoned = true;
        }
        assert_eq!(
            refused(revoked),
            [Problem::AdoptionRefused(AdoptionRefusal::Revoked)]
        );
    }
}
