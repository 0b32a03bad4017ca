//! The plan for every combination of spec, status and Secret that matters.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use super::*;
use crate::api::{DataMinerKeySetSpec, DataMinerKeySetStatus};
use crate::{
    api::{Permission, Scope, SystemScope},
    fixtures::{LABEL, spec, status, with_request, with_revoke},
};

/// One slot as seen: revision annotation, value fingerprint, revision the proof verifies at.
fn slot(revision: Option<i64>, fp: Option<&str>, proven: Option<i64>) -> SlotSeen {
    SlotSeen {
        revision,
        fingerprint: fp.map(str::to_string),
        proven,
    }
}

fn present(uid: &str, slots: [SlotSeen; 2]) -> SecretSeen {
    SecretSeen::Present {
        uid: uid.into(),
        slots,
        layout_in_sync: true,
        lineage: None,
        controlled: true,
        tombstoned: false,
    }
}

/// The operator's Secret (`uid-1`), each value proven at its annotated revision.
fn owned(p_rev: Option<i64>, p: Option<&str>, s_rev: Option<i64>, s: Option<&str>) -> SecretSeen {
    present(
        "uid-1",
        [slot(p_rev, p, p.and(p_rev)), slot(s_rev, s, s.and(s_rev))],
    )
}

/// Someone else's Secret of that name: another uid, nothing proven.
fn foreign() -> SecretSeen {
    present(
        "uid-other",
        [
            slot(Some(1), Some("a"), None),
            slot(Some(1), Some("b"), None),
        ],
    )
}

fn run(spec: &DataMinerKeySetSpec, status: &DataMinerKeySetStatus, secret: SecretSeen) -> Plan {
    plan(&PlanInput {
        name: "ks",
        spec,
        status,
        secret_name: "ks-keys",
        secret,
        denied_prefixes: &[],
    })
}

fn steady() -> SecretSeen {
    owned(Some(1), Some("a"), Some(1), Some("b"))
}

/// Nothing to write, do or report.
fn assert_idle(p: &Plan) {
    assert_eq!(
        (
            &p.write,
            p.changes.as_slice(),
            p.problems.as_slice(),
            p.revoked
        ),
        (&SecretWrite::None, &[][..], &[][..], false),
        "{p:?}"
    );
}

const GEN: fn(i64) -> SlotPlan = |revision| SlotPlan::Generate { revision };
const KEEP: fn(i64) -> SlotPlan = |revision| SlotPlan::Keep { revision };

#[test]
fn a_new_key_set_gets_two_new_keys_at_revision_1() {
    let p = run(&spec(), &Default::default(), SecretSeen::Absent);
    assert_eq!(
        p.write,
        SecretWrite::Create {
            slots: [GEN(1), GEN(1)]
        }
    );
    assert_eq!(p.changes, vec![Change::KeysCreated]);
    assert!(p.problems.is_empty());
}

#[test]
fn a_new_key_set_with_a_request_starts_at_the_requested_revision() {
    let s = with_request(spec(), Slot::Primary, 3, LABEL);
    let p = run(&s, &Default::default(), SecretSeen::Absent);
    assert_eq!(
        p.write,
        SecretWrite::Create {
            slots: [GEN(3), GEN(1)]
        }
    );
    assert_eq!(p.changes, vec![Change::KeysCreated]);
}

#[test]
fn nothing_to_do_when_everything_matches() {
    let p = run(&spec(), &status(1, "a", 1, "b"), steady());
    assert_idle(&p);
}

#[test]
fn a_secret_out_of_layout_is_rewritten_with_the_same_keys() {
    let mut seen = steady();
    if let SecretSeen::Present { layout_in_sync, .. } = &mut seen {
        *layout_in_sync = false;
    }
    let p = run(&spec(), &status(1, "a", 1, "b"), seen);
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), KEEP(1)]
        }
    );
    assert!(p.changes.is_empty());
}

