//! Wiring: the shared context, the watches, and the controller loop.

mod announce;
mod backoff;
mod calls;
mod destroy;
pub mod events;
mod index;
mod observe;
mod persist;
mod reconcile;
mod resync;
mod takeover;
mod tombstones;
mod write;

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource, ResourceExt,
    core::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config as ControllerConfig,
        reflector::{self, ObjectRef, Store},
        watcher::{self, watcher},
    },
};

pub use calls::REQUEST_TIMEOUT;
pub use reconcile::{FINALIZER, error_policy, reconcile};

use crate::{
    api::DataMinerKeySet,
    leader::Leadership,
    metrics::Metrics,
    proof::ProofKey,
    secret::{KEYSET_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE},
};

/// Built once per process and shared by every reconciliation.
pub struct Context {
    pub client: Client,
    /// Who publishes the Events.
    pub reporter: events::Reporter,
    pub metrics: Arc<Metrics>,
    /// Signs every key value written, so the operator can tell its keys from planted ones.
    pub proof_key: ProofKey,
    /// Retry delays of failing key sets.
    pub backoff: backoff::Backoff,
    /// With leader election, this replica's right to act, checked before every write; `None`
    /// when it runs alone.
    pub leadership: Option<Leadership>,
    /// Periodic re-check of every key set without a watch event.
    pub resync: std::time::Duration,
    /// What this process knows without asking: the Secret versions its watches hold, and per
    /// key set what it verified and wrote.
    pub index: index::Index,
    /// Lineages never to adopt again (revoked, or deleted through the finalizer).
    pub tombstones: tombstones::Tombstones,
    /// Label and annotation key prefixes refused in `spec.secret`, besides the built-in ones.
    pub denied_prefixes: Vec<String>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        proof_key: ProofKey,
        instance: Option<String>,
    ) -> Self {
        const CONTROLLER: &str = crate::api::REPORTING_CONTROLLER;
        let reporter = events::Reporter {
            controller: CONTROLLER.into(),
            instance: instance.unwrap_or_else(|| CONTROLLER.into()),
        };
        // Beside the proof key in production (`with_tombstones`); the client's namespace here.
        let tombstones = tombstones::Tombstones::new(
            client.clone(),
            client.default_namespace(),
            format!("{CONTROLLER}-revoked"),
        );
        Context {
            reporter,
            tombstones,
            denied_prefixes: Vec::new(),
            client,
            index: index::Index::new(metrics.clone()),
            metrics,
            proof_key,
            backoff: Default::default(),
            leadership: None,
            resync: DEFAULT_RESYNC,
        }
    }

    /// Keeps the tombstones in `<lease_name>-revoked` in `namespace`, beside the proof key.
    pub fn with_tombstones(mut self, namespace: &str, lease_name: &str) -> Self {
        self.tombstones = tombstones::Tombstones::new(
            self.client.clone(),
            namespace,
            format!("{lease_name}-revoked"),
        );
        self
    }
}

impl Context {
    /// Test hook for the request-sequence tests, which reconcile without the controllers'
    /// watches: the index follows this Secret watch event as if their watch had delivered it.
    #[doc(hidden)]
    pub fn follow_secret_watch(&self, event: &watcher::Event<PartialObjectMeta<Secret>>) {
        self.index.lone_secret_watch().apply(event);
    }
}

/// Periodic re-check: catches drift in Secrets the watch does not see (a foreign Secret that
/// blocks us goes away) without hammering the API.
pub const DEFAULT_RESYNC: std::time::Duration = std::time::Duration::from_secs(300);

/// Drops what the reconciler never reads before a key set enters the cache: the field managers'
/// records. (Labels and annotations, a client-side apply's copy of the whole object among them,
/// and the history are taken out next, by the index: index/taken.rs.)
fn slim(obj: &mut impl kube::ResourceExt) {
    obj.managed_fields_mut().clear();
}

/// The key sets a Secret event concerns: its controller (owner reference) and the one its
/// keyset label names. The label finds a Secret restored from a backup (no owner reference) or
/// re-created by hand, so a revoked set destroys such a copy at once (issue 21).
fn keysets_of(secret: PartialObjectMeta<Secret>) -> Vec<ObjectRef<DataMinerKeySet>> {
    let namespace = secret.namespace().unwrap_or_default();
    let owner = secret
        .owner_references()
        .iter()
        .filter(|o| o.controller == Some(true) && o.kind == DataMinerKeySet::kind(&()))
        .map(|o| o.name.clone());
    let labelled = secret.labels().get(KEYSET_LABEL).cloned();
    let mut names: Vec<String> = owner.chain(labelled).collect();
    names.dedup();
    names
        .into_iter()
        .map(|name| ObjectRef::new(&name).within(&namespace))
        .collect()
}

