//! The operator process: its flags and logging; the life of the process is in `runtime`.

use std::{io::IsTerminal, net::SocketAddr, process::ExitCode, time::Duration};

use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

use dataminer_keys_operator::{
    controller::Namespaces,
    hooks::{self, TestHooks},
    runtime::{self, Settings},
    webhook,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Reconciles DataMinerKeySet resources into Secrets holding DataMiner API keys.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Watch only these namespaces (repeat, or comma-separate); all namespaces when omitted.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Seconds between periodic re-checks of every key set (drift the watches cannot see).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    resync_seconds: u64,
    /// Key sets reconciled at the same time.
    #[arg(long, default_value_t = 4)]
    concurrency: u16,
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    log_format: LogFormat,
    /// tracing filter, e.g. `info` or `dataminer_keys_operator=debug,kube=info`.
    #[arg(long, default_value = "info", env = "LOG_LEVEL")]
    log_level: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_address: SocketAddr,
    /// Take a Lease before acting, so that only one replica acts at a time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// The operator's own namespace: its Lease and its proof key Secret
    /// (`<lease-name>-proof-key`) live there. Defaults to POD_NAMESPACE, then `default`.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    #[arg(long, default_value = "dataminer-keys-operator")]
    lease_name: String,
    /// This replica's identity in the Lease and in Events (defaults to POD_NAME, then host-pid).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Label and annotation key prefixes refused in `spec.secret.labels/annotations`, besides
    /// the built-in replication tools' (docs/security.md). Comma-separated.
    #[arg(long = "deny-secret-metadata-prefix", value_delimiter = ',')]
    deny_secret_metadata_prefixes: Vec<String>,
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    test_hooks: TestHooks,
}

/// The requester webhook (docs/audit.md), for clusters without MutatingAdmissionPolicy v1.
#[derive(clap::Args, Debug)]
struct WebhookArgs {
    /// Serve the requester webhook and keep the caBundle of this MutatingWebhookConfiguration.
    #[arg(long = "requester-webhook")]
    configuration: Option<String>,
    /// Address of the webhook's HTTPS listener.
    #[arg(long, default_value = "0.0.0.0:9443")]
    webhook_address: SocketAddr,
    /// The Secret (in the operator's namespace) holding the webhook's CA bundle and certificate;
    /// defaults to `<lease-name>-webhook-tls`.
    #[arg(long)]
    webhook_secret: Option<String>,
    /// DNS names and IP addresses the webhook's certificate is for (repeat, or comma-separate).
    #[arg(
        long = "webhook-host",
        value_delimiter = ',',
        default_value = "127.0.0.1"
    )]
    webhook_hosts: Vec<String>,
    /// Days the webhook's CA and certificate are valid; renewed with a third left.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3650))]
    webhook_certificate_days: u64,
    /// Add the operator's finalizer to new key sets at admission.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    webhook_add_finalizer: bool,
    /// Serve only the webhook: no Lease, no controllers.
    #[arg(long, requires = "configuration")]
    webhook_only: bool,
}

fn init_logging(args: &Args) {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a file, a pipe or a log collector would
    // keep them as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args);
    hooks::install(args.test_hooks.clone());
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}-{}", std::process::id())
    });
    runtime::run(Settings {
        namespaces: match args.namespaces.is_empty() {
            true => Namespaces::All,
            false => Namespaces::Only(args.namespaces),
        },
        resync: Duration::from_secs(args.resync_seconds),
        concurrency: args.concurrency,
        metrics_address: args.metrics_address,
        leader_elect: args.leader_elect,
        own_namespace: args.leader_election_namespace,
        lease_name: args.lease_name.clone(),
        identity,
        denied_prefixes: args.deny_secret_metadata_prefixes,
        webhook: args
            .webhook
            .configuration
            .map(|configuration| webhook::Settings {
                address: args.webhook.webhook_address,
                secret: args
                    .webhook
                    .webhook_secret
                    .unwrap_or_else(|| format!("{}-webhook-tls", args.lease_name)),
                configuration,
                hosts: args.webhook.webhook_hosts,
                lifetime: Duration::from_secs(
                    args.test_hooks
                        .webhook_certificate_seconds
                        .unwrap_or(args.webhook.webhook_certificate_days * 86_400),
                ),
                add_finalizer: args.webhook.webhook_add_finalizer,
            }),
        webhook_only: args.webhook.webhook_only,
    })
    .await
}