#[test]
fn a_missing_revision_annotation_is_written_back_without_new_keys() {
    // observe() checks the proof at the revision status records too.
    let p = run(
        &spec(),
        &status(1, "a", 1, "b"),
        present(
            "uid-1",
            [
                slot(None, Some("a"), Some(1)),
                slot(Some(1), Some("b"), Some(1)),
            ],
        ),
    );
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), KEEP(1)]
        }
    );
    assert!(p.changes.is_empty() && p.problems.is_empty());
}

#[test]
fn regenerating_the_primary_leaves_the_secondary_alone() {
    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [GEN(2), KEEP(1)]
        }
    );
    assert_eq!(p.changes, vec![regenerated(Slot::Primary, 2)]);
}

#[test]
fn regenerating_the_secondary_leaves_the_primary_alone() {
    let s = with_request(spec(), Slot::Secondary, 2, LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), GEN(2)]
        }
    );
    assert_eq!(p.changes, vec![regenerated(Slot::Secondary, 2)]);
}

#[test]
fn a_revision_that_skips_ahead_is_one_regeneration() {
    let s = with_request(spec(), Slot::Primary, 5, LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [GEN(5), KEEP(1)]
        }
    );
    assert_eq!(p.changes.len(), 1);
}

#[test]
fn an_applied_request_is_not_applied_again() {
    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    let p = run(
        &s,
        &status(2, "c", 1, "b"),
        owned(Some(2), Some("c"), Some(1), Some("b")),
    );
    assert_idle(&p);
}

#[test]
fn a_request_at_or_below_the_current_revision_is_already_satisfied() {
    let s = with_request(spec(), Slot::Primary, 1, LABEL);
    assert_idle(&run(
        &s,
        &status(3, "c", 1, "b"),
        owned(Some(3), Some("c"), Some(1), Some("b")),
    ));
}

#[test]
fn a_rotation_written_before_a_crash_is_recorded_not_redone() {
    // The Secret holds revision 2 (written), status still says 1 (the status write was lost).
    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    let p = run(
        &s,
        &status(1, "a", 1, "b"),
        owned(Some(2), Some("c"), Some(1), Some("b")),
    );
    assert_eq!(p.write, SecretWrite::None);
    assert_eq!(
        p.changes,
        vec![Change::Regenerated {
            slot: Slot::Primary,
            revision: 2,
            found: Some("c".into())
        }]
    );
    assert!(
        p.problems.is_empty(),
        "a recorded-late rotation is not drift: {:?}",
        p.problems
    );
}

#[test]
fn keys_created_before_a_crash_are_recorded_not_regenerated() {
    let p = run(&spec(), &Default::default(), steady());
    assert_eq!(p.write, SecretWrite::None);
    assert_eq!(p.changes, vec![Change::KeysCreated]);
}

#[test]
fn a_mismatched_confirmation_changes_nothing() {
    let s = with_request(spec(), Slot::Primary, 2, "CI pipelin");
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.changes.is_empty());
    assert_eq!(
        p.problems,
        vec![Problem::ConfirmationMismatch(vec![
            "spec.regenerate.primary"
        ])]
    );
}

#[test]
fn one_mismatch_blocks_every_pending_request_of_the_spec() {
    let s = with_request(
        with_request(spec(), Slot::Primary, 2, LABEL),
        Slot::Secondary,
        2,
        "nope",
    );
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.changes.is_empty());
    assert_eq!(
        p.problems,
        vec![Problem::ConfirmationMismatch(vec![
            "spec.regenerate.secondary"
        ])]
    );
}

#[test]
fn a_satisfied_request_with_an_old_label_is_no_mismatch() {
    let s = with_request(spec(), Slot::Primary, 2, "old label");
    let p = run(
        &s,
        &status(2, "c", 1, "b"),
        owned(Some(2), Some("c"), Some(1), Some("b")),
    );
    assert_idle(&p);
}

#[test]
fn a_confirmed_revoke_deletes_the_owned_secret() {
    let s = with_revoke(spec(), LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::Delete);
    assert_eq!(p.changes, vec![Change::Revoked]);
    assert!(p.revoked);
}

