//! The one error body of the HTTP routes outside GraphQL: the same shape GraphQL answers with
//! (`{"errors": [{"message", "extensions": {"code"}}]}`), so the apps read every refusal alike.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refusal with an HTTP status, a stable code (`mobile-contract/error-codes.md`) and a message.
pub fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(error_body(code, message))).into_response()
}

/// The body alone, for routes that answer 200 with errors (GraphQL over `application/json`).
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}
