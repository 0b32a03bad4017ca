//! The operator process: flags, start-up checks, HTTP endpoints, leader election, controllers.

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use clap::{Parser, ValueEnum};
use futures::StreamExt;
use kube::Client;
use tracing_subscriber::EnvFilter;

use dataminer_keys_operator::{
    controller::{self, Context, Namespaces},
    http::{self, Health},
    leader::{Elector, LeaseConfig},
    metrics::Metrics,
    startup::{self, StartupError},
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
}

fn init_logging(args: &Args) {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args);
    // One listener for SIGTERM/SIGINT for the whole life of the process, shared by the leader
    // election and the controllers: a signal that lands between the two is never lost.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });

    let client = match Client::try_default().await {
        Ok(c) => c,
        Err(e) => return failed(StartupError::NoConfiguration(Box::new(e))),
    };
    let namespaces = if args.namespaces.is_empty() {
        Namespaces::All
    } else {
        Namespaces::Only(args.namespaces.clone())
    };
    // Start-up: the checks, then the proof key, which lives beside the Lease in the operator's
    // own namespace. A stop asked for meanwhile ends the process at once: nothing has acted
    // yet, and a slow API server would otherwise hold it until the kubelet's SIGKILL.
    let proof_secret = format!("{}-proof-key", args.lease_name);
    let start_up = async {
        startup::preflight(&client, &namespaces).await?;
        startup::load_or_create_proof_key(&client, &args.leader_election_namespace, &proof_secret)
            .await
    };
    let mut stopped = stopping.clone();
    let proof_key = tokio::select! {
        started = start_up => match started {
            Ok(key) => key,
            Err(e) => return failed(e),
        },
        _ = stopped.wait_for(|stop| *stop) => {
            tracing::info!("stopped during start-up");
            return ExitCode::SUCCESS;
        }
    };

    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = match tokio::net::TcpListener::bind(args.metrics_address).await {
        Ok(l) => l,
        Err(source) => {
            return failed(StartupError::Listen {
                address: args.metrics_address,
                source,
            });
        }
    };
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /healthz, /readyz, /metrics");
    let health = Health {
        ready: ready.clone(),
        metrics: metrics.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = http::serve(listener, health).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });

    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}-{}", std::process::id())
    });
    let elector = args.leader_elect.then(|| {
        let mut cfg = LeaseConfig::new(
            args.leader_election_namespace.clone(),
            args.lease_name.clone(),
            identity.clone(),
        );
        // Test hook: a skewed wall clock for this replica (see leader.rs); unset in production.
        if let Some(secs) = std::env::var("DMK_TEST_CLOCK_SKEW_SECONDS")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
        {
            cfg.clock_skew = k8s_openapi::jiff::SignedDuration::from_secs(secs);
        }
        Elector::new(client.clone(), cfg)
    });
    let mut since = None;
    if let Some(elector) = &elector {
        // A standby replica is healthy and ready; it only does not act.
        ready.store(true, Ordering::Relaxed);
        let mut stopping = stopping.clone();
        since = Some(tokio::select! {
            since = elector.acquire() => since,
            _ = stopping.wait_for(|stop| *stop) => return ExitCode::SUCCESS,
        });
        ready.store(false, Ordering::Relaxed);
        tracing::info!(identity, "became leader");
    }

    let mut ctx = Context::new(client, metrics.clone(), proof_key, Some(identity))
        .with_tombstones(&args.leader_election_namespace, &args.lease_name);
    ctx.leadership = elector.as_ref().map(Elector::leadership);
    ctx.resync = Duration::from_secs(args.resync_seconds);
    ctx.denied_prefixes = args.deny_secret_metadata_prefixes.clone();
    let ctx = Arc::new(ctx);
    let controllers = controller::controllers(ctx, &namespaces, args.concurrency, stopping.clone());
    let stores = controllers.stores;
    metrics.watch_keys(stores.clone());
    let ready_flag = ready.clone();
    tokio::spawn(async move {
        for store in stores {
            // The store's readiness signal wakes only its most recent waiter, and the
            // controller waits on it too: re-poll instead of waiting once.
            while tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready())
                .await
                .is_err()
            {}
        }
        ready_flag.store(true, Ordering::Relaxed);
        tracing::info!("watches synced; ready");
    });

    let mut run = controllers.run;
    // Stopped before the watches synced: kube holds every reconcile until its cache is ready,
    // so none is in flight, and its graceful shutdown would wait for a cache that stopped
    // filling. Finish at once instead.
    let stopped_unsynced = {
        let mut stopping = stopping.clone();
        let synced = ready.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
            if synced.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        }
    };
    let drained = async {
        tokio::select! {
            _ = async { while run.next().await.is_some() {} } => {}
            _ = stopped_unsynced => tracing::info!("stopped before the watches synced"),
        }
    };
    let code = match &elector {
        Some(elector) => tokio::select! {
            _ = drained => ExitCode::SUCCESS,
            _ = elector.keep(since.expect("acquired before acting")) => {
                // Another replica may act from now on: stop at once rather than race it.
                tracing::error!("lost leadership; exiting so that only one replica acts");
                return ExitCode::FAILURE;
            }
        },
        None => {
            drained.await;
            ExitCode::SUCCESS
        }
    };
    if let Some(elector) = &elector {
        // Best effort, bounded: a standby otherwise takes over when the Lease expires.
        let _ = tokio::time::timeout(Duration::from_secs(3), elector.release()).await;
    }
    tracing::info!("shut down");
    code
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Ends start-up: the reason on stderr (the log may not be set up for the user to see), exit 1.
fn failed(e: StartupError) -> ExitCode {
    eprintln!("dataminer-keys-operator: {e}");
    ExitCode::FAILURE
}
