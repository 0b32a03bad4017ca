//! Errors, one type per reconcile step ([`ObserveError`], [`WriteError`], [`AnnounceError`],
//! [`PersistError`]; start-up has its own in startup.rs). [`Error`] is what a reconcile ends
//! with: one of them. What each failure counts as (a conflict to retry soon, a lapsed
//! leadership, a time-out, or a failed [`Operation`]) is its [`Kind`], from which the metrics'
//! labels and the retry policy follow, so no label is mapped by hand at a call site.
//!
//! Messages name the step; the key set is named by the reconcile span they are logged in (and
//! by the controller's own error report), so no variant repeats it. None can carry a key value
//! (keys only ever travel inside `KeyValue`, which cannot be formatted).

use crate::keys::RandomSourceError;

/// The requests a reconcile makes (and the key it draws), as messages and metrics name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    ReadSecret,
    CreateSecret,
    UpdateSecret,
    DeleteSecret,
    GenerateKey,
    ReadTombstones,
    RecordTombstone,
    PublishEvent,
    WriteStatus,
    AddFinalizer,
    RemoveFinalizer,
}

impl Operation {
    /// What the operator was doing, for messages.
    pub fn doing(self) -> &'static str {
        match self {
            Operation::ReadSecret => "reading the Secret",
            Operation::CreateSecret => "creating the Secret",
            Operation::UpdateSecret => "writing the Secret",
            Operation::DeleteSecret => "deleting the Secret",
            Operation::GenerateKey => "generating a key",
            Operation::ReadTombstones => "reading the revoked lineages",
            Operation::RecordTombstone => "recording a revoked lineage",
            Operation::PublishEvent => "publishing an Event",
            Operation::WriteStatus => "writing status",
            Operation::AddFinalizer => "adding the finalizer",
            Operation::RemoveFinalizer => "removing the finalizer",
        }
    }

    /// The `operation` label of `dataminer_keys_write_failures`: the writes that change or
    /// destroy keys, or record that they did (status and finalizer writes are retried and
    /// counted by the reconcile result).
    pub fn write_label(self) -> Option<&'static str> {
        match self {
            Operation::CreateSecret => Some("create"),
            Operation::UpdateSecret => Some("update"),
            Operation::DeleteSecret => Some("delete"),
            Operation::GenerateKey => Some("generate"),
            Operation::RecordTombstone => Some("tombstone"),
            Operation::PublishEvent => Some("event"),
            _ => None,
        }
    }

    /// The `result` label of `dataminer_keys_reconciles` when this failed.
    fn failure_label(self) -> &'static str {
        match self {
            Operation::ReadSecret => "read_secret",
            Operation::CreateSecret | Operation::UpdateSecret => "write_secret",
            Operation::DeleteSecret => "delete_secret",
            Operation::GenerateKey => "generate_key",
            Operation::ReadTombstones | Operation::RecordTombstone => "tombstones",
            Operation::PublishEvent => "publish_event",
            Operation::WriteStatus => "write_status",
            Operation::AddFinalizer | Operation::RemoveFinalizer => "finalizer",
        }
    }
}

/// What a failure counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The Secret or the key set changed since it was read: plan again soon, report nothing.
    Changed,
    /// This replica's leadership lapsed: nothing more is written.
    NotLeader,
    /// The API server did not answer within the request timeout.
    TimedOut(Operation),
    /// The API server refused (or the random source failed).
    Failed(Operation),
}

/// Refused before a write: this replica's leadership lapsed.
#[derive(Debug, thiserror::Error)]
#[error("not written: this replica's leadership lapsed")]
pub struct NotLeader;

const CHANGED: &str = "the Secret or the key set changed while it was being updated; retrying";

/// The observe step: the Secret, and whether its lineage was revoked.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("reading Secret {secret}: {source}")]
    ReadSecret {
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading the Secret: the API server did not answer within {secs}s")]
    TimedOut { secs: u64 },
    #[error("reading the revoked lineages: {message}")]
    ReadTombstones { message: String },
}

