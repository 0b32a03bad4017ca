//! The plan for every combination of spec, status and Secret that matters.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use super::*;
use crate::api::{
    KeyStatus, OrganizationScope, Permission, RegenerateSpec, RevokeSpec, Scope, SystemScope,
};

const LABEL: &str = "CI pipeline";

fn spec() -> DataMinerKeySetSpec {
    DataMinerKeySetSpec {
        label: LABEL.into(),
        scope: Scope {
            organization: Some(OrganizationScope {
                name: "skyline".into(),
            }),
            system: None,
        },
        permissions: vec![Permission::RegisterCatalogItems],
        key_format: Default::default(),
        secret: None,
        regenerate: None,
        revoke: None,
    }
}

fn with_request(
    mut s: DataMinerKeySetSpec,
    slot: Slot,
    revision: i64,
    confirm: &str,
) -> DataMinerKeySetSpec {
    let r = s.regenerate.get_or_insert_with(RegenerateSpec::default);
    let req = Some(RegenerateRequest {
        revision,
        confirm_label: confirm.into(),
    });
    match slot {
        Slot::Primary => r.primary = req,
        Slot::Secondary => r.secondary = req,
    }
    s
}

fn with_revoke(mut s: DataMinerKeySetSpec, confirm: &str) -> DataMinerKeySetSpec {
    s.revoke = Some(RevokeSpec {
        confirm_label: confirm.into(),
    });
    s
}

fn key(revision: i64, fp: &str) -> KeyStatus {
    KeyStatus {
        revision,
        generated_at: Time(Timestamp::UNIX_EPOCH),
        fingerprint: fp.into(),
    }
}

/// Status after keys were created: primary `p` at `p_rev`, secondary `s` at `s_rev`.
fn status(p_rev: i64, p: &str, s_rev: i64, s: &str) -> DataMinerKeySetStatus {
    DataMinerKeySetStatus {
        secret_name: Some("ks-keys".into()),
        primary: Some(key(p_rev, p)),
        secondary: Some(key(s_rev, s)),
        ..Default::default()
    }
}

fn owned(p_rev: Option<i64>, p: Option<&str>, s_rev: Option<i64>, s: Option<&str>) -> SecretSeen {
    SecretSeen::Owned {
        slots: [
            SlotSeen {
                revision: p_rev,
                fingerprint: p.map(str::to_string),
            },
            SlotSeen {
                revision: s_rev,
                fingerprint: s.map(str::to_string),
            },
        ],
        layout_in_sync: true,
    }
}

fn run(spec: &DataMinerKeySetSpec, status: &DataMinerKeySetStatus, secret: SecretSeen) -> Plan {
    plan(&PlanInput {
        spec,
        status,
        secret_name: "ks-keys",
        secret,
    })
}

fn steady() -> SecretSeen {
    owned(Some(1), Some("a"), Some(1), Some("b"))
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
    assert_eq!(p.actions, vec![Action::KeysCreated]);
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
    assert_eq!(p.actions, vec![Action::KeysCreated]);
}

#[test]
fn nothing_to_do_when_everything_matches() {
    let p = run(&spec(), &status(1, "a", 1, "b"), steady());
    assert_eq!(p, Plan::idle());
}

#[test]
fn a_secret_out_of_layout_is_rewritten_with_the_same_keys() {
    let mut seen = steady();
    if let SecretSeen::Owned { layout_in_sync, .. } = &mut seen {
        *layout_in_sync = false;
    }
    let p = run(&spec(), &status(1, "a", 1, "b"), seen);
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), KEEP(1)]
        }
    );
    assert!(p.actions.is_empty());
}

#[test]
fn a_missing_revision_annotation_is_written_back_without_new_keys() {
    let p = run(
        &spec(),
        &status(1, "a", 1, "b"),
        owned(None, Some("a"), Some(1), Some("b")),
    );
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [KEEP(1), KEEP(1)]
        }
    );
    assert!(p.actions.is_empty() && p.problems.is_empty());
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
    assert_eq!(p.actions, vec![Action::Regenerated(Slot::Primary)]);
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
    assert_eq!(p.actions, vec![Action::Regenerated(Slot::Secondary)]);
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
    assert_eq!(p.actions.len(), 1);
}

