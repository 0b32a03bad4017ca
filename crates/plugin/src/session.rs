//! The plugin's connection to the cluster and every API call it makes, each in a tracing span
//! (`RUST_LOG=debug kubectl dmkeys ...` shows them).

use std::time::Duration;

use k8s_openapi::api::{
    authentication::v1::SelfSubjectReview, core::v1::Secret, events::v1::Event,
};
use kube::{
    Api, Client, Config, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;
use tracing::instrument;

use super::{
    Cli, FIELD_MANAGER,
    failure::{Result, exit, fail},
};
use crate::api::{DataMinerKeySet, REPORTING_CONTROLLER};

/// A client and the namespace the command works in.
pub(super) struct Session {
    pub client: Client,
    pub namespace: String,
}

impl Session {
    pub async fn connect(cli: &Cli) -> Result<Session> {
        let kubeconfig = match &cli.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|e| fail(exit::ERROR, format!("cannot read the kubeconfig: {e}")))?;
        let options = KubeConfigOptions {
            context: cli.context.clone(),
            cluster: cli.cluster.clone(),
            user: cli.user.clone(),
        };
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| fail(exit::ERROR, format!("kubeconfig: {e}")))?;
        // kubectl's own flags, with kubectl's meaning.
        if let Some(user) = &cli.as_user {
            config.auth_info.impersonate = Some(user.clone());
            config.auth_info.impersonate_groups =
                (!cli.as_groups.is_empty()).then(|| cli.as_groups.clone());
        }
        if let Some(limit) = cli.request_timeout {
            let limit = (!limit.is_zero()).then_some(limit);
            (
                config.connect_timeout,
                config.read_timeout,
                config.write_timeout,
            ) = (limit, limit, limit);
        }
        let namespace = cli
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| fail(exit::ERROR, e.to_string()))?;
        Ok(Session { client, namespace })
    }

    fn keysets(&self) -> Api<DataMinerKeySet> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Maps API errors to the plugin's messages and exit codes.
    pub fn api_error(&self, what: &str, name: Option<&str>, e: kube::Error) -> super::Failure {
        match &e {
            kube::Error::Api(s)
                if s.code == 404
                    && s.details
                        .as_ref()
                        .is_some_and(|d| d.kind == "dataminerkeysets") =>
            {
                fail(
                    exit::NOT_FOUND,
                    format!(
                        "key set {} not found in namespace {}",
                        name.unwrap_or("?"),
                        self.namespace
                    ),
                )
            }
            // The API server answers a plain 404 for a resource type it does not serve.
            kube::Error::Api(s)
                if s.code == 404
                    && (s.message.contains("page not found")
                        || s.message.contains("could not find the requested resource")) =>
            {
                fail(
                    exit::NO_CRD,
                    "the DataMinerKeySet CRD is not installed in this cluster: install the dataminer-keys-operator chart (or kubectl apply --server-side -f crds/)",
                )
            }
            kube::Error::Api(s) if s.code == 404 => {
                fail(exit::NOT_FOUND, format!("{what}: {}", s.message))
            }
            kube::Error::Api(s) if s.code == 403 => {
                fail(exit::FORBIDDEN, format!("{what}: {}", s.message))
            }
            // kube's Display of an API error appends its Debug form: the message alone.
            kube::Error::Api(s) => fail(exit::ERROR, format!("{what}: {}", s.message)),
            _ => fail(exit::ERROR, format!("{what}: {e}")),
        }
    }

    #[instrument(skip(self), fields(namespace = %self.namespace))]
    pub async fn get(&self, name: &str) -> Result<DataMinerKeySet> {
        self.keysets()
            .get(name)
            .await
            .map_err(|e| self.api_error("reading the key set", Some(name), e))
    }

    /// Key sets in this namespace, or in all of them.
    #[instrument(skip(self), fields(namespace = %self.namespace))]
    pub async fn list(&self, all_namespaces: bool) -> Result<Vec<DataMinerKeySet>> {
        let api = if all_namespaces {
            Api::all(self.client.clone())
        } else {
            self.keysets()
        };
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|e| self.api_error("listing key sets", None, e))
    }

    /// Events about `ks`, oldest first; why not, when they cannot be read (`describe` says so
    /// rather than show none).
    #[instrument(skip_all, fields(namespace = %self.namespace, name = %ks.name_any()))]
    pub async fn events_of(&self, ks: &DataMinerKeySet) -> std::result::Result<Vec<Event>, String> {
        let listed = Api::<Event>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) => s.message,
                other => other.to_string(),
            })?;
        let mut events: Vec<Event> = listed
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == ks.uid().as_deref())
            // The audit trail is what the operator reported; anyone who may create Events could
            // write others (docs/security.md).
            .filter(|e| e.reporting_controller.as_deref() == Some(REPORTING_CONTROLLER))
            .collect();
        events.sort_by_key(|e| {
            e.event_time.as_ref().map(|t| t.0).or(e
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0))
        });
        Ok(events)
    }

    /// The Secret `name`; its values never enter the span.
    #[instrument(skip(self), fields(namespace = %self.namespace))]
    pub async fn secret(&self, name: &str) -> std::result::Result<Secret, kube::Error> {
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .get(name)
            .await
    }

    #[instrument(skip_all, fields(namespace = %self.namespace, name = %ks.name_any()))]
    pub async fn create(&self, ks: &DataMinerKeySet) -> std::result::Result<(), kube::Error> {
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.keysets().create(&params, ks).await.map(drop)
    }

    /// Server-side applies `spec` (a part of the spec) to key set `name` under the plugin's own
    /// field manager; `force` takes fields over from their other managers.
    #[instrument(skip(self, spec), fields(namespace = %self.namespace))]
    pub async fn apply_spec(
        &self,
        name: &str,
        spec: serde_json::Value,
        force: bool,
    ) -> std::result::Result<(), kube::Error> {
        let patch = json!({
            "apiVersion": DataMinerKeySet::api_version(&()),
            "kind": DataMinerKeySet::kind(&()),
            "metadata": { "name": name },
            "spec": spec,
        });
        self.keysets()
            .patch(
                name,
                &match force {
                    true => PatchParams::apply(FIELD_MANAGER).force(),
                    false => PatchParams::apply(FIELD_MANAGER),
                },
                &Patch::Apply(&patch),
            )
            .await
            .map(drop)
    }

    /// Who the API server says we are.
    #[instrument(skip(self))]
    pub async fn whoami(&self) -> String {
        let review = SelfSubjectReview::default();
        match Api::<SelfSubjectReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
        {
            Ok(r) => r
                .status
                .and_then(|s| s.user_info)
                .and_then(|u| u.username)
                .unwrap_or_else(|| "<unknown>".into()),
            Err(_) => "<unknown>".into(),
        }
    }

    /// Reads key set `name` until `done` finds what it waits for, or `timeout` seconds pass.
    #[instrument(skip(self, done), fields(namespace = %self.namespace))]
    pub async fn wait_for<T>(
        &self,
        name: &str,
        timeout: Duration,
        done: impl Fn(&DataMinerKeySet) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = done(&self.get(name).await?) {
                return Ok(found);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(fail(
                    exit::TIMEOUT,
                    format!(
                        "the operator did not report the result within {}s: is dataminer-keys-operator running? (kubectl describe dmks {name})",
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
