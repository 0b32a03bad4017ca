//! The operator process. The reconciler lands with the operator issue; until then this binary
//! says so instead of pretending to work.

fn main() -> std::process::ExitCode {
    eprintln!("dataminer-keys-operator: the reconciler is not implemented yet");
    std::process::ExitCode::from(2)
}
