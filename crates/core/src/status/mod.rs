//! Status computed from what was applied, and the Events and words that report it. Pure: the
//! time is an input.
//!
//! - this file: the next status (keys, history, conditions) and readiness;
//! - [`notices`]: the Events to publish;
//! - [`messages`]: what each problem and change says.
//!
//! [`Applied`] is this layer's input. The controller's apply step builds it; it is defined here
//! because status sits below the controller and may not import it.

mod audit;
mod messages;
mod notices;
mod progress;
mod requester;
mod standing;

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

pub use audit::{PENDING_LIMIT, Queued, queue, settle};
pub use notices::{Notice, notices};
pub use requester::{Requester, cut, requester};
pub use standing::{NextCheck, RECHECK_CONFLICT, Standing, restate_history};

use crate::{
    api::{
        ALSO, AUDIT_PENDING, DataMinerKeySet, DataMinerKeySetStatus, HistoryEntry, KeyStatus,
        OWN_CONDITIONS, READY, RECONCILING, REVOKED, STALLED,
    },
    plan::{Change, Held, Plan, Problem, Slot},
};
use messages::{describe, idle_requests, problem_message, regenerated};
use progress::Progress;

/// Joins a note to the Ready message of a set without problems.
const NOTE: &str = ". Note: ";

/// History entries kept in status, newest first.
pub const HISTORY_LIMIT: usize = 20;

/// The outcome of applying a plan: the plan as carried out (a failed write removes its
/// changes and adds the failure), and what the Secret holds afterwards.
#[derive(Clone, Debug)]
pub struct Applied {
    pub plan: Plan,
    /// The key the operator's Secret now holds per slot; `None` where there is none the
    /// operator vouches for (status keeps its record then).
    pub held: [Option<Held>; 2],
    /// The uid of the operator's Secret after the apply step, when known.
    pub secret_uid: Option<String>,
    /// The lineage of the keys, when known.
    pub lineage: Option<String>,
    pub now: Timestamp,
}

impl Applied {
    /// What the Secret holds in `slot`, if the operator vouches for it.
    pub fn held(&self, slot: Slot) -> Option<&Held> {
        self.held[slot.index()].as_ref()
    }
}

/// The Ready condition's (status, reason, message).
fn readiness(ks: &DataMinerKeySet, applied: &Applied) -> (bool, &'static str, String) {
    if applied.plan.revoked {
        // A copy of the keys that could not be deleted still serves them: say so.
        if let Some(failed) = applied
            .plan
            .problems
            .iter()
            .find(|p| p.reason() == "SecretWriteFailed")
        {
            return (false, failed.reason(), problem_message(ks, failed, applied));
        }
        // Done as asked: Ready, so that kstatus (Flux's `wait`) counts the set as current.
        return (
            true,
            "Revoked",
            "the key set is revoked; its keys are destroyed".into(),
        );
    }
    // The most important problem decides the reason; the message names every problem, so
    // each one's Warning is announced once while it lasts (notices.rs). SecretMissing is
    // repaired by this very plan.
    let mut blocking: Vec<&Problem> = applied
        .plan
        .problems
        .iter()
        .filter(|p| p.blocks_readiness())
        .collect();
    blocking.sort_by_key(|p| std::cmp::Reverse(p.severity()));
    if let Some(first) = blocking.first() {
        let mut message = problem_message(ks, first, applied);
        for other in &blocking[1..] {
            message.push_str(ALSO);
            message.push_str(&problem_message(ks, other, applied));
        }
        return (false, first.reason(), message);
    }
    match applied.held.iter().any(Option::is_some) {
        true => {
            let mut message = format!(
                "Secret {} holds primary key {} and secondary key {}",
                ks.secret_name(),
                describe(applied.held(Slot::Primary)),
                describe(applied.held(Slot::Secondary)),
            );
            // A request that asks for nothing is said here, where every re-sync finds it
            // unchanged (one Normal Event when it first appears: notices.rs).
            for idle in idle_requests(ks, applied) {
                message.push_str(NOTE);
                message.push_str(&idle);
            }
            (true, "KeysReady", message)
        }
        false => (
            false,
            "KeysPending",
            "the keys are not generated yet".into(),
        ),
    }
}

