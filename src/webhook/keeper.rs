//! Keeps the webhook trusted: the Secret holds a valid certificate for the webhook's hosts, the
//! webhook configuration's caBundle trusts it, and the listener serves it. Every replica runs
//! one; writes carry the resourceVersion they read, so when two rotate at once one wins and the
//! other adopts its result. Driven by watches on the two objects and a timer for the next
//! rotation: nothing is requested at rest.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use base64::Engine;
use futures::{StreamExt, stream};
use k8s_openapi::{
    ByteString, api::admissionregistration::v1::MutatingWebhookConfiguration, api::core::v1::Secret,
};
use kube::{
    Api,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};

use super::{
    WebhookError,
    certs::{self, CA_BUNDLE, TLS_CERT, TLS_KEY},
    tls::Serving,
};

/// The field manager of the caBundle, and only of it: Helm owns the rest of the configuration.
pub const CA_BUNDLE_MANAGER: &str = "dataminer-keys-operator-webhook";

pub struct Keeper {
    pub secrets: Api<Secret>,
    pub configs: Api<MutatingWebhookConfiguration>,
    pub secret_name: String,
    pub config_name: String,
    pub hosts: Vec<String>,
    pub lifetime: Duration,
    pub serving: Serving,
}

/// What one pass found, for the log and the next wait.
enum Passed {
    /// All in place; check again at the latest after this long.
    Settled(Duration),
    /// Another writer moved first, or the configuration is not there yet: look again at once
    /// (a conflict) or at the next watch event.
    Retry,
}

