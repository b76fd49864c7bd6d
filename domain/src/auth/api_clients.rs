//! Partner API clients: OAuth2 client credentials (RFC 6749 §4.4) for club software (A12).
//!
//! * A partner owner creates a client and receives its secret once: 256 random bits in the
//!   form `psk_<client id>_<random>` ([`crate::identity::token`]); only its SHA-256 is stored.
//! * The client trades id + secret for a 15-minute access token of kind `partner_client`. Its
//!   `sid` is the client's current *credential id*, which changes with every rotation: each
//!   request re-reads the client row, so a rotated or revoked secret stops working at once,
//!   and so do the tokens it was exchanged for.
//! * Exchanges are throttled like sign-in (A3): refused only for a client id from one address,
//!   slowed down per client id and per address.
//! * Every creation, rotation and revocation is audited with its author.

use std::fmt;

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use uuid::Uuid;

use super::audit::{Actor, AuditEvent, record};
use super::guard::{CredentialKeys, admit_credentials, credentials_ok};
use super::sessions::{AuthConfig, unauthenticated};
use crate::db::{begin_write, now_us, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::{
    Claims, TokenHash, TokenKind, client_secret_public_id, new_client_secret, new_client_secret_for,
};

/// Lifetime of a client's access token, as for people (A8).
pub const CLIENT_TOKEN_TTL_SECS: i64 = 15 * 60;
/// Live clients per partner: one per piece of software is the norm; this only bounds abuse.
pub const MAX_LIVE_CLIENTS: i64 = 20;

/// An API client as its owners see it (never its secret); read as [`COLUMNS`] select it.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct ApiClient {
    pub id: Uuid,
    pub partner_id: Uuid,
    /// The `client_id` sent to `/oauth/token` (stored as `public_id`).
    #[sea_orm(from_alias = "public_id")]
    pub client_id: String,
    pub name: String,
    pub created_at_us: i64,
    pub rotated_at_us: Option<i64>,
    pub last_used_at_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
}

/// A client with its new secret: shown to the owner once, then only its hash exists.
pub struct IssuedSecret {
    pub client: ApiClient,
    pub secret: String,
}

impl fmt::Debug for IssuedSecret {
    /// Never prints the secret (M9).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSecret").field("client", &self.client).finish_non_exhaustive()
    }
}

/// Partner software calling with a client-credentials access token.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct ClientPrincipal {
    pub id: Uuid,
    #[sea_orm(from_alias = "public_id")]
    pub client_id: String,
    pub partner_id: Uuid,
    pub name: String,
}

/// The answer of a successful exchange.
pub struct ClientToken {
    pub access_token: String,
    pub expires_in: i64,
}

const COLUMNS: &str = "id, partner_id, public_id, name, created_at_us, rotated_at_us, last_used_at_us, revoked_at_us";

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// What the token endpoint checks a secret against.
#[derive(FromQueryResult)]
struct StoredSecret {
    id: Uuid,
    secret_hash: String,
    credential_id: Uuid,
}

fn check_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(Error::bad_input("name", "1 to 100 characters"));
    }
    Ok(n.to_owned())
}

/// Creates a client for `partner`; the secret is in the answer and nowhere else.
pub async fn create_api_client(
    db: &DatabaseConnection,
    actor: &Actor,
    partner: Uuid,
    name: &str,
) -> Result<IssuedSecret> {
    let name = check_name(name)?;
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let sql = "SELECT COUNT(*) AS n FROM api_client WHERE partner_id = $1 AND revoked_at_us IS NULL";
    let live = Count::find_by_statement(stmt(backend, sql, [partner.into()])).one(&txn).await?.map_or(0, |c| c.n);
    if live >= MAX_LIVE_CLIENTS {
        return Err(Error::Conflict(format!("at most {MAX_LIVE_CLIENTS} live API clients: revoke one first")));
    }
    let (public_id, secret, hash) = new_client_secret();
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO api_client (id, partner_id, public_id, name, secret_hash, credential_id, created_by, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, {}) RETURNING {COLUMNS}",
        now_us_sql(backend)
    );
    let values: [Value; 7] = [
        id.into(),
        partner.into(),
        public_id.into(),
        name.into(),
        hash.to_hex().into(),
        Uuid::new_v4().into(),
        actor.account_id.into(),
    ];
    let client = ApiClient::find_by_statement(stmt(backend, &sql, values))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("API client"))?;
    audit(&txn, "create_api_client", actor, &client).await?;
    txn.commit().await?;
    Ok(IssuedSecret { client, secret })
}

/// Replaces a live client's secret (same client id). The old secret and every token it got
/// stop working at once.
pub async fn rotate_api_client_secret(
    db: &DatabaseConnection,
    actor: &Actor,
    partner: Uuid,
    id: Uuid,
) -> Result<IssuedSecret> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let current = find(&txn, partner, id).await?;
    let (secret, hash) = new_client_secret_for(&current.client_id);
    let sql = format!(
        "UPDATE api_client SET secret_hash = $3, credential_id = $4, rotated_at_us = {} \
         WHERE id = $1 AND partner_id = $2 AND revoked_at_us IS NULL RETURNING {COLUMNS}",
        now_us_sql(backend)
    );
    let values: [Value; 4] = [id.into(), partner.into(), hash.to_hex().into(), Uuid::new_v4().into()];
    let row = ApiClient::find_by_statement(stmt(backend, &sql, values)).one(&txn).await?;
    let client = row.ok_or_else(|| Error::Conflict("this API client is revoked".into()))?;
    audit(&txn, "rotate_api_client", actor, &client).await?;
    txn.commit().await?;
    Ok(IssuedSecret { client, secret })
}

