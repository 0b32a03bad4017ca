//! `/healthz`, `/readyz` and `/metrics` on one small HTTP listener.

use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::{metrics::Metrics, phase::Readiness};

#[derive(Clone)]
pub struct Health {
    pub readiness: Readiness,
    pub metrics: Arc<Metrics>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
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
