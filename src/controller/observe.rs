//! The observe step: the key set's Secret as it is, checked against the record for the plan.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::{Context, calls::call};
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::{Error, Result},
    keys::KeyValue,
    plan::SecretSeen,
    secret,
};

/// What exists: the Secret (if any), what the plan needs to know of it, and its values where
/// the operator can prove it wrote them.
pub(super) struct Observed {
    pub secret: Option<Secret>,
    pub seen: SecretSeen,
    pub values: [Option<KeyValue>; 2],
}

/// Reads the key set's Secret. A direct GET, not the watch cache, so a foreign Secret (which
/// is not watched) is seen too, and the resourceVersion is fresh for the optimistic write that
/// may follow.
pub(super) async fn observe(
    ks: &DataMinerKeySet,
    ctx: &Context,
    status: &DataMinerKeySetStatus,
) -> Result<Observed> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    let secret_name = ks.secret_name();
    let existing = call(secrets.get_opt(&secret_name)).await.map_err(|e| {
        e.into_error("reading the Secret", |source| Error::ReadSecret {
            secret: secret_name.clone(),
            source,
        })
    })?;
    let (seen, values) = secret::observe(ks, status, &ctx.proof_key, existing.as_ref());
    Ok(Observed {
        secret: existing,
        seen,
        values,
    })
}
