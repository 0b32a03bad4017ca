//! Who asked for a change, as status, Events and log lines record it.

use crate::{
    api::{DataMinerKeySet, REQUESTER_MAX_BYTES, UNKNOWN_REQUESTER},
    plan::Change,
};

/// The requester of one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    /// The user the admission policy recorded, or `unknown`.
    pub by: String,
    /// Unverified, from the key set's on-behalf-of annotation; only for a ServiceAccount.
    pub on_behalf_of: Option<String>,
}

/// Who asked for `change`; `None` when nobody did (the operator recreating a deleted Secret).
pub fn requester(ks: &DataMinerKeySet, change: &Change) -> Option<Requester> {
    let by = match change {
        // Adopted keys are credited to whoever created this key set object (the restore).
        Change::KeysCreated | Change::KeysAdopted => ks.created_by(),
        Change::Regenerated { slot, revision, .. } => ks.requested_by(*slot, *revision),
        Change::Revoked => ks.revoked_by(),
        Change::Adopt { request } => ks.adopted_by(*request),
        Change::SecretRecreated => return None,
    };
    Some(Requester {
        by: bounded(by.unwrap_or(UNKNOWN_REQUESTER)),
        // Only automation acts for someone else. The annotation outlives the request that set
        // it, so a person acting later (a `kubectl` revoke after a pipeline's rotation) must
        // not inherit the pipeline's "on behalf of".
        on_behalf_of: by
            .filter(|b| b.starts_with(SERVICE_ACCOUNT_PREFIX))
            .and(ks.on_behalf_of())
            .map(bounded),
    })
}

/// User names of ServiceAccounts (Argo CD, Flux, CI runners in the cluster).
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

impl Requester {
    /// "; requested by X" (+ " on behalf of Y (unverified)"), for Event notes.
    pub fn phrase(&self) -> String {
        match &self.on_behalf_of {
            None => format!("; requested by {}", self.by),
            Some(o) => format!("; requested by {} on behalf of {o} (unverified)", self.by),
        }
    }
}

/// At most [`REQUESTER_MAX_BYTES`]; line breaks and other control characters become spaces (a
/// note or a log line stays one line).
fn bounded(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(clean, REQUESTER_MAX_BYTES)
}

/// `text` in at most `max` bytes: cut on a character boundary and marked with `…` when longer.
pub fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::{
            CREATED_BY_ANNOTATION, ON_BEHALF_OF_ANNOTATION, REVOKED_BY_ANNOTATION,
            SECONDARY_REQUESTED_BY_ANNOTATION, Slot,
        },
        fixtures::keyset,
    };

    fn annotated(pairs: &[(&str, &str)]) -> DataMinerKeySet {
        let mut ks = keyset();
        ks.metadata.annotations = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        ks
    }

    #[test]
    fn each_change_names_its_own_requester_or_unknown() {
        let ks = annotated(&[
            (CREATED_BY_ANNOTATION, "user-a"),
            (SECONDARY_REQUESTED_BY_ANNOTATION, "user-b (revision 2)"),
        ]);
        let by = |c: &Change| requester(&ks, c).map(|r| r.by);
        assert_eq!(by(&Change::KeysCreated).as_deref(), Some("user-a"));
        let regen = |slot, revision| Change::Regenerated {
            slot,
            revision,
            found: None,
        };
        assert_eq!(by(&regen(Slot::Secondary, 2)).as_deref(), Some("user-b"));
        assert_eq!(by(&regen(Slot::Secondary, 3)).as_deref(), Some("unknown"));
        assert_eq!(by(&regen(Slot::Primary, 2)).as_deref(), Some("unknown"));
        assert_eq!(by(&Change::Revoked).as_deref(), Some("unknown"));
        assert_eq!(by(&Change::SecretRecreated), None);
    }

    #[test]
    fn on_behalf_of_is_marked_unverified_and_bounded() {
        let long = format!("line one\nline two {}", "é".repeat(400));
        let ks = annotated(&[
            (CREATED_BY_ANNOTATION, "system:serviceaccount:argocd:argocd"),
            (ON_BEHALF_OF_ANNOTATION, &long),
            (REVOKED_BY_ANNOTATION, "user-c"),
        ]);
        // A person acts for themselves, whatever a pipeline left in the annotation.
        let revoked = requester(&ks, &Change::Revoked).unwrap();
        assert_eq!(
            (revoked.by.as_str(), revoked.on_behalf_of.as_deref()),
            ("user-c", None)
        );
        assert_eq!(revoked.phrase(), "; requested by user-c");
        let r = requester(&ks, &Change::KeysCreated).unwrap();
        let o = r.on_behalf_of.clone().unwrap();
        assert!(o.len() <= REQUESTER_MAX_BYTES, "{}", o.len());
        assert!(o.starts_with("line one line two é") && o.ends_with('…'));
        assert!(r.phrase().starts_with(
            "; requested by system:serviceaccount:argocd:argocd on behalf of line one"
        ));
        assert!(r.phrase().ends_with("(unverified)"));
    }
}
