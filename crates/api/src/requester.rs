//! Who asked: the annotations the chart's admission policies write on a key set from the
//! request's user (docs/audit.md), and the one a pipeline may set itself (unverified).

use super::{DataMinerKeySet, Slot};

/// The user who created the key set (stamped on CREATE).
pub const CREATED_BY_ANNOTATION: &str = "keys.dataminer.services/created-by";
/// The user who set `spec.revoke` (stamped when it appears).
pub const REVOKED_BY_ANNOTATION: &str = "keys.dataminer.services/revoked-by";
pub const PRIMARY_REQUESTED_BY_ANNOTATION: &str = "keys.dataminer.services/primary-requested-by";
pub const SECONDARY_REQUESTED_BY_ANNOTATION: &str =
    "keys.dataminer.services/secondary-requested-by";
/// The user who raised `spec.adopt.request` (stamped when it rises), as `<user> (request <n>)`.
pub const ADOPTED_BY_ANNOTATION: &str = "keys.dataminer.services/adopted-by";
/// Free text a pipeline or the plugin sets (for example the Git commit author): recorded as
/// "on behalf of", never checked by anyone.
pub const ON_BEHALF_OF_ANNOTATION: &str = "keys.dataminer.services/on-behalf-of";
/// Every annotation of a key set the operator reads (on-behalf-of last: it goes with the others).
pub const REQUESTER_ANNOTATIONS: [&str; 6] = [
    CREATED_BY_ANNOTATION,
    PRIMARY_REQUESTED_BY_ANNOTATION,
    SECONDARY_REQUESTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION,
    ADOPTED_BY_ANNOTATION,
    ON_BEHALF_OF_ANNOTATION,
];
/// What the requester fields read when no policy recorded one.
pub const UNKNOWN_REQUESTER: &str = "unknown";
/// Longest name copied into status and Events, in bytes: the annotations are checked at
/// admission, but without the policies anyone could write 256 KiB into one, and 20 history
/// entries of that would push the key set past what etcd stores.
pub const REQUESTER_MAX_BYTES: usize = 256;

/// The slot's requester annotation.
pub fn requested_by_annotation(slot: Slot) -> &'static str {
    match slot {
        Slot::Primary => PRIMARY_REQUESTED_BY_ANNOTATION,
        Slot::Secondary => SECONDARY_REQUESTED_BY_ANNOTATION,
    }
}

/// Splits a slot requester annotation, `<user> (revision <n>)`, into the user and `n`.
pub fn parse_requested_by(value: &str) -> Option<(&str, i64)> {
    parse_numbered(value, " (revision ")
}

/// Splits the adopter annotation, `<user> (request <n>)`, into the user and `n`.
pub fn parse_adopted_by(value: &str) -> Option<(&str, i64)> {
    parse_numbered(value, " (request ")
}

fn parse_numbered<'a>(value: &'a str, tag: &str) -> Option<(&'a str, i64)> {
    let (user, rest) = value.strip_suffix(')')?.rsplit_once(tag)?;
    let revision = rest.parse().ok().filter(|r: &i64| *r > 0)?;
    (!user.is_empty()).then_some((user, revision))
}

impl DataMinerKeySet {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Who created the key set, as stamped at admission.
    pub fn created_by(&self) -> Option<&str> {
        self.annotation(CREATED_BY_ANNOTATION)
    }

    /// Who revoked the key set, as stamped at admission.
    pub fn revoked_by(&self) -> Option<&str> {
        self.annotation(REVOKED_BY_ANNOTATION)
    }

    /// Who asked for `slot` at `revision`: only an annotation that names that very revision
    /// counts (an older one belongs to an earlier request).
    pub fn requested_by(&self, slot: Slot, revision: i64) -> Option<&str> {
        let (user, r) = parse_requested_by(self.annotation(requested_by_annotation(slot))?)?;
        (r == revision).then_some(user)
    }

    /// Who raised `spec.adopt.request` to `request`: only an annotation that names that very
    /// request counts.
    pub fn adopted_by(&self, request: i64) -> Option<&str> {
        let (user, r) = parse_adopted_by(self.annotation(ADOPTED_BY_ANNOTATION)?)?;
        (r == request).then_some(user)
    }

    /// The unverified "on behalf of" a manifest carries.
    pub fn on_behalf_of(&self) -> Option<&str> {
        self.annotation(ON_BEHALF_OF_ANNOTATION)
    }