/// The write step: the Secret's create, update or delete, the keys it draws, and the tombstone
/// a revocation records first.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Changed since it was read, or a create refused because the name is taken.
    #[error("{CHANGED}")]
    Conflict,
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// `message` is the API server's reason with any key value replaced by `[key]`: the
    /// write carried keys, so its raw error is never kept.
    #[error("{} ({target}): {message}", .operation.doing())]
    Refused {
        operation: Operation,
        target: String,
        message: String,
    },
    #[error("{}: the API server did not answer within {secs}s", .operation.doing())]
    TimedOut { operation: Operation, secs: u64 },
    #[error("generating a key: {source}")]
    GenerateKey {
        #[source]
        source: RandomSourceError,
    },
}

impl WriteError {
    /// The request (or the key drawn) that failed; `None` for a conflict or a lapsed leadership.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            WriteError::Refused { operation, .. } | WriteError::TimedOut { operation, .. } => {
                Some(*operation)
            }
            WriteError::GenerateKey { .. } => Some(Operation::GenerateKey),
            WriteError::Conflict | WriteError::NotLeader(_) => None,
        }
    }
}

/// The announce step: the audit Events.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// Not an end by itself: the status is still written, and this is returned after it.
    #[error(
        "publishing a {reason} Event: {message}; the Event waits in status.pendingEvents, retrying"
    )]
    Refused { reason: String, message: String },
}

/// The persist step: writes of the key set itself (status, finalizers).
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The key set changed since it was read (409), or the watch has delivered a newer version
    /// than the one planned on.
    #[error("{CHANGED}")]
    Changed,
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("{}: {source}", .operation.doing())]
    Refused {
        operation: Operation,
        #[source]
        source: kube::Error,
    },
    #[error("{}: the API server did not answer within {secs}s", .operation.doing())]
    TimedOut { operation: Operation, secs: u64 },
}

/// What a reconcile ends with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Announce(#[from] AnnounceError),
    #[error(transparent)]
    Persist(#[from] PersistError),
}

impl From<NotLeader> for Error {
    fn from(e: NotLeader) -> Self {
        Error::Write(e.into())
    }
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::Observe(ObserveError::ReadSecret { .. }) => Kind::Failed(Operation::ReadSecret),
            Error::Observe(ObserveError::TimedOut { .. }) => Kind::TimedOut(Operation::ReadSecret),
            Error::Observe(ObserveError::ReadTombstones { .. }) => {
                Kind::Failed(Operation::ReadTombstones)
            }
            Error::Write(WriteError::Conflict) | Error::Persist(PersistError::Changed) => {
                Kind::Changed
            }
            Error::Write(WriteError::NotLeader(_))
            | Error::Announce(AnnounceError::NotLeader(_))
            | Error::Persist(PersistError::NotLeader(_)) => Kind::NotLeader,
            Error::Write(WriteError::Refused { operation, .. })
            | Error::Persist(PersistError::Refused { operation, .. }) => Kind::Failed(*operation),
            Error::Write(WriteError::TimedOut { operation, .. })
            | Error::Persist(PersistError::TimedOut { operation, .. }) => {
                Kind::TimedOut(*operation)
            }
            Error::Write(WriteError::GenerateKey { .. }) => Kind::Failed(Operation::GenerateKey),
            Error::Announce(AnnounceError::Refused { .. }) => Kind::Failed(Operation::PublishEvent),
        }
    }

    /// Low-cardinality label for the reconcile result metric.
    pub fn metric_label(&self) -> &'static str {
        match self.kind() {
            Kind::Changed => "conflict",
            Kind::NotLeader => "not_leader",
            Kind::TimedOut(_) => "timeout",
            Kind::Failed(operation) => operation.failure_label(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_from_the_kind() {
        let refused = Error::Write(WriteError::Refused {
            operation: Operation::DeleteSecret,
            target: "ks-keys".into(),
            message: "forbidden".into(),
        });
        assert_eq!(refused.metric_label(), "delete_secret");
        assert_eq!(
            refused.to_string(),
            "deleting the Secret (ks-keys): forbidden"
        );
        let timed_out = Error::Persist(PersistError::TimedOut {
            operation: Operation::AddFinalizer,
            secs: 10,
        });
        assert_eq!(timed_out.kind(), Kind::TimedOut(Operation::AddFinalizer));
        assert_eq!(timed_out.metric_label(), "timeout");
        assert_eq!(Error::from(NotLeader).metric_label(), "not_leader");
        assert_eq!(Error::Persist(PersistError::Changed).kind(), Kind::Changed);
        assert_eq!(Operation::PublishEvent.write_label(), Some("event"));
        assert_eq!(Operation::WriteStatus.write_label(), None);
    }
}
