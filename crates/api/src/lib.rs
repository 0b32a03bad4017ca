//! The `keys.dataminer.services/v1alpha1` API: the types and their admission rules, small
//! accessors, the names other tools depend on (annotations, labels), and [`keys`]: key
//! generation and fingerprints.

mod derived;
pub mod keys;
mod requester;
mod spec;
mod status;
mod text;

pub use derived::*;
pub use requester::*;
pub use spec::*;
pub use status::*;
pub use text::*;

/// The CustomResourceDefinition as committed in `crds/` (what `crdgen` prints).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&DataMinerKeySet::crd()).expect("the CRD serializes to YAML")
}
