//! Prints the CustomResourceDefinition generated from the Rust types.
//! `make crds` writes it to `crds/`; a test fails when the committed file drifts.

fn main() {
    print!("{}", dataminer_keys_operator::api::crd_yaml());
}
