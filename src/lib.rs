//! dataminer-keys-operator: reconciles `DataMinerKeySet` resources into Secrets holding
//! DataMiner API keys.
//!
//! - [`api`]: the CRD types and their admission rules;
//! - [`keys`]: key generation and fingerprints;
//! - [`plan`]: where rotation, revocation and drift handling are decided (pure);
//! - [`proof`]: the operator's proof that it wrote a key value (HMAC, key in its namespace);
//! - [`secret`]: the Secret's shape, written and read back (pure);
//! - [`status`]: status, Events and log lines from what was applied (pure);
//! - [`controller`]: the thin layer that reads, applies the plan and writes status;
//! - [`leader`], [`http`], [`metrics`]: the operator process around it.

pub mod api;
pub mod controller;
pub mod error;
pub mod http;
pub mod keys;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod plugin;
pub mod proof;
pub mod secret;
pub mod status;
