//! The apply step: carries out the plan's Secret write and says what was applied. A write the
//! API server refuses or leaves unanswered is not an error that hides the plan: it becomes a
//! `WriteFailed` problem in the outcome (reported and recorded like any other), and the error is
//! returned after that, for the retry with backoff.

use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
};

use super::{
    Context,
    calls::{CallError, REQUEST_TIMEOUT, call, crash_point, ensure_leading},
    observe::Observed,
};
use crate::{
    api::DataMinerKeySet,
    error::{Error, Result},
    keys::{self, KeyValue},
    plan::{self, Held, Plan, Reached, SecretSeen, SecretWrite, Slot, SlotPlan},
    proof,
    secret::{self, FIELD_MANAGER},
    status::Applied,
};

/// Applies `plan` to what was observed. Returns the outcome and, when a write failed, the
/// error to end the reconcile with once the outcome is reported. A conflict (the Secret or key
/// set changed since it was read) is an error at once: nothing is reported, the retry is soon.
pub(super) async fn apply(
    ks: &DataMinerKeySet,
    ctx: &Context,
    mut plan: Plan,
    observed: Observed,
) -> Result<(Applied, Option<Error>)> {
    if plan.write != SecretWrite::None {
        ensure_leading(ctx)?;
    }

    let (written, failure) = match write(ks, ctx, &plan, observed).await {
        Ok(written) => {
            remember(ks, ctx, &plan, &written);
            (written, None)
        }
        Err(WriteError::Conflict) => {
            // Changed since it was read, or a create refused because the name is taken.
            ctx.cache.must_read(ks);
            return Err(Error::Changed);
        }
        Err(WriteError::Failed(failure)) => {
            ctx.cache.must_read(ks);
            let Failure {
                partial,
                message,
                error,
                operation,
            } = *failure;
            ctx.metrics.write_failed(operation);
            let reached = match partial {
                Some(_) => Reached::Part,
                None => Reached::Nothing,
            };
            let revoked_before = ks.status.as_ref().is_some_and(|s| s.revoked_at.is_some());
            plan = plan::settle_failed(plan, reached, message, revoked_before);
            // Nothing written: the record stays as it is.
            let written = partial.unwrap_or(Written {
                held: [None, None],
                secret_uid: None,
                secret: None,
                lineage: None,
            });
            (written, Some(error))
        }
    };
    let applied = Applied {
        plan,
        held: written.held,
        secret_uid: written.secret_uid,
        lineage: written.lineage,
        now: Timestamp::now(),
    };
    Ok((applied, failure))
}

/// Records `lineage` as revoked for good, only while leading.
pub(super) async fn tombstone(ctx: &Context, lineage: &str) -> Result<()> {
    ensure_leading(ctx)?;
    ctx.tombstones
        .add(lineage)
        .await
        .map_err(|e| Error::Tombstones {
            step: "recording a revoked lineage",
            message: e.message(),
        })
}

/// What this reconcile wrote is what the next one will find: no read needed then.
fn remember(ks: &DataMinerKeySet, ctx: &Context, plan: &Plan, written: &Written) {
    match (&plan.write, &written.secret) {
        (SecretWrite::None, _) => {}
        (SecretWrite::Delete, _) => ctx.cache.verified(ks, None, &SecretSeen::Absent),
        (_, Some(answer)) => {
            let status = ks.status.clone().unwrap_or_default();
            let (seen, _) = secret::observe(ks, &status, &ctx.proof_key, Some(answer));
            ctx.cache.verified(ks, Some(answer), &seen);
        }
        (_, None) => ctx.cache.must_read(ks),
    }
}

/// What the Secret holds after the apply step, and its uid.
struct Written {
    held: [Option<Held>; 2],
    secret_uid: Option<String>,
    /// The Secret as the API server answered the last write (none for a delete or no write).
    secret: Option<Secret>,
    /// The lineage of the keys it holds.
    lineage: Option<String>,
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
    let mut message = e.message();
    for value in values {
        message = message.replace(value.expose(), "[key]");
    }
    message
}

