//! Small builders the unit tests of `plan`, `status` and `secret` share, so every test starts
//! from the same key set and says only what differs.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use crate::{
    api::{
        AdoptSpec, DataMinerKeySet, DataMinerKeySetSpec, DataMinerKeySetStatus, KeyStatus,
        OrganizationScope, Permission, RegenerateRequest, RegenerateSpec, RevokeSpec, Scope, Slot,
    },
    plan::{Change, Held, Plan, Problem, SecretWrite},
    status::Applied,
};

pub const LABEL: &str = "CI pipeline";

/// An organization key set's spec: label [`LABEL`], one permission, default Secret layout.
pub fn spec() -> DataMinerKeySetSpec {
    DataMinerKeySetSpec {
        label: LABEL.into(),
        scope: Scope {
            organization: Some(OrganizationScope {
                name: "skyline".into(),
            }),
            system: None,
        },
        permissions: vec![Permission::RegisterCatalogItems],
        key_format: Default::default(),
        secret: None,
        regenerate: None,
        revoke: None,
        adopt: None,
    }
}

/// Key set `ks` in namespace `ns`, generation 1, with [`spec`].
pub fn keyset() -> DataMinerKeySet {
    let mut ks = DataMinerKeySet::new("ks", spec());
    ks.metadata.namespace = Some("ns".into());
    ks.metadata.generation = Some(1);
    ks
}

/// `spec` asking for `slot` at `revision`, confirmed with `confirm`.
pub fn with_request(
    mut spec: DataMinerKeySetSpec,
    slot: Slot,
    revision: i64,
    confirm: &str,
) -> DataMinerKeySetSpec {
    let r = spec.regenerate.get_or_insert_with(RegenerateSpec::default);
    let request = Some(RegenerateRequest {
        revision,
        confirm_label: confirm.into(),
    });
    match slot {
        Slot::Primary => r.primary = request,
        Slot::Secondary => r.secondary = request,
    }
    spec
}

/// `spec` asking for revocation, confirmed with `confirm`.
pub fn with_revoke(mut spec: DataMinerKeySetSpec, confirm: &str) -> DataMinerKeySetSpec {
    spec.revoke = Some(
        RevokeSpec {
            confirm_label: confirm.into(),
        }
        .into(),
    );
    spec
}

/// `spec` asking to adopt the Secret's values (request `request`), confirmed with `confirm`.
pub fn with_adopt(
    mut spec: DataMinerKeySetSpec,
    request: i64,
    confirm: &str,
) -> DataMinerKeySetSpec {
    spec.adopt = Some(
        AdoptSpec {
            request,
            confirm_label: confirm.into(),
        }
        .into(),
    );
    spec
}

/// A recorded key: `revision` with fingerprint `fp`.
pub fn key(revision: i64, fp: &str) -> KeyStatus {
    KeyStatus {
        revision,
        generated_at: Time(Timestamp::UNIX_EPOCH),
        fingerprint: fp.into(),
    }
}

/// Status after keys were created: primary `p` at `p_rev`, secondary `s` at `s_rev`, in the
/// Secret `ks-keys` with uid `uid-1`.
pub fn status(p_rev: i64, p: &str, s_rev: i64, s: &str) -> DataMinerKeySetStatus {
    DataMinerKeySetStatus {
        secret_name: Some("ks-keys".into()),
        secret_uid: Some("uid-1".into()),
        primary: Some(key(p_rev, p)),
        secondary: Some(key(s_rev, s)),
        ..Default::default()
    }
}

/// A plan with these changes and problems and no Secret write.
pub fn plan(changes: Vec<Change>, problems: Vec<Problem>) -> Plan {
    Plan {
        write: SecretWrite::None,
        changes,
        problems,
        revoked: false,
        secret_uid: None,
        holds: [None, None],
        lineage: None,
    }
}

/// The Secret holds primary revision `p` (`sha256:p<p>`) and secondary `s` (`sha256:s<s>`).
pub fn held(p: i64, s: i64) -> [Option<Held>; 2] {
    [
        Some(Held {
            revision: p,
            fingerprint: format!("sha256:p{p}"),
        }),
        Some(Held {
            revision: s,
            fingerprint: format!("sha256:s{s}"),
        }),
    ]
}

/// `plan` applied, leaving `held` in the Secret, at `now`.
pub fn applied(plan: &Plan, held: [Option<Held>; 2], now: Timestamp) -> Applied {
    Applied {
        plan: plan.clone(),
        held,
        secret_uid: None,
        lineage: None,
        now,
    }
}

/// `secs` after the epoch.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}
