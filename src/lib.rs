//! dataminer-keys-operator: reconciles `DataMinerKeySet` resources into Secrets holding
//! DataMiner API keys.
//!
//! Modules, lowest first; each may import only modules above it (`tests/module_layers.rs` fails
//! on a cycle, and on the rules marked *checked*):
//!
//! - [`api`]: the CRD types, their admission rules, and what derives from a key set alone (slots,
//!   Secret and data key names, scope); imports nothing of ours (*checked*).
//! - [`keys`]: key generation and fingerprints; imports `api`.
//! - [`plan`]: **where rotation, revocation, trust and drift are decided** (pure); imports only
//!   `api` (*checked*).
//! - [`proof`]: the operator's proof that it wrote a key value; imports `api`, `keys`.
//! - [`secret`]: the Secret's shape, written and read back for the plan (pure); imports `api`,
//!   `keys`, `plan`, `proof`.
//! - [`status`]: the next status, readiness, and the Events and words that report what was
//!   applied (pure); imports `api`, `plan`.
//! - [`error`], [`metrics`], [`http`], [`leader`]: the error type and the process around it.
//! - [`controller`]: the thin layer that runs one reconcile as named steps (observe -> plan ->
//!   apply -> report -> write status); imports all of the above.
//! - [`plugin`]: `kubectl dmkeys`, one function per subcommand; imports only `api` and `keys`
//!   (*checked*).
//! - `fixtures` (tests only): the builders the unit tests of `plan` and `status` share.

pub mod api;
pub mod controller;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod http;
pub mod keys;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod plugin;
pub mod proof;
pub mod secret;
pub mod status;
