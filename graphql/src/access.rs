//! Who may call what. Every operation declares its rule; the default is deny.
//!
//! The caller ([`Caller`]) is resolved by the HTTP layer from the bearer token, re-reading the
//! session, account and roles from the database on every request, so revocations apply at once.

use async_graphql::{Context, Guard};
use passerelle_domain::Error;
use passerelle_domain::auth::{AccountKind, Principal, StaffRole};
use uuid::Uuid;

use crate::error::ApiError;

/// The signed-in caller of this request, if any.
#[derive(Clone, Debug, Default)]
pub struct Caller(pub Option<Principal>);

/// The client's address, for throttling.
#[derive(Clone, Debug, Default)]
pub struct ClientIp(pub String);

/// Per-schema access settings.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// Staff operations without a signed-in staff account: tests of the back office only,
    /// refused in production. Off by default outside tests.
    pub dev_back_office: bool,
}

pub fn caller<'a>(ctx: &'a Context<'_>) -> Option<&'a Principal> {
    ctx.data_opt::<Caller>().and_then(|c| c.0.as_ref())
}

/// The signed-in caller, or `UNAUTHENTICATED`.
pub fn signed_in<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    caller(ctx).ok_or_else(|| Error::Unauthenticated.into())
}

/// Requires a staff member holding one of `roles` for `funder`.
pub fn require_staff(ctx: &Context<'_>, funder: Uuid, roles: &[StaffRole]) -> Result<(), ApiError> {
    if caller(ctx).is_none() && ctx.data_opt::<Access>().is_some_and(|a| a.dev_back_office) {
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
        if caller(ctx).is_none() && ctx.data_opt::<Access>().is_some_and(|a| a.dev_back_office) {
            return Ok(());
        }
        match caller(ctx) {
            None => Err(ApiError::from(Error::Unauthenticated).into()),
            Some(p) if p.account.kind == AccountKind::Staff && !p.staff_roles.is_empty() => Ok(()),
            Some(_) => Err(ApiError::from(Error::Forbidden).into()),
        }
    }
}

/// Guard: any signed-in caller.
pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        signed_in(ctx).map(|_| ()).map_err(Into::into)
    }
}

/// All roles (back-office reads); writers narrow it down.
pub const ANY_STAFF: &[StaffRole] =
    &[StaffRole::Admin, StaffRole::EligibilityOfficer, StaffRole::FinanceOfficer, StaffRole::Auditor];
pub const ELIGIBILITY_WRITERS: &[StaffRole] = &[StaffRole::Admin, StaffRole::EligibilityOfficer];
pub const ADMINS: &[StaffRole] = &[StaffRole::Admin];
