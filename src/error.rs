//! The one error type. Messages name the object and the step; none can carry a key value
//! (keys only ever travel inside `KeyValue`, which cannot be formatted).

use crate::keys::RandomSourceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{object}: reading the key set: {source}")]
    ReadKeySet {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: reading Secret {secret}: {source}")]
    ReadSecret {
        object: String,
        secret: String,
        #[source]
        source: kube::Error,
    },
    /// `message` is the API server's reason with any key value replaced by `[key]`: the write
    /// carried keys, so its raw error is never kept.
    #[error("{object}: writing Secret {secret}: {message}")]
    WriteSecret {
        object: String,
        secret: String,
        message: String,
    },
    #[error("{object}: deleting Secret {secret}: {source}")]
    DeleteSecret {
        object: String,
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: writing status: {source}")]
    WriteStatus {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: generating a key: {source}")]
    GenerateKey {
        object: String,
        #[source]
        source: RandomSourceError,
    },
    #[error("{object}: the Secret or the key set changed while it was being updated; retrying")]
    Changed { object: String },
    #[error("{object}: {step}: the API server did not answer within {secs}s")]
    Timeout {
        object: String,
        step: &'static str,
        secs: u64,
    },
    #[error("{object}: {message}")]
    Finalizer { object: String, message: String },
    #[error("{object}: publishing a {reason} Event: {message}; status not written, retrying")]
    PublishEvent {
        object: String,
        reason: &'static str,
        message: String,
    },
    #[error("{object}: not written: this replica's leadership lapsed")]
    NotLeader { object: String },
}

impl Error {
    /// Low-cardinality label for the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::ReadKeySet { .. } => "read_keyset",
            Error::ReadSecret { .. } => "read_secret",
            Error::WriteSecret { .. } => "write_secret",
            Error::DeleteSecret { .. } => "delete_secret",
            Error::WriteStatus { .. } => "write_status",
            Error::GenerateKey { .. } => "generate_key",
            Error::Changed { .. } => "conflict",
            Error::Timeout { .. } => "timeout",
            Error::Finalizer { .. } => "finalizer",
            Error::NotLeader { .. } => "not_leader",
            Error::PublishEvent { .. } => "publish_event",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
