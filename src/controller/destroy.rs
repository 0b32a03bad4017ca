//! The finalizer's cleanup: a key set being deleted takes its Secret with it, whatever the
//! propagation policy, but only a Secret that is the operator's.

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Preconditions},
    runtime::controller::Action,
};

use super::{
    Context,
    calls::{call, ensure_leading},
    observe::{Read, observe},
};
use crate::{
    api::DataMinerKeySet,
    error::{Error, Result},
    plan,
};

pub(super) async fn destroy_keys(ks: &DataMinerKeySet, ctx: &Context) -> Result<Action> {
    let status = ks.status.clone().unwrap_or_default();
    let observed = observe(ks, ctx, &status, Read::Always).await?;
    ctx.cache.remove(ks);
    let Some(existing) = observed
        .secret
        .as_ref()
        .filter(|_| plan::is_operators(&status, &observed.seen))
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
    ensure_leading(ctx)?;
    match call(secrets.delete(&secret_name, &dp)).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(404) => {}
        Err(e) => {
            ctx.metrics.write_failed("delete");
            return Err(
                e.into_error("deleting the Secret", |source| Error::DeleteSecret {
                    secret: secret_name.clone(),
                    source,
                }),
            );
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
