//! How the reconciler talks to the API server: every call bounded in time, every write only
//! while this replica leads, and the test hook that crashes between two writes.

use std::{future::Future, time::Duration};

use super::Context;
use crate::error::{Error, Result};

/// No single API call may hold a worker longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An API call that failed or did not answer within [`REQUEST_TIMEOUT`].
pub(super) enum CallError {
    Api(kube::Error),
    TimedOut,
}

impl CallError {
    /// The error for a failed `step`: `wrap` gives the API error its context.
    pub fn into_error(self, step: &'static str, wrap: impl FnOnce(kube::Error) -> Error) -> Error {
        match self {
            CallError::Api(source) => wrap(source),
            CallError::TimedOut => Error::Timeout {
                step,
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
pub(super) fn ensure_leading(ctx: &Context) -> Result<()> {
    match &ctx.leadership {
        Some(l) if !l.is_valid() => Err(Error::NotLeader),
        _ => Ok(()),
    }
}

/// Test hook: `DMK_CRASH_AFTER=secret-write` aborts the process right after a successful
/// Secret write, before any Event or status write, so tests can reproduce a crash between two
/// writes on the real API server. Unset in production; it changes nothing else.
pub(super) fn crash_point(step: &str) {
    static AFTER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AFTER
        .get_or_init(|| std::env::var("DMK_CRASH_AFTER").ok())
        .as_deref()
        == Some(step)
    {
        eprintln!("DMK_CRASH_AFTER={step}: aborting");
        std::process::abort();
    }
}
