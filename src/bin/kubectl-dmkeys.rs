//! `kubectl dmkeys`: a kubectl plugin (krew naming) for the key set admin workflows.

use clap::Parser;
use std::{io::IsTerminal, process::ExitCode};

#[tokio::main]
async fn main() -> ExitCode {
    // Spans of the API calls go to stderr only when asked for; key values are never in them.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
    let cli = dataminer_keys_operator::plugin::Cli::parse();
    match dataminer_keys_operator::plugin::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Messages quote the API server and key sets (users' text): each line made
            // printable, the line breaks the plugin itself put there kept.
            let lines: Vec<_> = f
                .message
                .split('\n')
                .map(dataminer_keys_operator::api::printable)
                .collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::from(f.code)
        }
    }
}
