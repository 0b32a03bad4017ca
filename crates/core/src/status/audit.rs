//! Audit Events the API server refuses (EventRateLimit, a quota, an admission policy, 429s):
//! they never stop the status write. A refused Event waits in `status.pendingEvents`, the
//! `AuditPending` condition says so, and a later reconcile publishes it, once.
//!
//! Pure: the controller publishes the queue in order and says where it stopped.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use super::{Notice, condition};
use crate::api::{AUDIT_PENDING, DataMinerKeySet, DataMinerKeySetStatus, PendingEvent};

/// At most this many Events wait; older ones are dropped first (history keeps every action).
pub const PENDING_LIMIT: usize = 20;

/// An Event to publish now: from an earlier reconcile (`late`) or new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub event: PendingEvent,
    pub late: bool,
}

impl Queued {
    /// The note to publish: a late Event says when it happened.
    pub fn note(&self) -> String {
        match self.late {
            false => self.event.note.clone(),
            true => format!(
                "{} (published late: the API server refused this Event at {})",
                self.event.note,
                self.event.at.0.strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
        }
    }
}

/// What to publish in this reconcile, oldest first: what earlier reconciles could not publish,
/// then this one's notices.
pub fn queue(ks: &DataMinerKeySet, notices: Vec<Notice>, now: Timestamp) -> Vec<Queued> {
    let pending = ks.status.iter().flat_map(|s| s.pending_events.iter());
    pending
        .map(|e| Queued {
            event: e.clone(),
            late: true,
        })
        .chain(notices.into_iter().map(|n| Queued {
            event: PendingEvent {
                type_: if n.warning { "Warning" } else { "Normal" }.into(),
                reason: n.reason.into(),
                action: n.action.into(),
                note: n.note,
                at: Time(now),
            },
            late: false,
        }))
        .collect()
}

/// `next` as it must be written when the Events from `unpublished` on could not be published
/// (`refusal` says why; `None` when all were). Those wait in status; the condition says so.
pub fn settle(
    ks: &DataMinerKeySet,
    next: &mut DataMinerKeySetStatus,
    unpublished: Vec<Queued>,
    refusal: Option<&str>,
    now: Timestamp,
) {
    let mut pending: Vec<PendingEvent> = unpublished.into_iter().map(|q| q.event).collect();
    let dropped = pending.len().saturating_sub(PENDING_LIMIT);
    pending.drain(..dropped);
    next.conditions.retain(|c| c.type_ != AUDIT_PENDING);
    if let Some(refusal) = refusal.filter(|_| !pending.is_empty()) {
        let old = ks
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        let reasons: Vec<&str> = pending.iter().map(|e| e.reason.as_str()).collect();
        let mut message = format!(
            "{} audit Event(s) not yet published ({}): the API server refused them: {refusal}; the change is recorded in status and history, and the Events are retried with backoff",
            pending.len(),
            reasons.join(", ")
        );
        if dropped > 0 {
            message.push_str(&format!(
                "; {dropped} older Event(s) were dropped (status.history keeps every action)"
            ));
        }
        next.conditions.push(condition(
            old,
            AUDIT_PENDING,
            true,
            "EventRefused",
            message,
            ks.metadata.generation,
            now,
        ));
    }
    next.pending_events = pending;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{at, keyset};

    fn notice(reason: &'static str) -> Notice {
        Notice {
            warning: false,
            reason,
            action: reason,
            note: format!("{reason} note"),
        }
    }

    #[test]
    fn a_refused_event_waits_in_status_and_is_queued_first_next_time() {
        let mut ks = keyset();
        let queued = queue(&ks, vec![notice("KeysCreated")], at(1));
        assert_eq!(queued.len(), 1);
        assert!(!queued[0].late);
        assert_eq!(queued[0].note(), "KeysCreated note");

        let mut next = DataMinerKeySetStatus::default();
        settle(&ks, &mut next, queued, Some("forbidden (HTTP 403)"), at(1));
        assert_eq!(next.pending_events.len(), 1);
        let c = next
            .conditions
            .iter()
            .find(|c| c.type_ == AUDIT_PENDING)
            .unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "EventRefused")
        );
        assert!(c.message.contains("KeysCreated") && c.message.contains("HTTP 403"));

        // The next reconcile publishes the pending one first, marked late, then its own.
        ks.status = Some(next);
        let queued = queue(&ks, vec![notice("PrimaryKeyRegenerated")], at(2));
        let reasons: Vec<_> = queued.iter().map(|q| q.event.reason.as_str()).collect();
        assert_eq!(reasons, ["KeysCreated", "PrimaryKeyRegenerated"]);
        assert!(queued[0].late && !queued[1].late);
        assert!(
            queued[0]
                .note()
                .starts_with("KeysCreated note (published late")
        );

        // The first went through, the second was refused: only the second waits.
        let mut next = DataMinerKeySetStatus::default();
        settle(&ks, &mut next, queued[1..].to_vec(), Some("429"), at(2));
        assert_eq!(next.pending_events.len(), 1);
        assert_eq!(next.pending_events[0].reason, "PrimaryKeyRegenerated");

        // All published: nothing waits, the condition is gone.
        ks.status = Some(next.clone());
        settle(&ks, &mut next, Vec::new(), None, at(3));
        assert!(next.pending_events.is_empty());
        assert!(next.conditions.iter().all(|c| c.type_ != AUDIT_PENDING));
    }

    #[test]
    fn pending_events_are_bounded_newest_kept() {
        let ks = keyset();
        let many: Vec<Notice> = (0..PENDING_LIMIT + 3)
            .map(|_| notice("KeysCreated"))
            .collect();
        let mut queued = queue(&ks, many, at(1));
        queued.last_mut().unwrap().event.reason = "Last".into();
        let mut next = DataMinerKeySetStatus::default();
        settle(&ks, &mut next, queued, Some("quota"), at(1));
        assert_eq!(next.pending_events.len(), PENDING_LIMIT);
        assert_eq!(next.pending_events.last().unwrap().reason, "Last");
        let c = &next.conditions[0];
        assert!(
            c.message.contains("3 older Event(s) were dropped"),
            "{}",
            c.message
        );
    }
}
