//! The HTTP surface: health, readiness, GraphQL (POST + JSON only) and GraphiQL.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use passerelle_migrations::{Migrator, MigratorTrait};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let production = state.settings.is_production();
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/graphql/ws", get(crate::live::graphql_ws))
        .route(
            "/graphql",
            post(crate::graphql_http::graphql).layer(DefaultBodyLimit::max(crate::graphql_http::MAX_BODY)),
        )
        .route("/uploads", post(crate::uploads::upload).layer(DefaultBodyLimit::disable()))
        .route("/attachments", post(crate::attachments::upload).layer(DefaultBodyLimit::disable()))
        .route("/attachments/{id}", get(crate::attachments::download))
        .route("/oauth/token", post(crate::oauth::token).layer(DefaultBodyLimit::max(crate::oauth::MAX_BODY)));
    if !production {
        router = router.route("/graphiql", get(graphiql));
    }
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    router
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The public keys of tickets' `qrPayload` (RFC 7517). Cacheable for a few minutes: a key
/// is published long before its tickets matter and stays until they are all used or expired.
async fn jwks(State(state): State<AppState>) -> Response {
    match passerelle_domain::spending::jwks(&state.db).await {
        Ok(set) => ([(axum::http::header::CACHE_CONTROL, "public, max-age=300")], Json(set)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "jwks");
            crate::error::refuse(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
        }
    }
}

/// The process is alive (no dependency checked: a database outage must not get us killed).
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready to take traffic: database reachable, migrations applied, not shutting down.
async fn readyz(State(state): State<AppState>) -> Response {
    let unavailable =
        |status: &str| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": status }))).into_response();
    if state.shutting_down.load(Ordering::SeqCst) {
        return unavailable("shutting_down");
    }
    if let Err(e) = state.db.ping().await {
        tracing::warn!(error = %e, "readiness: database unreachable");
        return unavailable("database_unreachable");
    }
    match Migrator::get_pending_migrations(&state.db).await {
        Ok(pending) if pending.is_empty() => Json(json!({ "status": "ready" })).into_response(),
        Ok(_) => unavailable("migrations_pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: cannot read migrations");
            unavailable("database_unreachable")
        }
    }
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}
