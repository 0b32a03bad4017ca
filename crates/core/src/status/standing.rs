//! What a reconcile's outcome means beyond status: the state the operator's gauge counts the key
//! set in, and when to look at it again without a watch event.

use std::time::Duration;

use crate::{
    api::{DataMinerKeySetStatus, HistoryEntry, READY},
    plan::{Plan, Problem},
};

use super::HISTORY_LIMIT;

/// The state a key set is counted in by `dataminer_keys_keysets{state}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Ready,
    NotReady,
    Revoked,
}

impl Standing {
    /// The state after `plan` was applied and `next` written.
    pub fn of(plan: &Plan, next: &DataMinerKeySetStatus) -> Self {
        if plan.revoked {
            return Standing::Revoked;
        }
        match next
            .conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == "True")
        {
            true => Standing::Ready,
            false => Standing::NotReady,
        }
    }

    /// The gauge's `state` label.
    pub fn name(self) -> &'static str {
        match self {
            Standing::Ready => "Ready",
            Standing::NotReady => "NotReady",
            Standing::Revoked => "Revoked",
        }
    }
}

/// When a key set whose Secret is someone else's is looked at again: that Secret is not watched,
/// so its removal sends no event.
pub const RECHECK_CONFLICT: Duration = Duration::from_secs(30);

/// When to look at a key set again without a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextCheck {
    /// At its next watch event (or the periodic re-check of every key set).
    OnChange,
    After(Duration),
}

impl NextCheck {
    pub fn after(plan: &Plan) -> Self {
        match plan.problems.contains(&Problem::SecretConflict) {
            true => NextCheck::After(RECHECK_CONFLICT),
            false => NextCheck::OnChange,
        }
    }
}

/// `next` as written: its new history entries first, then the history `kept` of the version it
/// was planned on (the index keeps it out of the cached key set), at most [`HISTORY_LIMIT`].
pub fn restate_history(next: &mut DataMinerKeySetStatus, kept: Vec<HistoryEntry>) {
    next.history.extend(kept);
    next.history.truncate(HISTORY_LIMIT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        fixtures,
        plan::{self, PlanInput, SecretSeen},
        status::{Applied, next_status},
    };

    fn planned(ks: &crate::api::DataMinerKeySet, secret: SecretSeen) -> Plan {
        let status = ks.status.clone().unwrap_or_default();
        plan::plan(&PlanInput {
            name: "ks",
            spec: &ks.spec,
            status: &status,
            secret_name: "ks-keys",
            secret,
            denied_prefixes: &[],
        })
    }

    #[test]
    fn a_new_set_is_not_ready_until_its_keys_are_held_and_a_conflict_is_checked_again() {
        let ks = fixtures::keyset();
        let plan = planned(&ks, SecretSeen::Absent);
        let applied = Applied {
            plan: plan.clone(),
            held: [None, None],
            secret_uid: None,
            lineage: None,
            now: fixtures::at(0),
        };
        let next = next_status(&ks, &applied);
        assert_eq!(Standing::of(&plan, &next), Standing::NotReady);
        assert_eq!(NextCheck::after(&plan), NextCheck::OnChange);

        let mut conflict = plan.clone();
        conflict.problems.push(Problem::SecretConflict);
        assert_eq!(
            NextCheck::after(&conflict),
            NextCheck::After(RECHECK_CONFLICT)
        );
        let mut revoked = plan;
        revoked.revoked = true;
        assert_eq!(Standing::of(&revoked, &next).name(), "Revoked");
    }

    #[test]
    fn restated_history_is_new_entries_first_and_never_over_the_limit() {
        let entry = |action: &str| HistoryEntry {
            action: action.into(),
            slot: None,
            revision: None,
            at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(fixtures::at(0)),
            by: None,
            on_behalf_of: None,
            fingerprint: None,
        };
        let mut next = DataMinerKeySetStatus {
            history: vec![entry("new")],
            ..Default::default()
        };
        restate_history(
            &mut next,
            (0..HISTORY_LIMIT).map(|_| entry("old")).collect(),
        );
        assert_eq!(next.history.len(), HISTORY_LIMIT);
        assert_eq!(next.history[0].action, "new");
        assert_eq!(next.history[1].action, "old");
    }
}
