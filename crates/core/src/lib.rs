//! The decisions of the DataMinerKeySet operator, pure: no API client, no async runtime, no
//! clock or randomness of their own (the operator passes the time in; only `proof` draws keys).
//!
//! Modules, lowest first:
//! - [`plan`]: **where rotation, revocation, adoption, trust and drift are decided**.
//! - [`proof`]: the operator's proof that it wrote a key value, and the proof key's Secret shape.
//! - [`secret`]: the Secret's shape, written and read back for the plan.
//! - [`stamp`]: who asked, decided at admission (the operator's webhook applies it).
//! - [`status`]: the next status, readiness, and the Events and words that report what was
//!   applied.
//! - [`fixtures`] (tests, and the `fixtures` feature): the builders the unit tests of `plan`,
//!   `status` and the operator's controller share.

// The API crate under the names the modules use.
pub use dataminer_keys_api as api;
pub use dataminer_keys_api::keys;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod plan;
pub mod proof;
pub mod secret;
pub mod stamp;
pub mod status;
