//! One reconciliation: read what exists -> plan (pure) -> apply -> Events and log lines -> status
//! computed from what was applied. The audit comes before the status write: a crash in between
//! repeats it (at least once) instead of losing it.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType},
    },
};
use serde_json::json;

use super::Context;
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::{Error, Result},
    keys::{self, KeyValue},
    plan::{self, Action, Plan, PlanInput, Problem, SecretSeen, SecretWrite, Slot, SlotPlan},
    secret::{self, FIELD_MANAGER},
    status::{self, Applied, Held},
};

/// Periodic re-check: catches drift in Secrets the watch does not see (a foreign Secret that
/// blocks us goes away) without hammering the API.
const RESYNC: Duration = Duration::from_secs(300);
const RETRY_CONFLICT: Duration = Duration::from_secs(30);

pub async fn reconcile(ks: Arc<DataMinerKeySet>, ctx: Arc<Context>) -> Result<Requeue> {
    let started = std::time::Instant::now();
    let result = reconcile_once(&ks, &ctx).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.metric_label(),
    };
    ctx.metrics.reconciled(label, started.elapsed());
    result
}

pub fn error_policy(ks: Arc<DataMinerKeySet>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(
        namespace = ks.namespace().unwrap_or_default(),
        name = ks.name_any(),
        error = %error,
        "reconcile failed"
    );
    match error {
        Error::Changed { .. } => Requeue::requeue(Duration::from_millis(200)),
        _ => Requeue::requeue(Duration::from_secs(5)),
    }
}

fn object_name(ks: &DataMinerKeySet) -> String {
    format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any())
}

async fn reconcile_once(cached: &DataMinerKeySet, ctx: &Context) -> Result<Requeue> {
    let object = object_name(cached);
    let namespace = cached.namespace().unwrap_or_default();
    let keysets: Api<DataMinerKeySet> = Api::namespaced(ctx.client.clone(), &namespace);
    // The watch cache can lag behind our own last status write (a Secret event may arrive
    // first): planning from it would record an action twice. Read the key set itself, and
    // write its status only if it is still that version.
    let Some(fresh) = keysets
        .get_opt(&cached.name_any())
        .await
        .map_err(|source| Error::ReadKeySet {
            object: object.clone(),
            source,
        })?
    else {
        ctx.metrics.keyset_state(&object, None);
        return Ok(Requeue::await_change());
    };
    let ks = &fresh;
    if ks.metadata.deletion_timestamp.is_some() {
        // The Secret carries a controller owner reference: the garbage collector deletes it.
        ctx.metrics.keyset_state(&object, None);
        return Ok(Requeue::await_change());
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret_name = secret::secret_name(ks);

    // Read: a direct GET, not the watch cache, so a foreign Secret (which we do not watch) is
    // seen too, and the resourceVersion is fresh for the optimistic write below.
    let existing = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|source| Error::ReadSecret {
            object: object.clone(),
            secret: secret_name.clone(),
            source,
        })?;
    let (seen, values) = secret::observe(ks, existing.as_ref());
    let status = ks.status.clone().unwrap_or_default();

    // Plan.
    let plan = plan::plan(&PlanInput {
        spec: &ks.spec,
        status: &status,
        secret_name: &secret_name,
        secret: seen.clone(),
    });

    // Apply.
    let held = apply(
        ks,
        &secrets,
        &plan,
        &status,
        existing.as_ref(),
        &seen,
        values,
    )
    .await?;

    // Status from what was applied.
    let applied = Applied {
        plan: &plan,
        held,
        now: Timestamp::now(),
    };
    let next = status::next_status(ks, &applied);
    // Events before the status write: a crash in between repeats an Event on the next run
    // (its note carries the same revision and fingerprint), where the other order would lose
    // it for good. Every action is announced at least once.
    for notice in status::notices(ks, &applied) {
        let event = Event {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason.into(),
            note: Some(notice.note),
            action: notice.action.into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &ks.object_ref(&())).await {
            // An Event is best effort: the same fact is in status.history and the log.
            tracing::warn!(object, reason = notice.reason, error = %e, "publishing an Event failed");
        }
    }
    // One log line per action, and metrics.
    for &action in &plan.actions {
        log_action(ks, action, &applied);
        ctx.metrics.action(status::action_name(action));
    }
    for problem in &plan.problems {
        tracing::warn!(
            namespace,
            name = ks.name_any(),
            problem = status::problem_reason(problem),
            "key set needs attention"
        );
    }
    if ks.status.as_ref() != Some(&next) {
        let body = json!({
            "apiVersion": DataMinerKeySet::api_version(&()),
            "kind": DataMinerKeySet::kind(&()),
            "metadata": { "resourceVersion": ks.resource_version() },
            "status": next,
        });
        keysets
            .patch_status(
                &ks.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| match &source {
                kube::Error::Api(s) if s.code == 409 => Error::Changed {
                    object: object.clone(),
                },
                _ => Error::WriteStatus {
                    object: object.clone(),
                    source,
                },
            })?;
    }

    let state = if plan.revoked {
        "Revoked"
    } else if next
        .conditions
        .iter()
        .any(|c| c.type_ == crate::api::READY && c.status == "True")
    {
        "Ready"
    } else {
        "NotReady"
    };
    ctx.metrics.keyset_state(&object, Some(state));

    Ok(
        if plan
            .problems
            .iter()
            .any(|p| matches!(p, Problem::SecretConflict))
        {
            Requeue::requeue(RETRY_CONFLICT)
        } else if plan.revoked {
            Requeue::await_change()
        } else {
            Requeue::requeue(RESYNC)
        },
    )
}

