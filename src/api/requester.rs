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
/// Free text a pipeline or the plugin sets (for example the Git commit author): recorded as
/// "on behalf of", never checked by anyone.
pub const ON_BEHALF_OF_ANNOTATION: &str = "keys.dataminer.services/on-behalf-of";
/// Every annotation of a key set the operator reads.
pub const REQUESTER_ANNOTATIONS: [&str; 5] = [
    CREATED_BY_ANNOTATION,
    PRIMARY_REQUESTED_BY_ANNOTATION,
    SECONDARY_REQUESTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION,
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
    let (user, rest) = value.strip_suffix(')')?.rsplit_once(" (revision ")?;
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

    /// The unverified "on behalf of" a manifest carries.
    pub fn on_behalf_of(&self) -> Option<&str> {
        self.annotation(ON_BEHALF_OF_ANNOTATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn only_the_revision_asked_for_is_attributed() {
        let mut ks = crate::fixtures::keyset();
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
