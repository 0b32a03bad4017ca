//! One reconciliation: read what exists -> plan (pure) -> apply -> Events and log lines -> status
//! computed from what was applied. The audit comes before the status write: a crash in between
//! repeats it (at least once) instead of losing it. A write the API server refuses or leaves
//! unanswered becomes `Ready=False` (`SecretWriteFailed`), one Warning Event, a metric, and a
//! retry with backoff.

use std::{future::Future, sync::Arc, time::Duration};

use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType},
        finalizer::{self, finalizer},
    },
};
use serde_json::json;

use super::Context;
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::{Error, Result},
    keys::{self, KeyValue},
    plan::{self, Action, Held, Plan, PlanInput, Problem, SecretSeen, SecretWrite, Slot, SlotPlan},
    secret::{self, FIELD_MANAGER},
    status::{self, Applied},
};

/// Periodic re-check: catches drift in Secrets the watch does not see (a foreign Secret that
/// blocks us goes away) without hammering the API.
const RESYNC: Duration = Duration::from_secs(300);
const RETRY_CONFLICT: Duration = Duration::from_secs(30);
/// No single API call may hold a worker longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Deleting a key set destroys its keys, whatever the propagation policy (`--cascade=orphan`
/// would otherwise leave the Secret behind).
pub const FINALIZER: &str = "keys.dataminer.services/destroy-keys";

pub async fn reconcile(ks: Arc<DataMinerKeySet>, ctx: Arc<Context>) -> Result<Requeue> {
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

pub fn error_policy(ks: Arc<DataMinerKeySet>, error: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(
        namespace = ks.namespace().unwrap_or_default(),
        name = ks.name_any(),
        error = %error,
        "reconcile failed"
    );
    match error {
        Error::Changed { .. } => Requeue::requeue(Duration::from_millis(200)),
        _ => Requeue::requeue(ctx.backoff.next(&object_name(&ks))),
    }
}

fn object_name(ks: &DataMinerKeySet) -> String {
    format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any())
}

/// An API call that failed or did not answer within [`REQUEST_TIMEOUT`].
enum CallError {
    Api(kube::Error),
    TimedOut,
}

async fn call<T>(fut: impl Future<Output = kube::Result<T>>) -> Result<T, CallError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(result) => result.map_err(CallError::Api),
        Err(_) => Err(CallError::TimedOut),
    }
}

/// A read that failed: the error with its context.
fn read_error(
    object: &str,
    step: &'static str,
    wrap: impl FnOnce(kube::Error) -> Error,
) -> impl FnOnce(CallError) -> Error {
    move |e| match e {
        CallError::Api(source) => wrap(source),
        CallError::TimedOut => Error::Timeout {
            object: object.into(),
            step,
            secs: REQUEST_TIMEOUT.as_secs(),
        },
    }
}

/// Refuses to write once this replica's leadership has lapsed (checked before every write:
/// another replica may be acting already).
fn ensure_leading(ctx: &Context, object: &str) -> Result<()> {
    match &ctx.leadership {
        Some(l) if !l.is_valid() => Err(Error::NotLeader {
            object: object.into(),
        }),
        _ => Ok(()),
    }
}

/// Test hook: `DMK_CRASH_AFTER=secret-write` aborts the process right after a successful
/// Secret write, before any Event or status write, so tests can reproduce a crash between two
/// writes on the real API server. Unset in production; it changes nothing else.
fn crash_point(step: &str) {
    static AFTER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AFTER
        .get_or_init(|| std::env::var("DMK_CRASH_AFTER").ok())
        .as_deref()
        == Some(step)
    {
        eprintln!("DMK_CRASH_AFTER={step}: aborting");
        std::process::abort();
    }
}

async fn reconcile_once(cached: &DataMinerKeySet, ctx: &Context) -> Result<Requeue> {
    let object = object_name(cached);
    let namespace = cached.namespace().unwrap_or_default();
    let keysets: Api<DataMinerKeySet> = Api::namespaced(ctx.client.clone(), &namespace);
    // The watch cache can lag behind our own last status write (a Secret event may arrive
    // first): planning from it would record an action twice. Read the key set itself, and
    // write its status only if it is still that version.
    let fresh = call(keysets.get_opt(&cached.name_any()))
        .await
        .map_err(read_error(&object, "reading the key set", |source| {
            Error::ReadKeySet {
                object: object.clone(),
                source,
            }
        }))?;
    let Some(fresh) = fresh else {
        ctx.metrics.keyset_state(&object, None);
        return Ok(Requeue::await_change());
    };
    let result = finalizer(&keysets, FINALIZER, Arc::new(fresh), |event| async {
        match event {
            finalizer::Event::Apply(ks) => reconcile_keyset(&ks, ctx, &keysets).await,
            finalizer::Event::Cleanup(ks) => {
                ctx.metrics.keyset_state(&object, None);
                destroy_keys(&ks, ctx).await
            }
        }
    })
    .await;
    result.map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        finalizer::Error::AddFinalizer(kube::Error::Api(s))
        | finalizer::Error::RemoveFinalizer(kube::Error::Api(s))
            if s.code == 409 || s.code == 422 =>
        {
            // The key set changed under the JSON patch's test: retry soon.
            Error::Changed { object }
        }
        other => Error::Finalizer {
            object,
            message: other.to_string(),
        },
    })
}

