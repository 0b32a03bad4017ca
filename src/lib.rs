//! dataminer-keys-operator: reconciles `DataMinerKeySet` resources into Secrets holding
//! DataMiner API keys.
//!
//! The workspace, one crate per concern; Cargo enforces the direction (README, "Code map"):
//!
//! - `dataminer-keys-api` (crates/api), re-exported as [`api`] and [`keys`]: the CRD types,
//!   their admission rules, the names other tools depend on, key generation and fingerprints.
//! - `dataminer-keys-core` (crates/core), re-exported as [`plan`], [`proof`], [`secret`] and
//!   [`status`]: **where every decision is made** (pure: no API client, no async runtime).
//! - `dataminer-keys-plugin` (crates/plugin), re-exported as [`plugin`]: `kubectl dmkeys`; its
//!   only workspace dependency is the API crate.
//! - This crate, the operator: the process around the core. [`runtime`] (the process's life),
//!   [`phase`] (its phases and readiness), [`hooks`] (the test hooks), [`error`] (one error type per step), [`metrics`], [`http`],
//!   [`leader`], [`startup`] (the checks and the proof key's store), and [`controller`], the thin
//!   layer that runs one reconcile as named steps (gather from the index -> observe -> plan ->
//!   write -> announce -> persist). Within it, `tests/module_layers.rs` checks what the compiler
//!   cannot: no import cycle between its modules.

pub use dataminer_keys_api as api;
pub use dataminer_keys_api::keys;
#[cfg(test)]
use dataminer_keys_core::fixtures;
pub use dataminer_keys_core::{plan, proof, secret, stamp, status};
pub use dataminer_keys_plugin as plugin;

pub mod capabilities;
pub mod controller;
pub mod error;
pub mod hooks;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod phase;
pub mod runtime;
pub mod startup;
pub mod webhook;