fn condition(
    old: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    // lastTransitionTime moves only when the status flips (API conventions).
    let last_transition_time = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The next status. Equal to `old` when nothing happened, so no write is needed.
pub fn next_status(ks: &DataMinerKeySet, applied: &Applied) -> DataMinerKeySetStatus {
    let old = ks.status.clone().unwrap_or_default();
    let now = applied.now;
    let plan = &applied.plan;
    let (scope, target) = ks.spec.scope_and_target();
    let generation = ks.metadata.generation;

    let key_status = |slot: Slot, previous: Option<&KeyStatus>| -> Option<KeyStatus> {
        let Some(h) = applied.held(slot) else {
            return previous.cloned();
        };
        let generated_at = match previous {
            Some(p) if p.revision == h.revision && p.fingerprint == h.fingerprint => {
                p.generated_at.clone()
            }
            _ => Time(now),
        };
        Some(KeyStatus {
            revision: h.revision,
            generated_at,
            fingerprint: h.fingerprint.clone(),
        })
    };

    // A key set restored from a backup is created anew: its adoption records when and by whom.
    let created = plan.changes.iter().any(|c| {
        matches!(
            c,
            Change::KeysCreated | Change::KeysAdopted | Change::Adopt { .. }
        )
    });
    let adopted_request = plan.changes.iter().find_map(|c| match c {
        Change::Adopt { request } => Some(*request),
        _ => None,
    });
    let revoked_now = plan.changes.contains(&Change::Revoked);

    let mut history: Vec<HistoryEntry> = plan
        .changes
        .iter()
        .rev()
        .map(|action| {
            let slot = match action {
                Change::Regenerated { slot, .. } => Some(*slot),
                _ => None,
            };
            let key = regenerated(applied, action);
            let asked = requester(ks, action);
            HistoryEntry {
                action: action.name().into(),
                slot: slot.map(|s| s.name().into()),
                revision: key.as_ref().map(|h| h.revision),
                at: Time(now),
                by: asked.as_ref().map(|r| r.by.clone()),
                on_behalf_of: asked.and_then(|r| r.on_behalf_of),
                fingerprint: key.map(|h| h.fingerprint),
            }
        })
        .collect();
    history.extend(old.history.iter().cloned());
    history.truncate(HISTORY_LIMIT);

    let mut next = DataMinerKeySetStatus {
        observed_generation: generation,
        scope: Some(scope.into()),
        target: Some(target),
        // Recorded once, when the keys first exist; never follows a later spec change, which
        // is how the controller notices a Secret name changed behind the CRD's back.
        secret_name: old.secret_name.clone().or_else(|| {
            applied
                .held
                .iter()
                .any(Option::is_some)
                .then(|| ks.secret_name())
        }),
        secret_uid: applied.secret_uid.clone().or(old.secret_uid.clone()),
        lineage: applied.lineage.clone().or(old.lineage.clone()),
        created_at: old
            .created_at
            .clone()
            .or_else(|| created.then_some(Time(now))),
        // Both recorded once, with the action (a later edit of the annotation changes nothing).
        created_by: old.created_by.clone().or_else(|| {
            created
                .then(|| requester(ks, &Change::KeysCreated))
                .flatten()
                .map(|r| r.by)
        }),
        primary: key_status(Slot::Primary, old.primary.as_ref()),
        secondary: key_status(Slot::Secondary, old.secondary.as_ref()),
        revoked_at: old
            .revoked_at
            .clone()
            .or_else(|| revoked_now.then_some(Time(now))),
        revoked_by: old.revoked_by.clone().or_else(|| {
            revoked_now
                .then(|| requester(ks, &Change::Revoked))
                .flatten()
                .map(|r| r.by)
        }),
        adopted_request: adopted_request.or(old.adopted_request),
        conditions: Vec::new(),
        history,
        pending_events: old.pending_events.clone(),
    };
    let (ready, reason, message) = readiness(ks, applied);
    let progress = progress::progress(ks, &old, &next, reason, &message);
    let mut conditions = vec![
        condition(
            &old.conditions,
            READY,
            ready,
            reason,
            message,
            generation,
            now,
        ),
        if plan.revoked {
            let destroyed = !plan
                .problems
                .iter()
                .any(|p| p.reason() == "SecretWriteFailed");
            condition(
                &old.conditions,
                REVOKED,
                true,
                "KeysRevoked",
                match destroyed {
                    true => "spec.revoke was confirmed; both keys are destroyed".into(),
                    false => format!(
                        "spec.revoke was confirmed, but Secret {} still holds keys of this set: deleting it failed (see Ready); retrying",
                        ks.secret_name()
                    ),
                },
                generation,
                now,
            )
        } else {
            condition(
                &old.conditions,
                REVOKED,
                false,
                "NotRevoked",
                "the key set is active".into(),
                generation,
                now,
            )
        },
    ];
    match progress {
        Progress::Settled => {}
        Progress::Reconciling { reason, message } => conditions.push(condition(
            &old.conditions,
            RECONCILING,
            true,
            reason,
            message,
            generation,
            now,
        )),
        Progress::Stalled { reason, message } => conditions.push(condition(
            &old.conditions,
            STALLED,
            true,
            reason,
            message,
            generation,
            now,
        )),
    }
    // Until the controller settles this reconcile's Events (audit.rs), what was pending stays.
    conditions.extend(
        old.conditions
            .iter()
            .filter(|c| c.type_ == AUDIT_PENDING)
            .cloned(),
    );
    next.conditions = conditions;
    next
}

/// True when writing `next` would change nothing the operator owns: conditions of other
/// writers (listed in `old`, never in `next`) do not count, and order does not matter.
pub fn unchanged(old: Option<&DataMinerKeySetStatus>, next: &DataMinerKeySetStatus) -> bool {
    let Some(old) = old else { return false };
    let own = |s: &DataMinerKeySetStatus| {
        let mut conditions: Vec<_> = s
            .conditions
            .iter()
            .filter(|c| OWN_CONDITIONS.contains(&c.type_.as_str()))
            .cloned()
            .collect();
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        DataMinerKeySetStatus {
            conditions,
            ..s.clone()
        }
    };
    own(old) == own(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        fixtures::{applied, at, held, keyset, plan},
        plan::Problem,
    };

    #[test]
    fn an_idle_reconcile_reproduces_the_status_exactly() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        let first = next_status(&ks, &applied(&created, held(1, 1), at(100)));
        ks.status = Some(first.clone());
        let idle = plan(vec![], vec![]);
        let second = next_status(&ks, &applied(&idle, held(1, 1), at(999)));
        assert_eq!(first, second, "no change means no status write");
        assert!(notices(&ks, &applied(&idle, held(1, 1), at(999))).is_empty());
    }

    #[test]
    fn a_request_that_asks_for_nothing_is_said_once_and_then_only_in_ready() {
        use crate::fixtures::{LABEL, with_request};
        let mut ks = keyset();
        ks.spec = with_request(ks.spec, Slot::Secondary, 1, LABEL);
        let created = plan(vec![Change::KeysCreated], vec![]);
        ks.status = Some(next_status(&ks, &applied(&created, held(1, 1), at(1))));
        let idle = plan(vec![], vec![]);
        // Re-applied (a GitOps re-sync): the note stays in Ready, the Event is not repeated.
        let ready = |ks: &DataMinerKeySet| ks.status.as_ref().unwrap().conditions[0].clone();
        assert_eq!(ready(&ks).reason, "KeysReady");
        assert!(
            ready(&ks)
                .message
                .contains("spec.regenerate.secondary.revision 1 asks for nothing")
                && ready(&ks).message.contains("set it to 2"),
            "{}",
            ready(&ks).message
        );
        assert!(notices(&ks, &applied(&idle, held(1, 1), at(2))).is_empty());
        // Appearing on a set already at rest: one Normal Event.
        let mut quiet = keyset();
        quiet.status = ks.status.clone();
        quiet.status.as_mut().unwrap().conditions[0].message = "held".into();
        quiet.spec = ks.spec.clone();
        let n = notices(&quiet, &applied(&idle, held(1, 1), at(3)));
        assert_eq!(
            (n.len(), n[0].reason, n[0].warning),
            (1, "RegenerateNotNeeded", false)
        );
        // Below the revision held (after a recreation): said. Equal above 1: the normal state.
        assert!(ready_message(&with(2), held(1, 3)).contains("revision 2 asks for nothing"));
        assert!(!ready_message(&with(2), held(1, 2)).contains("asks for nothing"));
        assert!(!ready_message(&with(3), held(1, 2)).contains("asks for nothing"));

        fn with(revision: i64) -> DataMinerKeySet {
            let mut ks = keyset();
            ks.spec = with_request(ks.spec, Slot::Secondary, revision, LABEL);
            ks
        }
        fn ready_message(ks: &DataMinerKeySet, held: [Option<Held>; 2]) -> String {
            let p = plan(vec![], vec![]);
            readiness(ks, &applied(&p, held, at(4))).2
        }
    }

    #[test]
    fn a_regeneration_moves_only_its_slot_and_is_recorded_first() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        ks.status = Some(next_status(&ks, &applied(&created, held(1, 1), at(100))));
        let regen = plan(
            vec![Change::Regenerated {
                slot: Slot::Primary,
                revision: 2,
                found: None,
            }],
            vec![],
        );
        let st = next_status(&ks, &applied(&regen, held(2, 1), at(200)));
        assert_eq!(st.primary.as_ref().unwrap().generated_at, Time(at(200)));
        assert_eq!(st.secondary.as_ref().unwrap().generated_at, Time(at(100)));
        assert_eq!(st.history[0].action, "RegeneratePrimary");
        assert_eq!(st.history[0].revision, Some(2));
        assert_eq!(st.history[0].fingerprint.as_deref(), Some("sha256:p2"));
        assert_eq!(st.history[1].action, "KeysCreated");
        // Ready stayed True: its lastTransitionTime does not move.
        let ready = st.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), &ready.last_transition_time),
            ("True", &Time(at(100)))
        );
    }

    #[test]
    fn history_keeps_the_newest_entries_only() {
        let mut ks = keyset();
        for i in 0..(HISTORY_LIMIT as i64 + 5) {
            let p = plan(
                vec![Change::Regenerated {
                    slot: Slot::Secondary,
                    revision: 4,
                    found: None,
                }],
                vec![],
            );
            ks.status = Some(next_status(&ks, &applied(&p, held(1, i + 2), at(i))));
        }
        let history = &ks.status.as_ref().unwrap().history;
        assert_eq!(history.len(), HISTORY_LIMIT);
        assert_eq!(history[0].revision, Some(HISTORY_LIMIT as i64 + 6));
    }

    #[test]
    fn the_secret_name_is_recorded_once_and_never_follows_the_spec() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        ks.status = Some(next_status(&ks, &applied(&created, held(1, 1), at(1))));
        ks.spec.secret = Some(
            crate::api::SecretSpec {
                name: Some("moved".into()),
                ..Default::default()
            }
            .into(),
        );
        let refused = plan(vec![], vec![Problem::InvalidSpec("moved".into())]);
        let st = next_status(&ks, &applied(&refused, [None, None], at(2)));
        assert_eq!(st.secret_name.as_deref(), Some("ks-keys"));
    }

    #[test]
    fn who_asked_is_recorded_once_with_the_action() {
        use crate::api::{CREATED_BY_ANNOTATION, REVOKED_BY_ANNOTATION};
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        // No policy recorded the creator: "unknown", not absent.
        assert_eq!(
            next_status(&ks, &applied(&created, held(1, 1), at(1)))
                .created_by
                .as_deref(),
            Some("unknown")
        );
        ks.metadata.annotations =
            Some([(CREATED_BY_ANNOTATION.to_string(), "user-a".to_string())].into());
        ks.status = Some(next_status(&ks, &applied(&created, held(1, 1), at(1))));
        assert_eq!(
            ks.status.as_ref().unwrap().created_by.as_deref(),
            Some("user-a")
        );
        assert_eq!(
            ks.status.as_ref().unwrap().history[0].by.as_deref(),
            Some("user-a")
        );
        // A later edit of the annotation does not rewrite what was recorded.
        ks.metadata.annotations = Some(
            [
                (CREATED_BY_ANNOTATION.to_string(), "user-x".to_string()),
                (REVOKED_BY_ANNOTATION.to_string(), "user-c".to_string()),
            ]
            .into(),
        );
        let idle = next_status(&ks, &applied(&plan(vec![], vec![]), held(1, 1), at(2)));
        assert_eq!(idle, ks.status.clone().unwrap(), "nothing to write");
        let mut revoke = plan(vec![Change::Revoked], vec![]);
        revoke.revoked = true;
        let st = next_status(&ks, &applied(&revoke, [None, None], at(3)));
        assert_eq!(
            (st.created_by.as_deref(), st.revoked_by.as_deref()),
            (Some("user-a"), Some("user-c"))
        );
        assert_eq!(st.history[0].by.as_deref(), Some("user-c"));
    }

    #[test]
    fn a_problem_is_announced_once_while_it_lasts() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        ks.status = Some(next_status(&ks, &applied(&created, held(1, 1), at(1))));
        let drift = plan(vec![], vec![Problem::SecretDrift(vec![Slot::Primary])]);
        let drifted = applied(&drift, held(1, 1), at(2));
        let first = notices(&ks, &drifted);
        assert_eq!(first.len(), 1);
        assert!(first[0].warning && first[0].reason == "SecretDrift");
        ks.status = Some(next_status(&ks, &drifted));
        let ready = ks
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "SecretDrift")
        );
        assert!(notices(&ks, &applied(&drift, held(1, 1), at(3))).is_empty());
    }

    #[test]
    fn a_rotation_found_after_a_crash_is_recorded_with_its_own_revision() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        ks.status = Some(next_status(
            &ks,
            &Applied {
                plan: created.clone(),
                held: held(1, 1),
                secret_uid: Some("uid-1".into()),
                lineage: None,
                now: at(1),
            },
        ));
        assert_eq!(
            ks.status.as_ref().unwrap().secret_uid.as_deref(),
            Some("uid-1")
        );
        let both = plan(
            vec![
                Change::Regenerated {
                    slot: Slot::Primary,
                    revision: 2,
                    found: Some("sha256:found2".into()),
                },
                Change::Regenerated {
                    slot: Slot::Primary,
                    revision: 3,
                    found: None,
                },
            ],
            vec![],
        );
        let st = next_status(&ks, &applied(&both, held(3, 1), at(2)));
        let h: Vec<_> = st
            .history
            .iter()
            .map(|h| (h.revision, h.fingerprint.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            h[..2],
            [
                (Some(3), "sha256:p3".to_string()),
                (Some(2), "sha256:found2".to_string())
            ]
        );
        assert_eq!(st.secret_uid.as_deref(), Some("uid-1"), "kept");
    }

    #[test]
    fn a_refused_write_is_not_ready_and_says_why() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        ks.status = Some(next_status(&ks, &applied(&created, held(1, 1), at(1))));
        let failed = plan(
            vec![],
            vec![Problem::WriteFailed(
                "field is immutable (HTTP 422 Invalid)".into(),
            )],
        );
        let applied = applied(&failed, [None, None], at(2));
        let st = next_status(&ks, &applied);
        let ready = st.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "SecretWriteFailed")
        );
        assert!(
            ready.message.contains("field is immutable"),
            "{}",
            ready.message
        );
        assert_eq!(
            st.primary,
            ks.status.as_ref().unwrap().primary,
            "record kept"
        );
        let n = notices(&ks, &applied);
        assert_eq!(
            (n.len(), n[0].reason, n[0].warning),
            (1, "SecretWriteFailed", true)
        );
    }

    #[test]
    fn ready_shows_the_problem_to_fix_first_and_ignores_a_repaired_one() {
        let ks = keyset();
        let ready = |problems: Vec<Problem>| {
            let p = plan(vec![], problems);
            let st = next_status(&ks, &applied(&p, held(1, 1), at(1)));
            let c = st
                .conditions
                .iter()
                .find(|c| c.type_ == READY)
                .unwrap()
                .clone();
            (c.status, c.reason)
        };
        let drift = Problem::SecretDrift(vec![Slot::Primary]);
        let mismatch = Problem::ConfirmationMismatch(vec!["spec.revoke"]);
        let failed = Problem::WriteFailed("refused".into());
        assert_eq!(
            ready(vec![drift.clone(), mismatch.clone()]),
            ("False".into(), "ConfirmationMismatch".into())
        );
        assert_eq!(
            ready(vec![drift, mismatch, failed, Problem::SecretConflict]),
            ("False".into(), "SecretConflict".into())
        );
        assert_eq!(
            ready(vec![Problem::SecretMissing]),
            ("True".into(), "KeysReady".into())
        );
    }

    #[test]
    fn ready_names_every_problem_and_each_is_announced_once() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        ks.status = Some(next_status(&ks, &applied(&created, held(1, 1), at(1))));
        let both = plan(
            vec![],
            vec![
                Problem::ConfirmationMismatch(vec!["spec.revoke"]),
                Problem::SecretConflict,
            ],
        );
        let first = applied(&both, held(1, 1), at(2));
        let reasons: Vec<_> = notices(&ks, &first).iter().map(|n| n.reason).collect();
        assert_eq!(reasons, ["ConfirmationMismatch", "SecretConflict"]);
        ks.status = Some(next_status(&ks, &first));
        let ready = ks.status.as_ref().unwrap().conditions[0].clone();
        assert_eq!(ready.reason, "SecretConflict", "the one to fix first");
        assert!(ready.message.contains("spec.revoke"), "{}", ready.message);
        assert!(notices(&ks, &applied(&both, held(1, 1), at(3))).is_empty());
        // The lower one gone and back: announced again.
        let conflict = plan(vec![], vec![Problem::SecretConflict]);
        ks.status = Some(next_status(&ks, &applied(&conflict, held(1, 1), at(4))));
        let again: Vec<_> = notices(&ks, &applied(&both, held(1, 1), at(5)))
            .iter()
            .map(|n| n.reason)
            .collect();
        assert_eq!(again, ["ConfirmationMismatch"]);
    }

    #[test]
    fn the_plugin_finds_the_drifted_slots_in_any_ready_message() {
        let ks = keyset();
        let ready = |problems: Vec<Problem>| {
            let st = next_status(&ks, &applied(&plan(vec![], problems), held(1, 1), at(1)));
            st.conditions[0].message.clone()
        };
        let drift = |slots: Vec<Slot>| Problem::SecretDrift(slots);
        assert_eq!(
            crate::api::drifted_slots(&ready(vec![drift(vec![Slot::Secondary])])),
            [Slot::Secondary]
        );
        assert_eq!(
            crate::api::drifted_slots(&ready(vec![drift(vec![Slot::Primary, Slot::Secondary])])),
            [Slot::Primary, Slot::Secondary]
        );
        // Below a more severe problem, after "Also:".
        let both = ready(vec![drift(vec![Slot::Primary]), Problem::SecretConflict]);
        assert_eq!(crate::api::drifted_slots(&both), [Slot::Primary]);
        assert!(crate::api::drifted_slots(&ready(vec![])).is_empty());
    }

    #[test]
    fn another_writers_condition_causes_no_write() {
        let mut ks = keyset();
        let created = plan(vec![Change::KeysCreated], vec![]);
        let ours = next_status(&ks, &applied(&created, held(1, 1), at(1)));
        let mut stored = ours.clone();
        stored.conditions.insert(
            0,
            Condition {
                type_: "audit.example.com/Reviewed".into(),
                status: "True".into(),
                reason: "Reviewed".into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: Time(at(0)),
            },
        );
        ks.status = Some(stored.clone());
        let next = next_status(&ks, &applied(&plan(vec![], vec![]), held(1, 1), at(2)));
        assert!(unchanged(Some(&stored), &next), "{next:?}");
        assert!(
            next.conditions
                .iter()
                .all(|c| OWN_CONDITIONS.contains(&c.type_.as_str()))
        );
        assert!(!unchanged(None, &next));
    }

    #[test]
    fn notes_name_the_slot_revision_and_fingerprint() {
        let ks = keyset();
        let regen = plan(
            vec![Change::Regenerated {
                slot: Slot::Secondary,
                revision: 4,
                found: None,
            }],
            vec![],
        );
        let n = notices(&ks, &applied(&regen, held(3, 4), at(1)));
        assert_eq!(n[0].reason, "SecondaryKeyRegenerated");
        assert!(
            n[0].note
                .contains("secondary key: now revision 4 (sha256:s4)"),
            "{}",
            n[0].note
        );
        assert!(
            n[0].note.contains("primary key is unchanged at revision 3"),
            "{}",
            n[0].note
        );
    }
}
