//! The spec checked again by the controller: the CRD's admission rules (for clusters where they
//! were bypassed) and everything the API server would refuse to write later.

use super::PlanInput;
use crate::api::{
    MAX_LABEL_VALUE, MAX_REVISION, Slot, denied_key, has_control, is_label_value, is_qualified_name,
};

/// Rules the CRD enforces at admission, checked again for clusters where they were bypassed,
/// and everything the API server would refuse to write later.
pub fn validate(input: &PlanInput) -> Result<(), String> {
    let spec = input.spec;
    if input.name.len() > MAX_LABEL_VALUE {
        return Err(format!(
            "metadata.name must be at most {MAX_LABEL_VALUE} characters: it is the value of the keys.dataminer.services/keyset label on the Secret"
        ));
    }
    let label = spec.label.as_str();
    if label.is_empty() || label.chars().count() > 100 {
        return Err("spec.label must be 1 to 100 characters".into());
    }
    if label.trim() != label {
        return Err("spec.label must not start or end with whitespace".into());
    }
    if has_control(label) {
        return Err("spec.label must not contain control characters".into());
    }
    match (&spec.scope.organization, &spec.scope.system) {
        (Some(_), Some(_)) | (None, None) => {
            return Err("spec.scope needs exactly one of organization or system".into());
        }
        (Some(_), None) if spec.permissions.is_empty() => {
            return Err("an organization key set needs at least one permission".into());
        }
        (None, Some(_)) if !spec.permissions.is_empty() => {
            return Err("a system key set takes no permissions".into());
        }
        _ => {}
    }
    let mut perms = spec.permissions.clone();
    perms.sort();
    if perms.windows(2).any(|w| w[0] == w[1]) {
        return Err("spec.permissions lists a permission twice".into());
    }
    for slot in Slot::BOTH {
        if spec
            .request(slot)
            .is_some_and(|r| r.revision > MAX_REVISION)
        {
            return Err(format!(
                "spec.regenerate.{}.revision must be at most {MAX_REVISION}",
                slot.name()
            ));
        }
    }
    if spec
        .adopt
        .as_ref()
        .is_some_and(|a| !(1..=MAX_REVISION).contains(&a.request))
    {
        return Err(format!(
            "spec.adopt.request must be between 1 and {MAX_REVISION}"
        ));
    }
    let names = spec.data_key_names();
    if names[0] == names[1] {
        return Err("spec.secret.primaryKeyName and secondaryKeyName must differ".into());
    }
    if let Some(s) = &spec.secret {
        if let Some(k) = s.labels.keys().find(|k| !is_qualified_name(k)) {
            return Err(format!("spec.secret.labels has an invalid key {k:?}"));
        }
        if let Some((k, _)) = s.labels.iter().find(|(_, v)| !is_label_value(v)) {
            return Err(format!("spec.secret.labels has an invalid value for {k:?}"));
        }
        if let Some(k) = s.annotations.keys().find(|k| !is_qualified_name(k)) {
            return Err(format!("spec.secret.annotations has an invalid key {k:?}"));
        }
        for (field, keys) in [
            ("labels", s.labels.keys()),
            ("annotations", s.annotations.keys()),
        ] {
            if let Some((key, prefix)) = denied_key(keys, input.denied_prefixes) {
                return Err(format!(
                    "spec.secret.{field} has {key:?}: keys under {prefix} make another controller copy or expose the Secret and are refused (docs/security.md)"
                ));
            }
        }
    }
    if let Some(recorded) = &input.status.secret_name
        && recorded != input.secret_name
    {
        return Err(format!(
            "spec.secret.name is immutable: the keys live in Secret {recorded}, the spec now names {}",
            input.secret_name
        ));
    }
    Ok(())
}
