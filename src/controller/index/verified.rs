//! Part of a key set's record: the Secret version the reconciler last verified, and the plan's
//! view of it.
//!
//! While the watched Secret is still that version and the spec has not changed, the values
//! cannot have changed, so the plan reuses the view without a read. Only a clean view is kept:
//! every value proven at the revision its annotation names (anything else depends on the record
//! and the request, and is read again each time). Kept as tokens, not strings.

use crate::plan::{SecretSeen, SlotSeen};

use super::{secrets::Version, token::Token};

#[derive(Clone, Debug)]
pub(super) struct Verified {
    pub version: Version,
    /// The key set generation it was verified for.
    pub generation: Option<i64>,
    /// Per slot, the revision the value is proven at and its fingerprint.
    slots: [(i64, Token); 2],
    layout_in_sync: bool,
    lineage: Option<Token>,
    controlled: bool,
}

impl Verified {
    /// `None` unless `seen` is clean and is a view of the Secret `uid`.
    pub fn new(
        uid: &str,
        resource_version: &str,
        generation: Option<i64>,
        seen: &SecretSeen,
    ) -> Option<Self> {
        // A tombstoned Secret is left to be read each time: the tombstones decide, not a memo.
        let SecretSeen::Present {
            uid: seen_uid,
            slots,
            layout_in_sync,
            lineage,
            controlled,
            tombstoned: false,
        } = seen
        else {
            return None;
        };
        // The view was observed from this very Secret, so their uids agree; checked all the same.
        if seen_uid != uid {
            return None;
        }
        let clean = |s: &SlotSeen| match (s.revision, s.proven, &s.fingerprint) {
            (Some(revision), Some(proven), Some(fp)) if revision == proven => {
                Some((revision, Token::new(fp)))
            }
            _ => None,
        };
        Some(Verified {
            version: Version {
                uid: Token::new(uid),
                resource_version: Token::new(resource_version),
            },
            generation,
            slots: [clean(&slots[0])?, clean(&slots[1])?],
            layout_in_sync: *layout_in_sync,
            lineage: lineage.as_deref().map(Token::new),
            controlled: *controlled,
        })
    }

    /// The view, as the plan takes it.
    pub fn seen(&self) -> SecretSeen {
        let slot = |(revision, fp): &(i64, Token)| SlotSeen {
            revision: Some(*revision),
            fingerprint: Some(fp.to_string()),
            proven: Some(*revision),
        };
        SecretSeen::Present {
            uid: self.version.uid.to_string(),
            slots: [slot(&self.slots[0]), slot(&self.slots[1])],
            layout_in_sync: self.layout_in_sync,
            lineage: self.lineage.as_ref().map(Token::to_string),
            controlled: self.controlled,
            tombstoned: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_view_is_kept_exactly_and_nothing_else_is_kept() {
        let slot = |revision: i64, fp: &str| SlotSeen {
            revision: Some(revision),
            fingerprint: Some(fp.into()),
            proven: Some(revision),
        };
        let uid = "0b7e8a8e-6f7d-4a53-9d0e-6a1c3f2b9e11";
        let clean = SecretSeen::Present {
            uid: uid.into(),
            slots: [slot(3, "sha256:0123abcd"), slot(1, "sha256:4567ef01")],
            layout_in_sync: false,
            lineage: None,
            controlled: true,
            tombstoned: false,
        };
        let v = Verified::new(uid, "41", Some(2), &clean).expect("a clean view");
        assert_eq!(v.seen(), clean);
        assert!(v.version.is(uid, "41"));
        assert!(Verified::new("another-uid", "41", Some(2), &clean).is_none());
        assert!(Verified::new(uid, "41", Some(2), &SecretSeen::Absent).is_none());
        for unclean in [
            SlotSeen {
                proven: Some(2),
                ..slot(3, "fp")
            },
            SlotSeen {
                proven: None,
                ..slot(3, "fp")
            },
            SlotSeen {
                fingerprint: None,
                ..slot(3, "fp")
            },
            SlotSeen {
                revision: None,
                ..slot(3, "fp")
            },
        ] {
            let seen = SecretSeen::Present {
                uid: uid.into(),
                slots: [slot(1, "fp"), unclean.clone()],
                layout_in_sync: true,
                lineage: None,
                controlled: true,
                tombstoned: false,
            };
            assert!(
                Verified::new(uid, "41", Some(2), &seen).is_none(),
                "{unclean:?}"
            );
        }
    }
}
