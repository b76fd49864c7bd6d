//! Who may call what. Every operation declares its rule; the default is deny.
//!
//! The caller ([`Caller`]) is resolved by the HTTP layer from the bearer token, re-reading the
//! session, account and roles (or the API client) from the database on every request, so
//! revocations apply at once.
//!
//! Caller kinds: anonymous, a person (parent, partner member, staff) on a device session, or a
//! partner's API client. An API client acts for its partner like a partner member would, but
//! never manages accounts, sessions or API clients: those helpers refuse it (`FORBIDDEN`).

use async_graphql::{Context, Guard};
use passerelle_domain::Error;
use passerelle_domain::auth::{self, AccountKind, Actor, Authenticated, ClientPrincipal, Principal, StaffRole};
use passerelle_domain::partner::PartnerRole;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// The authenticated caller of this request, if any.
#[derive(Clone, Debug, Default)]
pub struct Caller(pub Option<Authenticated>);

/// The client's address, for throttling.
#[derive(Clone, Debug, Default)]
pub struct ClientIp(pub String);

/// The client's address as the HTTP layer determined it ("" when unknown).
pub fn client_ip(ctx: &Context<'_>) -> String {
    ctx.data_opt::<ClientIp>().map(|c| c.0.clone()).unwrap_or_default()
}

/// Per-schema access settings.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// Staff operations without a signed-in staff account: tests of the back office only,
    /// refused in production. Off by default outside tests.
    pub dev_back_office: bool,
}

fn authenticated<'a>(ctx: &'a Context<'_>) -> Option<&'a Authenticated> {
    ctx.data_opt::<Caller>().and_then(|c| c.0.as_ref())
}

/// The signed-in person, if any (`None` for anonymous callers and API clients).
pub fn caller<'a>(ctx: &'a Context<'_>) -> Option<&'a Principal> {
    match authenticated(ctx) {
        Some(Authenticated::Account(p)) => Some(p),
        _ => None,
    }
}

/// The signed-in person, or `UNAUTHENTICATED` (anonymous) / `FORBIDDEN` (an API client).
pub fn signed_in<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    match authenticated(ctx) {
        Some(Authenticated::Account(p)) => Ok(p),
        Some(Authenticated::ApiClient(_)) => Err(Error::Forbidden.into()),
        None => Err(Error::Unauthenticated.into()),
    }
}

/// The development back office lets anonymous callers (only them) act as staff.
fn dev_back_office(ctx: &Context<'_>) -> bool {
    authenticated(ctx).is_none() && ctx.data_opt::<Access>().is_some_and(|a| a.dev_back_office)
}

/// Who to write in audit rows for this caller.
pub fn actor(ctx: &Context<'_>) -> Actor {
    caller(ctx).map_or_else(|| Actor::tool("back-office"), |p| Actor::account(p.account.id, &p.account.email))
}

/// Requires a staff member holding one of `roles` for `funder`.
pub fn require_staff(ctx: &Context<'_>, funder: Uuid, roles: &[StaffRole]) -> Result<(), ApiError> {
    if dev_back_office(ctx) {
        return Ok(());
    }
    let p = signed_in(ctx)?;
    if p.account.kind == AccountKind::Staff && p.has_role(funder, roles) {
        Ok(())
    } else {
        Err(Error::Forbidden.into())
    }
}

/// Guard: any staff member (the resolver then checks the funder scope with [`require_staff`]).
pub struct StaffOnly;

impl Guard for StaffOnly {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if dev_back_office(ctx) {
            return Ok(());
        }
        let p = signed_in(ctx)?;
        if p.account.kind == AccountKind::Staff && !p.staff_roles.is_empty() {
            Ok(())
        } else {
            Err(ApiError::from(Error::Forbidden).into())
        }
    }
}

/// [`require_staff`], then a re-authentication within the last 10 minutes on this session
/// (`REAUTH_REQUIRED`): for decisions on money, eligibility and family links.
pub async fn require_staff_reauthenticated(ctx: &Context<'_>, funder: Uuid, roles: &[StaffRole]) -> ApiResult<()> {
    require_staff(ctx, funder, roles)?;
    match caller(ctx) {
        Some(p) => require_reauthenticated(ctx, p).await,
        None => Ok(()), // the development back office has no session to step up
    }
}

async fn require_reauthenticated(ctx: &Context<'_>, p: &Principal) -> ApiResult<()> {
    let db = ctx.data_unchecked::<DatabaseConnection>();
    Ok(auth::require_recent_auth(db, p.session_id).await?)
}

/// The partner the caller acts for: a partner member's (any role), or an API client's.
pub fn partner_scope(ctx: &Context<'_>) -> ApiResult<Uuid> {
    match authenticated(ctx) {
        None => Err(Error::Unauthenticated.into()),
        Some(Authenticated::ApiClient(ClientPrincipal { partner_id, .. })) => Ok(*partner_id),
        Some(Authenticated::Account(p)) => p.partner.map(|(id, _)| id).ok_or_else(|| Error::Forbidden.into()),
    }
}

/// The partner of a signed-in partner *owner* (never an API client): managing API clients.
pub fn partner_owner<'a>(ctx: &'a Context<'_>) -> ApiResult<(Uuid, &'a Principal)> {
    let p = signed_in(ctx)?;
    match p.partner {
        Some((partner, PartnerRole::Owner)) if p.account.kind == AccountKind::PartnerMember => Ok((partner, p)),
        _ => Err(Error::Forbidden.into()),
    }
}

/// [`partner_owner`], re-authenticated within the last 10 minutes: handing out credentials.
pub async fn partner_owner_reauthenticated<'a>(ctx: &'a Context<'_>) -> ApiResult<(Uuid, &'a Principal)> {
    let (partner, p) = partner_owner(ctx)?;
    require_reauthenticated(ctx, p).await?;
    Ok((partner, p))
}

/// Guard: any signed-in caller.
pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        signed_in(ctx).map(|_| ()).map_err(Into::into)
    }
}

/// All roles (back-office reads); writers narrow it down. A new role reads the back office.
pub const ANY_STAFF: &[StaffRole] = <StaffRole as strum::VariantArray>::VARIANTS;
pub const ELIGIBILITY_WRITERS: &[StaffRole] = &[StaffRole::Admin, StaffRole::EligibilityOfficer];
pub const ADMINS: &[StaffRole] = &[StaffRole::Admin];
/// Who may import rosters (`importRoster`) and so send roster files to `POST /uploads`.
pub const ROSTER_IMPORTERS: &[StaffRole] = ELIGIBILITY_WRITERS;
