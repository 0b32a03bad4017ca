//! Proof that the operator wrote a key value: an HMAC-SHA-256 over (key set uid, slot, revision,
//! value), keyed by a random key that only the operator reads (a Secret in its own namespace),
//! stored beside the value as a Secret annotation.
//!
//! Anyone who can write the key set's Secret can change its values and annotations, owner
//! references and `managedFields` included; nobody without the operator's proof key can produce
//! a proof for a value of their choosing. See docs/design.md, "Trust".

use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{api::Slot, keys::KeyValue};

/// Prefix of the current proofs: bound to the key set's namespace, name and lineage (below).
const VERSION: &str = "v2:";
/// Prefix of the proofs of 0.1.0, bound to the key set's uid, which a restore from backup
/// changes. Still verified, so an upgrade loses nothing; rewritten as `v2` at the next write.
const VERSION_1: &str = "v1:";
/// The data key of the proof key in its Secret.
pub const DATA_KEY: &str = "proof-key";
const KEY_BYTES: usize = 32;

/// The operator's proof key. Never printed (no `Display`, `Debug` shows nothing).
pub struct ProofKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProofKey(..)")
    }
}

/// Whose key a proof vouches for: a key set by namespace and name, and its lineage, a random id
/// drawn when the set's first keys are made and kept through rotations, recreations and
/// restores (docs/design.md, "Restore"). Not the uid: a restore from backup gives the key set a
/// new one, and its keys must still be recognised as the operator's. A later key set of the same
/// name draws a new lineage; a revoked lineage is never adopted again (tombstones).
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub lineage: &'a str,
}

impl ProofKey {
    /// A new random key from the OS CSPRNG.
    pub fn generate() -> Result<Self, crate::keys::RandomSourceError> {
        Ok(ProofKey(Zeroizing::new(
            crate::keys::random_bytes::<KEY_BYTES>()?.to_vec(),
        )))
    }

    /// A key from stored bytes; `None` unless it has the full length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == KEY_BYTES).then(|| ProofKey(Zeroizing::new(bytes.to_vec())))
    }

    /// Fields separated by NUL: none of the leading parts (Kubernetes names, a hex lineage or
    /// uid, a slot name, a number) can contain one, and the value comes last, so no two inputs
    /// share an encoding.
    fn mac(&self, parts: &[&[u8]], value: &KeyValue) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
            mac.update(b"\0");
        }
        mac.update(value.expose().as_bytes());
        mac
    }

    fn mac_v2(&self, owner: Owner, slot: Slot, revision: i64, value: &KeyValue) -> Hmac<Sha256> {
        let revision = revision.to_string();
        self.mac(
            &[
                b"v2",
                owner.namespace.as_bytes(),
                owner.name.as_bytes(),
                owner.lineage.as_bytes(),
                slot.name().as_bytes(),
                revision.as_bytes(),
            ],
            value,
        )
    }

    fn mac_v1(
        &self,
        keyset_uid: &str,
        slot: Slot,
        revision: i64,
        value: &KeyValue,
    ) -> Hmac<Sha256> {
        let revision = revision.to_string();
        self.mac(
            &[
                keyset_uid.as_bytes(),
                slot.name().as_bytes(),
                revision.as_bytes(),
            ],
            value,
        )
    }

    /// The proof to store beside `value`.
    pub fn sign(&self, owner: Owner, slot: Slot, revision: i64, value: &KeyValue) -> String {
        let tag = self.mac_v2(owner, slot, revision, value).finalize();
        format!("{VERSION}{}", hex::encode(tag.into_bytes()))
    }

    /// True when `proof` is this key's proof of `value` at `revision`: a current proof for
    /// `owner`, or a 0.1.0 proof for the key set `keyset_uid` (constant-time compare).
    pub fn verify(
        &self,
        owner: Owner,
        keyset_uid: &str,
        slot: Slot,
        revision: i64,
        value: &KeyValue,
        proof: &str,
    ) -> bool {
        let tag = |prefix: &str| proof.strip_prefix(prefix).and_then(|h| hex::decode(h).ok());
        if let Some(tag) = tag(VERSION) {
            return self
                .mac_v2(owner, slot, revision, value)
                .verify_slice(&tag)
                .is_ok();
        }
        if let Some(tag) = tag(VERSION_1) {
            return self
                .mac_v1(keyset_uid, slot, revision, value)
                .verify_slice(&tag)
                .is_ok();
        }
        false
    }
}

/// A new lineage: 16 bytes from the OS CSPRNG, as 32 lowercase hex characters.
pub fn new_lineage() -> Result<String, crate::keys::RandomSourceError> {
    Ok(hex::encode(*crate::keys::random_bytes::<16>()?))
}

