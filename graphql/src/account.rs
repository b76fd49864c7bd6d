//! Everyone: `logIn`, `refreshSession`, `logOut`, `reauthenticate`, `viewer`, `sessions`;
//! parents: `signUp`, `verifyEmail`.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::auth::{self, AccountKind, AuthConfig, Device, Tokens};
use sea_orm::DatabaseConnection;

use crate::access::{SignedIn, caller, client_ip, signed_in};
use crate::error::ApiResult;

/// Stored as the GraphQL name (`IOS`), through strum like every stored enum.
#[derive(Enum, Copy, Clone, Eq, PartialEq, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Platform {
    Ios,
    Android,
    Web,
}

#[derive(InputObject)]
pub struct DeviceInput {
    pub device_id: String,
    pub platform: Platform,
    pub name: String,
}

impl From<&DeviceInput> for Device {
    fn from(d: &DeviceInput) -> Self {
        let platform: &'static str = d.platform.into();
        Device { device_id: d.device_id.clone(), platform: platform.into(), name: d.name.clone() }
    }
}

#[derive(InputObject)]
pub struct LogInInput {
    pub email: String,
    pub password: String,
    /// Required for staff accounts.
    pub totp_code: Option<String>,
    pub device: DeviceInput,
}

#[derive(InputObject)]
pub struct EntSignInInput {
    /// The CAS service ticket the ENT gave the app.
    pub ticket: String,
    /// The service URL the ticket was issued for: one of the server's configured
    /// `PASSERELLE_ENT_SERVICE_URLS`, exactly (anything else is `UNAUTHENTICATED`).
    pub service: String,
    pub device: DeviceInput,
}

#[derive(InputObject)]
pub struct SignUpInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
    /// `PARTNER_MEMBER`: a club's person, who then applies with `applyForAffiliation`.
    #[graphql(default)]
    pub account_kind: SignUpKind,
}

/// Who may open an account by themselves (staff accounts are made by administrators).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum SignUpKind {
    #[default]
    Parent,
    PartnerMember,
}

#[derive(InputObject)]
pub struct ReauthenticateInput {
    pub password: String,
    /// Required for staff accounts.
    pub totp_code: Option<String>,
}

/// The current session may run sensitive operations until `validUntil`.
#[derive(SimpleObject)]
pub struct Reauthentication {
    pub valid_until: Option<DateTime<Utc>>,
}

/// What kind of person an account is for.
// `remote` derives the conversions with the domain enum both ways.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "AccountKind", remote = "passerelle_domain::auth::AccountKind")]
pub enum GqlAccountKind {
    Parent,
    PartnerMember,
    Staff,
}

/// What a staff member may do for one funder.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "StaffRole", remote = "passerelle_domain::auth::StaffRole")]
pub enum GqlStaffRole {
    Admin,
    EligibilityOfficer,
    FinanceOfficer,
    Auditor,
}

#[derive(SimpleObject)]
#[graphql(name = "Account")]
pub struct AccountObj {
    pub id: ID,
    pub email: String,
    pub kind: GqlAccountKind,
}

impl From<&auth::Account> for AccountObj {
    fn from(a: &auth::Account) -> Self {
        AccountObj { id: ID(a.id.to_string()), email: a.email.clone(), kind: a.kind.into() }
    }
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub account: AccountObj,
}

impl From<Tokens> for AuthPayload {
    fn from(t: Tokens) -> Self {
        AuthPayload {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            access_token_expires_at: DateTime::from_timestamp(t.access_expires_at_unix, 0).unwrap_or_default(),
            account: AccountObj::from(&t.account),
        }
    }
}

#[derive(SimpleObject)]
pub struct SignUpPayload {
    /// Always true: the answer does not say whether the address was already taken.
    pub verification_sent: bool,
}

#[derive(SimpleObject)]
pub struct StaffRoleObj {
    pub funder_id: ID,
    pub role: GqlStaffRole,
}

#[derive(SimpleObject)]
pub struct Viewer {
    pub id: ID,
    pub email: String,
    pub kind: GqlAccountKind,
    pub display_name: String,
    pub email_verified: bool,
    pub roles: Vec<StaffRoleObj>,
}

#[derive(SimpleObject)]
pub struct DeviceSession {
    pub id: ID,
    pub device_id: String,
    pub platform: String,
    pub name: String,
    pub current: bool,
}

