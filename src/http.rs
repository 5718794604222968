//! Operational routes: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use crate::api::extract::header_text;
use crate::error::{ApiError, Code};
use crate::server::AppState;

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the store: a store that is down, stalled
/// or cut off answers 503 this quickly, not after the driver's timeouts.
const READY_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /readyz`: the server accepts connections and its store answers
/// (and, for the embedded store after a failed write, can write again)
/// within [`READY_STORE_TIMEOUT`]; 503 otherwise. With replicas, it also
/// says whether Redis is reachable; while it is not, the replica still
/// stores and serves its own clients, so it stays ready (200) with
/// `"status": "degraded"` and `"redis": "down"`.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.registry.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    match tokio::time::timeout(READY_STORE_TIMEOUT, state.registry.store().ping()).await {
        Ok(answer) => answer.map_err(|e| ApiError::store_unavailable(&e))?,
        Err(_) => {
            return Err(ApiError::store_unavailable(&format!(
                "the store did not answer a ping within {READY_STORE_TIMEOUT:?}"
            )))
        }
    }
    let redis = match state.registry.bus_connected() {
        None => "off",
        Some(true) => "up",
        Some(false) => "down",
    };
    let status = if redis == "down" { "degraded" } else { "ready" };
    Ok(Json(
        serde_json::json!({ "status": status, "store": "ok", "redis": redis }),
    ))
}

/// `GET /metrics`: Prometheus text format. With `--metrics-token`, only
/// for a scraper that presents it (401 otherwise).
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(want) = &state.config.metrics_token {
        let given = header_text(&headers, header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::auth::secret::same(given.as_bytes(), want.as_bytes()) {
            return Err(ApiError::new(
                Code::Unauthorized,
                "metrics need the token given to --metrics-token",
            ));
        }
    }
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            crate::telemetry::metrics::CONTENT_TYPE,
        )],
        state.exporter.render(),
    ))
}
