//! The Secret's shape: what the operator writes, and how it reads one back for the plan.
//! Pure: no API calls.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Resource, ResourceExt};

use crate::{
    api::{DataMinerKeySet, Slot},
    keys::KeyValue,
    plan::{SecretSeen, SlotSeen},
    proof::{self, Owner, ProofKey},
};

/// The one field manager of this operator (Secrets and key set status).
pub const FIELD_MANAGER: &str = "dataminer-keys-operator";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "dataminer-keys-operator";
pub const KEYSET_LABEL: &str = "keys.dataminer.services/keyset";
pub const LABEL_ANNOTATION: &str = "keys.dataminer.services/label";
pub const SCOPE_ANNOTATION: &str = "keys.dataminer.services/scope";
pub const TARGET_ANNOTATION: &str = "keys.dataminer.services/target";
pub const PERMISSIONS_ANNOTATION: &str = "keys.dataminer.services/permissions";
pub const PRIMARY_REVISION_ANNOTATION: &str = "keys.dataminer.services/primary-revision";
pub const SECONDARY_REVISION_ANNOTATION: &str = "keys.dataminer.services/secondary-revision";
pub const PRIMARY_PROOF_ANNOTATION: &str = "keys.dataminer.services/primary-proof";
pub const SECONDARY_PROOF_ANNOTATION: &str = "keys.dataminer.services/secondary-proof";
/// The key set's lineage (proof.rs, `Owner`): which generation of the name the keys belong to.
pub const LINEAGE_ANNOTATION: &str = "keys.dataminer.services/lineage";
/// Annotations the plan decides (never taken from the user, never "layout").
const SLOT_ANNOTATIONS: [&str; 5] = [
    PRIMARY_REVISION_ANNOTATION,
    SECONDARY_REVISION_ANNOTATION,
    PRIMARY_PROOF_ANNOTATION,
    SECONDARY_PROOF_ANNOTATION,
    LINEAGE_ANNOTATION,
];

pub fn proof_annotation(slot: Slot) -> &'static str {
    match slot {
        Slot::Primary => PRIMARY_PROOF_ANNOTATION,
        Slot::Secondary => SECONDARY_PROOF_ANNOTATION,
    }
}

pub fn revision_annotation(slot: Slot) -> &'static str {
    match slot {
        Slot::Primary => PRIMARY_REVISION_ANNOTATION,
        Slot::Secondary => SECONDARY_REVISION_ANNOTATION,
    }
}

/// Labels and annotations the Secret must carry (revision annotations excluded: the plan
/// decides those). The operator's own keys win over the user's.
fn desired_metadata(
    ks: &DataMinerKeySet,
    with_user_metadata: bool,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let user = ks.spec.secret.as_ref().filter(|_| with_user_metadata);
    let mut labels: BTreeMap<String, String> = user.map(|s| s.labels.clone()).unwrap_or_default();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    labels.insert(KEYSET_LABEL.into(), ks.name_any());

    let mut annotations: BTreeMap<String, String> = user
        .map(|s| s.annotations.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !SLOT_ANNOTATIONS.contains(&k.as_str()))
        .collect();
    let (scope, target) = ks.spec.scope_and_target();
    let permissions: Vec<&str> = ks.spec.permissions.iter().map(|p| p.as_str()).collect();
    annotations.insert(LABEL_ANNOTATION.into(), ks.spec.label.clone());
    annotations.insert(SCOPE_ANNOTATION.into(), scope.into());
    annotations.insert(TARGET_ANNOTATION.into(), target);
    annotations.insert(PERMISSIONS_ANNOTATION.into(), permissions.join(","));
    (labels, annotations)
}