#[test]
fn an_applied_request_is_not_applied_again() {
    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    let p = run(
        &s,
        &status(2, "c", 1, "b"),
        owned(Some(2), Some("c"), Some(1), Some("b")),
    );
    assert_eq!(p, Plan::idle());
}

#[test]
fn a_request_at_or_below_the_current_revision_is_already_satisfied() {
    let s = with_request(spec(), Slot::Primary, 1, LABEL);
    assert_eq!(
        run(
            &s,
            &status(3, "c", 1, "b"),
            owned(Some(3), Some("c"), Some(1), Some("b"))
        ),
        Plan::idle()
    );
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
    assert_eq!(p.actions, vec![Action::Regenerated(Slot::Primary)]);
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
    assert_eq!(p.actions, vec![Action::KeysCreated]);
}

#[test]
fn a_mismatched_confirmation_changes_nothing() {
    let s = with_request(spec(), Slot::Primary, 2, "CI pipelin");
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.actions.is_empty());
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
    assert!(p.actions.is_empty());
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
    assert_eq!(p, Plan::idle());
}

#[test]
fn a_confirmed_revoke_deletes_the_owned_secret() {
    let s = with_revoke(spec(), LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::Delete);
    assert_eq!(p.actions, vec![Action::Revoked]);
    assert!(p.revoked);
}

#[test]
fn a_confirmed_revoke_wins_over_pending_regenerations() {
    let s = with_revoke(with_request(spec(), Slot::Primary, 9, LABEL), LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), steady());
    assert_eq!(p.write, SecretWrite::Delete);
    assert_eq!(p.actions, vec![Action::Revoked]);
}

#[test]
fn a_revoke_after_the_secret_is_gone_is_recorded() {
    let s = with_revoke(spec(), LABEL);
    let p = run(&s, &status(1, "a", 1, "b"), SecretSeen::Absent);
    assert_eq!(p.write, SecretWrite::None);
    assert_eq!(p.actions, vec![Action::Revoked]);
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
        assert!(p.actions.is_empty() && p.revoked);
        assert_eq!(run(&s, &st, SecretSeen::Foreign).write, SecretWrite::None);
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
            SecretSeen::Foreign,
        );
        assert_eq!(p.write, SecretWrite::None);
        assert!(p.actions.is_empty());
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
    assert_eq!(p.actions, vec![Action::SecretRecreated]);
    assert_eq!(p.problems, vec![Problem::SecretMissing]);
}

#[test]
fn a_tampered_key_is_reported_not_rotated() {
    let p = run(
        &spec(),
        &status(1, "a", 1, "b"),
        owned(Some(1), Some("x"), Some(1), Some("b")),
    );
    assert_eq!(p.write, SecretWrite::None);
    assert!(p.actions.is_empty());
    assert_eq!(p.problems, vec![Problem::SecretDrift(vec![Slot::Primary])]);
}

#[test]
fn a_regenerate_request_clears_drift() {
    let s = with_request(spec(), Slot::Primary, 2, LABEL);
    let p = run(
        &s,
        &status(1, "a", 1, "b"),
        owned(Some(1), Some("x"), Some(1), Some("b")),
    );
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
    assert!(p.actions.is_empty(), "never half-applied: {:?}", p.actions);
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
    both.scope.system = Some(SystemScope {
        name: "dms".into(),
        organization: None,
    });
    let mut none = spec();
    none.scope.organization = None;
    let mut org_without_permissions = spec();
    org_without_permissions.permissions.clear();
    let mut system_with_permissions = spec();
    system_with_permissions.scope = Scope {
        organization: None,
        system: Some(SystemScope {
            name: "dms".into(),
            organization: None,
        }),
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
        spec: &spec(),
        status: &status(1, "a", 1, "b"),
        secret_name: "other-name",
        secret: SecretSeen::Absent,
    });
    assert_eq!(p.write, SecretWrite::None);
    assert!(matches!(p.problems.as_slice(), [Problem::InvalidSpec(m)] if m.contains("immutable")));
}

#[test]
fn an_owned_secret_that_was_never_filled_gets_its_first_keys() {
    // Someone emptied (or pre-created, with our owner reference) the Secret before any status.
    let p = run(&spec(), &Default::default(), owned(None, None, None, None));
    assert_eq!(
        p.write,
        SecretWrite::Update {
            slots: [GEN(1), GEN(1)]
        }
    );
    assert_eq!(p.actions, vec![Action::KeysCreated]);
}