/// Revokes a client for good: its secret and tokens stop working at once.
pub async fn revoke_api_client(db: &DatabaseConnection, actor: &Actor, partner: Uuid, id: Uuid) -> Result<ApiClient> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    find(&txn, partner, id).await?;
    let sql = format!(
        "UPDATE api_client SET revoked_at_us = {} WHERE id = $1 AND partner_id = $2 AND revoked_at_us IS NULL \
         RETURNING {COLUMNS}",
        now_us_sql(backend)
    );
    let row = ApiClient::find_by_statement(stmt(backend, &sql, [id.into(), partner.into()])).one(&txn).await?;
    let client = row.ok_or_else(|| Error::Conflict("this API client is already revoked".into()))?;
    audit(&txn, "revoke_api_client", actor, &client).await?;
    txn.commit().await?;
    Ok(client)
}

/// A partner's clients, newest first (revoked ones too: owners see what was withdrawn).
pub async fn list_api_clients<C: ConnectionTrait>(db: &C, partner: Uuid) -> Result<Vec<ApiClient>> {
    let sql = format!("SELECT {COLUMNS} FROM api_client WHERE partner_id = $1 ORDER BY created_at_us DESC, id DESC");
    Ok(ApiClient::find_by_statement(stmt(db.get_database_backend(), &sql, [partner.into()])).all(db).await?)
}

/// The client `id` of `partner`; another partner's client is `NOT_FOUND` like an unknown one.
async fn find<C: ConnectionTrait>(db: &C, partner: Uuid, id: Uuid) -> Result<ApiClient> {
    let sql = format!("SELECT {COLUMNS} FROM api_client WHERE id = $1 AND partner_id = $2");
    let row = ApiClient::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into(), partner.into()]))
        .one(db)
        .await?;
    row.ok_or(Error::NotFound("API client"))
}

async fn audit<C: ConnectionTrait>(db: &C, action: &'static str, actor: &Actor, client: &ApiClient) -> Result<()> {
    let event = AuditEvent {
        action,
        actor,
        funder_id: None,
        partner_id: Some(client.partner_id),
        subject_account_id: None,
        object_id: Some(client.id),
        reason: None,
    };
    record(db, &event).await.map(|_| ())
}

/// The token endpoint's work: checks id + secret and issues an access token. Unknown client,
/// wrong secret and revoked client all answer `UNAUTHENTICATED` (`invalid_client`); every
/// attempt is reserved first on the throttling keys (`guard`), and a used-up one answers
/// `RATE_LIMITED` with its retry delay.
pub async fn client_credentials_grant(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    client_id: &str,
    secret: &str,
    ip: &str,
) -> Result<ClientToken> {
    // Bounded keys: whatever is sent, the throttle table grows by short rows per guess. Only
    // this client id from this address is refused: the public client id alone locks nobody out.
    let keys = CredentialKeys::new("oauth", &client_id.chars().take(32).collect::<String>(), ip);
    admit_credentials(db, &keys).await?;
    let backend = db.get_database_backend();
    let mut found = None;
    if client_secret_public_id(secret) == Some(client_id) {
        let sql =
            "SELECT id, secret_hash, credential_id FROM api_client WHERE public_id = $1 AND revoked_at_us IS NULL";
        let row = StoredSecret::find_by_statement(stmt(backend, sql, [client_id.into()])).one(db).await?;
        found = row
            .filter(|r| TokenHash::from_hex(&r.secret_hash).is_some_and(|h| h.matches(secret)))
            .map(|r| (r.id, r.credential_id));
    }
    let Some((id, credential)) = found else {
        return Err(unauthenticated());
    };
    credentials_ok(db, &keys).await?;
    let sql = format!("UPDATE api_client SET last_used_at_us = {} WHERE id = $1", now_us_sql(backend));
    db.execute_raw(stmt(backend, &sql, [id.into()])).await?;
    let now = now_us(db).await? / 1_000_000;
    let claims =
        Claims::new(&auth.issuer, &auth.audience, id, credential, TokenKind::PartnerClient, now, CLIENT_TOKEN_TTL_SECS);
    Ok(ClientToken { access_token: auth.keys.issue(&claims), expires_in: CLIENT_TOKEN_TTL_SECS })
}

/// The client behind an access token, if it is still live with the same credential.
pub(super) async fn authenticate_client(
    db: &DatabaseConnection,
    id: Uuid,
    credential: Uuid,
) -> Result<ClientPrincipal> {
    let sql = "SELECT id, public_id, partner_id, name FROM api_client \
               WHERE id = $1 AND credential_id = $2 AND revoked_at_us IS NULL";
    let row = ClientPrincipal::find_by_statement(stmt(db.get_database_backend(), sql, [id.into(), credential.into()]))
        .one(db)
        .await?;
    row.ok_or_else(unauthenticated)
}
