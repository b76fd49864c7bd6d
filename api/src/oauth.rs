//! `POST /oauth/token`: the OAuth 2.0 client credentials grant (RFC 6749 §4.4) for partners'
//! club software.
//!
//! The request is `application/x-www-form-urlencoded` with `grant_type=client_credentials`; the
//! client authenticates with HTTP Basic (§2.3.1: `client_id:client_secret`, each form-encoded,
//! then base64) or with `client_id` and `client_secret` form fields — one method, not both. The
//! answer is JSON, never cached (§5.1): `{access_token, token_type: "Bearer", expires_in}`, or
//! an error (§5.2): `invalid_request` / `unsupported_grant_type` (400), `invalid_client` (401,
//! with `WWW-Authenticate`). A client id or IP blocked after repeated failures gets 429
//! `temporarily_unavailable`.
//!
//! The checks themselves (secret hash, revocation, throttling) are the domain's
//! ([`passerelle_domain::auth::client_credentials_grant`]); this module only speaks HTTP.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use passerelle_domain::Error;
use passerelle_domain::auth::client_credentials_grant;
use serde_json::json;

use crate::auth::ClientAddr;
use crate::state::AppState;

/// Largest token request body: a few short parameters.
pub const MAX_BODY: usize = 8 * 1024;

/// An RFC 6749 §5.2 error.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// Seconds for `Retry-After` (429 only).
    retry_after: Option<u64>,
}

impl OAuthError {
    fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
            retry_after: None,
        }
    }

    fn invalid_client() -> Self {
        let description = "client authentication failed".into();
        OAuthError { status: StatusCode::UNAUTHORIZED, error: "invalid_client", description, retry_after: None }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut r = no_store((self.status, Json(body)).into_response());
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"passerelle\""));
        }
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

/// Tokens and errors about them must not be cached (§5.1).
fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Reads the form; a repeated parameter is an error (§3.2), an empty one counts as absent.
fn parse_form(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut params = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::invalid_request(format!("the parameter {k} is repeated")));
        }
    }
    params.retain(|_, v| !v.is_empty());
    Ok(params)
}

/// `client_id` and `client_secret` from an `Authorization: Basic` header (§2.3.1). `None`
/// when the header is not usable Basic credentials.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// Undoes the form encoding §2.3.1 applies to each Basic credential ("+" and "%XX").
fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// The client credentials of the request, by exactly one method.
fn credentials(headers: &HeaderMap, form: &BTreeMap<String, String>) -> Result<(String, String), OAuthError> {
    let form_id = form.get("client_id");
    match (headers.get(header::AUTHORIZATION), form.get("client_secret")) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("use one client authentication method, not two")),
        (Some(h), None) => {
            let (id, secret) = basic_credentials(h).ok_or_else(OAuthError::invalid_client)?;
            if form_id.is_some_and(|f| *f != id) {
                return Err(OAuthError::invalid_request("client_id differs from the authenticated client"));
            }
            Ok((id, secret))
        }
        (None, Some(secret)) => {
            let id = form_id.ok_or_else(|| OAuthError::invalid_request("client_id is required with client_secret"))?;
            Ok((id.clone(), secret.clone()))
        }
        (None, None) => Err(OAuthError::invalid_client()),
    }
}

pub async fn token(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(&state, ip, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn exchange(state: &AppState, ip: IpAddr, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
    let form_body = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !form_body {
        return Err(OAuthError::invalid_request("send application/x-www-form-urlencoded"));
    }
    let form = parse_form(body)?;
    match form.get("grant_type").map(String::as_str) {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => {
            let description = "only client_credentials is supported".into();
            let error = "unsupported_grant_type";
            return Err(OAuthError { status: StatusCode::BAD_REQUEST, error, description, retry_after: None });
        }
    }
    let (client_id, secret) = credentials(headers, &form)?;
    match client_credentials_grant(&state.db, &state.auth, &client_id, &secret, &ip.to_string()).await {
        Ok(t) => {
            let body = json!({ "access_token": t.access_token, "token_type": "Bearer", "expires_in": t.expires_in });
            Ok(no_store(Json(body).into_response()))
        }
        Err(Error::Unauthenticated) => Err(OAuthError::invalid_client()),
        Err(e @ (Error::RateLimited | Error::Throttled { .. })) => Err(OAuthError {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "temporarily_unavailable",
            description: "too many attempts, retry later".into(),
            retry_after: match e {
                Error::Throttled { retry_after_secs } => Some(retry_after_secs),
                _ => None,
            },
        }),
        Err(e) => {
            tracing::error!(error = ?e, "token endpoint failed");
            let description = "internal error".into();
            Err(OAuthError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                error: "server_error",
                description,
                retry_after: None,
            })
        }
    }
}
