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
    // kubectl's completion protocol (`kubectl_complete-dmkeys` calls this): candidates, not a
    // command. Hidden from --help.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__complete") {
        dataminer_keys_operator::plugin::complete::print(&args[2..]).await;
        return ExitCode::SUCCESS;
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