/// True when `proof` is of the current scheme (a 0.1.0 proof is rewritten at the next write).
pub fn is_current(proof: &str) -> bool {
    proof.starts_with(VERSION)
}

/// The proof key as it is stored: Secret `name` (immutable, in the operator's namespace).
pub fn to_secret(key: &ProofKey, name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [(
                    "app.kubernetes.io/name".to_string(),
                    "dataminer-keys-operator".to_string(),
                )]
                .into(),
            ),
            annotations: Some(
                [(
                    "keys.dataminer.services/purpose".to_string(),
                    "The operator's proof key: it signs every key value it writes. Losing it makes every key set report SecretDrift or SecretConflict until its keys are adopted (spec.adopt) or regenerated.".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        immutable: Some(true),
        data: Some([(DATA_KEY.to_string(), ByteString(key.0.to_vec()))].into()),
        ..Default::default()
    }
}

/// The proof key a stored Secret holds, if it holds a valid one.
pub fn from_secret(secret: &Secret) -> Option<ProofKey> {
    let data = secret.data.as_ref()?.get(DATA_KEY)?;
    ProofKey::from_bytes(&data.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> KeyValue {
        KeyValue::from_stored(s.into())
    }

    const OWNER: Owner = Owner {
        namespace: "team",
        name: "ks",
        lineage: "0123456789abcdef0123456789abcdef",
    };

    #[test]
    fn a_proof_binds_key_set_lineage_slot_revision_and_value_not_the_uid() {
        let key = ProofKey::generate().unwrap();
        let v = value("0123456789abcdef0123456789abcdef");
        let proof = key.sign(OWNER, Slot::Primary, 2, &v);
        assert!(is_current(&proof));
        assert!(key.verify(OWNER, "uid-1", Slot::Primary, 2, &v, &proof));
        assert!(
            key.verify(OWNER, "uid-after-a-restore", Slot::Primary, 2, &v, &proof),
            "a restore changes the uid, not the proof"
        );
        for (other, why) in [
            (
                Owner {
                    namespace: "other",
                    ..OWNER
                },
                "other namespace",
            ),
            (
                Owner {
                    name: "other",
                    ..OWNER
                },
                "other key set",
            ),
            (
                Owner {
                    lineage: "fedcba98765432100123456789abcdef",
                    ..OWNER
                },
                "other lineage",
            ),
        ] {
            assert!(
                !key.verify(other, "uid-1", Slot::Primary, 2, &v, &proof),
                "{why}"
            );
        }
        assert!(
            !key.verify(OWNER, "uid-1", Slot::Secondary, 2, &v, &proof),
            "other slot"
        );
        assert!(
            !key.verify(OWNER, "uid-1", Slot::Primary, 3, &v, &proof),
            "other revision"
        );
        assert!(
            !key.verify(OWNER, "uid-1", Slot::Primary, 2, &value("x"), &proof),
            "other value"
        );
        let other = ProofKey::generate().unwrap();
        assert!(
            !other.verify(OWNER, "uid-1", Slot::Primary, 2, &v, &proof),
            "other proof key"
        );
        assert!(!key.verify(OWNER, "uid-1", Slot::Primary, 2, &v, "v2:zz"));
        assert!(!key.verify(OWNER, "uid-1", Slot::Primary, 2, &v, &proof[3..]));
    }

    #[test]
    fn a_proof_of_0_1_0_still_verifies_for_its_key_set_uid() {
        let key = ProofKey::generate().unwrap();
        let v = value("0123456789abcdef0123456789abcdef");
        let tag = key.mac_v1("uid-1", Slot::Primary, 2, &v).finalize();
        let old = format!("v1:{}", hex::encode(tag.into_bytes()));
        assert!(!is_current(&old));
        assert!(key.verify(OWNER, "uid-1", Slot::Primary, 2, &v, &old));
        assert!(!key.verify(OWNER, "uid-2", Slot::Primary, 2, &v, &old));
        assert!(!key.verify(OWNER, "uid-1", Slot::Primary, 3, &v, &old));
    }

    #[test]
    fn a_proof_reveals_neither_the_key_nor_the_value() {
        let key = ProofKey::generate().unwrap();
        let v = value("0123456789abcdef0123456789abcdef");
        let proof = key.sign(OWNER, Slot::Primary, 1, &v);
        assert!(!proof.contains(v.expose()));
        assert_eq!(format!("{key:?}"), "ProofKey(..)");
        assert!(ProofKey::from_bytes(&[0; 31]).is_none());
    }
}