    /// The requester annotations (index in [`REQUESTER_ANNOTATIONS`], value) that an action not
    /// yet recorded in status may still need: the creator until keys exist, a slot's requester
    /// while its revision is above the recorded one, the revoker until the revocation is
    /// recorded, and "on behalf of" with any of them. Once status records an action it holds
    /// the name, so a key set at rest needs none.
    pub fn awaited_requesters(&self) -> Vec<(usize, &str)> {
        let status = self.status.as_ref();
        let keys = status.is_some_and(|s| s.primary.is_some() || s.secondary.is_some());
        let revoked = status.is_some_and(|s| s.revoked_at.is_some());
        let recorded = |slot: Slot| status.and_then(|s| s.slot(slot)).map_or(0, |k| k.revision);
        let mut out = Vec::new();
        for (i, key) in REQUESTER_ANNOTATIONS.iter().enumerate() {
            let Some(value) = self.annotation(key) else {
                continue;
            };
            let awaited = match *key {
                CREATED_BY_ANNOTATION => !keys,
                PRIMARY_REQUESTED_BY_ANNOTATION => {
                    parse_requested_by(value).is_some_and(|(_, r)| r > recorded(Slot::Primary))
                }
                SECONDARY_REQUESTED_BY_ANNOTATION => {
                    parse_requested_by(value).is_some_and(|(_, r)| r > recorded(Slot::Secondary))
                }
                REVOKED_BY_ANNOTATION => self.spec.revoke.is_some() && !revoked,
                ADOPTED_BY_ANNOTATION => {
                    let done = status.and_then(|s| s.adopted_request).unwrap_or(0);
                    parse_adopted_by(value).is_some_and(|(_, r)| r > done)
                }
                _ => !out.is_empty(),
            };
            if awaited {
                out.push((i, value));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset() -> DataMinerKeySet {
        let spec = serde_json::from_value(serde_json::json!({
            "label": "CI pipeline",
            "scope": { "organization": { "name": "skyline" } },
            "permissions": ["RegisterCatalogItems"]
        }))
        .unwrap();
        DataMinerKeySet::new("ks", spec)
    }

    fn at(secs: i64) -> k8s_openapi::jiff::Timestamp {
        k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn a_slot_requester_names_its_user_and_revision() {
        assert_eq!(
            parse_requested_by("user-b@example.com (revision 2)"),
            Some(("user-b@example.com", 2))
        );
        // User names may contain anything, even the separator: the last one counts.
        assert_eq!(
            parse_requested_by("odd (revision 1) name (revision 12)"),
            Some(("odd (revision 1) name", 12))
        );
        assert_eq!(
            parse_requested_by(
                "system:serviceaccount:argocd:argocd-application-controller (revision 3)"
            ),
            Some((
                "system:serviceaccount:argocd:argocd-application-controller",
                3
            ))
        );
        for bad in [
            "user-b",
            "user-b (revision x)",
            "user-b (revision 0)",
            "user-b (revision -1)",
            " (revision 2)",
            "user-b (revision 2",
        ] {
            assert_eq!(parse_requested_by(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_what_an_unrecorded_action_needs_is_awaited() {
        use crate::{DataMinerKeySetStatus, KeyStatus, RevokeSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let mut ks = keyset();
        ks.metadata.annotations = Some(
            [
                (CREATED_BY_ANNOTATION, "user-a"),
                (PRIMARY_REQUESTED_BY_ANNOTATION, "user-b (revision 2)"),
                (SECONDARY_REQUESTED_BY_ANNOTATION, "user-b (revision 3)"),
                (REVOKED_BY_ANNOTATION, "user-c"),
                (ON_BEHALF_OF_ANNOTATION, "Alice"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        );
        let names = |ks: &DataMinerKeySet| -> Vec<usize> {
            ks.awaited_requesters()
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        };
        // No keys yet: the creator and both slot requests (above revision 0); the revoker only
        // once spec.revoke is there.
        assert_eq!(names(&ks), [0, 1, 2, 5]);
        let key = |revision| KeyStatus {
            revision,
            generated_at: Time(at(0)),
            fingerprint: "sha256:00000000".into(),
        };
        ks.status = Some(DataMinerKeySetStatus {
            primary: Some(key(2)),
            secondary: Some(key(1)),
            ..Default::default()
        });
        // Keys exist, primary revision 2 is recorded: only the secondary request is pending.
        assert_eq!(names(&ks), [2, 5]);
        ks.status.as_mut().unwrap().secondary = Some(key(3));
        assert_eq!(
            names(&ks),
            Vec::<usize>::new(),
            "at rest: nothing, not even on-behalf-of"
        );
        ks.spec.revoke = Some(Box::new(RevokeSpec {
            confirm_label: ks.spec.label.clone(),
        }));
        assert_eq!(names(&ks), [3, 5]);
        ks.status.as_mut().unwrap().revoked_at = Some(Time(at(1)));
        assert_eq!(names(&ks), Vec::<usize>::new());
    }

    #[test]
    fn only_the_revision_asked_for_is_attributed() {
        let mut ks = keyset();
        ks.metadata.annotations = Some(
            [(
                PRIMARY_REQUESTED_BY_ANNOTATION.to_string(),
                "user-b (revision 3)".to_string(),
            )]
            .into(),
        );
        assert_eq!(ks.requested_by(Slot::Primary, 3), Some("user-b"));
        assert_eq!(ks.requested_by(Slot::Primary, 2), None);
        assert_eq!(ks.requested_by(Slot::Secondary, 3), None);
        assert_eq!(ks.created_by(), None);
    }
}
