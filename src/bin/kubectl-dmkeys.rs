//! `kubectl dmkeys`: a kubectl plugin (krew naming) for the key set admin workflows.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = dataminer_keys_operator::plugin::Cli::parse();
    match dataminer_keys_operator::plugin::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
