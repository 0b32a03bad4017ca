//! The report step: Events, then one audit log line per change, then metrics.
//!
//! Events come before the status write: a crash in between repeats an Event on the next run (its
//! note carries the same revision and fingerprint), where the other order would lose it for
//! good. An Event that cannot be published fails the reconcile before the status write, so the
//! retry finds the same change again (the Secret is ahead of status) and announces it then:
//! every change is announced at least once.

use kube::{Resource, ResourceExt};

use super::{Context, calls::REQUEST_TIMEOUT, events};
use crate::{
    api::DataMinerKeySet,
    error::{Error, Result},
    plan::{Change, Slot},
    status::{self, Applied},
};

pub(super) async fn report(ks: &DataMinerKeySet, ctx: &Context, applied: &Applied) -> Result<()> {
    for notice in status::notices(ks, applied) {
        let reason = notice.reason;
        let event = events::event(&ctx.reporter, notice, ks.object_ref(&()));
        let published =
            tokio::time::timeout(REQUEST_TIMEOUT, events::publish(&ctx.client, &event)).await;
        if !matches!(published, Ok(Ok(_))) {
            let message = match published {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
            };
            return Err(Error::PublishEvent { reason, message });
        }
    }
    for change in &applied.plan.changes {
        log_change(ks, change, applied);
        ctx.metrics.action(change.name());
    }
    for problem in &applied.plan.problems {
        tracing::warn!(problem = problem.reason(), "key set needs attention");
    }
    Ok(())
}

/// One structured line per change, the audit record in the logs: self-contained (it names the
/// key set, not only its span), fingerprints only, and who asked (`requested_by`, absent for a
/// Secret recreated after a deletion; `on_behalf_of`, unverified).
fn log_change(ks: &DataMinerKeySet, change: &Change, applied: &Applied) {
    let namespace = ks.namespace().unwrap_or_default();
    let name = ks.name_any();
    let revision = |slot: Slot| applied.held(slot).map(|h| h.revision);
    let fingerprint = |slot: Slot| applied.held(slot).map(|h| h.fingerprint.as_str());
    let action = change.name();
    let asked = status::requester(ks, change);
    let requested_by = asked.as_ref().map(|r| r.by.as_str());
    let on_behalf_of = asked.as_ref().and_then(|r| r.on_behalf_of.as_deref());
    match change {
        Change::Regenerated {
            slot,
            revision,
            found,
        } => tracing::info!(
            namespace,
            name,
            action,
            slot = slot.name(),
            revision,
            fingerprint = found.as_deref().or(fingerprint(*slot)),
            recovered = found.is_some(),
            requested_by,
            on_behalf_of,
            "key set action"
        ),
        Change::KeysCreated | Change::SecretRecreated => tracing::info!(
            namespace,
            name,
            action,
            slot = "both",
            primary_revision = revision(Slot::Primary),
            primary_fingerprint = fingerprint(Slot::Primary),
            secondary_revision = revision(Slot::Secondary),
            secondary_fingerprint = fingerprint(Slot::Secondary),
            requested_by,
            on_behalf_of,
            "key set action"
        ),
        Change::Revoked => tracing::info!(
            namespace,
            name,
            action,
            requested_by,
            on_behalf_of,
            "key set action"
        ),
    }
}
