//! The observe step: the key set's Secret as it is, checked against the record for the plan.
//! From the cache when it can answer (see [`super::cache`]), else by a GET.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::{Context, cache::CachedSecret, calls::call};
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::{Error, Result},
    keys::KeyValue,
    plan::SecretSeen,
    secret,
};

/// Whether the cache may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// Read only what the cache cannot tell.
    IfUnknown,
    /// Read the Secret (a write or delete follows and needs its values and version).
    Always,
}

/// What exists: what the plan needs to know of the Secret, and, when it was read, the Secret
/// and its values where the operator can prove it wrote them.
pub(super) struct Observed {
    /// The Secret as read; `None` when absent or when the cache answered.
    pub secret: Option<Secret>,
    pub seen: SecretSeen,
    pub values: [Option<KeyValue>; 2],
    /// The cache answered: nothing was read.
    pub from_cache: bool,
}

pub(super) async fn observe(
    ks: &DataMinerKeySet,
    ctx: &Context,
    status: &DataMinerKeySetStatus,
    read: Read,
) -> Result<Observed> {
    if read == Read::IfUnknown {
        let cached = match ctx.cache.secret(ks) {
            CachedSecret::Verified(seen) => Some(seen),
            CachedSecret::Absent => Some(SecretSeen::Absent),
            CachedSecret::Unknown => None,
        };
        if let Some(seen) = cached {
            return Ok(Observed {
                secret: None,
                seen,
                values: [None, None],
                from_cache: true,
            });
        }
    }
    // A direct GET, not a cache: a foreign Secret (not watched) is seen too, and the
    // resourceVersion is fresh for the optimistic write that may follow.
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    let secret_name = ks.secret_name();
    let existing = call(secrets.get_opt(&secret_name)).await.map_err(|e| {
        e.into_error("reading the Secret", |source| Error::ReadSecret {
            secret: secret_name.clone(),
            source,
        })
    })?;
    let (mut seen, values) = secret::observe(ks, status, &ctx.proof_key, existing.as_ref());
    // A Secret other than the recorded one, with proven keys of some lineage: adopted only if
    // that lineage was never revoked or deleted. Without a proven lineage the annotated one
    // counts, so a confirmed adoption (spec.adopt) never brings revoked keys back either.
    let annotated = existing
        .as_ref()
        .and_then(|s| s.annotations().get(secret::LINEAGE_ANNOTATION).cloned());
    if let SecretSeen::Present {
        uid,
        lineage,
        tombstoned,
        ..
    } = &mut seen
        && status.secret_uid.as_ref() != Some(uid)
        && let Some(lineage) = lineage.as_ref().or(annotated.as_ref())
    {
        *tombstoned = ctx
            .tombstones
            .contains(lineage)
            .await
            .map_err(|e| Error::Tombstones {
                step: "reading",
                message: e.message(),
            })?;
    }
    ctx.cache.verified(ks, existing.as_ref(), &seen);
    Ok(Observed {
        secret: existing,
        seen,
        values,
        from_cache: false,
    })
}