/// The Secret with both key values at the given revisions, each with the operator's proof.
///
/// For an update, `precondition` is the observed (uid, resourceVersion): the API server refuses
/// the write if the Secret changed or was replaced since it was read. A create has none and
/// leaves out the user's labels and annotations: created by POST (which fails if the name is
/// taken, so a Secret made behind our back is never taken over), the Secret's fields belong to
/// an `Update` entry of our field manager, and only fields that we never remove may be there;
/// the user's labels and annotations follow by server-side apply, which can remove them later.
pub fn build(
    ks: &DataMinerKeySet,
    proof_key: &ProofKey,
    values: [&KeyValue; 2],
    revisions: [i64; 2],
    lineage: &str,
    precondition: Option<(String, String)>,
) -> Secret {
    let with_user_metadata = precondition.is_some();
    let (uid, resource_version) = precondition.unzip();
    let (labels, mut annotations) = desired_metadata(ks, with_user_metadata);
    let (namespace, name) = (ks.namespace().unwrap_or_default(), ks.name_any());
    let owner = Owner {
        namespace: &namespace,
        name: &name,
        lineage,
    };
    annotations.insert(LINEAGE_ANNOTATION.into(), lineage.into());
    for slot in Slot::BOTH {
        let (value, revision) = (values[slot as usize], revisions[slot as usize]);
        annotations.insert(revision_annotation(slot).into(), revision.to_string());
        annotations.insert(
            proof_annotation(slot).into(),
            proof_key.sign(owner, slot, revision, value),
        );
    }
    let names = ks.spec.data_key_names();
    let data = Slot::BOTH
        .iter()
        .map(|&slot| {
            (
                names[slot as usize].clone(),
                ByteString(values[slot as usize].expose().as_bytes().to_vec()),
            )
        })
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(ks.secret_name()),
            namespace: ks.namespace(),
            uid,
            resource_version,
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: ks.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// True when the Secret names this key set as its controller (a hint: anyone can write it).
fn has_controller_ref(ks: &DataMinerKeySet, secret: &Secret) -> bool {
    let Some(uid) = ks.uid() else { return false };
    secret
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Reads the Secret for the plan: per slot the revision annotation, the value's fingerprint,
/// and the revision at which the operator's proof of the value verifies (checked at every
/// revision the operator may have written, so an edited annotation neither fakes nor hides a
/// key). Proofs are checked for the lineage the Secret's annotation names (a hint: the proof
/// covers it), or for the key set's uid (0.1.0's proofs). Also returns the values, for the slots
/// the plan keeps. `tombstoned` is not known here (the controller asks its tombstones).
pub fn observe(
    ks: &DataMinerKeySet,
    status: &crate::api::DataMinerKeySetStatus,
    proof_key: &ProofKey,
    secret: Option<&Secret>,
) -> (SecretSeen, [Option<KeyValue>; 2]) {
    let Some(secret) = secret else {
        return (SecretSeen::Absent, [None, None]);
    };
    let names = ks.spec.data_key_names();
    let data = secret.data.as_ref();
    let values = Slot::BOTH.map(|slot| {
        data.and_then(|d| d.get(&names[slot as usize]))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|v| !v.is_empty())
            .map(KeyValue::from_stored)
    });
    let annotations = secret.annotations();
    let keyset_uid = ks.uid().unwrap_or_default();
    let (namespace, name) = (ks.namespace().unwrap_or_default(), ks.name_any());
    let claimed = annotations.get(LINEAGE_ANNOTATION).map(String::as_str);
    let proofs = Slot::BOTH.map(|slot| annotations.get(proof_annotation(slot)));
    let annotated: [Option<i64>; 2] = Slot::BOTH.map(|slot| {
        annotations
            .get(revision_annotation(slot))
            .and_then(|v| v.parse().ok())
    });
    // Per slot, the revision the proof verifies at for `lineage`: the operator can only have
    // written the recorded revision, the next one (a recreation), the requested one, or (a
    // restore) the annotated one, so those are tried, whatever the annotation says.
    let prove = |lineage: &str| {
        let owner = Owner {
            namespace: &namespace,
            name: &name,
            lineage,
        };
        Slot::BOTH.map(|slot| {
            let recorded = status.slot(slot).map(|k| k.revision);
            let requested = ks.spec.request(slot).map(|r| r.revision);
            let candidates = [
                annotated[slot as usize],
                recorded,
                recorded.map(|r| r + 1),
                requested,
            ];
            let value = values[slot as usize].as_ref();
            value.zip(proofs[slot as usize]).and_then(|(value, proof)| {
                candidates
                    .into_iter()
                    .flatten()
                    .find(|&r| proof_key.verify(owner, &keyset_uid, slot, r, value, proof))
            })
        })
    };
    let current = proofs
        .iter()
        .all(|p| p.is_some_and(|p| proof::is_current(p)));
    // The lineage the proofs verify for: the annotated one (a hint: the proof covers it), else
    // the recorded one, so an edited or removed annotation is put back, not taken for drift.
    let tries = [
        claimed,
        status.lineage.as_deref().filter(|l| Some(*l) != claimed),
    ];
    let found = tries.into_iter().flatten().find_map(|lineage| {
        let proven = prove(lineage);
        (current && proven.iter().any(Option::is_some)).then_some((lineage, proven))
    });
    let (lineage, proven) = match found {
        Some((lineage, proven)) => (Some(lineage.to_string()), proven),
        // 0.1.0's proofs (bound to the uid), or nothing proven at all.
        None => (None, prove(claimed.unwrap_or_default())),
    };
    let slots = Slot::BOTH.map(|slot| SlotSeen {
        revision: annotated[slot as usize],
        fingerprint: values[slot as usize].as_ref().map(KeyValue::fingerprint),
        proven: proven[slot as usize],
    });
    // Proofs of 0.1.0, a lineage annotation other than the proven one, or a lineage other than
    // the recorded one: rewritten at the next write.
    let lineage_in_sync =
        claimed == lineage.as_deref() && (status.lineage.is_none() || status.lineage == lineage);
    let seen = SecretSeen::Present {
        uid: secret.uid().unwrap_or_default(),
        slots,
        layout_in_sync: layout_in_sync(ks, secret) && current && lineage_in_sync,
        lineage,
        controlled: has_controller_ref(ks, secret),
        tombstoned: false,
    };
    (seen, values)
}

/// Labels and annotations as desired, no stale ones of ours left, type Opaque, our controller
/// owner reference in place. Keys that other
/// field managers added are theirs and do not count.
fn layout_in_sync(ks: &DataMinerKeySet, secret: &Secret) -> bool {
    let (labels, annotations) = desired_metadata(ks, true);
    let has_all = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    let ours = owned_metadata_keys(secret);
    let no_stale = |field: &str, want: &BTreeMap<String, String>, extra: &[&str]| {
        ours.get(field).is_none_or(|keys| {
            keys.iter()
                .all(|k| want.contains_key(k) || extra.contains(&k.as_str()))
        })
    };
    secret.type_.as_deref() == Some("Opaque")
        && has_controller_ref(ks, secret)
        && has_all(&labels, secret.labels())
        && has_all(&annotations, secret.annotations())
        && no_stale("f:labels", &labels, &[])
        && no_stale("f:annotations", &annotations, &SLOT_ANNOTATIONS)
}

/// Label and annotation keys that our field manager owns, from `metadata.managedFields`.
fn owned_metadata_keys(secret: &Secret) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for entry in secret.managed_fields() {
        if entry.manager.as_deref() != Some(FIELD_MANAGER) {
            continue;
        }
        let Some(fields) = entry.fields_v1.as_ref() else {
            continue;
        };
        let Some(meta) = fields.0.get("f:metadata") else {
            continue;
        };
        for field in ["f:labels", "f:annotations"] {
            if let Some(map) = meta.get(field).and_then(|m| m.as_object()) {
                let keys = out.entry(field.to_string()).or_insert_with(Vec::new);
                keys.extend(
                    map.keys()
                        .filter_map(|k| k.strip_prefix("f:"))
                        .map(str::to_string),
                );
            }
        }
    }
    out
}

/// True when the spec asks for labels or annotations of its own on the Secret.
pub fn has_user_metadata(ks: &DataMinerKeySet) -> bool {
    ks.spec
        .secret
        .as_ref()
        .is_some_and(|s| !s.labels.is_empty() || !s.annotations.is_empty())
}