/// Carries out the plan's Secret write and reports what the Secret holds afterwards.
async fn write(
    ks: &DataMinerKeySet,
    ctx: &Context,
    plan: &Plan,
    observed: Observed,
) -> Result<Written, WriteError> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    let (existing, values) = (observed.secret.as_ref(), observed.values);
    let secret_name = ks.secret_name();
    let failed = |e: CallError,
                  values: &[&KeyValue],
                  partial: Option<Written>,
                  operation: &'static str|
     -> WriteError {
        if e.code() == Some(409) {
            return WriteError::Conflict;
        }
        let message = failure_message(&e, values);
        let error = match e {
            CallError::Api(source) if operation == "delete" => Error::DeleteSecret {
                secret: secret_name.clone(),
                source,
            },
            CallError::Api(_) => Error::WriteSecret {
                secret: secret_name.clone(),
                message: message.clone(),
            },
            CallError::TimedOut => Error::Timeout {
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
    // Revoked keys never come back: their lineage is tombstoned before the Secret goes, so a
    // crash in between leaves nothing adoptable. A refused tombstone is a failed write like any
    // other: reported, and the revocation is not recorded until it holds.
    if plan.revoked {
        let status = ks.status.clone().unwrap_or_default();
        for lineage in [&plan.lineage, &status.lineage].into_iter().flatten() {
            if let Err(error) = tombstone(ctx, lineage).await {
                if matches!(error, Error::NotLeader) {
                    return Err(WriteError::Conflict);
                }
                return Err(WriteError::Failed(Box::new(Failure {
                    partial: None,
                    message: error.to_string(),
                    error,
                    operation: "tombstone",
                })));
            }
        }
    }
    match &plan.write {
        SecretWrite::None => Ok(Written {
            held: plan.holds.clone(),
            secret_uid: plan.secret_uid.clone(),
            secret: None,
            lineage: plan.lineage.clone(),
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
                Err(e) if e.code() == Some(404) => {}
                Err(e) => return Err(failed(e, &[], None, "delete")),
            }
            crash_point("secret-write");
            Ok(Written {
                held: [None, None],
                secret_uid: None,
                secret: None,
                lineage: plan.lineage.clone(),
            })
        }
        SecretWrite::Create { slots } | SecretWrite::Update { slots } => {
            let mut new_values: [Option<KeyValue>; 2] = [None, None];
            for slot in Slot::BOTH {
                let i = slot.index();
                new_values[i] = Some(match slots[i] {
                    SlotPlan::Generate { .. } => {
                        keys::generate(ks.spec.key_format).map_err(|source| {
                            WriteError::Failed(Box::new(Failure {
                                partial: None,
                                message: source.to_string(),
                                error: Error::GenerateKey { source },
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
            let lineage = match &plan.lineage {
                Some(lineage) => lineage.clone(),
                None => proof::new_lineage().map_err(|source| {
                    WriteError::Failed(Box::new(Failure {
                        partial: None,
                        message: source.to_string(),
                        error: Error::GenerateKey { source },
                        operation: "generate",
                    }))
                })?,
            };
            let revisions = [slots[0].revision(), slots[1].revision()];
            let held = Slot::BOTH.map(|slot| {
                let i = slot.index();
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
            let mut answer = None;
            if precondition.is_none() {
                let body = secret::build(ks, &ctx.proof_key, [p, s], revisions, &lineage, None);
                let pp = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let made = call(secrets.create(&pp, &body))
                    .await
                    .map_err(|e| failed(e, &[p, s], None, "create"))?;
                crash_point("secret-write");
                secret_uid = made.uid();
                precondition = secret::has_user_metadata(ks).then(|| {
                    (
                        made.uid().unwrap_or_default(),
                        made.resource_version().unwrap_or_default(),
                    )
                });
                created = Some(Written {
                    held: held.clone(),
                    secret_uid: secret_uid.clone(),
                    secret: Some(made.clone()),
                    lineage: Some(lineage.clone()),
                });
                answer = Some(made);
            }
            if precondition.is_some() {
                let body = secret::build(
                    ks,
                    &ctx.proof_key,
                    [p, s],
                    revisions,
                    &lineage,
                    precondition,
                );
                let pp = PatchParams::apply(FIELD_MANAGER).force();
                let patched = call(secrets.patch(&secret_name, &pp, &Patch::Apply(&body)))
                    .await
                    .map_err(|e| failed(e, &[p, s], created, "update"))?;
                crash_point("secret-write");
                answer = Some(patched);
            }
            Ok(Written {
                held,
                secret_uid,
                secret: answer,
                lineage: Some(lineage),
            })
        }
    }
}
