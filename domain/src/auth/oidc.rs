//! OIDC sign-in (EduConnect, FranceConnect, the ENT): authorization code flow with PKCE,
//! `state` and `nonce`, made for a mobile app (security.md A7).
//!
//! 1. `startOidcSignIn`: the provider (implemented in `api` over the `openidconnect` crate)
//!    makes the authorization URL with a fresh state, nonce and PKCE verifier; the flow is
//!    stored here for 10 minutes with the hash of a fresh *flow secret*, which only the app
//!    receives (in the GraphQL answer, over TLS); the app opens the URL in the system browser.
//! 2. The provider sends the browser back to the app's redirect URI with `code` and `state`.
//! 3. `completeOidcSignIn`: the flow of that state *and* flow secret is taken out of the
//!    database (deleted: a flow works once, even when two requests race), the provider
//!    exchanges the code with the PKCE verifier and checks the ID token (signature against the
//!    JWKS, issuer, audience, expiry, nonce), and the identity signs in through
//!    [`super::federated`].
//!
//! The server holds the PKCE verifier, so PKCE alone would protect nothing: whoever reads the
//! redirect (another app claiming the same custom scheme) has `code` and `state`. The flow
//! secret never travels in a redirect. A wrong or empty secret is refused with
//! `UNAUTHENTICATED` and leaves the flow alone, so an eavesdropper cannot spend the owner's
//! flow either.
//!
//! Nothing of the provider's answer is trusted before the ID token checks out; the account is
//! found by (issuer, subject) only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use uuid::Uuid;

use super::federated::{Identity, federated_sign_in};
use super::sessions::{AuthConfig, Device, Tokens, check_device};
use super::throttle::{Throttle, throttle_check, throttle_fail, throttle_reset};
use crate::db::{now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::{TokenHash, new_refresh_token};

/// How long the app has to come back from the provider.
pub const FLOW_TTL_SECS: i64 = 600;

/// Starts per client address before they slow down: a flow row is cheap but not free, and
/// completing a sign-in resets the count.
const START_THROTTLE: Throttle = Throttle { free: 60, max_block_secs: 300 };

/// A boxed future, so providers can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A new authorization request and the secrets to remember until the app comes back.
#[derive(Clone, Debug)]
pub struct AuthorizationStart {
    pub authorization_url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
}

/// What the token exchange needs from the stored flow.
#[derive(Clone, Debug)]
pub struct PendingFlow {
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
}

/// The checked ID token's claims that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcClaims {
    /// `iss`, equal to the configured issuer.
    pub issuer: String,
    pub subject: String,
    pub display_name: String,
    /// Only when the provider says it verified the address (`email_verified`).
    pub verified_email: Option<String>,
    /// AAF jointure ids from the `children` claim (ENT providers).
    pub children: Vec<String>,
}

/// One configured OIDC provider (implemented in `api`).
pub trait OidcProvider: Send + Sync {
    /// The name apps use (`educonnect`, `franceconnect`, `ent`).
    fn name(&self) -> &str;
    /// The funder whose roster the provider's `children` claim refers to; `None`: children
    /// claims are ignored (a provider is trusted to link children only when configured so).
    fn children_funder(&self) -> Option<&str>;
    /// Builds the authorization request; `redirect_uri` must be one the provider is configured
    /// with (`None`: the first).
    fn begin<'a>(&'a self, redirect_uri: Option<&'a str>) -> BoxFuture<'a, Result<AuthorizationStart>>;
    /// Exchanges the code (with the PKCE verifier) and checks the ID token against the flow.
    /// Whatever fails is `UNAUTHENTICATED`.
    fn finish<'a>(&'a self, code: &'a str, flow: &'a PendingFlow) -> BoxFuture<'a, Result<OidcClaims>>;
}

/// The configured providers, by name.
#[derive(Clone, Default)]
pub struct OidcProviders(pub Vec<Arc<dyn OidcProvider>>);

impl OidcProviders {
    pub fn get(&self, name: &str) -> Option<&Arc<dyn OidcProvider>> {
        self.0.iter().find(|p| p.name() == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|p| p.name().to_owned()).collect()
    }
}

/// What the app opens, and the state it will hand back.
#[derive(Clone, Debug)]
pub struct OidcStart {
    pub authorization_url: String,
    pub state: String,
    /// Given back with `state` to complete; only its hash is stored.
    pub flow_secret: String,
    pub expires_at_us: i64,
}

