//! The committed CRD is exactly what the Rust types generate.

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/dataminerkeysets.keys.dataminer.services.yaml"
    );
    let committed = std::fs::read_to_string(path).expect("crds/ holds the generated CRD");
    assert!(
        committed == dataminer_keys_operator::api::crd_yaml(),
        "{path} is out of date: run `make crds` and commit the result"
    );
}
