//! `/healthz`, `/readyz` and `/metrics` on one small HTTP listener.

use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::{metrics::Metrics, phase::Readiness, webhook::Serving};

#[derive(Clone)]
pub struct Health {
    pub readiness: Readiness,
    pub metrics: Arc<Metrics>,
    /// The requester webhook, when this replica serves one: not ready without a certificate,
    /// so that its Service sends admission requests only to replicas that can answer them.
    pub webhook: Option<Serving>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.webhook.as_ref().is_some_and(|w| !w.is_loaded()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook certificate not loaded yet",
        );
    }
    match h.readiness.check() {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        axum::body::Body::from_stream(h.metrics.clone().render_chunks()),
    )
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, health: Health) -> std::io::Result<()> {
    axum::serve(listener, router(health)).await
}
