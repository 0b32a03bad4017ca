//! The observe step: the key set's Secret as it is, checked against the record for the plan.
//! From the index when it can answer (see [`super::index`]), else by a GET.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt, api::GetParams};

use super::{
    Context,
    calls::{CallError, REQUEST_TIMEOUT, call},
    index::Outcome,
};
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::ObserveError,
    keys::KeyValue,
    plan::SecretSeen,
    secret,
};

/// What exists: what the plan needs to know of the Secret, and, when it was read, the Secret
/// and its values where the operator can prove it wrote them.
pub(super) struct Observed {
    /// The Secret as read; `None` when absent or when the cache answered.
    pub secret: Option<Secret>,
    pub seen: SecretSeen,
    pub values: [Option<KeyValue>; 2],
    /// The index answered: nothing was read.
    pub from_index: bool,
}

impl Observed {
    /// What the index knows (`Gathered::Known`), without a read.
    pub fn known(seen: SecretSeen) -> Self {
        Observed {
            secret: None,
            seen,
            values: [None, None],
            from_index: true,
        }
    }
}

/// How recent a read of the Secret must be.
pub(super) enum Fresh {
    /// The latest (a quorum read, from etcd): nothing known of the Secret, or a write whose
    /// outcome is unknown.
    Latest,
    /// No older than this resourceVersion, the one the Secret watch holds and the index
    /// verified: the API server answers from its watch cache, for about half the CPU of a
    /// quorum read (docs/performance.md). A copy older than the Secret cannot come back; a newer
    /// one is verified like any read, and the write that follows is conditional on it.
    NotOlderThan(String),
}

/// Reads the Secret.
pub(super) async fn observe(
    ks: &DataMinerKeySet,
    ctx: &Context,
    status: &DataMinerKeySetStatus,
    fresh: Fresh,
) -> Result<Observed, ObserveError> {
    // A direct GET, not our cache: a foreign Secret (not watched) is seen too, the values are
    // read (the watch holds none), and the resourceVersion is one the API server holds for the
    // conditional write that may follow.
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &ks.namespace().unwrap_or_default());
    let secret_name = ks.secret_name();
    let read = async {
        match &fresh {
            Fresh::Latest => secrets.get_opt(&secret_name).await,
            Fresh::NotOlderThan(version) => {
                match secrets
                    .get_with(&secret_name, &GetParams::at(version))
                    .await
                {
                    Ok(secret) => Ok(Some(secret)),
                    Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
                    // This API server's watch cache did not reach that version in time (another
                    // replica of it answered our watch): read the latest instead.
                    Err(kube::Error::Api(status)) if status.code == 504 => {
                        secrets.get_opt(&secret_name).await
                    }
                    Err(e) => Err(e),
                }
            }
        }
    };
    let existing = call(read).await.map_err(|e| match e {
        CallError::Api(source) => ObserveError::ReadSecret {
            secret: secret_name.clone(),
            source,
        },
        CallError::TimedOut => ObserveError::TimedOut {
            secs: REQUEST_TIMEOUT.as_secs(),
        },
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
        *tombstoned =
            ctx.tombstones
                .contains(lineage)
                .await
                .map_err(|e| ObserveError::ReadTombstones {
                    message: e.message(),
                })?;
    }
    ctx.index
        .record(ks, Outcome::Secret(existing.as_ref(), &seen));
    Ok(Observed {
        secret: existing,
        seen,
        values,
        from_index: false,
    })
}