/// Which namespaces to watch.
#[derive(Clone, Debug)]
pub enum Namespaces {
    All,
    Only(Vec<String>),
}

/// The controller streams (one per watched namespace, or one for all) and their caches, which
/// `/readyz` waits on.
pub struct Controllers {
    pub stores: Vec<Store<DataMinerKeySet>>,
    pub run: BoxStream<'static, ()>,
}

/// Builds the controllers. Secrets are watched only when they carry our managed-by label.
/// `stopping` resolves when the process is asked to stop: in-flight reconciles finish first.
/// The watches run as soon as the returned stream is polled; the reconciler gets nothing until
/// `may_act` turns true (this replica leads, or runs alone) and a cache has listed (takeover.rs).
pub fn controllers(
    ctx: Arc<Context>,
    namespaces: &Namespaces,
    concurrency: u16,
    stopping: tokio::sync::watch::Receiver<bool>,
    may_act: tokio::sync::watch::Receiver<bool>,
) -> Controllers {
    // Secrets as metadata only: a version to compare, never a value.
    type Apis = (
        Option<String>,
        Api<DataMinerKeySet>,
        Api<PartialObjectMeta<Secret>>,
    );
    let apis: Vec<Apis> = match namespaces {
        Namespaces::All => vec![(
            None,
            Api::all(ctx.client.clone()),
            Api::all(ctx.client.clone()),
        )],
        Namespaces::Only(list) => list
            .iter()
            .map(|ns| {
                (
                    Some(ns.clone()),
                    Api::namespaced(ctx.client.clone(), ns),
                    Api::namespaced(ctx.client.clone(), ns),
                )
            })
            .collect(),
    };
    let secret_selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
    let mut stores = Vec::new();
    let mut secret_watches = Vec::new();
    let mut streams = Vec::new();
    for (namespace, keysets, secrets) in apis {
        // Key sets in a cache of our own, without what the reconciler never reads.
        let (reader, writer) = reflector::store();
        let gate = takeover::Gate::default();
        let keyset_stream = watcher(keysets, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(slim)
            .map_ok({
                let ctx = ctx.clone();
                let mut follower = index::Follower::new(namespace);
                move |mut event| {
                    follower.follow(&ctx.index, &mut event);
                    event
                }
            })
            .reflect(writer)
            // The cache above takes every event; the reconciler skips our own writes' echoes,
            // and everything before it may act.
            .try_filter({
                let (ctx, gate) = (ctx.clone(), gate.clone());
                move |event| {
                    let echo = matches!(event, watcher::Event::Apply(ks) if ctx.index.is_echo(ks));
                    std::future::ready(gate.is_open() && !echo)
                }
            })
            .touched_objects();
        // Secrets: only their versions are kept (index/secrets.rs); the owner references in the
        // events route each change to its key set.
        let versions = Arc::new(index::SecretVersions::default());
        let secret_stream = watcher(secrets, watcher::Config::default().labels(&secret_selector))
            .default_backoff()
            .inspect_ok({
                let versions = versions.clone();
                move |event| versions.apply(event)
            })
            .try_filter({
                let (ctx, gate) = (ctx.clone(), gate.clone());
                move |event| {
                    let echo = matches!(event, watcher::Event::Apply(secret) if ctx.index.is_echo_of_secret(secret));
                    std::future::ready(gate.is_open() && !echo)
                }
            })
            .touched_objects();
        secret_watches.push(versions);
        let resyncs = resync::walk(reader.clone(), ctx.resync).filter({
            let gate = gate.clone();
            move |_| std::future::ready(gate.is_open())
        });
        let pace = takeover::Pace {
            finished: {
                let metrics = ctx.metrics.clone();
                move || metrics.reconciles_finished()
            },
            window: 4 * u64::from(concurrency.max(1)),
        };
        let first = takeover::first_round(reader.clone(), may_act.clone(), gate, pace);
        let controller = Controller::for_stream(keyset_stream, reader)
            .watches_stream(secret_stream, keysets_of)
            .reconcile_on(futures::stream::select(first, resyncs))
            .with_config(ControllerConfig::default().concurrency(concurrency))
            .graceful_shutdown_on({
                let mut stopping = stopping.clone();
                async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                }
            });
        stores.push(controller.store());
        let stream = controller
            .run(reconcile, error_policy, ctx.clone())
            .map(|result| {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "controller event");
                }
            })
            .boxed();
        streams.push(stream);
    }
    ctx.index.set_secret_watches(secret_watches);
    Controllers {
        stores,
        run: futures::stream::select_all(streams).boxed(),
    }
}
