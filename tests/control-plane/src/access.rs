//! What a suite does with a running control plane: its kubeconfig and processes, clients for
//! users and service accounts, a fresh namespace, and the CRDs and admission policies
//! installed.

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Client, Config,
    api::{Api, ObjectMeta, Patch, PatchParams, PostParams},
    config::KubeConfigOptions,
};
use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{ControlPlane, Error, FIELD_MANAGER, Result, io, kube_err, policies};

impl ControlPlane {
    /// The admin kubeconfig file, for a local control plane.
    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig_path.as_deref()
    }

    /// Process ids of the processes this control plane started (empty when attached).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|l| l.child.id()).collect()
    }

    /// Where certificates, logs and etcd data live, for a local control plane.
    pub fn state_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The API server's port on the host's loopback, for a local control plane.
    pub fn api_port(&self) -> Result<u16> {
        let server = self
            .kubeconfig
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .unwrap_or_default();
        server
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .filter(|_| self.dir.is_some())
            .ok_or_else(|| Error::Kubeconfig(format!("no local API server port in {server:?}")))
    }

    /// Directory holding the kubectl, kube-apiserver, etcd binaries, for a local control plane.
    pub fn bin_dir(&self) -> Option<&Path> {
        self.bin_dir.as_deref()
    }

    /// The admin client configuration.
    pub async fn config(&self) -> Result<Config> {
        Config::from_custom_kubeconfig(self.kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))
    }

    /// A new admin client. Clients are bound to the Tokio runtime that creates them, so every
    /// test asks for its own.
    pub async fn client(&self) -> Result<Client> {
        Client::try_from(self.config().await?).map_err(kube_err("build client"))
    }

    /// A client that impersonates `user` in `groups` (RBAC tests).
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<Client> {
        let mut config = self.config().await?;
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        Client::try_from(config).map_err(kube_err("build impersonating client"))
    }

    /// A client acting as the ServiceAccount `namespace/name`.
    pub async fn client_as_service_account(&self, namespace: &str, name: &str) -> Result<Client> {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let ns_group = format!("system:serviceaccounts:{namespace}");
        self.client_as(
            &user,
            &["system:serviceaccounts", &ns_group, "system:authenticated"],
        )
        .await
    }

    /// Creates a fresh namespace named `<prefix>-<random>` and returns its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let api: Api<Namespace> = Api::all(self.client().await?);
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = api
            .create(&PostParams::default(), &ns)
            .await
            .map_err(kube_err("create namespace"))?;
        Ok(created.metadata.name.expect("server sets the name"))
    }

    /// Server-side applies every CRD in `dir` and waits until each is Established.
    pub async fn install_crds(&self, dir: &Path) -> Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client().await?);
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io(format!("read {}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        entries.sort();
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        for path in entries {
            let text = fs::read_to_string(&path).map_err(io(format!("read {}", path.display())))?;
            let crd: CustomResourceDefinition = serde_yaml::from_str(&text)
                .map_err(|e| Error::Yaml(format!("{}: {e}", path.display())))?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &pp, &Patch::Apply(&crd))
                .await
                .map_err(kube_err(format!("apply CRD {name}")))?;
            wait_established(&api, &name, Duration::from_secs(30)).await?;
        }
        Ok(())
    }

    /// Applies the admission policies the chart at `chart` renders for this cluster (see
    /// [`Options::chart_dir`]); returns `Kind/name` of each.
    pub async fn install_admission_policies(&self, chart: &Path) -> Result<Vec<String>> {
        let client = self.client().await?;
        policies::install(&client, self.kubeconfig_path(), self.dir.as_deref(), chart).await
    }
}

async fn wait_established(
    api: &Api<CustomResourceDefinition>,
    name: &str,
    within: Duration,
) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(crd) = api.get(name).await {
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::CrdNotEstablished {
        name: name.to_string(),
        seconds: within.as_secs(),
    })
}
