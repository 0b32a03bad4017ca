//! Shared set-up for the integration tests: one real control plane per test binary
//! (see tests/control-plane), the generated CRDs installed, a fresh namespace per test.
#![allow(dead_code)]

use dmk_control_plane::{ControlPlane, Options};
use std::path::PathBuf;

pub fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds")
}

/// The control plane of this test binary, started (with CRDs) on first use.
pub async fn control_plane() -> &'static ControlPlane {
    let opts = Options {
        crd_dir: Some(crd_dir()),
        ..Default::default()
    };
    match dmk_control_plane::shared(&opts).await {
        Ok(cp) => cp,
        Err(e) => panic!("test control plane: {e}"),
    }
}

/// A new admin client and a fresh namespace named after the test.
pub async fn client_and_namespace(prefix: &str) -> (kube::Client, String) {
    let cp = control_plane().await;
    let ns = cp.namespace(prefix).await.expect("create test namespace");
    (cp.client().await.expect("admin client"), ns)
}
