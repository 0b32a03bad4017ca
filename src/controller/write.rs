//! The write step: carries out the plan's Secret write and says what the Secret holds after
//! it. A write the API server refuses or leaves unanswered does not hide the plan: the core
//! settles the plan with the failure (`plan::settle_failed`), which is reported and recorded
//! like any other outcome, and the failure travels in [`Written`] to end the reconcile after
//! that, for the retry with backoff. A conflict or a lapsed leadership ends it at once.

use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
};

use super::{
    Context,
    calls::{CallError, call, crash_point, ensure_leading},
    index::Outcome,
    observe::Observed,
};
use crate::{
    api::DataMinerKeySet,
    error::{Operation, WriteError},
    keys::{self, KeyValue},
    plan::{self, Held, Plan, Reached, SecretSeen, SecretWrite, Slot, SlotPlan},
    proof,
    secret::{self, FIELD_MANAGER},
    status::Applied,
};

/// The outcome of the write step: the plan as carried out and what the Secret holds, and the
/// failure it reports, if the write failed.
pub(super) struct Written {
    pub applied: Applied,
    pub failure: Option<WriteError>,
}

pub(super) async fn write(
    ks: &DataMinerKeySet,
    ctx: &Context,
    mut plan: Plan,
    observed: Observed,
) -> Result<Written, WriteError> {
    if plan.write != SecretWrite::None {
        ensure_leading(ctx)?;
    }
    let (held, failure) = match carry_out(ks, ctx, &plan, observed).await {
        Ok(held) => {
            remember(ks, ctx, &plan, &held);
            (held, None)
        }
        Err(Failure { error, .. })
            if matches!(error, WriteError::Conflict | WriteError::NotLeader(_)) =>
        {
            ctx.index.record(ks, Outcome::SecretUnknown);
            return Err(error);
        }
        Err(Failure {
            partial,
            message,
            error,
        }) => {
            ctx.index.record(ks, Outcome::SecretUnknown);
            if let Some(label) = error.operation().and_then(|op| op.write_label()) {
                ctx.metrics.write_failed(label);
            }
            let reached = match partial {
                Some(_) => Reached::Part,
                None => Reached::Nothing,
            };
            let revoked_before = ks.status.as_ref().is_some_and(|s| s.revoked_at.is_some());
            plan = plan::settle_failed(plan, reached, message, revoked_before);
            // Nothing written: the record stays as it is.
            let held = partial.unwrap_or(Holds {
                held: [None, None],
                secret_uid: None,
                secret: None,
                lineage: None,
            });
            (held, Some(error))
        }
    };
    let applied = Applied {
        plan,
        held: held.held,
        secret_uid: held.secret_uid,
        lineage: held.lineage,
        now: Timestamp::now(),
    };
    Ok(Written { applied, failure })
}

/// Records `lineage` as revoked for good, only while leading.
pub(super) async fn tombstone(ctx: &Context, lineage: &str) -> Result<(), WriteError> {
    ensure_leading(ctx)?;
    ctx.tombstones
        .add(lineage)
        .await
        .map_err(|e| e.into_write(Operation::RecordTombstone, "the revoked lineages", &[]))
}

/// What this reconcile wrote is what the next one will find: no read needed then.
fn remember(ks: &DataMinerKeySet, ctx: &Context, plan: &Plan, held: &Holds) {
    match (&plan.write, &held.secret) {
        (SecretWrite::None, _) => {}
        (SecretWrite::Delete, _) => ctx
            .index
            .record(ks, Outcome::Secret(None, &SecretSeen::Absent)),
        (_, Some(answer)) => {
            let status = ks.status.clone().unwrap_or_default();
            let (seen, _) = secret::observe(ks, &status, &ctx.proof_key, Some(answer));
            ctx.index.record(ks, Outcome::Secret(Some(answer), &seen));
        }
        (_, None) => ctx.index.record(ks, Outcome::SecretUnknown),
    }
}

/// What the Secret holds after the write, and its uid.
struct Holds {
    held: [Option<Held>; 2],
    secret_uid: Option<String>,
    /// The Secret as the API server answered the last write (none for a delete or no write).
    secret: Option<Secret>,
    /// The lineage of the keys it holds.
    lineage: Option<String>,
}

/// A write that failed. `partial` is what was written before the failing request (a create
/// whose follow-up metadata write failed); `message` is the reason the plan reports.
struct Failure {
    partial: Option<Holds>,
    message: String,
    error: WriteError,
}

impl From<WriteError> for Failure {
    fn from(error: WriteError) -> Self {
        let message = match &error {
            // The tombstone's reason alone would not say what was refused.
            WriteError::Refused {
                operation: Operation::RecordTombstone,
                ..
            } => error.to_string(),
            WriteError::Refused { message, .. } => message.clone(),
            WriteError::TimedOut { secs, .. } => {
                format!("the API server did not answer within {secs}s")
            }
            other => other.to_string(),
        };
        Failure {
            partial: None,
            message,
            error,
        }
    }
}

/// Carries out the plan's Secret write and reports what the Secret holds afterwards.
async fn carry_out(
    ks: &DataMinerKeySet,
    ctx: &Context,
    plan: &Plan,
    observed: Observed,
) -> Result<Holds, Failure> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    let (existing, values) = (observed.secret.as_ref(), observed.values);
    let secret_name = ks.secret_name();
    let failed = |e: CallError, values: &[&KeyValue], partial: Option<Holds>, operation| Failure {
        partial,
        ..e.into_write(operation, &secret_name, values).into()
    };
    // Revoked keys never come back: their lineage is tombstoned before the Secret goes, so a
    // crash in between leaves nothing adoptable. A refused tombstone is a failed write like any
    // other: reported, and the revocation is not recorded until it holds.
    if plan.revoked {
        let status = ks.status.clone().unwrap_or_default();
        for lineage in [&plan.lineage, &status.lineage].into_iter().flatten() {
            tombstone(ctx, lineage).await?;
        }
    }
    match &plan.write {
        SecretWrite::None => Ok(Holds {
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
                Err(e) => return Err(failed(e, &[], None, Operation::DeleteSecret)),
            }
            crash_point("secret-write");
            Ok(Holds {
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
                    SlotPlan::Generate { .. } => keys::generate(ks.spec.key_format)
                        .map_err(|source| WriteError::GenerateKey { source })?,
                    // The plan keeps only values it has seen and proven.
                    SlotPlan::Keep { .. } => values[i].clone().expect("plan keeps a seen value"),
                });
            }
            let [Some(p), Some(s)] = &new_values else {
                unreachable!("both slots were filled above")
            };
            let lineage = match &plan.lineage {
                Some(lineage) => lineage.clone(),
                None => {
                    proof::new_lineage().map_err(|source| WriteError::GenerateKey { source })?
                }
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
                    .map_err(|e| failed(e, &[p, s], None, Operation::CreateSecret))?;
                crash_point("secret-write");
                secret_uid = made.uid();
                precondition = secret::has_user_metadata(ks).then(|| {
                    (
                        made.uid().unwrap_or_default(),
                        made.resource_version().unwrap_or_default(),
                    )
                });
                created = Some(Holds {
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
                    .map_err(|e| failed(e, &[p, s], created, Operation::UpdateSecret))?;
                crash_point("secret-write");
                answer = Some(patched);
            }
            Ok(Holds {
                held,
                secret_uid,
                secret: answer,
                lineage: Some(lineage),
            })
        }
    }
}
