//! The HTTP surface: health, readiness, GraphQL (POST + JSON only) and GraphiQL.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLResponse;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use passerelle_graphql::{Caller, ClientIp};
use passerelle_migrations::{Migrator, MigratorTrait};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Auth, AuthRejection};
use crate::error::{error_body, refuse};
use crate::state::AppState;

/// Largest GraphQL request body; uploads will get their own route and limits.
const MAX_BODY: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    let production = state.settings.is_production();
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/graphql", post(graphql).layer(DefaultBodyLimit::max(MAX_BODY)))
        .route("/uploads", post(crate::uploads::upload).layer(DefaultBodyLimit::disable()))
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

/// `POST /graphql`, `application/json` only: other content types are refused (no CSRF through
/// HTML forms, security.md G13) and so are batches (G7), which would multiply one request's cost.
async fn graphql(
    State(state): State<AppState>,
    auth: Result<Auth, AuthRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json_body {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send application/json");
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return refuse(StatusCode::BAD_REQUEST, "BAD_REQUEST", "the body must be one GraphQL request object");
        }
    };
    // A bearer token that does not check out is an error (the app refreshes), not anonymity;
    // over `application/json` a GraphQL error comes with 200 like any other.
    let auth = match auth {
        Ok(auth) => auth,
        Err(refusal) => return Json(error_body(refusal.code(), &refusal.message())).into_response(),
    };
    let request = request.data(Caller(auth.caller)).data(ClientIp(auth.ip.to_string()));
    let mut response = state.schema.execute(request).await;
    // Resolver errors carry their code already (ApiError); what has none comes from parsing,
    // validation, limits or input coercion (an amount with three decimals): the client's input.
    for e in &mut response.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
    let retry_after = response
        .errors
        .iter()
        .filter_map(|e| e.extensions.as_ref()?.get("retryAfter").cloned())
        .filter_map(|v| match v {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .max();
    let mut response = GraphQLResponse::from(response).into_response();
    // Throttled operations say when to come back (RFC 9110 §10.2.3), like `/oauth/token`.
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
    }
    response
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}
