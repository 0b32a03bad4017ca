//! dataminer-keys-operator: reconciles `DataMinerKeySet` resources into Secrets holding
//! DataMiner API keys.

pub mod api;