#[test]
fn a_confirmed_revoke_wins_over_pending_regenerations() {
    let s = with_revoke(with_request(spec(), Slot::Primary, 9, LABEL), LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::Delete);
    assert_eq!(p.changes, vec![Change::Revoked]);
}

#[test]
fn a_revoke_after_the_secret_is_gone_is_recorded() {
    let s = with_revoke(spec(), LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), SecretSeen::Absent);
    assert_eq!(p.write, SecretWrite::None);
    assert_eq!(p.changes, vec![Change::Revoked]);
    assert!(p.revoked);
}

#[test]
fn a_revoked_key_set_never_gets_keys_again() {
    let mut st = status(1, "a", 1, "b");
    st.revoked_at = Some(Time(Timestamp::UNIX_EPOCH));
    // Even if spec.revoke were removed behind the CRD's back.
    for s in [
        with_revoke(spec(), LABEL),
        spec(),
        with_request(spec(), Slot::Primary, 7, LABEL),
    ] {
        let p = run(&s, &st, SecretSeen::Absent);
        assert_eq!(p.write, SecretWrite::None);
        assert!(p.changes.is_empty() && p.revoked);
        assert_eq!(run(&s, &st, foreign()).write, SecretWrite::None);
        assert_eq!(run(&s, &st, steady()).write, SecretWrite::Delete);
    }
}

#[test]
fn a_mismatched_revoke_changes_nothing() {
    let s = with_revoke(spec(), "wrong");
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::None);
    assert!(!p.revoked);
    assert_eq!(
        p.problems,
        vec![Problem::ConfirmationMismatch(vec!["spec.revoke"])]
    );
}

#[test]
fn a_foreign_secret_is_never_touched() {
    for st in [Default::default(), status(1, "a", 1, "b")] {
        let p = run(
            &with_request(spec(), Slot::Primary, 2, LABEL),
            &st,
            foreign(),
        );
        assert_eq!(p.write, SecretWrite::None);
        assert!(p.changes.is_empty());
        assert_eq!(p.problems, vec![Problem::SecretConflict]);
    }
}

#[test]
fn a_deleted_secret_is_recreated_with_new_keys_one_revision_up() {
    let p = run(&spec(), &status(2, "a", 1, "b"), SecretSeen::Absent);
    assert_eq!(
        p.write,
        SecretWrite::Create {
            slots: [GEN(3), GEN(2)]
        }
    );
    assert_eq!(p.changes, vec![Change::SecretRecreated]);
    assert_eq!(p.problems, vec![Problem::SecretMissing]);
}

#[test]
fn a_tampered_key_is_reported_not_rotated() {
    let p = run(&spec(), &status(1, "a", 1, "b"), tampered());
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.changes.is_empty());
    assert_eq!(p.problems, vec![Problem::SecretDrift(vec![Slot::Primary])]);
}

#[test]
fn a_regenerate_request_clears_drift() {
    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), tampered());
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [GEN(2), KEEP(1)]
        }
    );
    assert!(p.problems.is_empty());
}

#[test]
fn a_removed_key_is_drift_and_blocks_writes_until_regenerated() {
    let seen = owned(Some(1), None, Some(1), Some("b"));
    let p = run(
        &with_request(spec(), Slot::Secondary, 2, LABEL),
        &status(1, "a", 1, "b"),
        seen.clone(),
    );
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.changes.is_empty(), "never half-applied: {:?}", p.changes);
    assert_eq!(p.problems, vec![Problem::SecretDrift(vec![Slot::Primary])]);

    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), seen);
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [GEN(2), KEEP(1)]
        }
    );
    assert!(p.problems.is_empty());
}

