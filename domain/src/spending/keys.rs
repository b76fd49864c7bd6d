//! The keys that sign tickets' `qrPayload`, so a club's app checks a ticket with no network.
//!
//! A `qrPayload` is a compact JWS: header `{"alg":"EdDSA","typ":"pass-ticket+jwt","kid":…}`,
//! claims `jti code wallet amount partner exp iss`. The public keys are served as a JWK Set
//! (RFC 7517, OKP/Ed25519 per RFC 8037) at `/.well-known/jwks.json`; a key stays published
//! while a ticket it signed may still be shown (not redeemed, cancelled or expired yet), so a
//! rotation never strands a ticket in a partner app's cache.
//!
//! Keys live in the database (every node signs with the same newest key), their private half
//! sealed with the data key for the key's row. Ed25519 signatures are deterministic, so a
//! ticket's payload is signed when it is read and never stored.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::db::{now_us, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::{DataKey, key_id};

/// The `typ` of a ticket's JWS (RFC 8725 §3.11: explicit typing, so an access token can never
/// pass for a ticket nor the reverse).
pub const TICKET_JWT_TYPE: &str = "pass-ticket+jwt";

/// What a ticket's payload says, for the club's app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// The ticket id.
    pub jti: String,
    pub code: String,
    pub wallet: String,
    /// Euros with two decimals, as a string ("30.00").
    pub amount: String,
    /// The partner that may redeem it; null for a bearer ticket.
    pub partner: Option<String>,
    /// Valid until (seconds since the epoch).
    pub exp: i64,
    pub iss: String,
}

/// Signing keys, cached once opened.
pub struct TicketKeys {
    issuer: String,
    opened: Mutex<HashMap<String, SigningKey>>,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

#[derive(FromQueryResult)]
struct KeyRow {
    kid: String,
    public_key: String,
    sealed_private_key: String,
}

fn aad(kid: &str) -> String {
    format!("ticket_signing_key:{kid}")
}

impl TicketKeys {
    pub fn new(issuer: impl Into<String>) -> TicketKeys {
        TicketKeys { issuer: issuer.into(), opened: Mutex::new(HashMap::new()) }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `kid` new tickets are signed with: the newest key not retired, created on first use.
    pub async fn current<C: ConnectionTrait>(&self, db: &C, data_key: &DataKey) -> Result<String> {
        let sql = "SELECT kid, public_key, sealed_private_key FROM ticket_signing_key WHERE retired_at_us IS NULL \
                   ORDER BY created_at_us DESC, kid LIMIT 1";
        match KeyRow::find_by_statement(stmt(db.get_database_backend(), sql, [])).one(db).await? {
            Some(row) => Ok(row.kid),
            None => Self::create(db, data_key).await,
        }
    }

    /// Starts signing with a new key. The old ones stay published while their tickets live.
    pub async fn rotate<C: ConnectionTrait>(db: &C, data_key: &DataKey) -> Result<String> {
        let sql = format!(
            "UPDATE ticket_signing_key SET retired_at_us = {} WHERE retired_at_us IS NULL",
            now_us_sql(db.get_database_backend())
        );
        db.execute_raw(stmt(db.get_database_backend(), &sql, [])).await?;
        Self::create(db, data_key).await
    }

    async fn create<C: ConnectionTrait>(db: &C, data_key: &DataKey) -> Result<String> {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let kid = key_id(&key.verifying_key());
        let sealed = data_key.seal(&aad(&kid), key.as_bytes());
        let sql = format!(
            "INSERT INTO ticket_signing_key (kid, public_key, sealed_private_key, created_at_us) VALUES ($1, $2, $3, {})",
            now_us_sql(db.get_database_backend())
        );
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        db.execute_raw(stmt(db.get_database_backend(), &sql, [kid.clone().into(), public.into(), sealed.into()]))
            .await?;
        Ok(kid)
    }

    /// Signs `claims` with the key `kid` (a ticket is always signed by the key it was issued under).
    pub async fn sign<C: ConnectionTrait>(
        &self,
        db: &C,
        data_key: &DataKey,
        kid: &str,
        claims: &TicketClaims,
    ) -> Result<String> {
        let key = self.open(db, data_key, kid).await?;
        let header = json!({ "alg": "EdDSA", "typ": TICKET_JWT_TYPE, "kid": kid });
        let body = serde_json::to_vec(claims).map_err(Error::internal)?;
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(body));
        let signature = key.sign(input.as_bytes());
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())))
    }

    async fn open<C: ConnectionTrait>(&self, db: &C, data_key: &DataKey, kid: &str) -> Result<SigningKey> {
        if let Some(k) = self.opened.lock().map_err(|_| poisoned())?.get(kid) {
            return Ok(k.clone());
        }
        let sql = "SELECT kid, public_key, sealed_private_key FROM ticket_signing_key WHERE kid = $1";
        let row = KeyRow::find_by_statement(stmt(db.get_database_backend(), sql, [kid.into()])).one(db).await?;
        let row = row.ok_or_else(|| Error::internal(DbErr::RecordNotFound(format!("ticket key {kid}"))))?;
        let secret = data_key.open(&aad(&row.kid), &row.sealed_private_key).map_err(Error::internal)?;
        let bytes: [u8; 32] =
            secret.as_slice().try_into().map_err(|_| Error::internal(DbErr::Type("key size".into())))?;
        let key = SigningKey::from_bytes(&bytes);
        if URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()) != row.public_key {
            return Err(Error::internal(DbErr::Type(format!("ticket key {kid} does not match its public key"))));
        }
        self.opened.lock().map_err(|_| poisoned())?.insert(kid.to_owned(), key.clone());
        Ok(key)
    }
}

fn poisoned() -> Error {
    Error::internal(DbErr::Custom("ticket key cache poisoned".into()))
}

/// The JWK Set: keys not retired, and retired keys that signed a ticket still pending and
/// not past its validity.
pub async fn jwks<C: ConnectionTrait>(db: &C) -> Result<serde_json::Value> {
    let now = now_us(db).await?;
    let sql = "SELECT k.kid, k.public_key, '' AS sealed_private_key FROM ticket_signing_key k \
               WHERE k.retired_at_us IS NULL OR EXISTS (SELECT 1 FROM ticket t JOIN ledger_hold h \
               ON h.transfer_id = t.hold_id WHERE t.kid = k.kid AND t.valid_until_us > $1 AND h.state = 'pending') \
               ORDER BY k.created_at_us DESC";
    let rows = KeyRow::find_by_statement(stmt(db.get_database_backend(), sql, [now.into()])).all(db).await?;
    let keys: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|k| json!({ "kty": "OKP", "crv": "Ed25519", "x": k.public_key, "kid": k.kid, "use": "sig", "alg": "EdDSA" }))
        .collect();
    Ok(json!({ "keys": keys }))
}
