//! The plan as it was carried out: what may be reported and recorded once the Secret write is
//! known to have failed. Pure, so the rule has a fast test instead of living in the apply step.

use super::{Plan, Problem};

/// How far a failed Secret write got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// Nothing was written.
    Nothing,
    /// The first request went through (a create whose follow-up metadata write failed): what it
    /// wrote is there and is reported as done.
    Part,
}

/// `plan` after its Secret write failed with `message`: when nothing was written, no change is
/// reported or recorded (the revocation included, unless status already records it, and the
/// recreation warning, since nothing was recreated); in every case the failure is a problem.
pub fn settle_failed(
    mut plan: Plan,
    reached: Reached,
    message: String,
    revoked_before: bool,
) -> Plan {
    if reached == Reached::Nothing {
        plan.changes.clear();
        plan.revoked = revoked_before;
        plan.problems.retain(|p| *p != Problem::SecretMissing);
    }
    plan.problems.push(Problem::WriteFailed(message));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, SecretWrite, SlotPlan};

    fn recreating() -> Plan {
        Plan {
            write: SecretWrite::Create {
                slots: [SlotPlan::Generate { revision: 2 }; 2],
            },
            changes: vec![Change::SecretRecreated],
            problems: vec![Problem::SecretMissing],
            revoked: false,
            secret_uid: None,
            holds: [None, None],
            lineage: None,
        }
    }

    #[test]
    fn nothing_written_reports_nothing_done_only_the_failure() {
        let p = settle_failed(recreating(), Reached::Nothing, "quota".into(), false);
        assert!(p.changes.is_empty());
        assert_eq!(p.problems, [Problem::WriteFailed("quota".into())]);
    }

    #[test]
    fn a_part_written_is_reported_with_the_failure() {
        let p = settle_failed(recreating(), Reached::Part, "quota".into(), false);
        assert_eq!(p.changes, [Change::SecretRecreated]);
        assert_eq!(
            p.problems,
            [Problem::SecretMissing, Problem::WriteFailed("quota".into())]
        );
    }

    #[test]
    fn a_failed_revocation_is_not_recorded_unless_it_already_was() {
        let mut revoking = recreating();
        revoking.write = SecretWrite::Delete;
        revoking.changes = vec![Change::Revoked];
        revoking.revoked = true;
        let p = settle_failed(revoking.clone(), Reached::Nothing, "refused".into(), false);
        assert!(!p.revoked && p.changes.is_empty());
        let p = settle_failed(revoking, Reached::Nothing, "refused".into(), true);
        assert!(p.revoked, "a recorded revocation stays recorded");
    }
}
