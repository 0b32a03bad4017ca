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

/// The operator's finalizer: deleting a key set destroys its keys, whatever the propagation
/// policy (`--cascade=orphan` would otherwise leave the Secret behind). The chart's admission
/// policy and the operator's webhook add it to new key sets.
pub const FINALIZER: &str = "keys.dataminer.services/destroy-keys";

/// The CRD's revision, stamped on it as [`CRD_REVISION_ANNOTATION`]. Raised with every change of
/// the generated CRD (a test records the schema's hash per revision and fails until it is
/// raised), so that an operator can tell an installed CRD older than its own and refuse to start
/// (Helm never upgrades a chart's `crds/`).
pub const CRD_REVISION: u32 = 1;
pub const CRD_REVISION_ANNOTATION: &str = "keys.dataminer.services/crd-revision";

/// The CustomResourceDefinition, stamped with its revision.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = DataMinerKeySet::crd();
    crd.metadata.annotations = Some(
        [(
            CRD_REVISION_ANNOTATION.to_string(),
            CRD_REVISION.to_string(),
        )]
        .into(),
    );
    crd
}

/// The CustomResourceDefinition as committed in `crds/` (what `crdgen` prints).
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&crd()).expect("the CRD serializes to YAML")
}

#[cfg(test)]
mod crd_revision {
    use sha2::{Digest, Sha256};

    /// The hash of the generated CRD's spec at [`super::CRD_REVISION`].
    const RECORDED: (u32, &str) = (
        1,
        "2fbc7a533c3801164968a2361ec227dfd3ef625cc9f008c32d58644d994ae5f6",
    );

    #[test]
    fn a_changed_crd_raises_its_revision() {
        let spec = serde_json::to_string(&super::crd().spec).unwrap();
        let hash = hex::encode(Sha256::digest(spec.as_bytes()));
        assert_eq!(
            RECORDED,
            (super::CRD_REVISION, hash.as_str()),
            "the generated CRD changed: raise CRD_REVISION (crates/api/src/lib.rs) by one, record this hash for it, and run `make crds`"
        );
    }
}
