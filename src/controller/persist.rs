//! The persist step: the status the announce step handed over, written only if it differs,
//! and only onto the version of the key set the plan was made from.

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{
    Context,
    announce::Announced,
    calls::{call, ensure_leading},
    index::{Kept, Outcome},
};
use crate::{
    api::DataMinerKeySet,
    error::{Operation, PersistError},
    secret::FIELD_MANAGER,
    status,
};

pub(super) async fn persist(
    ks: &DataMinerKeySet,
    ctx: &Context,
    keysets: &Api<DataMinerKeySet>,
    announced: &Announced,
) -> Result<(), PersistError> {
    let next = announced.next();
    // Conditions another writer added are theirs: they neither cause a write nor are written.
    if status::unchanged(ks.status.as_ref(), next) {
        return Ok(());
    }
    // A key set from the watch came without its history (index/taken.rs): the write restates
    // the history of the version planned on, after the new entries. Another version since:
    // plan again (the conditional write would be refused anyway).
    let mut next = next.clone();
    match ctx.index.history(ks) {
        Kept::This(kept) => status::restate_history(&mut next, kept),
        Kept::ForAnotherVersion => return Err(PersistError::Changed),
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
    .map_err(|e| e.into_persist(Operation::WriteStatus))?;
    ctx.index
        .record(ks, Outcome::StatusWritten(written.resource_version()));
    Ok(())
}
