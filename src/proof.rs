//! Proof that the operator wrote a key value: an HMAC-SHA-256 over (key set uid, slot, revision,
//! value), keyed by a random key that only the operator reads (a Secret in its own namespace),
//! stored beside the value as a Secret annotation.
//!
//! Anyone who can write the key set's Secret can change its values and annotations, owner
//! references and `managedFields` included; nobody without the operator's proof key can produce
//! a proof for a value of their choosing. See docs/design.md, "Trust".

use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client, api::PostParams};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{api::Slot, keys::KeyValue};

/// Prefix of every proof, so the scheme can change without misreading old proofs.
const VERSION: &str = "v1:";
/// The data key of the proof key in its Secret.
const DATA_KEY: &str = "proof-key";
const KEY_BYTES: usize = 32;

/// The operator's proof key. Never printed (no `Display`, `Debug` shows nothing).
pub struct ProofKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProofKey(..)")
    }
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

    fn mac(&self, keyset_uid: &str, slot: Slot, revision: i64, value: &KeyValue) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // Fields separated by NUL: none of uid, slot name and revision can contain one, and the
        // value comes last, so no two inputs share an encoding.
        for part in [
            keyset_uid.as_bytes(),
            slot.name().as_bytes(),
            revision.to_string().as_bytes(),
        ] {
            mac.update(part);
            mac.update(b"\0");
        }
        mac.update(value.expose().as_bytes());
        mac
    }

    /// The proof to store beside `value`.
    pub fn sign(&self, keyset_uid: &str, slot: Slot, revision: i64, value: &KeyValue) -> String {
        let tag = self.mac(keyset_uid, slot, revision, value).finalize();
        format!("{VERSION}{}", hex::encode(tag.into_bytes()))
    }

    /// True when `proof` is this key's proof of `value` at `revision` (constant-time compare).
    pub fn verify(
        &self,
        keyset_uid: &str,
        slot: Slot,
        revision: i64,
        value: &KeyValue,
        proof: &str,
    ) -> bool {
        let Some(tag) = proof
            .strip_prefix(VERSION)
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        self.mac(keyset_uid, slot, revision, value)
            .verify_slice(&tag)
            .is_ok()
    }
}

/// Reads the proof key from Secret `name` in `namespace`, creating it on first start. Two
/// replicas starting at once both end up with the one that was created first.
pub async fn load_or_create(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<ProofKey, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |secret: Secret| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(DATA_KEY))
            .and_then(|b| ProofKey::from_bytes(&b.0))
            .ok_or_else(|| {
                format!(
                    "Secret {namespace}/{name} has no valid {DATA_KEY}; delete it only if no key set holds keys yet (see docs/design.md, \"Trust\")"
                )
            })
    };
    let get = || async {
        api.get_opt(name)
            .await
            .map_err(|e| format!("reading the proof key Secret {namespace}/{name}: {e}"))
    };
    if let Some(secret) = get().await? {
        return read(secret);
    }
    let key = ProofKey::generate().map_err(|e| e.to_string())?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
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
                    "The operator's proof key: it signs every key value it writes. Losing it makes every key set report SecretDrift until its keys are regenerated.".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        immutable: Some(true),
        data: Some([(DATA_KEY.to_string(), ByteString(key.0.to_vec()))].into()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(key),
        // Another replica created it first: use theirs.
        Err(kube::Error::Api(s)) if s.code == 409 => match get().await? {
            Some(secret) => read(secret),
            None => Err(format!("the proof key Secret {namespace}/{name} vanished")),
        },
        Err(e) => Err(format!(
            "creating the proof key Secret {namespace}/{name}: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> KeyValue {
        KeyValue::from_stored(s.into())
    }

    #[test]
    fn a_proof_binds_key_set_slot_revision_and_value() {
        let key = ProofKey::generate().unwrap();
        let v = value("0123456789abcdef0123456789abcdef");
        let proof = key.sign("uid-1", Slot::Primary, 2, &v);
        assert!(key.verify("uid-1", Slot::Primary, 2, &v, &proof));
        assert!(
            !key.verify("uid-2", Slot::Primary, 2, &v, &proof),
            "other key set"
        );
        assert!(
            !key.verify("uid-1", Slot::Secondary, 2, &v, &proof),
            "other slot"
        );
        assert!(
            !key.verify("uid-1", Slot::Primary, 3, &v, &proof),
            "other revision"
        );
        assert!(
            !key.verify("uid-1", Slot::Primary, 2, &value("x"), &proof),
            "other value"
        );
        let other = ProofKey::generate().unwrap();
        assert!(
            !other.verify("uid-1", Slot::Primary, 2, &v, &proof),
            "other proof key"
        );
        assert!(!key.verify("uid-1", Slot::Primary, 2, &v, "v1:zz"));
        assert!(!key.verify("uid-1", Slot::Primary, 2, &v, &proof[3..]));
    }

    #[test]
    fn a_proof_reveals_neither_the_key_nor_the_value() {
        let key = ProofKey::generate().unwrap();
        let v = value("0123456789abcdef0123456789abcdef");
        let proof = key.sign("uid", Slot::Primary, 1, &v);
        assert!(!proof.contains(v.expose()));
        assert_eq!(format!("{key:?}"), "ProofKey(..)");
        assert!(ProofKey::from_bytes(&[0; 31]).is_none());
    }
}
