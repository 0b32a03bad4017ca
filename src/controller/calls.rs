//! How the reconciler talks to the API server: every call bounded in time, every write only
//! while this replica leads, and the test hook that crashes between two writes.

use std::{future::Future, time::Duration};

use super::Context;
use crate::{
    error::{NotLeader, Operation, PersistError, WriteError},
    keys::KeyValue,
};

/// No single API call may hold a worker longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An API call that failed or did not answer within [`REQUEST_TIMEOUT`].
pub(super) enum CallError {
    Api(kube::Error),
    TimedOut,
}

impl CallError {
    /// A failed write of the Secret (or of what goes with it) on `target`. Its message is the
    /// server's reason without any of `values` (a message that quoted one says `[key]`).
    pub fn into_write(
        self,
        operation: Operation,
        target: &str,
        values: &[&KeyValue],
    ) -> WriteError {
        if self.code() == Some(409) {
            return WriteError::Conflict;
        }
        match self {
            CallError::TimedOut => WriteError::TimedOut {
                operation,
                secs: REQUEST_TIMEOUT.as_secs(),
            },
            api => {
                let mut message = api.message();
                for value in values {
                    message = message.replace(value.expose(), "[key]");
                }
                WriteError::Refused {
                    operation,
                    target: target.into(),
                    message,
                }
            }
        }
    }

    /// A failed write of the key set itself.
    pub fn into_persist(self, operation: Operation) -> PersistError {
        match self {
            _ if self.code() == Some(409) => PersistError::Changed,
            CallError::Api(source) => PersistError::Refused { operation, source },
            CallError::TimedOut => PersistError::TimedOut {
                operation,
                secs: REQUEST_TIMEOUT.as_secs(),
            },
        }
    }

    /// What went wrong, for a message: the server's answer, or the timeout.
    pub fn message(&self) -> String {
        match self {
            CallError::Api(kube::Error::Api(s)) => {
                format!("{} (HTTP {} {})", s.message, s.code, s.reason)
            }
            CallError::Api(other) => other.to_string(),
            CallError::TimedOut => format!(
                "the API server did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ),
        }
    }

    /// The API server's status code, if it answered with one.
    pub fn code(&self) -> Option<u16> {
        match self {
            CallError::Api(kube::Error::Api(s)) => Some(s.code),
            _ => None,
        }
    }
}

pub(super) async fn call<T>(fut: impl Future<Output = kube::Result<T>>) -> Result<T, CallError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(result) => result.map_err(CallError::Api),
        Err(_) => Err(CallError::TimedOut),
    }
}

/// Refuses to write once this replica's leadership has lapsed (checked before every write:
/// another replica may be acting already).
pub(super) fn ensure_leading(ctx: &Context) -> Result<(), NotLeader> {
    match &ctx.leadership {
        Some(l) if !l.is_valid() => Err(NotLeader),
        _ => Ok(()),
    }
}

/// Test hook (`--test-crash-after secret-write`, hooks.rs): aborts right after a successful
/// Secret write, before any Event or status write.
pub(super) use crate::hooks::crash_point;
