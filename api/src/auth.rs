//! The one authentication path of every HTTP route: [`Auth`], an axum extractor.
//!
//! It reads `Authorization: Bearer <token>` and resolves the caller through the domain
//! (`auth::authenticate` re-reads the session, account, roles or API client from the database,
//! so a revocation applies at once), and the client's address for throttling. No header means
//! an anonymous caller; a header that does not check out is a refusal, never anonymity (the app
//! must refresh its token rather than silently lose its identity).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passerelle_domain::Error;
use passerelle_domain::auth::{AccountKind, Authenticated, Principal, StaffRole, authenticate};

use crate::error::refuse;
use crate::state::AppState;

/// The caller of a request and where it comes from.
#[derive(Clone, Debug)]
pub struct Auth {
    pub caller: Option<Authenticated>,
    pub ip: IpAddr,
}

/// Why a request's credentials were refused.
#[derive(Debug)]
pub struct AuthRejection(pub Error);

impl AuthRejection {
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Message safe to show: internal causes are logged, not returned.
    pub fn message(&self) -> String {
        match &self.0 {
            Error::Internal(source) => {
                tracing::error!(error = %source, "authentication failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AuthRejection {
    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3) for a bad token, 403 for a caller
    /// who may not use the route, 500 when the check itself failed.
    fn into_response(self) -> Response {
        let status = match self.0 {
            Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response = refuse(status, self.code(), &self.message());
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts);
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Auth { caller: None, ip });
        };
        let token = value.to_str().ok().and_then(|v| v.trim().strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
        let caller = authenticate(&state.db, &state.auth, token).await.map_err(AuthRejection)?;
        Ok(Auth { caller: Some(caller), ip })
    }
}

/// The peer address of the connection (the server is started with connect info).
pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(peer)| peer.ip())
}

impl Auth {
    /// A signed-in staff member holding one of `roles` on at least one funder: who may send
    /// files to the back office. Anonymous → 401, anyone else → 403.
    pub fn staff_with_any(&self, roles: &[StaffRole]) -> Result<&Principal, AuthRejection> {
        match &self.caller {
            None => Err(AuthRejection(Error::Unauthenticated)),
            Some(Authenticated::Account(p))
                if p.account.kind == AccountKind::Staff && p.staff_roles.iter().any(|(_, r)| roles.contains(r)) =>
            {
                Ok(p)
            }
            Some(_) => Err(AuthRejection(Error::Forbidden)),
        }
    }
}
