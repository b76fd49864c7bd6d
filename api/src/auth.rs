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
use ipnet::IpNet;
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
        let ip = client_ip(parts, &state.settings.trusted_proxies);
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Auth { caller: None, ip });
        };
        let token = value.to_str().ok().and_then(|v| v.trim().strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
        let caller = authenticate(&state.db, &state.auth, token).await.map_err(AuthRejection)?;
        Ok(Auth { caller: Some(caller), ip })
    }
}

/// The client's address, for routes that take no bearer token (`/oauth/token`).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_ip(parts, &state.settings.trusted_proxies)))
    }
}

/// Where a request comes from: the connection's peer, unless the peer is one of the `trusted`
/// proxies; then the proxies' headers are read from the nearest hop back, skipping trusted
/// proxies, and the first other address is the client (what a client writes further left
/// is its own claim, never believed). `Forwarded` (RFC 7239) wins over `X-Forwarded-For`.
pub fn client_ip(parts: &Parts, trusted: &[IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(peer)| peer.ip().to_canonical());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = header_values(parts, header::FORWARDED, forwarded_for);
    let hops =
        if forwarded.is_empty() { header_values(parts, X_FORWARDED_FOR, |v| Some(v.to_owned())) } else { forwarded };
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An unparsable hop ("unknown", an obfuscated name) ends what can be known.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The comma-separated items of every `name` header, in order, each mapped by `item`.
fn header_values(parts: &Parts, name: impl header::AsHeaderName, item: fn(&str) -> Option<String>) -> Vec<String> {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|i| item(i.trim()))
        .collect()
}

/// The `for=` parameter of one `Forwarded` element (`for=192.0.2.1;proto=https`).
fn forwarded_for(element: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:443`, `[2001:db8::1]:443`, `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip().to_canonical())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut parts, ()) = b.body(()).expect("request").into_parts();
        parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().expect("peer")));
        parts
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("cidr")).collect()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let xff = [("x-forwarded-for", "198.51.100.9, 203.0.113.5")];
        assert_eq!(client_ip(&parts("192.0.2.1:5000", &xff), &[]).to_string(), "192.0.2.1");
        let trusted = nets(&["192.0.2.0/24"]);
        assert_eq!(client_ip(&parts("192.0.2.1:5000", &xff), &trusted).to_string(), "203.0.113.5");
        // Two proxies in a row: the nearest untrusted hop is the client.
        let trusted = nets(&["192.0.2.0/24", "203.0.113.5/32"]);
        assert_eq!(client_ip(&parts("192.0.2.1:5000", &xff), &trusted).to_string(), "198.51.100.9");
        let fwd = [("forwarded", "for=198.51.100.7;proto=https, for=\"[2001:db8::1]:443\""), xff[0]];
        assert_eq!(client_ip(&parts("192.0.2.1:5000", &fwd), &nets(&["192.0.2.0/24"])).to_string(), "2001:db8::1");
        let unknown = [("forwarded", "for=unknown")];
        assert_eq!(client_ip(&parts("192.0.2.1:5000", &unknown), &nets(&["192.0.2.0/24"])).to_string(), "192.0.2.1");
    }
}
