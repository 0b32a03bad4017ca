//! Where the proof key lives: a Secret beside the Lease in the operator's own namespace, read
//! at start-up and created on the first start (its shape is `proof::to_secret`).

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, api::PostParams};

use crate::proof::{self, DATA_KEY, ProofKey};

/// Reads the proof key from Secret `name` in `namespace`, creating it on first start. Two
/// replicas starting at once both end up with the one that was created first.
pub async fn load_or_create(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<ProofKey, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |secret: Secret| {
        proof::from_secret(&secret).ok_or_else(|| {
            format!(
                "Secret {namespace}/{name} has no valid {DATA_KEY}; delete it only if no key set holds keys yet (see docs/design.md, \"Trust\"; docs/backup.md for a lost key)"
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
    match api
        .create(&PostParams::default(), &proof::to_secret(&key, name))
        .await
    {
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