#[test]
fn invalid_specs_are_refused_before_anything_happens() {
    let mut both = spec();
    both.scope.system = Some(
        SystemScope {
            name: "dms".into(),
            organization: None,
        }
        .into(),
    );
    let mut none = spec();
    none.scope.organization = None;
    let mut org_without_permissions = spec();
    org_without_permissions.permissions.clear();
    let mut system_with_permissions = spec();
    system_with_permissions.scope = Scope {
        organization: None,
        system: Some(
            SystemScope {
                name: "dms".into(),
                organization: None,
            }
            .into(),
        ),
    };
    let mut duplicate = spec();
    duplicate.permissions.push(Permission::RegisterCatalogItems);
    let mut padded = spec();
    padded.label = " CI".into();
    let mut empty = spec();
    empty.label = String::new();
    for s in [
        both,
        none,
        org_without_permissions,
        system_with_permissions,
        duplicate,
        padded,
        empty,
    ] {
        let p = run(&s, &Default::default(), SecretSeen::Absent);
        assert_eq!(p.write, SecretWrite::None, "{s:?}");
        assert!(
            matches!(p.problems.as_slice(), [Problem::InvalidSpec(_)]),
            "{s:?}"
        );
    }
}

#[test]
fn a_changed_secret_name_is_refused() {
    let p = plan(&PlanInput {
        name: "ks",
        spec: &spec(),
        status: &status(1, "a", 1, "b"),
        secret_name: "other-name",
        secret: SecretSeen::Absent,
        denied_prefixes: &[],
    });
    assert_eq!(p.write, SecretWrite::None);
    assert!(matches!(p.problems.as_slice(), [Problem::InvalidSpec(m)] if m.contains("immutable")));
}

fn regenerated(slot: Slot, revision: i64) -> Change {
    Change::Regenerated {
        slot,
        revision,
        found: None,
    }
}

/// The operator's Secret with a planted primary value (its proof no longer verifies).
fn tampered() -> SecretSeen {
    present(
        "uid-1",
        [
            slot(Some(1), Some("x"), None),
            slot(Some(1), Some("b"), Some(1)),
        ],
    )
}

#[test]
fn a_secret_that_was_never_filled_is_not_taken_as_ours() {
    // Empty (or pre-created with a copied owner reference) before any status: nothing proves
    // the operator wrote it.
    let p = run(&spec(), &Default::default(), owned(None, None, None, None));
    assert_eq!(p.write, SecretWrite::None);
    assert_eq!(p.problems, vec![Problem::SecretConflict]);
}

// Issue 8, item 1: a planted value is never written back by an unrelated write.
#[test]
fn a_layout_change_never_writes_back_a_planted_value() {
    let mut seen = tampered();
    if let SecretSeen::Present { layout_in_sync, .. } = &mut seen {
        *layout_in_sync = false;
    }
    let p = run(&spec(), &status(1, "a", 1, "b"), seen);
    assert_eq!(p.write, SecretWrite::None);
    assert_eq!(p.problems, vec![Problem::SecretDrift(vec![Slot::Primary])]);
    assert_eq!(p.holds[0], None, "status keeps its record of the primary");
}

// Issue 8, item 2: a revision annotation alone is no rotation.
#[test]
fn a_raised_revision_annotation_is_put_back_not_recorded() {
    let seen = present(
        "uid-1",
        [
            slot(Some(1), Some("a"), Some(1)),
            slot(Some(7), Some("b"), Some(1)),
        ],
    );
    let p = run(&spec(), &status(1, "a", 1, "b"), seen);
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), KEEP(1)]
        }
    );
    assert!(p.changes.is_empty() && p.problems.is_empty(), "{p:?}");
    // And it does not hide a real request either.
    let seen = present(
        "uid-1",
        [
            slot(Some(1), Some("a"), Some(1)),
            slot(Some(7), Some("b"), Some(1)),
        ],
    );
    let s = with_request(spec(), Slot::Secondary, 3, LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), seen);
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), GEN(3)]
        }
    );
}

