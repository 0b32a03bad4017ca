//! `regenerate`, `revoke` and `adopt`: server-side applies of `spec.regenerate`, `spec.revoke`
//! and `spec.adopt` under the plugin's field manager, after the label is typed, then waiting for
//! the operator.

use serde_json::json;

use super::{
    cli::{AdoptArgs, ConfirmedArgs, RegenerateArgs},
    confirm::confirm,
    failure::{Failure, Result, exit, fail},
    keys,
    session::Session,
};
use crate::api::{MAX_REVISION, READY, REVOKED, Slot, printable};

pub(super) async fn regenerate(session: &Session, args: RegenerateArgs) -> Result<()> {
    let (name, slot) = (args.name, Slot::from(args.slot));
    let ks = session.get(&name).await?;
    keys::refuse_revoked(&ks, "cannot be regenerated")?;
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
    let field = format!("spec.regenerate.{}.revision", slot.name());
    session
        .apply_spec(&name, spec, args.force_conflicts)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => owned_elsewhere(&s.message, &field, target),
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
        .apply_spec(&name, json!({ "revoke": { "confirmLabel": label } }), false)
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

pub(super) async fn adopt(session: &Session, args: AdoptArgs) -> Result<()> {
    let force_conflicts = args.force_conflicts;
    let args = args.confirmed;
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
            force_conflicts,
        )
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => {
                owned_elsewhere(&s.message, "spec.adopt.request", request)
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

/// The refusal of a server-side apply whose field another field manager owns, in the words
/// of that manager's world: a manifest applied with kubectl, or Git behind a GitOps tool.
fn owned_elsewhere(server: &str, field: &str, wanted: i64) -> Failure {
    let managers = conflicting_managers(server);
    let shown: Vec<String> = managers.iter().map(|m| format!("\"{m}\"")).collect();
    let owner = match shown.is_empty() {
        true => "another field manager".to_string(),
        false => format!("field manager {}", shown.join(" and ")),
    };
    let advice = match managers.first().map(|m| ManagerKind::of(m)) {
        Some(ManagerKind::GitOps(tool)) => format!(
            "{tool} applies it from Git: set {field} to {wanted} in Git and let {tool} sync it. Do not take the field over: the next sync would put the old value back, which admission refuses"
        ),
        Some(ManagerKind::Kubectl) => format!(
            "it comes from a manifest you applied with kubectl: set {field} to {wanted} in that manifest and run kubectl apply again. Or add --force-conflicts to take the field over; the manifest then needs {wanted} or more before kubectl applies it again (a lower value is refused)"
        ),
        _ => format!(
            "set {field} to {wanted} where that manager takes it from, or add --force-conflicts to take the field over"
        ),
    };
    fail(
        exit::ERROR,
        format!("{field} is owned by {owner}, so the request was not made: {advice}."),
    )
}

/// Who writes a field, as far as the advice goes.
enum ManagerKind {
    Kubectl,
    GitOps(&'static str),
    Other,
}

impl ManagerKind {
    fn of(manager: &str) -> ManagerKind {
        match manager {
            super::FIELD_MANAGER => ManagerKind::Other,
            m if m == "kubectl" || m.starts_with("kubectl-") => ManagerKind::Kubectl,
            m if m.starts_with("argocd") => ManagerKind::GitOps("Argo CD"),
            "kustomize-controller" | "helm-controller" => ManagerKind::GitOps("Flux"),
            m if m.starts_with("flux") => ManagerKind::GitOps("Flux"),
            _ => ManagerKind::Other,
        }
    }
}

/// The field managers a server-side apply conflict names (`conflict with "NAME" using ...`),
/// printable and in order, without repeats.
fn conflicting_managers(message: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in message.split("with \"").skip(1) {
        if let Some(end) = part.find('"') {
            let name = printable(&part[..end]).into_owned();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{conflicting_managers, owned_elsewhere};

    #[test]
    fn the_advice_names_the_world_the_owner_lives_in() {
        let conflict = |m: &str| {
            format!(
                "Apply failed with 1 conflict: conflict with \"{m}\" using keys.dataminer.services/v1alpha1: .spec.regenerate.secondary.revision"
            )
        };
        let field = "spec.regenerate.secondary.revision";
        let kubectl = owned_elsewhere(&conflict("kubectl-client-side-apply"), field, 3).message;
        assert!(
            kubectl.contains("\"kubectl-client-side-apply\""),
            "{kubectl}"
        );
        assert!(kubectl.contains("in that manifest and run kubectl apply again"));
        assert!(kubectl.contains("--force-conflicts") && !kubectl.contains("Git"));
        let argo = owned_elsewhere(&conflict("argocd-controller"), field, 3).message;
        assert!(
            argo.contains("set spec.regenerate.secondary.revision to 3 in Git"),
            "{argo}"
        );
        assert!(!argo.contains("--force-conflicts"), "{argo}");
        let flux = owned_elsewhere(&conflict("kustomize-controller"), field, 3).message;
        assert!(flux.contains("let Flux sync it"), "{flux}");
        let other = owned_elsewhere(&conflict("auditor"), field, 3).message;
        assert!(other.contains("\"auditor\"") && other.contains("--force-conflicts"));
    }

    #[test]
    fn managers_are_read_from_one_or_several_conflicts_and_escaped() {
        let two = "Apply failed with 2 conflicts: conflicts with \"kubectl\" using v1:\n- .spec.a\nconflicts with \"x\u{1b}]52\" using v1:\n- .spec.b";
        assert_eq!(conflicting_managers(two), ["kubectl", "x\\u{1b}]52"]);
        assert!(conflicting_managers("no names").is_empty());
    }
}
