//! The last step: the status computed from what was applied, written only if it differs, and
//! only onto the version of the key set the plan was made from.

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{
    Context,
    cache::Kept,
    calls::{call, ensure_leading},
};
use crate::{
    api::{DataMinerKeySet, DataMinerKeySetStatus},
    error::{Error, Result},
    secret::FIELD_MANAGER,
    status::{self, HISTORY_LIMIT},
};

pub(super) async fn write_status(
    ks: &DataMinerKeySet,
    ctx: &Context,
    keysets: &Api<DataMinerKeySet>,
    next: &DataMinerKeySetStatus,
) -> Result<()> {
    // Conditions another writer added are theirs: they neither cause a write nor are written.
    if status::unchanged(ks.status.as_ref(), next) {
        return Ok(());
    }
    // A key set from the watch came without its history (cache.rs): the apply restates the
    // history of the version planned on, after the new entries. Another version since: plan
    // again (the conditional write would be refused anyway).
    let mut next = next.clone();
    match ctx.cache.history(ks) {
        Kept::This(kept) => {
            next.history.extend(kept);
            next.history.truncate(HISTORY_LIMIT);
        }
        Kept::ForAnotherVersion => return Err(Error::Changed),
        // Its own history is already in `next` (status::next_status).
        Kept::Nothing => {}
    }
    ensure_leading(ctx)?;
    // The resourceVersion makes the apply conditional: a key set changed since it was read
    // (a newer request) is planned again instead of being overwritten with an older plan.
    let body = json!({
        "apiVersion": DataMinerKeySet::api_version(&()),
        "kind": DataMinerKeySet::kind(&()),
        "metadata": { "resourceVersion": ks.resource_version() },
        "status": next,
    });
    let written = call(keysets.patch_status(
        &ks.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    ))
    .await
    .map_err(|e| match e.code() {
        Some(409) => Error::Changed,
        _ => e.into_error("writing status", |source| Error::WriteStatus { source }),
    })?;
    ctx.cache.status_written(ks, written.resource_version());
    Ok(())
}