/// One structured line per action; fingerprints only.
fn log_action(ks: &DataMinerKeySet, action: Action, applied: &Applied) {
    let namespace = ks.namespace().unwrap_or_default();
    let name = ks.name_any();
    let held = |slot: Slot| applied.held[slot as usize].as_ref();
    let revision = |slot: Slot| held(slot).map(|h| h.revision);
    let fingerprint = |slot: Slot| held(slot).map(|h| h.fingerprint.as_str());
    let action_name = status::action_name(action);
    match action {
        Action::Regenerated(slot) => tracing::info!(
            namespace,
            name,
            action = action_name,
            slot = slot.name(),
            revision = revision(slot),
            fingerprint = fingerprint(slot),
            "key set action"
        ),
        Action::KeysCreated | Action::SecretRecreated => tracing::info!(
            namespace,
            name,
            action = action_name,
            slot = "both",
            primary_revision = revision(Slot::Primary),
            primary_fingerprint = fingerprint(Slot::Primary),
            secondary_revision = revision(Slot::Secondary),
            secondary_fingerprint = fingerprint(Slot::Secondary),
            "key set action"
        ),
        Action::Revoked => tracing::info!(namespace, name, action = action_name, "key set action"),
    }
}

/// Carries out the plan's Secret write and reports what the Secret holds afterwards.
async fn apply(
    ks: &DataMinerKeySet,
    secrets: &Api<Secret>,
    plan: &Plan,
    status: &DataMinerKeySetStatus,
    existing: Option<&Secret>,
    seen: &SecretSeen,
    values: [Option<KeyValue>; 2],
) -> Result<[Option<Held>; 2]> {
    let object = object_name(ks);
    let object = object.as_str();
    let secret_name = secret::secret_name(ks);
    match &plan.write {
        SecretWrite::None => Ok(status::held_untouched(plan, status, seen)),
        SecretWrite::Delete => {
            let uid = existing.and_then(|s| s.uid());
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid,
                    resource_version: None,
                }),
                ..Default::default()
            };
            match secrets.delete(&secret_name, &dp).await {
                Ok(_) => Ok([None, None]),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok([None, None]),
                Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Changed {
                    object: object.into(),
                }),
                Err(source) => Err(Error::DeleteSecret {
                    object: object.into(),
                    secret: secret_name,
                    source,
                }),
            }
        }
        SecretWrite::Create { slots } | SecretWrite::Update { slots } => {
            let mut new_values: [Option<KeyValue>; 2] = [None, None];
            for slot in Slot::BOTH {
                let i = slot as usize;
                new_values[i] = Some(match slots[i] {
                    SlotPlan::Generate { .. } => {
                        keys::generate(ks.spec.key_format).map_err(|source| Error::GenerateKey {
                            object: object.into(),
                            source,
                        })?
                    }
                    // The plan keeps only values it has seen.
                    SlotPlan::Keep { .. } => values[i].clone().expect("plan keeps a seen value"),
                });
            }
            let [Some(p), Some(s)] = &new_values else {
                unreachable!("both slots were filled above")
            };
            let revisions = [slots[0].revision(), slots[1].revision()];
            let write_err = |source: kube::Error| match &source {
                kube::Error::Api(s) if s.code == 409 => Error::Changed {
                    object: object.into(),
                },
                _ => Error::WriteSecret {
                    object: object.into(),
                    secret: secret_name.clone(),
                    source,
                },
            };
            let mut precondition = match (&plan.write, existing) {
                (SecretWrite::Update { .. }, Some(e)) => Some((
                    e.uid().unwrap_or_default(),
                    e.resource_version().unwrap_or_default(),
                )),
                _ => None,
            };
            if precondition.is_none() {
                let body = secret::build(ks, [p, s], revisions, None);
                let pp = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let created = secrets.create(&pp, &body).await.map_err(write_err)?;
                precondition = secret::has_user_metadata(ks).then(|| {
                    (
                        created.uid().unwrap_or_default(),
                        created.resource_version().unwrap_or_default(),
                    )
                });
            }
            if precondition.is_some() {
                let body = secret::build(ks, [p, s], revisions, precondition);
                let pp = PatchParams::apply(FIELD_MANAGER).force();
                secrets
                    .patch(&secret_name, &pp, &Patch::Apply(&body))
                    .await
                    .map_err(write_err)?;
            }
            Ok(Slot::BOTH.map(|slot| {
                let i = slot as usize;
                Some(Held {
                    revision: slots[i].revision(),
                    fingerprint: new_values[i].as_ref().map(KeyValue::fingerprint)?,
                })
            }))
        }
    }
}
