//! Start-up, before anything acts: the API server answers, the CRD is installed and readable,
//! and the proof key is loaded (or created on the first start). Each failure is one variant of
//! [`StartupError`], whose message says what to do; the process prints it and exits non-zero.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};

use crate::{
    api::{CRD_REVISION, CRD_REVISION_ANNOTATION, DataMinerKeySet},
    controller::Namespaces,
    proof::{self, DATA_KEY, ProofKey},
};

/// How long each start-up request may take: a server that holds it (overloaded, or API
/// Priority and Fairness queueing it) must end start-up with a message, not hang it silently.
const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("no Kubernetes configuration (in-cluster or KUBECONFIG): {0}")]
    NoConfiguration(#[source] Box<kube::Error>),
    #[error("the Kubernetes API server did not answer within 10s")]
    ServerSilent,
    #[error("cannot reach the Kubernetes API server: {0}")]
    Unreachable(#[source] Box<kube::Error>),
    #[error("the Kubernetes API server did not answer a list of DataMinerKeySets within 10s")]
    ListSilent,
    #[error(
        "the DataMinerKeySet CRD is not installed: run `kubectl apply --server-side -f crds/` (or install the Helm chart)"
    )]
    NoCrd,
    #[error(
        "the installed DataMinerKeySet CRD is {}, older than this operator's (revision {needed}): apply this release's CRD first (`kubectl apply --server-side -f crds/`, or the release's dataminer-keys-operator-crds.yaml; with Flux, upgrade.crds: CreateReplace), then start the operator again",
        installed.map_or("without a revision".to_string(), |r| format!("revision {r}"))
    )]
    CrdOutdated { installed: Option<u32>, needed: u32 },
    #[error("not allowed to list DataMinerKeySets: {0}; check the operator's RBAC")]
    ListForbidden(String),
    #[error("listing DataMinerKeySets failed: {0}")]
    ListFailed(#[source] Box<kube::Error>),
    #[error(
        "Secret {namespace}/{name} has no valid {DATA_KEY}; delete it only if no key set holds keys yet (see docs/design.md, \"Trust\"; docs/backup.md for a lost key)"
    )]
    InvalidProofKey { namespace: String, name: String },
    #[error("{step} the proof key Secret {namespace}/{name}: {source}")]
    ProofKeyStore {
        step: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("the proof key Secret {namespace}/{name} vanished")]
    ProofKeyVanished { namespace: String, name: String },
    #[error("{0}")]
    RandomSource(#[from] crate::keys::RandomSourceError),
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
    #[error("cannot listen on {address}: {source}{}", in_use_hint(source))]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The API server answers, and DataMinerKeySets can be listed where the operator watches.
pub async fn preflight(client: &Client, namespaces: &Namespaces) -> Result<(), StartupError> {
    let version = tokio::time::timeout(BOUND, client.apiserver_version())
        .await
        .map_err(|_| StartupError::ServerSilent)?
        .map_err(|e| StartupError::Unreachable(Box::new(e)))?;
    tracing::info!(version = version.git_version, "connected to the API server");
    let api: Api<DataMinerKeySet> = match namespaces {
        Namespaces::All => Api::all(client.clone()),
        Namespaces::Only(list) => Api::namespaced(client.clone(), &list[0]),
    };
    let listed = tokio::time::timeout(BOUND, api.list(&ListParams::default().limit(1)))
        .await
        .map_err(|_| StartupError::ListSilent)?;
    match listed {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(StartupError::NoCrd),
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Err(StartupError::ListForbidden(s.message));
        }
        Err(e) => return Err(StartupError::ListFailed(Box::new(e))),
    }
    check_crd_revision(client).await
}

/// Refuses a CRD older than the operator's: its schema would drop fields the operator writes
/// (status pruned) or miss admission rules the operator relies on. An operator that may not read
/// CRDs (an install without the chart's `crd-reader` ClusterRole) says so and goes on.
async fn check_crd_revision(client: &Client) -> Result<(), StartupError> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::Resource;
    let name = format!(
        "{}.{}",
        DataMinerKeySet::plural(&()),
        DataMinerKeySet::group(&())
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let read = match tokio::time::timeout(BOUND, crds.get_opt(&name)).await {
        Ok(read) => read,
        Err(_) => return Err(StartupError::ServerSilent),
    };
    let crd = match read {
        Ok(Some(crd)) => crd,
        Ok(None) => return Err(StartupError::NoCrd),
        Err(e) => {
            tracing::warn!(crd = name, error = %e, "cannot read the CRD to check its revision; going on");
            return Ok(());
        }
    };
    let installed = crd
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CRD_REVISION_ANNOTATION))
        .and_then(|r| r.parse::<u32>().ok());
    match installed {
        Some(revision) if revision >= CRD_REVISION => Ok(()),
        installed => Err(StartupError::CrdOutdated {
            installed,
            needed: CRD_REVISION,
        }),
    }
}

/// Reads the proof key from Secret `name` in `namespace`, creating it on first start. Two
/// replicas starting at once both end up with the one that was created first.
pub async fn load_or_create_proof_key(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<ProofKey, StartupError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let store = |step: &'static str| {
        move |source| StartupError::ProofKeyStore {
            step,
            namespace: namespace.into(),
            name: name.into(),
            source: Box::new(source),
        }
    };
    let read = |secret: Secret| {
        proof::from_secret(&secret).ok_or_else(|| StartupError::InvalidProofKey {
            namespace: namespace.into(),
            name: name.into(),
        })
    };
    if let Some(secret) = api.get_opt(name).await.map_err(store("reading"))? {
        return read(secret);
    }
    let key = ProofKey::generate()?;
    match api
        .create(&PostParams::default(), &proof::to_secret(&key, name))
        .await
    {
        Ok(_) => Ok(key),
        // Another replica created it first: use theirs.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            match api.get_opt(name).await.map_err(store("reading"))? {
                Some(secret) => read(secret),
                None => Err(StartupError::ProofKeyVanished {
                    namespace: namespace.into(),
                    name: name.into(),
                }),
            }
        }
        Err(e) => Err(store("creating")(e)),
    }
}

/// What to do when the metrics address is taken (often a second `make run` on the same machine).
fn in_use_hint(source: &std::io::Error) -> &'static str {
    match source.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another process (a second operator or make run?) uses it: pass another with --metrics-address, for example 127.0.0.1:0 for any free port (make run RUN_ARGS='--metrics-address 127.0.0.1:0')"
        }
        _ => "",
    }
}
