//! The announce step: one audit log line per change, metrics, then the Events, in order; and
//! the status to persist, which only this step can hand over ([`Announced`]), so status is
//! never written before the Events it records were tried.
//!
//! A refused Event does not stop the reconcile (issue 21: it used to, and status then kept
//! claiming keys the Secret no longer held for as long as Events were refused). Publishing stops
//! at the first refusal; that Event and the ones after it are written to status as pending
//! (`status::settle`) and published by a later reconcile, with backoff. Events already
//! published are not queued again, so partial success never publishes one twice.
//!
//! Events and log lines still come before the status write: a crash in between repeats them on
//! the next run (same revision and fingerprint in the note), where the other order would lose
//! them for good.

use kube::{Resource, ResourceExt};

use super::{
    Context,
    calls::{REQUEST_TIMEOUT, ensure_leading},
    events,
};
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::{AnnounceError, Operation},
    plan::{Change, Slot},
    status::{self, Applied, Queued},
};

/// The status to persist once the Events were tried, and the refused Event, if one was.
pub(super) struct Announced {
    next: DataMinerKeySetStatus,
    refused: Option<AnnounceError>,
}

impl Announced {
    pub fn next(&self) -> &DataMinerKeySetStatus {
        &self.next
    }

    /// The status to persist, and the refusal to end the reconcile with after that.
    pub fn into_parts(self) -> (DataMinerKeySetStatus, Option<AnnounceError>) {
        (self.next, self.refused)
    }
}

pub(super) async fn announce(
    ks: &DataMinerKeySet,
    ctx: &Context,
    applied: &Applied,
) -> Result<Announced, AnnounceError> {
    let mut next = status::next_status(ks, applied);
    // A lapsed leader writes nothing more; the next leader finds (and records) what was written.
    ensure_leading(ctx)?;
    let unpublished = publish(ks, ctx, applied).await?;
    // A refused Event does not stop the status write: status must never claim a key the
    // Secret no longer holds. It waits in status and is retried with backoff.
    let refused = unpublished
        .refusal
        .as_ref()
        .zip(unpublished.events.first())
        .map(|(message, first)| AnnounceError::Refused {
            reason: first.event.reason.clone(),
            message: message.clone(),
        });
    status::settle(
        ks,
        &mut next,
        unpublished.events,
        unpublished.refusal.as_deref(),
        applied.now,
    );
    Ok(Announced { next, refused })
}

/// What could not be published: the Events from the first refused one on, and why.
struct Unpublished {
    events: Vec<Queued>,
    /// The API server's answer to the refused Event; `None` when all were published.
    refusal: Option<String>,
}

async fn publish(
    ks: &DataMinerKeySet,
    ctx: &Context,
    applied: &Applied,
) -> Result<Unpublished, AnnounceError> {
    for change in &applied.plan.changes {
        log_change(ks, change, applied);
        ctx.metrics.action(change.name());
    }
    for problem in &applied.plan.problems {
        tracing::warn!(problem = problem.reason(), "key set needs attention");
    }
    let mut queue = status::queue(ks, status::notices(ks, applied), applied.now).into_iter();
    while let Some(queued) = queue.next() {
        // Every write only while leading, each Event included.
        ensure_leading(ctx)?;
        let event = events::event(&ctx.reporter, &queued, ks.object_ref(&()));
        let published =
            tokio::time::timeout(REQUEST_TIMEOUT, events::publish(&ctx.client, &event)).await;
        let refusal = match published {
            Ok(Ok(())) => continue,
            Ok(Err(kube::Error::Api(s))) => format!("{} (HTTP {} {})", s.message, s.code, s.reason),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
        };
        if let Some(label) = Operation::PublishEvent.write_label() {
            ctx.metrics.write_failed(label);
        }
        tracing::warn!(
            reason = queued.event.reason,
            refusal,
            "audit Event refused; kept in status as pending"
        );
        return Ok(Unpublished {
            events: std::iter::once(queued).chain(queue).collect(),
            refusal: Some(refusal),
        });
    }
    Ok(Unpublished {
        events: Vec::new(),
        refusal: None,
    })
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
        Change::KeysCreated
        | Change::SecretRecreated
        | Change::KeysAdopted
        | Change::Adopt { .. } => tracing::info!(
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
