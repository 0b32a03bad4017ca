//! kstatus's conditions (the abnormal-true pair Flux, cli-utils and `kubectl apply --prune`
//! tooling read): `Reconciling` while the operator still has work it will do on its own,
//! `Stalled` while it waits for a person. Both are left out when false. Ready says the rest:
//! kstatus reads Ready=True as Current and Ready=False as in progress, which is why a revoked
//! set, whose revocation is done, is Ready (reason `Revoked`).

use crate::api::{DataMinerKeySet, DataMinerKeySetStatus};

/// What is left to do after this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Progress {
    /// Nothing: the key set is as its spec asks.
    Settled,
    /// The operator will carry on by itself (the first keys, a retried write, a request that
    /// waits for the next reconcile).
    Reconciling {
        reason: &'static str,
        message: String,
    },
    /// Nothing changes until someone acts (the spec, the Secret, or a write that keeps failing).
    Stalled {
        reason: &'static str,
        message: String,
    },
}

/// Ready's reasons that wait for a person.
const NEEDS_A_PERSON: [&str; 6] = [
    "InvalidSpec",
    "ConfirmationMismatch",
    "SecretConflict",
    "SecretDrift",
    "RevisionLimit",
    "AdoptionRefused",
];

/// `reason` and `message` are those of the Ready condition this reconcile writes; `old` the
/// status it replaces; `next` the status without these conditions yet.
pub(super) fn progress(
    ks: &DataMinerKeySet,
    old: &DataMinerKeySetStatus,
    next: &DataMinerKeySetStatus,
    reason: &'static str,
    message: &str,
) -> Progress {
    if reason == "SecretWriteFailed" {
        // The first failure is retried with backoff; one that fails again needs a look.
        let failed_before = old
            .conditions
            .iter()
            .any(|c| c.type_ == crate::api::READY && c.reason == "SecretWriteFailed");
        return match failed_before {
            true => Progress::Stalled {
                reason,
                message: format!("{message} (still failing after a retry)"),
            },
            false => Progress::Reconciling {
                reason: "RetryingWrite",
                message: message.to_string(),
            },
        };
    }
    if NEEDS_A_PERSON.contains(&reason) {
        return Progress::Stalled {
            reason,
            message: message.to_string(),
        };
    }
    if reason == "KeysPending" {
        return Progress::Reconciling {
            reason,
            message: message.to_string(),
        };
    }
    match pending_request(ks, next) {
        Some(what) => Progress::Reconciling {
            reason: "RequestPending",
            message: format!("{what} is not carried out yet"),
        },
        None => Progress::Settled,
    }
}