/// Reads the key set's Secret for the plan. A direct GET, not the watch cache, so a foreign
/// Secret (which is not watched) is seen too, and the resourceVersion is fresh for the
/// optimistic write that may follow.
async fn read_secret(
    ks: &DataMinerKeySet,
    ctx: &Context,
    secrets: &Api<Secret>,
    status: &DataMinerKeySetStatus,
) -> Result<(Option<Secret>, SecretSeen, [Option<KeyValue>; 2])> {
    let object = object_name(ks);
    let secret_name = ks.secret_name();
    let existing = call(secrets.get_opt(&secret_name))
        .await
        .map_err(read_error(&object, "reading the Secret", |source| {
            Error::ReadSecret {
                object: object.clone(),
                secret: secret_name.clone(),
                source,
            }
        }))?;
    let (seen, values) = secret::observe(ks, status, &ctx.proof_key, existing.as_ref());
    Ok((existing, seen, values))
}

/// A key set is being deleted: delete its Secret if it is the operator's, then let it go.
async fn destroy_keys(ks: &DataMinerKeySet, ctx: &Context) -> Result<Requeue> {
    let object = object_name(ks);
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    let secret_name = ks.secret_name();
    let status = ks.status.clone().unwrap_or_default();
    let (existing, seen, _) = read_secret(ks, ctx, &secrets, &status).await?;
    if let Some(existing) = existing
        .as_ref()
        .filter(|_| plan::is_operators(&status, &seen))
    {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: existing.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        ensure_leading(ctx, &object)?;
        match call(secrets.delete(&secret_name, &dp)).await {
            Ok(_) => {}
            Err(CallError::Api(kube::Error::Api(s))) if s.code == 404 => {}
            Err(e) => {
                ctx.metrics.write_failed("delete");
                return Err(read_error(&object, "deleting the Secret", |source| {
                    Error::DeleteSecret {
                        object: object.clone(),
                        secret: secret_name.clone(),
                        source,
                    }
                })(e));
            }
        }
        tracing::info!(
            namespace = ks.namespace().unwrap_or_default(),
            name = ks.name_any(),
            action = "KeysDeleted",
            "key set action"
        );
    }
    Ok(Requeue::await_change())
}

