//! One reconciliation, as named steps: gather (the index) -> observe the Secret -> plan (the
//! core) -> write the Secret -> announce (Events, audit lines) -> persist the status the
//! announce step hands over. Each step has its own error type (error.rs). The announcement
//! comes before the status write, and only it can produce what the status write takes: a
//! crash in between repeats it (at least once) instead of losing it. A write the API server
//! refuses or leaves unanswered becomes `Ready=False` (`SecretWriteFailed`), one Warning Event,
//! a metric, and a retry with backoff.

use std::{sync::Arc, time::Duration};

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};
use tracing::instrument;

use super::{
    Context,
    announce::announce,
    calls::{call, ensure_leading},
    destroy::destroy_keys,
    index::{Gathered, Kept, Outcome},
    observe::{Fresh, Observed, observe},
    persist::persist,
    write::write,
};
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::{Error, Kind, Operation, PersistError, Result},
    plan::{self, Plan, PlanInput},
    status::{NextCheck, Standing},
};

pub use crate::api::FINALIZER;

/// Everything logged while reconciling a key set carries its namespace and name in this span
/// (`keyset`, because a span's own name is `name` in JSON logs).
#[instrument(skip_all, fields(namespace = ks.namespace().unwrap_or_default(), keyset = ks.name_any()))]
pub async fn reconcile(ks: Arc<DataMinerKeySet>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let result = reconcile_once(&ks, &ctx).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.metric_label(),
    };
    if result.is_ok() {
        ctx.backoff.reset(&object_name(&ks));
    }
    ctx.metrics.reconciled(label, started.elapsed());
    result
}

pub fn error_policy(ks: Arc<DataMinerKeySet>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(
        namespace = ks.namespace().unwrap_or_default(),
        keyset = ks.name_any(),
        error = %error,
        "reconcile failed"
    );
    match error.kind() {
        Kind::Changed => Action::requeue(Duration::from_millis(200)),
        _ => Action::requeue(ctx.backoff.next(&object_name(&ks))),
    }
}

/// `namespace/name`: the key of the retry backoff.
fn object_name(ks: &DataMinerKeySet) -> String {
    format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any())
}

/// Plans from what the index knows (see [`super::index`]), then: keys for a live key set, cleanup
/// for one being deleted. The finalizer is added and removed here rather than by kube's
/// `finalizer` helper, so that those two writes go through the same guard as every other one:
/// only while leading, bounded in time (issue 21).
async fn reconcile_once(cached: &Arc<DataMinerKeySet>, ctx: &Context) -> Result<Action> {
    let gathered = match ctx.index.gather(cached) {
        // The cache has not yet delivered our own last status write: planning from it would
        // record a change twice. That write's watch event reconciles again.
        Gathered::Behind => return Ok(Action::await_change()),
        gathered => gathered,
    };
    let keysets: Api<DataMinerKeySet> =
        Api::namespaced(ctx.client.clone(), &cached.namespace().unwrap_or_default());
    let has_finalizer = cached.finalizers().iter().any(|f| f == FINALIZER);
    match (cached.metadata.deletion_timestamp.is_some(), has_finalizer) {
        (false, true) => reconcile_keyset(cached, ctx, &keysets, gathered).await,
        // Its watch event brings the key set back with the finalizer in place.
        (false, false) => {
            let mut finalizers = cached.finalizers().to_vec();
            finalizers.push(FINALIZER.into());
            set_finalizers(cached, ctx, &keysets, finalizers, Operation::AddFinalizer).await?;
            Ok(Action::await_change())
        }
        (true, true) => {
            ctx.index.record(cached, Outcome::Gone);
            let action = destroy_keys(cached, ctx).await?;
            let finalizers = cached
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect();
            set_finalizers(
                cached,
                ctx,
                &keysets,
                finalizers,
                Operation::RemoveFinalizer,
            )
            .await?;
            Ok(action)
        }
        // Being deleted, our work done: nothing to do.
        (true, false) => Ok(Action::await_change()),
    }
}