/// A confirmed request in the spec that `next` does not record as done (an adoption goes
/// alone: a regenerate in the same spec waits for the next reconcile).
fn pending_request(ks: &DataMinerKeySet, next: &DataMinerKeySetStatus) -> Option<String> {
    let spec = &ks.spec;
    if next.revoked_at.is_some() {
        return None;
    }
    if spec.revoke.is_some() {
        return Some("spec.revoke".into());
    }
    if let Some(adopt) = &spec.adopt
        && next.adopted_request.is_none_or(|done| done < adopt.request)
    {
        return Some(format!("spec.adopt request {}", adopt.request));
    }
    let regenerate = spec.regenerate.as_ref()?;
    for (name, asked, held) in [
        ("primary", &regenerate.primary, &next.primary),
        ("secondary", &regenerate.secondary, &next.secondary),
    ] {
        if let (Some(asked), Some(held)) = (asked, held)
            && asked.revision > held.revision
        {
            return Some(format!(
                "spec.regenerate.{name} revision {}",
                asked.revision
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::{
        api::{
            DataMinerKeySetStatus, READY, RECONCILING, RegenerateRequest, RegenerateSpec, STALLED,
        },
        fixtures::{applied, at, held, keyset, plan},
        plan::{Change, Problem, Slot},
        status::next_status,
    };

    /// (condition type, status, reason) of every condition, in order.
    fn conditions(st: &DataMinerKeySetStatus) -> Vec<(String, String, String)> {
        st.conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    fn has(st: &DataMinerKeySetStatus, type_: &str, reason: &str) -> bool {
        st.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True" && c.reason == reason)
    }

    #[test]
    fn settled_sets_carry_neither_condition_and_a_revoked_set_is_ready() {
        let ks = keyset();
        let created = next_status(
            &ks,
            &applied(&plan(vec![Change::KeysCreated], vec![]), held(1, 1), at(1)),
        );
        assert_eq!(conditions(&created).len(), 2, "{:?}", conditions(&created));
        assert!(has(&created, READY, "KeysReady"));

        let mut revoke = plan(vec![Change::Revoked], vec![]);
        revoke.revoked = true;
        let revoked = next_status(&ks, &applied(&revoke, [None, None], at(2)));
        assert!(
            has(&revoked, READY, "Revoked"),
            "{:?}",
            conditions(&revoked)
        );
        assert!(
            !revoked
                .conditions
                .iter()
                .any(|c| c.type_ == RECONCILING || c.type_ == STALLED)
        );
    }

    #[test]
    fn first_keys_and_a_first_failed_write_are_reconciling_a_second_failure_stalls() {
        let ks = keyset();
        let pending = next_status(&ks, &applied(&plan(vec![], vec![]), [None, None], at(1)));
        assert!(has(&pending, RECONCILING, "KeysPending"));

        let failed = plan(vec![], vec![Problem::WriteFailed("quota".into())]);
        let first = next_status(&ks, &applied(&failed, [None, None], at(1)));
        assert!(
            has(&first, RECONCILING, "RetryingWrite"),
            "{:?}",
            conditions(&first)
        );
        let mut again = ks.clone();
        again.status = Some(first);
        let second = next_status(&again, &applied(&failed, [None, None], at(2)));
        assert!(
            has(&second, STALLED, "SecretWriteFailed"),
            "{:?}",
            conditions(&second)
        );
        assert!(!second.conditions.iter().any(|c| c.type_ == RECONCILING));
    }

    #[test]
    fn what_waits_for_a_person_stalls() {
        let mut ks = keyset();
        ks.status = Some(next_status(
            &ks,
            &applied(&plan(vec![Change::KeysCreated], vec![]), held(1, 1), at(1)),
        ));
        for problem in [
            Problem::ConfirmationMismatch(vec!["spec.regenerate.primary"]),
            Problem::SecretConflict,
            Problem::SecretDrift(vec![Slot::Primary]),
            Problem::InvalidSpec("bad".into()),
            Problem::RevisionLimit(vec![Slot::Secondary]),
        ] {
            let reason = problem.reason();
            let st = next_status(
                &ks,
                &applied(&plan(vec![], vec![problem]), held(1, 1), at(2)),
            );
            assert!(has(&st, STALLED, reason), "{reason}: {:?}", conditions(&st));
        }
    }

    #[test]
    fn a_confirmed_request_not_carried_out_yet_is_reconciling() {
        let mut ks = keyset();
        ks.status = Some(next_status(
            &ks,
            &applied(&plan(vec![Change::KeysCreated], vec![]), held(1, 1), at(1)),
        ));
        ks.spec.regenerate = Some(RegenerateSpec {
            primary: Some(RegenerateRequest {
                revision: 2,
                confirm_label: ks.spec.label.clone(),
            }),
            secondary: None,
        });
        // An adoption went first: the regenerate waits for the next reconcile.
        let adopted = next_status(
            &ks,
            &applied(
                &plan(vec![Change::Adopt { request: 1 }], vec![]),
                held(1, 1),
                at(2),
            ),
        );
        assert!(
            has(&adopted, RECONCILING, "RequestPending"),
            "{:?}",
            conditions(&adopted)
        );
        let done = next_status(
            &ks,
            &applied(
                &plan(
                    vec![Change::Regenerated {
                        slot: Slot::Primary,
                        revision: 2,
                        found: None,
                    }],
                    vec![],
                ),
                held(2, 1),
                at(3),
            ),
        );
        assert!(
            !done.conditions.iter().any(|c| c.type_ == RECONCILING),
            "{:?}",
            conditions(&done)
        );
    }
}
