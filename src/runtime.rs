//! The process's life, as explicit phases ([`Phase`]): start-up (the API checks and the proof
//! key), standby (waiting for the Lease), syncing (the watches fill their caches), serving,
//! draining. `/readyz` reads the phase ([`Readiness`]). One listener for SIGTERM/SIGINT serves
//! the whole life, so a stop that lands between two phases is never lost; what a stop does
//! depends on the phase it finds (docs/design.md, "Process").

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use futures::StreamExt;
use kube::Client;
use tokio::sync::watch;

use crate::{
    capabilities::{self, Capabilities},
    controller::{self, Context, Namespaces},
    hooks::clock_skew,
    http::{self, Health},
    leader::{Elector, LeaseConfig},
    metrics::Metrics,
    phase::{Phase, Readiness},
    startup::{self, StartupError},
    webhook::{self, Serving},
};

/// What the process is asked to do (the flags, parsed).
pub struct Settings {
    pub namespaces: Namespaces,
    pub resync: Duration,
    pub concurrency: u16,
    pub metrics_address: SocketAddr,
    pub leader_elect: bool,
    /// The operator's own namespace: its Lease, proof key and revoked lineages live there.
    pub own_namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub denied_prefixes: Vec<String>,
    /// The requester webhook, served on every replica (leader or not) when set.
    pub webhook: Option<webhook::Settings>,
    /// Serve the webhook only: no Lease, no controllers (a webhook run apart, and the test kit).
    pub webhook_only: bool,
}

/// Resolves when a stop has been asked for.
#[derive(Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    async fn asked(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

pub async fn run(settings: Settings) -> ExitCode {
    let (tell, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tell.send(true);
    });
    let mut stop = Stop(stopping.clone());
    let readiness = Readiness::default();

    // Starting. A stop ends the process at once: nothing has acted yet, and a slow API server
    // would otherwise hold it until the kubelet's SIGKILL.
    let started = tokio::select! {
        started = start_up(&settings) => started,
        _ = stop.asked() => {
            tracing::info!("stopped during start-up");
            return ExitCode::SUCCESS;
        }
    };
    let (client, proof_key) = match started {
        Ok(started) => started,
        Err(e) => return failed(e),
    };
    let metrics = Arc::new(Metrics::default());
    let serving = match &settings.webhook {
        Some(ws) => match webhook::start(client.clone(), &settings.own_namespace, ws.clone()).await
        {
            Ok(serving) => Some(serving),
            Err(e) => return failed(e.into()),
        },
        None => None,
    };
    if let Err(e) = serve_http(&settings, &readiness, &metrics, serving).await {
        return failed(e);
    }
    if settings.webhook_only {
        readiness.enter(Phase::Standby);
        stop.asked().await;
        tracing::info!("shut down");
        return ExitCode::SUCCESS;
    }

    // The watches run from here on, on a standby too: a takeover starts from full caches
    // instead of listing every key set and Secret first. Nothing is reconciled before this
    // replica may act (controller/takeover.rs).
    let elector = settings.leader_elect.then(|| elector(&settings, &client));
    let (allow, may_act) = watch::channel(false);
    let mut ctx = Context::new(
        client,
        metrics.clone(),
        proof_key.expect("loaded unless the webhook runs alone"),
        Some(settings.identity.clone()),
    )
    .with_tombstones(&settings.own_namespace, &settings.lease_name);
    ctx.leadership = elector.as_ref().map(Elector::leadership);
    ctx.resync = settings.resync;
    ctx.denied_prefixes = settings.denied_prefixes.clone();
    let controllers = controller::controllers(
        Arc::new(ctx),
        &settings.namespaces,
        settings.concurrency,
        stopping,
        may_act,
    );
    // Polled on this task, not spawned: the reconciles then run where they always did, and
    // glibc's allocator keeps one arena busy instead of spreading the caches over several (a
    // spawned stream measured 75 MiB instead of 50 at 10,000 key sets).
    let mut run = controllers.run;

    // Standby: healthy and ready, only not acting; the watches fill the caches meanwhile.
    let mut since = None;
    if let Some(elector) = &elector {
        readiness.enter(Phase::Standby);
        let acquire = elector.acquire();
        tokio::pin!(acquire);
        let mut watching = true;
        since = Some(loop {
            tokio::select! {
                since = &mut acquire => break since,
                _ = stop.asked() => return ExitCode::SUCCESS,
                item = run.next(), if watching => watching = item.is_some(),
            }
        });
        tracing::info!(identity = settings.identity, "became leader");
    }

    // Syncing (a standby's caches are usually full by now), then serving.
    readiness.enter(Phase::Syncing);
    metrics.set_leader(true);
    let _ = allow.send(true);
    metrics.watch_keys(controllers.stores.clone());
    tokio::spawn(serve_when_synced(controllers.stores, readiness.clone()));

    let drained = drain(run, stop, readiness.clone());
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

