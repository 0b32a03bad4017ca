//! The Events a reconcile publishes: one per change, and one per problem that is new.

use super::{
    Applied, messages,
    messages::{change_note, problem_message},
};
use crate::{
    api::{ALSO, DataMinerKeySet, READY},
    plan::{Change, Problem},
};

/// A Kubernetes Event to publish: (`Normal` or `Warning`, reason, note).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

/// Events to publish: one per action, and one per problem that is new since the last status
/// (a problem already reported in the Ready condition is not repeated on every resync).
pub fn notices(ks: &DataMinerKeySet, applied: &Applied) -> Vec<Notice> {
    let mut out: Vec<Notice> = applied
        .plan
        .changes
        .iter()
        // A recreated Secret is reported by its SecretMissing warning alone.
        .filter(|&change| *change != Change::SecretRecreated)
        .map(|change| Notice {
            warning: false,
            reason: change.event_reason(),
            action: change.name(),
            note: change_note(ks, change, applied),
        })
        .collect();
    let old_ready = ks
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
    for problem in &applied.plan.problems {
        let reason = problem.reason();
        let message = problem_message(ks, problem, applied);
        // The Ready message names every problem (mod.rs, readiness): one it names already
        // was announced when it appeared.
        let already_reported = !matches!(problem, Problem::SecretMissing)
            && old_ready.is_some_and(|c| {
                c.status == "False" && c.message.split(ALSO).any(|shown| shown == message)
            });
        if !already_reported {
            out.push(Notice {
                warning: true,
                reason,
                action: "Reconcile",
                note: message,
            });
        }
    }
    // A request that asks for nothing: one Normal Event when the Ready message first says so.
    let (_, _, message) = super::readiness(ks, applied);
    for idle in messages::idle_requests(ks, applied) {
        let said = old_ready.is_some_and(|c| c.message.contains(&idle));
        if message.contains(&idle) && !said {
            out.push(Notice {
                warning: false,
                reason: "RegenerateNotNeeded",
                action: "Reconcile",
                note: idle,
            });
        }
    }
    out
}