// Issue 8, item 3: a Secret behind its status never gets a second key for one revision.
#[test]
fn a_lowered_annotation_or_an_old_value_never_regenerates() {
    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    // The annotation was lowered; the value is still revision 2's.
    let lowered = present(
        "uid-1",
        [
            slot(Some(1), Some("c"), Some(2)),
            slot(Some(1), Some("b"), Some(1)),
        ],
    );
    let p = run(&s, &status(2, "c", 1, "b"), lowered);
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(2), KEEP(1)]
        }
    );
    assert!(p.changes.is_empty() && p.problems.is_empty());
    // A backup of revision 1 was restored: the operator's own old key, but not the recorded one.
    let restored = owned(Some(1), Some("a"), Some(1), Some("b"));
    let p = run(&s, &status(2, "c", 1, "b"), restored.clone());
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.changes.is_empty());
    assert_eq!(p.problems, vec![Problem::SecretDrift(vec![Slot::Primary])]);
    // Only a higher request repairs it.
    let p = run(
        &with_request(spec(), Slot::Primary, 3, LABEL),
        &status(2, "c", 1, "b"),
        restored,
    );
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [GEN(3), KEEP(1)]
        }
    );
}

// Issue 8, item 6: an owner reference proves nothing; a uid or the operator's proofs do.
#[test]
fn only_the_recorded_uid_or_proofs_make_a_secret_the_operators() {
    for st in [DataMinerKeySetStatus::default(), status(1, "a", 1, "b")] {
        let p = run(&spec(), &st, foreign());
        assert_eq!(p.problems, vec![Problem::SecretConflict], "{st:?}");
        assert!(p.changes.is_empty() && p.write == SecretWrite::None);
    }
}

/// A Secret of another uid holding the recorded keys, proven (a restore, a hand re-create).
fn copy_of_record() -> SecretSeen {
    present(
        "uid-2",
        [
            slot(Some(1), Some("a"), Some(1)),
            slot(Some(1), Some("b"), Some(1)),
        ],
    )
}

fn with_seen(
    mut seen: SecretSeen,
    f: impl FnOnce(&mut Option<String>, &mut bool, &mut bool),
) -> SecretSeen {
    if let SecretSeen::Present {
        lineage,
        controlled,
        tombstoned,
        ..
    } = &mut seen
    {
        f(lineage, controlled, tombstoned);
    }
    seen
}

// Issue 21, item 2: the recorded Secret replaced by a copy of it (same proven values, another
// uid) is adopted, so that a revoke destroys it; it used to be a SecretConflict that a revoke
// left serving the keys.
#[test]
fn a_copy_of_the_recorded_keys_is_adopted() {
    let p = run(&spec(), &status(1, "a", 1, "b"), copy_of_record());
    assert_eq!(
        (p.changes.as_slice(), p.problems.as_slice()),
        (&[Change::KeysAdopted][..], &[][..])
    );
    assert_eq!(p.secret_uid.as_deref(), Some("uid-2"));
    assert_eq!(p.holds[0].as_ref().map(|h| h.revision), Some(1));
    // Keys of a revoked lineage, or of another generation of the name, are never adopted.
    let tombstoned = with_seen(copy_of_record(), |_, _, t| *t = true);
    let p = run(&spec(), &status(1, "a", 1, "b"), tombstoned);
    assert_eq!(p.problems, vec![Problem::SecretConflict]);
    let mut st = status(1, "a", 1, "b");
    st.lineage = Some("lineage-a".into());
    let other = with_seen(copy_of_record(), |l, _, _| *l = Some("lineage-b".into()));
    assert_eq!(
        run(&spec(), &st, other).problems,
        vec![Problem::SecretConflict]
    );
    // A copy holding one recorded key and one unknown value is not adopted, but revocation
    // destroys it: it holds a key of the set.
    let half = present(
        "uid-2",
        [
            slot(Some(1), Some("a"), Some(1)),
            slot(Some(1), Some("x"), None),
        ],
    );
    assert_eq!(
        run(&spec(), &status(1, "a", 1, "b"), half.clone()).problems,
        vec![Problem::SecretConflict]
    );
    let revoke = with_revoke(spec(), LABEL);
    let p = run(&revoke, &status(1, "a", 1, "b"), half);
    assert_eq!((p.write, p.revoked), (SecretWrite::Delete, true));
}

