//! OIDC sign-in for the mobile apps (EduConnect, FranceConnect, the ENT): `oidcProviders`,
//! `startOidcSignIn`, `completeOidcSignIn`. All public: they are how one signs in.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::auth::{self, OidcProviders};
use sea_orm::DatabaseConnection;

use crate::access::ClientIp;
use crate::account::{AuthPayload, DeviceInput, auth_config};
use crate::error::ApiResult;

#[derive(InputObject)]
pub struct StartOidcSignInInput {
    /// One of `oidcProviders`.
    pub provider: String,
    /// Where the provider sends the browser back; one registered for the provider (default:
    /// the first).
    pub redirect_uri: Option<String>,
}

#[derive(SimpleObject)]
pub struct StartOidcSignInPayload {
    /// Open in the system browser (not a web view).
    pub authorization_url: String,
    /// Comes back on the redirect URI with the code; hand both to `completeOidcSignIn`.
    pub state: String,
    /// Keep in memory (never in a URL) and hand it to `completeOidcSignIn` with `state`: it
    /// proves the completion comes from the app that started the flow, not from another app
    /// that read the redirect.
    pub flow_secret: String,
    /// The flow must be completed before this time (10 minutes).
    pub expires_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct CompleteOidcSignInInput {
    pub state: String,
    /// The `flowSecret` of `startOidcSignIn`. A wrong one is `UNAUTHENTICATED` and leaves the
    /// flow usable.
    pub flow_secret: String,
    pub code: String,
    pub device: DeviceInput,
}

fn providers<'a>(ctx: &'a Context<'_>) -> &'a OidcProviders {
    static NONE: OidcProviders = OidcProviders(Vec::new());
    ctx.data_opt::<OidcProviders>().unwrap_or(&NONE)
}

fn ip(ctx: &Context<'_>) -> String {
    ctx.data_opt::<ClientIp>().map(|c| c.0.clone()).unwrap_or_default()
}

#[derive(Default)]
pub struct OidcQuery;

#[Object]
impl OidcQuery {
    /// The sign-in providers this server is configured with (the app shows a button for each).
    async fn oidc_providers(&self, ctx: &Context<'_>) -> Vec<String> {
        providers(ctx).names()
    }
}

#[derive(Default)]
pub struct OidcMutation;

#[Object]
impl OidcMutation {
    /// Starts a sign-in with an OIDC provider (authorization code flow with PKCE). Public.
    async fn start_oidc_sign_in(
        &self,
        ctx: &Context<'_>,
        input: StartOidcSignInInput,
    ) -> ApiResult<StartOidcSignInPayload> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let s = auth::start_oidc_sign_in(db, providers(ctx), &input.provider, input.redirect_uri.as_deref(), &ip(ctx))
            .await?;
        Ok(StartOidcSignInPayload {
            authorization_url: s.authorization_url,
            state: s.state,
            flow_secret: s.flow_secret,
            expires_at: DateTime::from_timestamp_micros(s.expires_at_us).unwrap_or_default(),
        })
    }

    /// Completes an OIDC sign-in with the `code` and `state` the provider sent to the redirect
    /// URI: opens a session on the device, like `logIn`. The children the provider lists (ENT)
    /// are linked. Public.
    async fn complete_oidc_sign_in(&self, ctx: &Context<'_>, input: CompleteOidcSignInInput) -> ApiResult<AuthPayload> {
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let device = auth::Device::from(&input.device);
        let tokens = auth::complete_oidc_sign_in(
            db,
            auth_config(ctx),
            providers(ctx),
            &input.state,
            &input.flow_secret,
            &input.code,
            &device,
            &ip(ctx),
        )
        .await?;
        Ok(tokens.into())
    }
}