/// Writes the key set's finalizers, only onto the version read (a merge patch carrying the
/// resourceVersion: a key set changed since is refused with 409 and planned again), only while
/// leading, and bounded like every call.
async fn set_finalizers(
    ks: &DataMinerKeySet,
    ctx: &Context,
    keysets: &Api<DataMinerKeySet>,
    finalizers: Vec<String>,
    operation: Operation,
) -> Result<(), PersistError> {
    ensure_leading(ctx)?;
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": ks.resource_version() }
    });
    match call(keysets.patch(
        &ks.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    ))
    .await
    {
        Ok(_) => Ok(()),
        // Gone already (its last finalizer was removed by someone else): nothing left to do.
        Err(e) if e.code() == Some(404) => Ok(()),
        // Changed under us (409), or the patch no longer applies (422): plan again soon.
        Err(e) if matches!(e.code(), Some(409) | Some(422)) => Err(PersistError::Changed),
        Err(e) => Err(e.into_persist(operation)),
    }
}

/// The script for a live key set.
async fn reconcile_keyset(
    ks: &DataMinerKeySet,
    ctx: &Context,
    keysets: &Api<DataMinerKeySet>,
    gathered: Gathered,
) -> Result<Action> {
    let status = ks.status.clone().unwrap_or_default();
    let mut observed = match gathered {
        Gathered::Known(seen) => Observed::known(seen),
        Gathered::ReadWatched(version) => {
            observe(ks, ctx, &status, Fresh::NotOlderThan(version)).await?
        }
        Gathered::MustRead | Gathered::Behind => observe(ks, ctx, &status, Fresh::Latest).await?,
    };
    let mut plan = plan_for(ks, &status, &observed, ctx);
    if observed.from_index && plan.needs_secret_read() {
        // The version the index vouched for is the one its watch holds: read it, or newer.
        let fresh = ctx
            .index
            .watched_resource_version(ks)
            .map_or(Fresh::Latest, Fresh::NotOlderThan);
        observed = observe(ks, ctx, &status, fresh).await?;
        plan = plan_for(ks, &status, &observed, ctx);
    }
    // An action names who asked: the requester annotations, kept aside by the index, go back on.
    let restored;
    let ks = match plan.changes.is_empty() {
        true => ks,
        false => match ctx.index.requesters(ks) {
            Kept::This(annotations) => {
                let mut with = ks.clone();
                with.metadata.annotations = Some(annotations);
                restored = with;
                &restored
            }
            // The watch delivered a newer version since: plan again from it, before any write.
            Kept::ForAnotherVersion => return Err(PersistError::Changed.into()),
            Kept::Nothing => ks,
        },
    };
    let written = write(ks, ctx, plan, observed).await?;
    let announced = announce(ks, ctx, &written.applied).await?;
    persist(ks, ctx, keysets, &announced).await?;
    let (next, refused) = announced.into_parts();
    let plan = &written.applied.plan;
    ctx.index
        .record(ks, Outcome::Standing(Standing::of(plan, &next)));
    // A failed Secret write first: it is what the status reports.
    match (written.failure, refused) {
        (Some(failure), _) => Err(failure.into()),
        (None, Some(refused)) => Err(refused.into()),
        (None, None) => Ok(match NextCheck::after(plan) {
            // The periodic re-check comes from resync::walk, which holds no timer per key set.
            NextCheck::OnChange => Action::await_change(),
            NextCheck::After(delay) => Action::requeue(delay),
        }),
    }
}

/// The plan step (pure): spec, the record in status, and what the Secret holds.
fn plan_for(
    ks: &DataMinerKeySet,
    status: &DataMinerKeySetStatus,
    observed: &Observed,
    ctx: &Context,
) -> Plan {
    plan::plan(&PlanInput {
        name: &ks.name_any(),
        spec: &ks.spec,
        status,
        secret_name: &ks.secret_name(),
        secret: observed.seen.clone(),
        denied_prefixes: &ctx.denied_prefixes,
    })
}