/// Starts a sign-in with `provider`: stores the flow and returns the URL for the browser.
pub async fn start_oidc_sign_in(
    db: &DatabaseConnection,
    providers: &OidcProviders,
    provider: &str,
    redirect_uri: Option<&str>,
    ip: &str,
) -> Result<OidcStart> {
    let p = providers.get(provider).ok_or_else(|| Error::bad_input("provider", "no such sign-in provider"))?;
    let ip_key = format!("oidc:ip:{ip}");
    if throttle_check(db, &ip_key).await? {
        return Err(Error::RateLimited);
    }
    let start = p.begin(redirect_uri).await?;
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    // Expired flows are of no use to anyone: drop them as new ones come.
    let purge = format!("DELETE FROM oidc_flow WHERE expires_at_us < {now}");
    db.execute_raw(stmt(backend, &purge, [])).await?;
    let sql = format!(
        "INSERT INTO oidc_flow (id, state_hash, provider, nonce, pkce_verifier, redirect_uri, created_at_us, expires_at_us, \
         flow_secret_hash) VALUES ($1, $2, $3, $4, $5, $6, {now}, {now} + $7, $8) RETURNING expires_at_us"
    );
    let (flow_secret, secret_hash) = new_refresh_token();
    let values: [Value; 8] = [
        Uuid::now_v7().into(),
        TokenHash::of(&start.state).to_hex().into(),
        p.name().into(),
        start.nonce.into(),
        start.pkce_verifier.into(),
        start.redirect_uri.into(),
        (FLOW_TTL_SECS * 1_000_000).into(),
        secret_hash.to_hex().into(),
    ];
    let row =
        FlowExpiry::find_by_statement(stmt(backend, &sql, values)).one(db).await?.ok_or(Error::NotFound("flow"))?;
    throttle_fail(db, &ip_key, START_THROTTLE).await?;
    Ok(OidcStart {
        authorization_url: start.authorization_url,
        state: start.state,
        flow_secret,
        expires_at_us: row.expires_at_us,
    })
}

#[derive(FromQueryResult)]
struct FlowExpiry {
    expires_at_us: i64,
}

/// A stored flow as [`take_flow`] returns it.
#[derive(FromQueryResult)]
struct StoredFlow {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    redirect_uri: String,
}

/// Completes a sign-in with the `code` and `state` the provider sent back to the app and the
/// `flow_secret` `startOidcSignIn` gave it.
///
/// A state that is unknown, expired or already used is `BAD_USER_INPUT` on `state` (the app
/// starts again); a wrong flow secret is `UNAUTHENTICATED` and the flow stays usable; a code or
/// ID token that does not check out is `UNAUTHENTICATED` (the flow is spent).
#[allow(clippy::too_many_arguments)]
pub async fn complete_oidc_sign_in(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    providers: &OidcProviders,
    state: &str,
    flow_secret: &str,
    code: &str,
    device: &Device,
    ip: &str,
) -> Result<Tokens> {
    // Refuse a bad device before the state is spent: the app can fix it and resend.
    check_device(device)?;
    let (provider_name, flow) = take_flow(db, state, flow_secret).await?;
    // A provider removed from the configuration meanwhile: its flows are void.
    let provider = providers.get(&provider_name).ok_or(Error::Unauthenticated)?;
    let claims = provider.finish(code, &flow).await?;
    let identity = Identity {
        issuer: &claims.issuer,
        subject: &claims.subject,
        display_name: &claims.display_name,
        email: claims.verified_email.as_deref(),
        children: &claims.children,
        funder_code: provider.children_funder(),
        via: "oidc",
    };
    let tokens = federated_sign_in(db, auth, &identity, device).await?;
    throttle_reset(db, &format!("oidc:ip:{ip}")).await?;
    Ok(tokens)
}

/// Deletes the live flow of `state` and `flow_secret` and returns it: one statement, so of two
/// requests with the same state only one gets it, and a wrong secret deletes nothing.
async fn take_flow(db: &DatabaseConnection, state: &str, flow_secret: &str) -> Result<(String, PendingFlow)> {
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    let state_hash = TokenHash::of(state).to_hex();
    let sql = format!(
        "DELETE FROM oidc_flow WHERE state_hash = $1 AND flow_secret_hash = $2 AND expires_at_us > {now} \
         RETURNING provider, nonce, pkce_verifier, redirect_uri"
    );
    let values = [state_hash.clone().into(), TokenHash::of(flow_secret).to_hex().into()];
    let row = StoredFlow::find_by_statement(stmt(backend, &sql, values)).one(db).await?;
    if let Some(StoredFlow { provider, nonce, pkce_verifier, redirect_uri }) = row {
        return Ok((provider, PendingFlow { nonce, pkce_verifier, redirect_uri }));
    }
    let sql = format!("SELECT expires_at_us FROM oidc_flow WHERE state_hash = $1 AND expires_at_us > {now}");
    if FlowExpiry::find_by_statement(stmt(backend, &sql, [state_hash.into()])).one(db).await?.is_some() {
        tracing::warn!("OIDC completion with a live state and a wrong flow secret: refused");
        return Err(Error::Unauthenticated);
    }
    Err(Error::bad_input("state", "unknown, expired or already used: start the sign-in again"))
}