// Issue 21, item 1: a key set restored from a backup (no status) finds its Secret restored
// too (another uid, no owner reference): the proven keys are adopted at their revisions.
#[test]
fn a_restored_key_set_adopts_its_restored_keys() {
    let restored = with_seen(
        present(
            "uid-restored",
            [
                slot(Some(3), Some("c"), Some(3)),
                slot(Some(2), Some("d"), Some(2)),
            ],
        ),
        |l, c, _| {
            *l = Some("lineage-a".into());
            *c = false;
        },
    );
    let p = run(&spec(), &Default::default(), restored.clone());
    assert_eq!(p.changes, vec![Change::KeysAdopted]);
    assert!(p.problems.is_empty(), "{p:?}");
    assert_eq!(p.lineage.as_deref(), Some("lineage-a"));
    let revisions: Vec<_> = p
        .holds
        .iter()
        .map(|h| h.as_ref().map(|h| h.revision))
        .collect();
    assert_eq!(revisions, [Some(3), Some(2)]);
    // Written by this very key set before a crash (its controller reference): the first keys.
    let crashed = with_seen(restored.clone(), |_, c, _| *c = true);
    assert_eq!(
        run(&spec(), &Default::default(), crashed).changes,
        vec![Change::KeysCreated]
    );
    // A revoked lineage: never adopted, whatever the backup holds.
    let revoked = with_seen(restored, |_, _, t| *t = true);
    let p = run(&spec(), &Default::default(), revoked);
    assert_eq!(p.problems, vec![Problem::SecretConflict]);
    assert!(p.changes.is_empty());
}

// Issue 8, item 8: a Secret recreated just before a crash is recorded as the recreation.
#[test]
fn a_recreation_written_before_a_crash_is_recorded_as_one() {
    let recreated = present(
        "uid-2",
        [
            slot(Some(2), Some("c"), Some(2)),
            slot(Some(2), Some("d"), Some(2)),
        ],
    );
    let p = run(&spec(), &status(1, "a", 1, "b"), recreated);
    assert_eq!(p.write, SecretWrite::None);
    assert_eq!(p.changes, vec![Change::SecretRecreated]);
    assert_eq!(p.problems, vec![Problem::SecretMissing]);
    assert_eq!(p.secret_uid.as_deref(), Some("uid-2"));
    assert_eq!(p.holds[1].as_ref().map(|h| h.revision), Some(2));
}

// Issue 8, item 8: a rotation found on the Secret and a newer request both reach history.
#[test]
fn a_found_rotation_is_recorded_before_a_newer_one() {
    let s = with_request(spec(), Slot::Primary, 3, LABEL);
    let p = run(
        &s,
        &status(1, "a", 1, "b"),
        owned(Some(2), Some("c"), Some(1), Some("b")),
    );
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [GEN(3), KEEP(1)]
        }
    );
    assert_eq!(
        p.changes,
        vec![
            Change::Regenerated {
                slot: Slot::Primary,
                revision: 2,
                found: Some("c".into())
            },
            regenerated(Slot::Primary, 3)
        ]
    );
}

// Issue 8, item 8: revocation is always possible.
#[test]
fn revocation_goes_through_a_spec_the_controller_refuses() {
    let mut s = with_revoke(spec(), LABEL);
    s.permissions.push(Permission::RegisterCatalogItems);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::Delete);
    assert_eq!(p.changes, vec![Change::Revoked]);
    // But never another's Secret.
    let p = run(&s, &status(1, "a", 1, "b"), foreign());
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.revoked);
}