pub(crate) fn auth_config<'a>(ctx: &'a Context<'_>) -> &'a AuthConfig {
    ctx.data_unchecked::<Arc<AuthConfig>>()
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in account, or null.
    async fn viewer(&self, ctx: &Context<'_>) -> Option<Viewer> {
        caller(ctx).map(|p| {
            let a = AccountObj::from(&p.account);
            Viewer {
                id: a.id,
                email: a.email,
                kind: a.kind,
                display_name: p.account.display_name.clone(),
                email_verified: p.account.email_verified,
                roles: p
                    .staff_roles
                    .iter()
                    .map(|(f, r)| StaffRoleObj { funder_id: ID(f.to_string()), role: (*r).into() })
                    .collect(),
            }
        })
    }

    /// The caller's signed-in devices.
    #[graphql(guard = "SignedIn")]
    async fn sessions(&self, ctx: &Context<'_>) -> ApiResult<Vec<DeviceSession>> {
        let p = signed_in(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::list_sessions(db, p.account.id)
            .await?
            .into_iter()
            .map(|s| DeviceSession {
                current: s.id == p.session_id,
                id: ID(s.id.to_string()),
                device_id: s.device_id,
                platform: s.platform,
                name: s.name,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Signs in on a device. Public; throttled per account and per IP.
    async fn log_in(&self, ctx: &Context<'_>, input: LogInInput) -> ApiResult<AuthPayload> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let ip = client_ip(ctx);
        let device = Device::from(&input.device);
        let t =
            auth::log_in(db, auth_config(ctx), &input.email, &input.password, input.totp_code.as_deref(), &device, &ip)
                .await?;
        Ok(t.into())
    }

    /// Signs a parent in with the ENT (one login for the ENT and the Pass): the children the
    /// ENT lists are linked at once. Public.
    async fn ent_sign_in(&self, ctx: &Context<'_>, input: EntSignInInput) -> ApiResult<AuthPayload> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let Some(ent) = ctx.data_opt::<Arc<dyn passerelle_domain::auth::EntValidator>>() else {
            return Err(passerelle_domain::Error::NotFound("ENT sign-in").into());
        };
        let answer = ent.validate(&input.ticket, &input.service).await?;
        let claims = auth::parse_service_response(&answer)?;
        let device = Device::from(&input.device);
        Ok(auth::ent_sign_in(db, auth_config(ctx), ent.as_ref(), &claims, &device).await?.into())
    }

    /// Exchanges a refresh token for new tokens (the old one is spent). Public. `deviceId` is
    /// the one given at sign-in: with it, a token this device rotated less than 20 seconds ago
    /// in a racing call is refused with `REFRESH_SUPERSEDED` and the session lives on;
    /// otherwise re-presenting a spent token revokes the session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
        device_id: Option<String>,
    ) -> ApiResult<AuthPayload> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::refresh(db, auth_config(ctx), &refresh_token, device_id.as_deref()).await?.into())
    }

    /// Ends the current session, or another of the caller's sessions.
    #[graphql(guard = "SignedIn")]
    async fn log_out(&self, ctx: &Context<'_>, session_id: Option<ID>) -> ApiResult<bool> {
        let p = signed_in(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let sid = match session_id {
            Some(id) => crate::parse_id(&id, "sessionId")?,
            None => p.session_id,
        };
        Ok(auth::log_out(db, p.account.id, sid).await?)
    }

    /// Proves the password (and TOTP code for staff) again on this session, for the sensitive
    /// operations of the next 10 minutes. Failures count like sign-in failures.
    #[graphql(guard = "SignedIn")]
    async fn reauthenticate(&self, ctx: &Context<'_>, input: ReauthenticateInput) -> ApiResult<Reauthentication> {
        let p = signed_in(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let until = auth::reauthenticate(db, auth_config(ctx), p, &input.password, input.totp_code.as_deref()).await?;
        Ok(Reauthentication { valid_until: DateTime::from_timestamp_micros(until) })
    }

    /// Creates a parent account; a verification e-mail follows (queued with the token, sent
    /// after the answer). Public; the same answer whether the address is new or taken;
    /// throttled per client address and per e-mail address (`RATE_LIMITED` with `retryAfter`).
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> ApiResult<SignUpPayload> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let ip = client_ip(ctx);
        let kind = match input.account_kind {
            SignUpKind::Parent => AccountKind::Parent,
            SignUpKind::PartnerMember => AccountKind::PartnerMember,
        };
        auth::sign_up(db, kind, &input.email, &input.password, &input.display_name, &ip).await?;
        Ok(SignUpPayload { verification_sent: true })
    }

    /// Sends a password-reset token to the address if it has an account (queued, sent after
    /// the answer). Public; always true, unless throttled per client address or per e-mail
    /// address.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> ApiResult<bool> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        auth::request_password_reset(db, &email, &client_ip(ctx)).await?;
        Ok(true)
    }

    /// Sets a new password with a reset token; every session of the account is revoked. Public.
    async fn reset_password(&self, ctx: &Context<'_>, token: String, new_password: String) -> ApiResult<bool> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::reset_password(db, &token, &new_password).await?)
    }

    /// Confirms an e-mail address with the token received. Public.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> ApiResult<bool> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::verify_email(db, &token).await?)
    }
}
