//! The requester webhook: who asked, recorded at admission on clusters that do not serve
//! MutatingAdmissionPolicy v1 (Kubernetes before 1.36; docs/audit.md). The chart renders a
//! MutatingWebhookConfiguration pointing here instead of the policy, and the operator serves it
//! on every replica, leader or not:
//! - [`review`]: the AdmissionReview handler, which applies the core's [`crate::stamp`];
//! - [`certs`]: its own CA and serving certificate, rotated before they expire;
//! - [`keeper`]: keeps the certificate's Secret, the configuration's caBundle and the listener
//!   in step;
//! - [`tls`]: the TLS listener.

pub mod certs;
pub mod keeper;
pub mod review;
pub mod tls;

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::post};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::{Api, Client};

pub use tls::Serving;

/// The webhook's path, as the chart's MutatingWebhookConfiguration names it.
pub const PATH: &str = "/requester";

/// The flags that turn the webhook on, parsed.
#[derive(Clone, Debug)]
pub struct Settings {
    pub address: SocketAddr,
    /// The Secret (in the operator's namespace) holding the CA bundle and serving certificate.
    pub secret: String,
    /// The MutatingWebhookConfiguration whose caBundle the operator keeps.
    pub configuration: String,
    /// DNS names and IP addresses the certificate is for (the Service's names, or 127.0.0.1).
    pub hosts: Vec<String>,
    pub lifetime: Duration,
    pub add_finalizer: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot listen for the webhook on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("webhook: cannot {what}: {source}")]
    Api {
        what: &'static str,
        source: kube::Error,
    },
    #[error(transparent)]
    Issue(#[from] certs::IssueError),
}

impl WebhookError {
    fn api(what: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| WebhookError::Api { what, source }
    }
}

/// Binds the listener and starts serving and keeping the certificate. Returns what is served,
/// for `/readyz`: a replica is ready only once it holds a certificate.
pub async fn start(
    client: Client,
    namespace: &str,
    settings: Settings,
) -> Result<Serving, WebhookError> {
    let tcp = tokio::net::TcpListener::bind(settings.address)
        .await
        .map_err(|source| WebhookError::Bind {
            address: settings.address,
            source,
        })?;
    let serving = Serving::default();
    let listener =
        tls::Listener::new(tcp, serving.clone()).map_err(|source| WebhookError::Bind {
            address: settings.address,
            source,
        })?;
    let router = Router::new()
        .route(PATH, post(review::requester))
        .with_state(review::Stamping {
            add_finalizer: settings.add_finalizer,
        });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "webhook: the server stopped");
        }
    });
    let keeper = keeper::Keeper {
        secrets: Api::namespaced(client.clone(), namespace),
        configs: Api::<MutatingWebhookConfiguration>::all(client),
        secret_name: settings.secret,
        config_name: settings.configuration,
        hosts: settings.hosts,
        lifetime: settings.lifetime,
        serving: serving.clone(),
    };
    tokio::spawn(keeper.run());
    tracing::info!(address = %settings.address, "webhook: serving {PATH}");
    Ok(serving)
}
