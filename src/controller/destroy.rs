//! The finalizer's cleanup: a key set being deleted takes its Secret with it, whatever the
//! propagation policy, but only a Secret that is the operator's.

use k8s_openapi::{
    api::{core::v1::Secret, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, PostParams, Preconditions},
    runtime::controller::Action,
};

use super::{
    Context,
    calls::{CallError, call, ensure_leading},
    events,
    index::Outcome,
    observe::{Fresh, observe},
    write::tombstone,
};
use crate::{
    api::{DataMinerKeySet, PendingEvent},
    error::{Operation, Result, WriteError},
    plan,
    status::Queued,
};

pub(super) async fn destroy_keys(ks: &DataMinerKeySet, ctx: &Context) -> Result<Action> {
    let status = ks.status.clone().unwrap_or_default();
    let observed = observe(ks, ctx, &status, Fresh::Latest).await?;
    ctx.index.record(ks, Outcome::Gone);
    // Deleted keys never come back under this name, except when the whole namespace goes: that
    // is what a namespace backup restores (docs/backup.md).
    let seen_lineage = match &observed.seen {
        plan::SecretSeen::Present { lineage, .. } => lineage.clone(),
        plan::SecretSeen::Absent => None,
    };
    let lineages: Vec<String> = [status.lineage.clone(), seen_lineage]
        .into_iter()
        .flatten()
        .collect();
    if !lineages.is_empty() && !namespace_terminating(ks, ctx).await {
        for lineage in &lineages {
            tombstone(ctx, lineage).await?;
        }
    }
    // Every copy: the operator's Secret, or one holding a value it proves it wrote.
    let Some(existing) = observed
        .secret
        .as_ref()
        .filter(|_| plan::is_operators(&status, &observed.seen) || observed.seen.holds_a_key())
    else {
        return Ok(Action::await_change());
    };
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    let secret_name = ks.secret_name();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: existing.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    ensure_leading(ctx).map_err(WriteError::from)?;
    match call(secrets.delete(&secret_name, &dp)).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(404) => {}
        Err(e) => {
            let error = e.into_write(Operation::DeleteSecret, &secret_name, &[]);
            if let Some(label) = error.operation().and_then(|op| op.write_label()) {
                ctx.metrics.write_failed(label);
            }
            return Err(error.into());
        }
    }
    // An audit line like the reconciler's: self-contained, so it names the key set.
    tracing::info!(
        namespace = ks.namespace().unwrap_or_default(),
        name = ks.name_any(),
        action = "KeysDeleted",
        "key set action"
    );
    Ok(Action::await_change())
}

/// True when the key set goes because its namespace does. Asked without a permission of its
/// own: the API server refuses new objects in a namespace exactly while it terminates
/// (NamespaceLifecycle admission, which dry runs pass through too), so a dry-run Event tells.
/// Anything else (a refusal for another reason, no answer) counts as no: the keys' lineage is
/// then tombstoned, the safe side.
async fn namespace_terminating(ks: &DataMinerKeySet, ctx: &Context) -> bool {
    let probe = events::event(
        &ctx.reporter,
        &Queued {
            event: PendingEvent {
                type_: "Normal".into(),
                reason: "KeysDeleted".into(),
                action: "Delete".into(),
                note: "probe".into(),
                at: Time(Timestamp::now()),
            },
            late: false,
        },
        ks.object_ref(&()),
    );
    let namespace = ks.namespace().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &namespace);
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match call(api.create(&pp, &probe)).await {
        Err(CallError::Api(kube::Error::Api(s))) => {
            let terminating = s
                .details
                .as_ref()
                .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
                || s.message.contains("is being terminated");
            if !terminating {
                tracing::warn!(
                    error = s.message,
                    "cannot tell whether the namespace is being deleted; the keys' lineage is tombstoned"
                );
            }
            terminating
        }
        _ => false,
    }
}
