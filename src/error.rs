//! The one error type. Messages name the step; the key set is named by the reconcile span they
//! are logged in (and by the controller's own error report), so no variant repeats it. None can
//! carry a key value (keys only ever travel inside `KeyValue`, which cannot be formatted).

use crate::keys::RandomSourceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Secret {secret}: {source}")]
    ReadSecret {
        secret: String,
        #[source]
        source: kube::Error,
    },
    /// `message` is the API server's reason with any key value replaced by `[key]`: the write
    /// carried keys, so its raw error is never kept.
    #[error("writing Secret {secret}: {message}")]
    WriteSecret { secret: String, message: String },
    #[error("deleting Secret {secret}: {source}")]
    DeleteSecret {
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing status: {source}")]
    WriteStatus {
        #[source]
        source: kube::Error,
    },
    #[error("generating a key: {source}")]
    GenerateKey {
        #[source]
        source: RandomSourceError,
    },
    #[error("the Secret or the key set changed while it was being updated; retrying")]
    Changed,
    #[error("{step}: the API server did not answer within {secs}s")]
    Timeout { step: &'static str, secs: u64 },
    #[error("{message}")]
    Finalizer { message: String },
    #[error(
        "publishing a {reason} Event: {message}; the Event waits in status.pendingEvents, retrying"
    )]
    PublishEvent { reason: String, message: String },
    #[error("not written: this replica's leadership lapsed")]
    NotLeader,
    /// Reading or writing the revoked lineages (controller/tombstones.rs).
    #[error("{step} (the revoked lineages): {message}")]
    Tombstones { step: &'static str, message: String },
}

impl Error {
    /// Low-cardinality label for the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "read_secret",
            Error::WriteSecret { .. } => "write_secret",
            Error::DeleteSecret { .. } => "delete_secret",
            Error::WriteStatus { .. } => "write_status",
            Error::GenerateKey { .. } => "generate_key",
            Error::Changed => "conflict",
            Error::Timeout { .. } => "timeout",
            Error::Finalizer { .. } => "finalizer",
            Error::NotLeader => "not_leader",
            Error::PublishEvent { .. } => "publish_event",
            Error::Tombstones { .. } => "tombstones",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
