//! Who is calling: the bearer token is checked, then everything it grants is read again from
//! the database (session, account, staff roles, partner membership, or the API client), so a
//! revocation, a removed role or a rotated client secret applies to the very next request (Z4).

use sea_orm::{DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use super::accounts::{Account, AccountKind, StaffRole};
use super::api_clients::{ClientPrincipal, authenticate_client};
use super::membership::{PartnerRole, membership_of};
use super::sessions::{AuthConfig, session_account, token_kind, unauthenticated};
use crate::db::stmt;
use crate::error::Result;
use crate::identity::TokenKind;

/// A signed-in person, read from the database on every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub account: Account,
    pub session_id: Uuid,
    pub staff_roles: Vec<(Uuid, StaffRole)>,
    /// For partner member accounts: the partner they act for, and their role there.
    pub partner: Option<(Uuid, PartnerRole)>,
}

impl Principal {
    /// True when the caller holds one of `roles` for `funder`.
    pub fn has_role(&self, funder: Uuid, roles: &[StaffRole]) -> bool {
        self.staff_roles.iter().any(|(f, r)| *f == funder && roles.contains(r))
    }
}

/// The two kinds of authenticated callers: people on a device session, and partner software
/// with client credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authenticated {
    Account(Principal),
    ApiClient(ClientPrincipal),
}

#[derive(FromQueryResult)]
struct RoleRow {
    funder_id: Uuid,
    role: StaffRole,
}

/// Checks a bearer token and reads the caller from the database.
pub async fn authenticate(db: &DatabaseConnection, auth: &AuthConfig, bearer: &str) -> Result<Authenticated> {
    // The token's times against this server's clock, as every JWT check does (a token lives
    // minutes; clocks agree to the second): no round trip to read the database clock on every
    // request. The session's own expiry is compared in SQL, against the database clock.
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let claims = auth.keys.verify(bearer, now_s, &auth.issuer, &auth.audience).map_err(|e| {
        tracing::debug!(code = e.code(), "access token refused");
        unauthenticated()
    })?;
    if claims.kind == TokenKind::PartnerClient {
        return authenticate_client(db, claims.sub, claims.sid).await.map(Authenticated::ApiClient);
    }
    let backend = db.get_database_backend();
    let account = session_account(db, claims.sid, claims.sub)
        .await?
        .filter(|a| a.active && token_kind(a.kind) == claims.kind)
        .ok_or_else(unauthenticated)?;
    let mut staff_roles = vec![];
    let mut partner = None;
    match account.kind {
        AccountKind::Staff => {
            // An unknown stored role is a read error (the request fails), never a role skipped.
            let sql = "SELECT funder_id, role FROM staff_role WHERE account_id = $1";
            let rows = RoleRow::find_by_statement(stmt(backend, sql, [account.id.into()])).all(db).await?;
            staff_roles = rows.into_iter().map(|r| (r.funder_id, r.role)).collect();
        }
        AccountKind::PartnerMember => partner = membership_of(db, account.id).await?,
        AccountKind::Parent => {}
    }
    Ok(Authenticated::Account(Principal { account, session_id: claims.sid, staff_roles, partner }))
}