async fn reconcile_keyset(
    ks: &DataMinerKeySet,
    ctx: &Context,
    keysets: &Api<DataMinerKeySet>,
) -> Result<Requeue> {
    let object = object_name(ks);
    let namespace = ks.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret_name = ks.secret_name();
    let status = ks.status.clone().unwrap_or_default();
    let (existing, seen, values) = read_secret(ks, ctx, &secrets, &status).await?;

    // Plan.
    let name = ks.name_any();
    let mut plan = plan::plan(&PlanInput {
        name: &name,
        spec: &ks.spec,
        status: &status,
        secret_name: &secret_name,
        secret: seen,
    });

    // Apply.
    if plan.write != SecretWrite::None {
        ensure_leading(ctx, &object)?;
    }
    let (written, failure) = match write(ks, ctx, &secrets, &plan, existing.as_ref(), values).await
    {
        Ok(written) => (written, None),
        Err(WriteError::Conflict) => return Err(Error::Changed { object }),
        Err(WriteError::Failed(failure)) => {
            let Failure {
                partial,
                message,
                error,
                operation,
            } = *failure;
            ctx.metrics.write_failed(operation);
            let written = partial.unwrap_or_else(|| {
                // Nothing happened: report no action, keep the record as it is.
                plan.actions.clear();
                plan.revoked = status.revoked_at.is_some();
                plan.problems.retain(|p| *p != Problem::SecretMissing);
                Written {
                    held: [None, None],
                    secret_uid: None,
                }
            });
            plan.problems.push(Problem::WriteFailed(message));
            (written, Some(error))
        }
    };

    // Status from what was applied.
    let applied = Applied {
        plan: &plan,
        held: written.held,
        secret_uid: written.secret_uid,
        now: Timestamp::now(),
    };
    let next = status::next_status(ks, &applied);
    // A lapsed leader writes nothing more; the next leader finds (and records) what was written.
    ensure_leading(ctx, &object)?;
    report(ks, ctx, &applied).await?;
    if ks.status.as_ref() != Some(&next) {
        ensure_leading(ctx, &object)?;
        write_status(ks, keysets, &next, &object).await?;
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

    if let Some(error) = failure {
        return Err(error);
    }
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

/// Events before the status write: a crash in between repeats an Event on the next run (its
/// note carries the same revision and fingerprint), where the other order would lose it for
/// good. An Event that cannot be published fails the reconcile before the status write, so the
/// retry finds the same action again (the Secret is ahead of status) and announces it then:
/// every action is announced at least once. Then one log line per action, and metrics.
async fn report(ks: &DataMinerKeySet, ctx: &Context, applied: &Applied<'_>) -> Result<()> {
    for notice in status::notices(ks, applied) {
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
        let published = tokio::time::timeout(
            REQUEST_TIMEOUT,
            ctx.recorder.publish(&event, &ks.object_ref(&())),
        )
        .await;
        if !matches!(published, Ok(Ok(_))) {
            let message = match published {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
            };
            return Err(Error::PublishEvent {
                object: object_name(ks),
                reason: notice.reason,
                message,
            });
        }
    }
    for action in &applied.plan.actions {
        log_action(ks, action, applied);
        ctx.metrics.action(action.name());
    }
    for problem in &applied.plan.problems {
        tracing::warn!(
            namespace = ks.namespace().unwrap_or_default(),
            name = ks.name_any(),
            problem = problem.reason(),
            "key set needs attention"
        );
    }
    Ok(())
}

async fn write_status(
    ks: &DataMinerKeySet,
    keysets: &Api<DataMinerKeySet>,
    next: &DataMinerKeySetStatus,
    object: &str,
) -> Result<()> {
    let body = json!({
        "apiVersion": DataMinerKeySet::api_version(&()),
        "kind": DataMinerKeySet::kind(&()),
        "metadata": { "resourceVersion": ks.resource_version() },
        "status": next,
    });
    call(keysets.patch_status(
        &ks.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    ))
    .await
    .map_err(|e| match e {
        CallError::Api(kube::Error::Api(s)) if s.code == 409 => Error::Changed {
            object: object.into(),
        },
        CallError::Api(source) => Error::WriteStatus {
            object: object.into(),
            source,
        },
        CallError::TimedOut => Error::Timeout {
            object: object.into(),
            step: "writing status",
            secs: REQUEST_TIMEOUT.as_secs(),
        },
    })?;
    Ok(())
}

/// One structured line per action; fingerprints only.
fn log_action(ks: &DataMinerKeySet, action: &Action, applied: &Applied) {
    let namespace = ks.namespace().unwrap_or_default();
    let name = ks.name_any();
    let held = |slot: Slot| applied.held[slot as usize].as_ref();
    let revision = |slot: Slot| held(slot).map(|h| h.revision);
    let fingerprint = |slot: Slot| held(slot).map(|h| h.fingerprint.as_str());
    let action_name = action.name();
    match action {
        Action::Regenerated {
            slot,
            revision,
            found,
        } => tracing::info!(
            namespace,
            name,
            action = action_name,
            slot = slot.name(),
            revision,
            fingerprint = found.as_deref().or(fingerprint(*slot)),
            recovered = found.is_some(),
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

/// What the Secret holds after the apply step, and its uid.
struct Written {
    held: [Option<Held>; 2],
    secret_uid: Option<String>,
}

enum WriteError {
    /// The Secret or key set changed since it was read: retry soon, report nothing.
    Conflict,
    /// Refused or unanswered. `partial` is what was written before the failing request (a
    /// create whose follow-up metadata write failed); `message` carries the server's reason.
    Failed(Box<Failure>),
}

struct Failure {
    partial: Option<Written>,
    message: String,
    error: Error,
    operation: &'static str,
}

/// The server's reason, without any key value (a message that quoted one would say `[key]`).
fn failure_message(e: &CallError, values: &[&KeyValue]) -> String {
    let mut message = match e {
        CallError::Api(kube::Error::Api(s)) => {
            format!("{} (HTTP {} {})", s.message, s.code, s.reason)
        }
        CallError::Api(other) => other.to_string(),
        CallError::TimedOut => format!(
            "the API server did not answer within {}s",
            REQUEST_TIMEOUT.as_secs()
        ),
    };
    for value in values {
        message = message.replace(value.expose(), "[key]");
    }
    message
}

/// Carries out the plan's Secret write and reports what the Secret holds afterwards.
async fn write(
    ks: &DataMinerKeySet,
    ctx: &Context,
    secrets: &Api<Secret>,
    plan: &Plan,
    existing: Option<&Secret>,
    values: [Option<KeyValue>; 2],
) -> Result<Written, WriteError> {
    let object = object_name(ks);
    let secret_name = ks.secret_name();
    let failed = |e: CallError,
                  values: &[&KeyValue],
                  partial: Option<Written>,
                  operation: &'static str|
     -> WriteError {
        if let CallError::Api(kube::Error::Api(s)) = &e
            && s.code == 409
        {
            return WriteError::Conflict;
        }
        let message = failure_message(&e, values);
        let error = match e {
            CallError::Api(source) if operation == "delete" => Error::DeleteSecret {
                object: object.clone(),
                secret: secret_name.clone(),
                source,
            },
            CallError::Api(_) => Error::WriteSecret {
                object: object.clone(),
                secret: secret_name.clone(),
                message: message.clone(),
            },
            CallError::TimedOut => Error::Timeout {
                object: object.clone(),
                step: "writing the Secret",
                secs: REQUEST_TIMEOUT.as_secs(),
            },
        };
        WriteError::Failed(Box::new(Failure {
            partial,
            message,
            error,
            operation,
        }))
    };
    match &plan.write {
        SecretWrite::None => Ok(Written {
            held: plan.holds.clone(),
            secret_uid: plan.secret_uid.clone(),
        }),
        SecretWrite::Delete => {
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: existing.and_then(|s| s.uid()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match call(secrets.delete(&secret_name, &dp)).await {
                Ok(_) => {}
                Err(CallError::Api(kube::Error::Api(s))) if s.code == 404 => {}
                Err(e) => return Err(failed(e, &[], None, "delete")),
            }
            crash_point("secret-write");
            Ok(Written {
                held: [None, None],
                secret_uid: None,
            })
        }
        SecretWrite::Create { slots } | SecretWrite::Update { slots } => {
            let mut new_values: [Option<KeyValue>; 2] = [None, None];
            for slot in Slot::BOTH {
                let i = slot as usize;
                new_values[i] = Some(match slots[i] {
                    SlotPlan::Generate { .. } => {
                        keys::generate(ks.spec.key_format).map_err(|source| {
                            WriteError::Failed(Box::new(Failure {
                                partial: None,
                                message: source.to_string(),
                                error: Error::GenerateKey {
                                    object: object.clone(),
                                    source,
                                },
                                operation: "generate",
                            }))
                        })?
                    }
                    // The plan keeps only values it has seen and proven.
                    SlotPlan::Keep { .. } => values[i].clone().expect("plan keeps a seen value"),
                });
            }
            let [Some(p), Some(s)] = &new_values else {
                unreachable!("both slots were filled above")
            };
            let revisions = [slots[0].revision(), slots[1].revision()];
            let held = Slot::BOTH.map(|slot| {
                let i = slot as usize;
                Some(Held {
                    revision: revisions[i],
                    fingerprint: new_values[i].as_ref().map(KeyValue::fingerprint)?,
                })
            });
            let mut precondition = match (&plan.write, existing) {
                (SecretWrite::Update { .. }, Some(e)) => Some((
                    e.uid().unwrap_or_default(),
                    e.resource_version().unwrap_or_default(),
                )),
                _ => None,
            };
            let mut secret_uid = plan.secret_uid.clone();
            let mut created = None;
            if precondition.is_none() {
                let body = secret::build(ks, &ctx.proof_key, [p, s], revisions, None);
                let pp = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let made = call(secrets.create(&pp, &body))
                    .await
                    .map_err(|e| failed(e, &[p, s], None, "create"))?;
                crash_point("secret-write");
                secret_uid = made.uid();
                created = Some(Written {
                    held: held.clone(),
                    secret_uid: secret_uid.clone(),
                });
                precondition = secret::has_user_metadata(ks).then(|| {
                    (
                        made.uid().unwrap_or_default(),
                        made.resource_version().unwrap_or_default(),
                    )
                });
            }
            if precondition.is_some() {
                let body = secret::build(ks, &ctx.proof_key, [p, s], revisions, precondition);
                let pp = PatchParams::apply(FIELD_MANAGER).force();
                call(secrets.patch(&secret_name, &pp, &Patch::Apply(&body)))
                    .await
                    .map_err(|e| failed(e, &[p, s], created, "update"))?;
                crash_point("secret-write");
            }
            Ok(Written { held, secret_uid })
        }
    }
}
