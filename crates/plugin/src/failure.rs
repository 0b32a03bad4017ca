//! What the plugin ends with when it cannot do what was asked: an exit code and a message.

/// Exit codes (documented in `--help`).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const CONFIRMATION_MISMATCH: u8 = 4;
    pub const TIMEOUT: u8 = 5;
    pub const FORBIDDEN: u8 = 6;
    pub const NO_CRD: u8 = 7;
    /// The key set is revoked, or the Secret or value is not the one the operator recorded.
    pub const UNTRUSTED: u8 = 8;
}

/// A failure with the exit code it maps to and a message for the user.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub(super) fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

pub type Result<T> = std::result::Result<T, Failure>;
