//! `regenerate`, `revoke` and `adopt`: server-side applies of `spec.regenerate`, `spec.revoke`
//! and `spec.adopt` under the plugin's field manager, after the label is typed, then waiting for
//! the operator.

use serde_json::json;

use super::{
    cli::{ConfirmedArgs, RegenerateArgs},
    confirm::confirm,
    failure::{Result, exit, fail},
    session::Session,
};
use crate::api::{MAX_REVISION, READY, REVOKED, Slot, printable};

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
    session.apply_spec(&name, spec).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 409 => owned_elsewhere(
            &s.message,
            &format!("spec.regenerate.{}: change the revision", slot.name()),
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

pub(super) async fn revoke(session: &Session, args: ConfirmedArgs) -> Result<()> {
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

pub(super) async fn adopt(session: &Session, args: ConfirmedArgs) -> Result<()> {
    let name = args.name;
    let ks = session.get(&name).await?;
    let status = ks.status.clone().unwrap_or_default();
    if status.revoked_at.is_some() {
        return Err(fail(
            exit::UNTRUSTED,
            format!("key set {name} is revoked: its keys are never adopted again"),
        ));
    }
    let asked = ks.spec.adopt.as_ref().map_or(0, |a| a.request);
    let request = asked.max(status.adopted_request.unwrap_or(0)) + 1;
    let action = format!(
        "This takes the values now in Secret {} as the keys of {name}, although the operator cannot prove it wrote them. Do it only after its proof key was lost (docs/backup.md), for values you know are this set's keys.",
        ks.secret_name()
    );
    let label = confirm(&ks, args.confirm_label, &action)?;
    session
        .apply_spec(
            &name,
            json!({ "adopt": { "request": request, "confirmLabel": label } }),
        )
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => {
                owned_elsewhere(&s.message, "spec.adopt: raise the request")
            }
            e => session.api_error("requesting the adoption", Some(&name), e),
        })?;
    if !args.wait.wait {
        println!("Requested adoption {request} for {name}.");
        return Ok(());
    }
    // Done when status records the request; refused when Ready says this request cannot be
    // carried out (no Secret, an empty slot, revoked keys).
    let refusal = format!("spec.adopt (request {request}) was not carried out");
    let done = session
        .wait_for(&name, args.wait.timeout, |k| {
            let s = k.status.as_ref()?;
            if s.adopted_request.is_some_and(|r| r >= request) {
                return Some(Ok((s.primary.clone(), s.secondary.clone())));
            }
            s.conditions
                .iter()
                .find(|c| c.type_ == READY && c.message.starts_with(&refusal))
                .map(|c| Err(c.message.clone()))
        })
        .await?
        .map_err(|message| fail(exit::ERROR, printable(&message)))?;
    let describe = |k: Option<crate::api::KeyStatus>| {
        k.map_or("none".to_string(), |k| {
            format!("revision {}, {}", k.revision, k.fingerprint)
        })
    };
    println!(
        "Adopted the keys in Secret {} for {name}: primary {}, secondary {}.",
        ks.secret_name(),
        describe(done.0),
        describe(done.1)
    );
    Ok(())
}

/// The refusal of a server-side apply whose field another manager owns.
fn owned_elsewhere(server: &str, what: &str) -> super::failure::Failure {
    fail(
        exit::ERROR,
        format!("{server}\nAnother manager (for example Argo CD) owns {what} in Git instead."),
    )
}