impl Keeper {
    /// Runs until the process ends.
    pub async fn run(self) {
        let by_name =
            |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
        let secret_events = watcher(self.secrets.clone(), by_name(&self.secret_name))
            .default_backoff()
            .map(|_| ());
        let config_events = watcher(self.configs.clone(), by_name(&self.config_name))
            .default_backoff()
            .map(|_| ());
        let mut events = stream::select(secret_events, config_events).boxed();
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                Some(()) = events.next() => {}
            }
            wait = match self.pass().await {
                Ok(Passed::Settled(next)) => next,
                Ok(Passed::Retry) => Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: cannot keep the certificate; retrying");
                    Duration::from_secs(10)
                }
            };
        }
    }

    async fn pass(&self) -> Result<Passed, WebhookError> {
        let now = SystemTime::now();
        let stored = self
            .secrets
            .get_opt(&self.secret_name)
            .await
            .map_err(WebhookError::api("read the webhook certificate Secret"))?;
        let file = |name: &str| -> Option<String> {
            let data = stored.as_ref()?.data.as_ref()?;
            String::from_utf8(data.get(name)?.0.clone()).ok()
        };
        let serving = file(TLS_CERT).and_then(|pem| certs::read_bundle(&pem));
        let seen = serving
            .as_ref()
            .and_then(|s| s.first())
            .map(|(_, seen)| seen);
        // A key that does not load is as good as no certificate.
        let loads = match (file(TLS_CERT), file(TLS_KEY)) {
            (Some(cert), Some(key)) => self.serving.load(&cert, &key).is_ok(),
            _ => false,
        };
        // A bundle that does not read (a hand edit) would be copied into the configuration and
        // trust nothing: start again from a new CA rather than serve a broken webhook.
        let bundle_reads = file(CA_BUNDLE)
            .and_then(|pem| certs::read_bundle(&pem))
            .is_some();
        let due = match (loads, bundle_reads) {
            (true, true) => certs::rotation_due(seen, &self.hosts, self.lifetime, now),
            (false, _) => Some("no usable certificate yet"),
            (true, false) => Some("the CA bundle does not read"),
        };
        if let Some(reason) = due {
            let old_bundle = file(CA_BUNDLE);
            return self.rotate(stored, old_bundle, reason, now).await;
        }
        let bundle = file(CA_BUNDLE).unwrap_or_default();
        if !self.trust(&bundle).await? {
            return Ok(Passed::Retry);
        }
        let seen = seen.expect("a certificate that loads was read");
        let renew_at = seen.not_after
            - seen
                .not_after
                .duration_since(seen.not_before)
                .unwrap_or_default()
                .min(self.lifetime)
                / 3;
        let next = renew_at.duration_since(now).unwrap_or_default();
        Ok(Passed::Settled(next.clamp(
            Duration::from_secs(1),
            Duration::from_secs(6 * 3600),
        )))
    }

    /// Issues a new CA and certificate. The configuration trusts the new CA before any replica
    /// can serve a certificate signed by it: a crash between the two writes leaves an unused CA
    /// in the bundle, which the next rotation drops.
    async fn rotate(
        &self,
        stored: Option<Secret>,
        old_bundle: Option<String>,
        reason: &str,
        now: SystemTime,
    ) -> Result<Passed, WebhookError> {
        let issued = certs::issue(&self.hosts, self.lifetime, now)?;
        let bundle = certs::next_bundle(&issued.ca_pem, old_bundle.as_deref(), now);
        // Serving nothing yet (the first start): serve the new certificate at once, so that it
        // is there when the API server starts trusting its CA.
        if !self.serving.is_loaded() {
            let _ = self.serving.load(&issued.cert_pem, &issued.key_pem);
        }
        if !self.trust(&bundle).await? {
            return Ok(Passed::Retry);
        }
        let data: BTreeMap<String, ByteString> = [
            (CA_BUNDLE, bundle),
            (TLS_CERT, issued.cert_pem.clone()),
            (TLS_KEY, issued.key_pem.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
        .collect();
        let written = match stored {
            Some(mut secret) => {
                secret.data = Some(data);
                secret.string_data = None;
                self.secrets
                    .replace(&self.secret_name, &PostParams::default(), &secret)
                    .await
            }
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(self.secret_name.clone()),
                        labels: Some(
                            [(
                                "app.kubernetes.io/managed-by".to_string(),
                                "dataminer-keys-operator".to_string(),
                            )]
                            .into(),
                        ),
                        ..Default::default()
                    },
                    type_: Some("kubernetes.io/tls".into()),
                    data: Some(data),
                    ..Default::default()
                };
                self.secrets.create(&PostParams::default(), &secret).await
            }
        };
        match written {
            Ok(_) => {
                // The configuration trusts its CA already: serve it now, not a pass later.
                let _ = self.serving.load(&issued.cert_pem, &issued.key_pem);
                tracing::info!(reason, "webhook: certificate rotated");
                Ok(Passed::Retry)
            }
            // Another replica rotated first: take its certificate on the next pass.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Passed::Retry),
            Err(e) => Err(WebhookError::api("write the webhook certificate Secret")(e)),
        }
    }

    /// Makes every webhook of the configuration trust `bundle`. `false` when the configuration
    /// is not there (yet): the watch brings it.
    async fn trust(&self, bundle: &str) -> Result<bool, WebhookError> {
        let Some(config) = self
            .configs
            .get_opt(&self.config_name)
            .await
            .map_err(WebhookError::api("read the webhook configuration"))?
        else {
            tracing::warn!(
                configuration = self.config_name,
                "webhook: the MutatingWebhookConfiguration is missing; waiting for it"
            );
            return Ok(false);
        };
        let want = bundle.as_bytes();
        let webhooks = config.webhooks.unwrap_or_default();
        if webhooks.iter().all(|w| {
            w.client_config
                .ca_bundle
                .as_ref()
                .is_some_and(|b| b.0 == want)
        }) {
            return Ok(true);
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(want);
        let apply = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": { "name": self.config_name },
            "webhooks": webhooks.iter().map(|w| serde_json::json!({
                "name": w.name,
                "clientConfig": { "caBundle": encoded },
            })).collect::<Vec<_>>(),
        });
        self.configs
            .patch(
                &self.config_name,
                &PatchParams::apply(CA_BUNDLE_MANAGER).force(),
                &Patch::Apply(&apply),
            )
            .await
            .map_err(WebhookError::api(
                "put the CA bundle into the webhook configuration",
            ))?;
        tracing::info!(
            configuration = self.config_name,
            "webhook: CA bundle updated"
        );
        Ok(true)
    }
}