// Issue 8, items 4 and 5: what the API server would refuse, refused before any write.
#[test]
fn unwritable_names_metadata_and_whitespace_are_invalid_specs() {
    let long = "k".repeat(64);
    let p = plan(&PlanInput {
        name: &long,
        spec: &spec(),
        status: &Default::default(),
        secret_name: "x-keys",
        secret: SecretSeen::Absent,
        denied_prefixes: &[],
    });
    assert!(matches!(p.problems.as_slice(), [Problem::InvalidSpec(m)] if m.contains("63")));
    let mut labels = spec();
    labels.secret = Some(
        crate::api::SecretSpec {
            labels: [("bad key!".to_string(), "x".to_string())].into(),
            ..Default::default()
        }
        .into(),
    );
    let mut values = spec();
    values.secret = Some(
        crate::api::SecretSpec {
            labels: [("team".to_string(), "-x".to_string())].into(),
            ..Default::default()
        }
        .into(),
    );
    let mut annotations = spec();
    annotations.secret = Some(
        crate::api::SecretSpec {
            annotations: [("/x".to_string(), "any".to_string())].into(),
            ..Default::default()
        }
        .into(),
    );
    for s in [labels, values, annotations] {
        let p = run(&s, &Default::default(), SecretSeen::Absent);
        assert!(
            matches!(p.problems.as_slice(), [Problem::InvalidSpec(_)]),
            "{s:?}"
        );
        assert_eq!(p.write, SecretWrite::None);
    }
    for &c in crate::api::WHITESPACE {
        for label in [format!("{c}CI"), format!("CI{c}")] {
            let mut s = spec();
            s.label = label;
            let p = run(&s, &Default::default(), SecretSeen::Absent);
            assert!(
                matches!(p.problems.as_slice(), [Problem::InvalidSpec(m)] if m.contains("whitespace")),
                "U+{:04X}",
                c as u32
            );
        }
    }
}

#[test]
fn a_slot_at_the_revision_limit_is_never_written_above_it() {
    // The Secret is gone; a recreation would need MAX_REVISION + 1 for the primary.
    let p = run(
        &spec(),
        &status(MAX_REVISION, "a", 1, "b"),
        SecretSeen::Absent,
    );
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.changes.is_empty());
    assert_eq!(
        p.problems,
        vec![Problem::RevisionLimit(vec![Slot::Primary])]
    );
    // Up to the limit is fine, and a request above it is an invalid spec (no CEL rules).
    let at_limit = with_request(spec(), Slot::Secondary, MAX_REVISION, LABEL);
    let p = run(&at_limit, &status(1, "a", 1, "b"), steady());
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), GEN(MAX_REVISION)]
        }
    );
    let over = with_request(spec(), Slot::Secondary, MAX_REVISION + 1, LABEL);
    let p = run(&over, &status(1, "a", 1, "b"), steady());
    assert!(
        matches!(p.problems.as_slice(), [Problem::InvalidSpec(m)] if m.contains("at most 1000000000")),
        "{p:?}"
    );
}

// Issue 21, item 9: metadata that makes another controller copy the Secret is refused, built-in
// prefixes and the chart's own.
#[test]
fn metadata_that_copies_the_secret_elsewhere_is_refused() {
    let with = |labels: &[(&str, &str)], annotations: &[(&str, &str)]| {
        let mut s = spec();
        s.secret = Some(Box::new(crate::api::SecretSpec {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }));
        s
    };
    let extra = vec!["sync.example.com/".to_string()];
    let check = |s: &DataMinerKeySetSpec| {
        plan(&PlanInput {
            name: "ks",
            spec: s,
            status: &Default::default(),
            secret_name: "ks-keys",
            secret: SecretSeen::Absent,
            denied_prefixes: &extra,
        })
        .problems
    };
    for refused in [
        with(&[], &[("replicator.v1.mittwald.de/replicate-to", "team-b")]),
        with(
            &[],
            &[("reflector.v1.k8s.emberstack.com/reflection-allowed", "true")],
        ),
        with(&[("kubed.appscode.com/sync", "x")], &[]),
        with(&[], &[("sync.example.com/to", "all")]),
    ] {
        assert!(
            matches!(check(&refused).as_slice(), [Problem::InvalidSpec(m)] if m.contains("copy or expose")),
            "{refused:?}"
        );
    }
    assert!(
        check(&with(
            &[("team", "a")],
            &[("reloader.stakater.com/match", "true")]
        ))
        .is_empty()
    );
}