/// The API checks, then the proof key, which lives beside the Lease.
async fn start_up(
    settings: &Settings,
) -> Result<(Client, Option<crate::proof::ProofKey>), StartupError> {
    let client = Client::try_default()
        .await
        .map_err(|e| StartupError::NoConfiguration(Box::new(e)))?;
    startup::preflight(&client, &settings.namespaces).await?;
    let capabilities = Capabilities::probe(&client).await;
    capabilities::report(&capabilities, settings.webhook.is_some());
    // The webhook alone signs nothing: no proof key, and no permission needed for one.
    if settings.webhook_only {
        return Ok((client, None));
    }
    let proof_secret = format!("{}-proof-key", settings.lease_name);
    let key =
        startup::load_or_create_proof_key(&client, &settings.own_namespace, &proof_secret).await?;
    Ok((client, Some(key)))
}

async fn serve_http(
    settings: &Settings,
    readiness: &Readiness,
    metrics: &Arc<Metrics>,
    webhook: Option<Serving>,
) -> Result<(), StartupError> {
    let listener = tokio::net::TcpListener::bind(settings.metrics_address)
        .await
        .map_err(|source| StartupError::Listen {
            address: settings.metrics_address,
            source,
        })?;
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /healthz, /readyz, /metrics");
    let health = Health {
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        webhook,
    };
    tokio::spawn(async move {
        if let Err(e) = http::serve(listener, health).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok(())
}

fn elector(settings: &Settings, client: &Client) -> Elector {
    let mut cfg = LeaseConfig::new(
        settings.own_namespace.clone(),
        settings.lease_name.clone(),
        settings.identity.clone(),
    );
    cfg.clock_skew = clock_skew();
    Elector::new(client.clone(), cfg)
}

/// Enters Serving once every watch cache has listed.
async fn serve_when_synced(
    stores: Vec<kube::runtime::reflector::Store<crate::api::DataMinerKeySet>>,
    readiness: Readiness,
) {
    for store in stores {
        // The store's readiness signal wakes only its most recent waiter, and the controller
        // waits on it too: re-poll instead of waiting once.
        while tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready())
            .await
            .is_err()
        {}
    }
    if readiness.phase() < Phase::Serving {
        readiness.enter(Phase::Serving);
        tracing::info!("watches synced; ready");
    }
}

/// Runs the controllers until they end after a stop. Stopped while still syncing: kube holds
/// every reconcile until its cache is ready, so none is in flight, and its graceful shutdown
/// would wait for a cache that stopped filling: finish at once instead.
async fn drain(
    mut run: futures::stream::BoxStream<'static, ()>,
    mut stop: Stop,
    readiness: Readiness,
) {
    let stopped_syncing = async {
        stop.asked().await;
        let was = readiness.phase();
        readiness.enter(Phase::Draining);
        if was == Phase::Serving {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = async { while run.next().await.is_some() {} } => {}
        _ = stopped_syncing => tracing::info!("stopped before the watches synced"),
    }
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
