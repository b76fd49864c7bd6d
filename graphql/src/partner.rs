//! Partners: `partnerProfile` (members and API clients), and the partner owner's API clients
//! (`apiClients`, `createApiClient`, `rotateApiClientSecret`, `revokeApiClient`).
//!
//! A secret appears in exactly one answer, the one that created it; listings never carry it.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::auth::{self, IssuedSecret};
use passerelle_domain::partner;
use sea_orm::DatabaseConnection;

use crate::access::{actor, partner_owner, partner_owner_reauthenticated, partner_scope};
use crate::error::ApiResult;
use crate::parse_id;

/// A partner as its members and its software see it.
#[derive(SimpleObject)]
pub struct Partner {
    pub id: ID,
    pub name: String,
    /// The wallets it accepts.
    pub categories: Vec<crate::GqlWallet>,
    pub commune: Option<String>,
    pub status: GqlPartnerStatus,
}

impl From<partner::PartnerProfile> for Partner {
    fn from(p: partner::PartnerProfile) -> Self {
        Partner {
            id: ID(p.id.to_string()),
            name: p.name,
            categories: p.categories.into_iter().map(Into::into).collect(),
            commune: p.commune,
            status: p.status.into(),
        }
    }
}

#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PartnerStatus", remote = "passerelle_domain::partner::PartnerStatus")]
pub enum GqlPartnerStatus {
    Pending,
    Approved,
    Suspended,
}

/// Club software's credentials, without the secret.
#[derive(SimpleObject)]
pub struct ApiClient {
    pub id: ID,
    /// The `client_id` to send to `POST /oauth/token`.
    pub client_id: String,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once revoked: the client can no longer get or use tokens.
    pub revoked_at: Option<DateTime<Utc>>,
}

fn time(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

impl From<auth::ApiClient> for ApiClient {
    fn from(c: auth::ApiClient) -> Self {
        ApiClient {
            id: ID(c.id.to_string()),
            client_id: c.client_id,
            name: c.name,
            created_at: time(c.created_at_us),
            rotated_at: c.rotated_at_us.and_then(time),
            last_used_at: c.last_used_at_us.and_then(time),
            revoked_at: c.revoked_at_us.and_then(time),
        }
    }
}

/// A client with its secret: store the secret now, it is never shown again.
#[derive(SimpleObject)]
pub struct ApiClientSecretPayload {
    pub api_client: ApiClient,
    pub client_secret: String,
}

impl From<IssuedSecret> for ApiClientSecretPayload {
    fn from(s: IssuedSecret) -> Self {
        ApiClientSecretPayload { api_client: s.client.into(), client_secret: s.secret }
    }
}

#[derive(InputObject)]
pub struct CreateApiClientInput {
    /// What the software is ("Logiciel d'inscriptions"), 1 to 100 characters.
    pub name: String,
}

#[derive(InputObject)]
pub struct RotateApiClientSecretInput {
    pub api_client_id: ID,
}

#[derive(InputObject)]
pub struct RevokeApiClientInput {
    pub api_client_id: ID,
}

#[derive(Default)]
pub struct PartnerQuery;

#[Object]
impl PartnerQuery {
    /// The caller's partner (partner members and the partner's API clients).
    async fn partner_profile(&self, ctx: &Context<'_>) -> ApiResult<Partner> {
        let id = partner_scope(ctx)?;
        let p = partner::partner_profile(ctx.data_unchecked::<DatabaseConnection>(), id).await?;
        Ok(Partner {
            id: ID(p.id.to_string()),
            name: p.name,
            categories: p.categories.into_iter().map(Into::into).collect(),
            commune: p.commune,
            status: p.status.into(),
        })
    }

    /// The partner's API clients, newest first (partner owners).
    async fn api_clients(&self, ctx: &Context<'_>) -> ApiResult<Vec<ApiClient>> {
        let (partner, _) = partner_owner(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::list_api_clients(db, partner).await?.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct PartnerMutation;

#[Object]
impl PartnerMutation {
    /// Creates credentials for club software (partner owners, recently re-authenticated). The
    /// secret is in this answer only.
    async fn create_api_client(
        &self,
        ctx: &Context<'_>,
        input: CreateApiClientInput,
    ) -> ApiResult<ApiClientSecretPayload> {
        let (partner, _) = partner_owner_reauthenticated(ctx).await?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::create_api_client(db, &actor(ctx), partner, &input.name).await?.into())
    }

    /// Replaces a client's secret, keeping its client id; the old secret and its tokens stop
    /// working at once (partner owners, recently re-authenticated).
    async fn rotate_api_client_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateApiClientSecretInput,
    ) -> ApiResult<ApiClientSecretPayload> {
        let (partner, _) = partner_owner_reauthenticated(ctx).await?;
        let id = parse_id(&input.api_client_id, "apiClientId")?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::rotate_api_client_secret(db, &actor(ctx), partner, id).await?.into())
    }

    /// Withdraws a client for good, effective at once (partner owners). No re-authentication:
    /// cutting off leaked credentials must never wait.
    async fn revoke_api_client(&self, ctx: &Context<'_>, input: RevokeApiClientInput) -> ApiResult<ApiClient> {
        let (partner, _) = partner_owner(ctx)?;
        let id = parse_id(&input.api_client_id, "apiClientId")?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(auth::revoke_api_client(db, &actor(ctx), partner, id).await?.into())
    }
}
