//! `POST /graphql` after the GraphQL-over-HTTP specification: `application/json` bodies only
//! (no CSRF through HTML forms, security.md G13), no batches (G7), and `Accept` negotiation:
//! - `application/json` (or no `Accept`): every answer is 200, errors in the body, as the
//!   mobile apps expect;
//! - `application/graphql-response+json`: a request that could not start (parse or
//!   validation error) is 400 and its body has no `data` entry; one that ran is 200.
//!
//! Anything else acceptable to neither is 406.

use async_graphql_axum::GraphQLResponse;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passerelle_graphql::{Caller, ClientIp};

use crate::auth::{Auth, AuthRejection};
use crate::error::{error_body, refuse};
use crate::state::AppState;

/// Largest GraphQL request body.
pub const MAX_BODY: usize = 256 * 1024;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// The media type the client accepts, in its order of preference (q-values honoured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Json,
    GraphqlResponse,
}

fn negotiate(headers: &HeaderMap) -> Option<Answer> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Answer::Json);
    };
    let mut best: Option<(f32, Answer)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|v| v.parse::<f32>().ok()).unwrap_or(1.0);
        let answer = match media.as_str() {
            GRAPHQL_RESPONSE => Answer::GraphqlResponse,
            "application/json" | "application/*" | "*/*" => Answer::Json,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, answer));
        }
    }
    best.map(|(_, a)| a)
}

pub async fn graphql(
    State(state): State<AppState>,
    auth: Result<Auth, AuthRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(answer) = negotiate(&headers) else {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "accept application/json or application/graphql-response+json",
        );
    };
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
        Err(refusal) if answer == Answer::Json => {
            return Json(error_body(refusal.code(), &refusal.message())).into_response();
        }
        Err(refusal) => return refusal.into_response(),
    };
    let request = request.data(Caller(auth.caller)).data(ClientIp(auth.ip.to_string()));
    let mut response = async_graphql::Executor::execute(&state.schema, request).await;
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
    // A request error: nothing ran (no data, and no error points into the result).
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut http = match answer {
        Answer::GraphqlResponse if request_error => {
            let body = serde_json::json!({ "errors": response.errors });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        _ => GraphQLResponse::from(response).into_response(),
    };
    // async-graphql-axum answers `application/graphql-response+json` whatever was asked.
    let content_type = match answer {
        Answer::GraphqlResponse => GRAPHQL_RESPONSE,
        Answer::Json => "application/json",
    };
    http.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Throttled operations say when to come back (RFC 9110 §10.2.3), like `/oauth/token`.
    if let Some(secs) = retry_after {
        http.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    http
}
