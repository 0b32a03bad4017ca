//! `regenerate` and `revoke`: server-side applies of `spec.regenerate` / `spec.revoke` under
//! the plugin's field manager, after the label is typed, then waiting for the operator.

use serde_json::json;

use super::{
    cli::{RegenerateArgs, RevokeArgs},
    confirm::confirm,
    failure::{Result, exit, fail},
    session::Session,
};
use crate::api::{MAX_REVISION, REVOKED, Slot};

pub(super) async fn regenerate(session: &Session, args: RegenerateArgs) -> Result<()> {
    let (name, slot) = (args.name, Slot::from(args.slot));
    let ks = session.get(&name).await?;
    let current = ks
        .recorded(slot)
        .cloned()
        .ok_or_else(|| fail(exit::ERROR, format!("key set {name} has no keys yet")))?;
    if current.revision >= MAX_REVISION {
        return Err(fail(
            exit::ERROR,
            format!(
                "the {} key of {name} is at revision {}, the highest a revision can be, so it cannot be regenerated; create a new key set for new keys (and revoke this one)",
                slot.name(),
                current.revision
            ),
        ));
    }
    let target = current.revision + 1;
    let action = format!(
        "This replaces the {} key of {name} (now revision {}, {}). Anything still using it stops working.",
        slot.name(),
        current.revision,
        current.fingerprint
    );
    let label = confirm(&ks, args.confirm_label, &action)?;
    let spec =
        json!({ "regenerate": { slot.name(): { "revision": target, "confirmLabel": label } } });
    session
        .apply_spec(&name, spec)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => fail(
                exit::ERROR,
                format!(
                    "{}\nAnother manager (for example Argo CD) owns spec.regenerate.{}: change the revision in Git instead.",
                    s.message,
                    slot.name()
                ),
            ),
            e => session.api_error("requesting the regeneration", Some(&name), e),
        })?;
    if !args.wait.wait {
        println!("Requested {} revision {target} for {name}.", slot.name());
        return Ok(());
    }
    let now = session
        .wait_for(&name, args.wait.timeout, |k| {
            k.recorded(slot).filter(|s| s.revision >= target).cloned()
        })
        .await?;
    println!(
        "Regenerated the {} key of {name}: revision {}, {}.",
        slot.name(),
        now.revision,
        now.fingerprint
    );
    Ok(())
}

pub(super) async fn revoke(session: &Session, args: RevokeArgs) -> Result<()> {
    let name = args.name;
    let ks = session.get(&name).await?;
    let action = format!(
        "This destroys both keys of {name} for good; the key set will never hold keys again."
    );
    let label = confirm(&ks, args.confirm_label, &action)?;
    session
        .apply_spec(&name, json!({ "revoke": { "confirmLabel": label } }))
        .await
        .map_err(|e| session.api_error("requesting the revocation", Some(&name), e))?;
    if !args.wait.wait {
        println!("Requested revocation of {name}.");
        return Ok(());
    }
    session
        .wait_for(&name, args.wait.timeout, |k| {
            let conditions = &k.status.as_ref()?.conditions;
            conditions
                .iter()
                .any(|c| c.type_ == REVOKED && c.status == "True")
                .then_some(())
        })
        .await?;
    println!("Revoked {name}: both keys are destroyed.");
    Ok(())
}
