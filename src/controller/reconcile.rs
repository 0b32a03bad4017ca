//! One reconciliation, as named steps: read the key set -> observe its Secret -> plan (pure) ->
//! apply -> report (Events, audit lines) -> write status computed from what was applied. The
//! report comes before the status write: a crash in between repeats it (at least once) instead
//! of losing it. A write the API server refuses or leaves unanswered becomes `Ready=False`
//! (`SecretWriteFailed`), one Warning Event, a metric, and a retry with backoff.

use std::{sync::Arc, time::Duration};

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};
use tracing::instrument;

use super::{
    Context,
    apply::apply,
    cache::Kept,
    calls::{call, ensure_leading},
    destroy::destroy_keys,
    observe::{Observed, Read, observe},
    report::report,
    write_status::write_status,
};
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus, READY},
    error::{Error, Result},
    plan::{self, Plan, PlanInput, Problem, SecretWrite},
    status::{self, Applied},
};

const RETRY_CONFLICT: Duration = Duration::from_secs(30);
/// Deleting a key set destroys its keys, whatever the propagation policy (`--cascade=orphan`
/// would otherwise leave the Secret behind).
pub const FINALIZER: &str = "keys.dataminer.services/destroy-keys";

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
    match error {
        Error::Changed => Action::requeue(Duration::from_millis(200)),
        _ => Action::requeue(ctx.backoff.next(&object_name(&ks))),
    }
}

/// `namespace/name`: the key of the retry backoff.
fn object_name(ks: &DataMinerKeySet) -> String {
    format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any())
}

/// Plans from the watch cache (see [`super::cache`]), then: keys for a live key set, cleanup
/// for one being deleted. The finalizer is added and removed here rather than by kube's
/// `finalizer` helper, so that those two writes go through the same guard as every other one:
/// only while leading, bounded in time (issue 21).
async fn reconcile_once(cached: &Arc<DataMinerKeySet>, ctx: &Context) -> Result<Action> {
    // The cache has not yet delivered our own last status write: planning from it would record
    // a change twice. That write's watch event reconciles again.
    if ctx.cache.is_stale(cached) {
        return Ok(Action::await_change());
    }
    let keysets: Api<DataMinerKeySet> =
        Api::namespaced(ctx.client.clone(), &cached.namespace().unwrap_or_default());
    let has_finalizer = cached.finalizers().iter().any(|f| f == FINALIZER);
    match (cached.metadata.deletion_timestamp.is_some(), has_finalizer) {
        (false, true) => reconcile_keyset(cached, ctx, &keysets).await,
        // Its watch event brings the key set back with the finalizer in place.
        (false, false) => {
            let mut finalizers = cached.finalizers().to_vec();
            finalizers.push(FINALIZER.into());
            set_finalizers(cached, ctx, &keysets, finalizers, "adding the finalizer").await?;
            Ok(Action::await_change())
        }
        (true, true) => {
            ctx.metrics
                .keyset_moved(ctx.cache.swap_state(cached, None), None);
            let action = destroy_keys(cached, ctx).await?;
            let finalizers = cached
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect();
            set_finalizers(cached, ctx, &keysets, finalizers, "removing the finalizer").await?;
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
    step: &'static str,
) -> Result<()> {
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
        Err(e) if matches!(e.code(), Some(409) | Some(422)) => Err(Error::Changed),
        Err(e) => Err(e.into_error(step, |source| Error::Finalizer {
            message: format!("{step}: {source}"),
        })),
    }
}

/// The script for a live key set.
async fn reconcile_keyset(
    ks: &DataMinerKeySet,
    ctx: &Context,
    keysets: &Api<DataMinerKeySet>,
) -> Result<Action> {
    let status = ks.status.clone().unwrap_or_default();
    let mut observed = observe(ks, ctx, &status, Read::IfUnknown).await?;
    let mut plan = plan_for(ks, &status, &observed, ctx);
    // Rewriting or deleting a Secret needs its current values and version: read it first.
    if observed.from_cache && matches!(plan.write, SecretWrite::Update { .. } | SecretWrite::Delete)
    {
        observed = observe(ks, ctx, &status, Read::Always).await?;
        plan = plan_for(ks, &status, &observed, ctx);
    }
    // An action names who asked: the requester annotations, kept aside by the cache, go back on.
    let restored;
    let ks = match plan.changes.is_empty() {
        true => ks,
        false => match ctx.cache.requesters(ks) {
            Kept::This(annotations) => {
                let mut with = ks.clone();
                with.metadata.annotations = Some(annotations);
                restored = with;
                &restored
            }
            // The watch delivered a newer version since: plan again from it, before any write.
            Kept::ForAnotherVersion => return Err(Error::Changed),
            Kept::Nothing => ks,
        },
    };
    let (applied, failure) = apply(ks, ctx, plan, observed).await?;
    let mut next = status::next_status(ks, &applied);
    // A lapsed leader writes nothing more; the next leader finds (and records) what was written.
    ensure_leading(ctx)?;
    // A refused Event does not stop the status write: status must never claim a key the
    // Secret no longer holds. It waits in status and is retried with backoff.
    let unpublished = report(ks, ctx, &applied).await?;
    let refused = unpublished
        .refusal
        .as_ref()
        .zip(unpublished.events.first())
        .map(|(message, first)| Error::PublishEvent {
            reason: first.event.reason.clone(),
            message: message.clone(),
        });
    status::settle(
        ks,
        &mut next,
        unpublished.events,
        unpublished.refusal.as_deref(),
        applied.now,
    );
    write_status(ks, ctx, keysets, &next).await?;
    let state = Some(state(&applied, &next));
    ctx.metrics
        .keyset_moved(ctx.cache.swap_state(ks, state), state);
    match failure.or(refused) {
        Some(error) => Err(error),
        None => Ok(next_check(&applied.plan)),
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

/// The key set's state for the gauge.
fn state(applied: &Applied, next: &DataMinerKeySetStatus) -> &'static str {
    if applied.plan.revoked {
        "Revoked"
    } else if next
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True")
    {
        "Ready"
    } else {
        "NotReady"
    }
}

/// When to look again without a watch event.
fn next_check(plan: &Plan) -> Action {
    if plan
        .problems
        .iter()
        .any(|p| matches!(p, Problem::SecretConflict))
    {
        Action::requeue(RETRY_CONFLICT)
    } else {
        // The periodic re-check comes from resync::walk, which holds no timer per key set.
        Action::await_change()
    }
}
