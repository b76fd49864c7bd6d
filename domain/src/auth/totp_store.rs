//! Staff TOTP seeds at rest: sealed with the data key ([`DataKey`]), bound to their account row.
//!
//! Rows written before sealing existed hold the seed in clear base32; the server seals them all
//! at start-up ([`seal_clear_totp_secrets`]), before it answers any request. A value still in
//! clear when read (a row written meanwhile by an older server) is refused, never used.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use crate::db::{begin_write, stmt};
use crate::error::{Error, Result};
use crate::identity::{DataKey, TotpSecret};

/// The associated data of an account's sealed seed: a seed copied onto another row does not open.
fn aad(account: Uuid) -> String {
    format!("totp:{account}")
}

/// The stored form of `secret` for `account`.
pub(super) fn seal_totp(key: &DataKey, account: Uuid, secret: &TotpSecret) -> String {
    key.seal(&aad(account), secret.to_base32().as_bytes())
}

/// The seed of a stored value; an unreadable value is an error (logged), not a wrong code.
pub(super) fn open_totp(key: &DataKey, account: Uuid, stored: &str) -> Result<TotpSecret> {
    let plain = key.open(&aad(account), stored).map_err(Error::internal)?;
    let text = String::from_utf8(plain).map_err(Error::internal)?;
    TotpSecret::from_base32(&text).map_err(Error::internal)
}

#[derive(FromQueryResult)]
struct ClearSecret {
    id: Uuid,
    totp_secret: String,
}

/// Seals every seed still stored in clear; returns how many. Each row is updated only if it
/// still holds the clear value read, so two servers starting together do not seal twice.
pub async fn seal_clear_totp_secrets(db: &DatabaseConnection, key: &DataKey) -> Result<u64> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let sql = "SELECT id, totp_secret FROM account WHERE totp_secret IS NOT NULL AND totp_secret NOT LIKE 'enc1:%'";
    let rows = ClearSecret::find_by_statement(stmt(backend, sql, [])).all(&txn).await?;
    let mut sealed = 0;
    for row in rows {
        let value = key.seal(&aad(row.id), row.totp_secret.as_bytes());
        let sql = "UPDATE account SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3";
        let values = [value.into(), row.id.into(), row.totp_secret.into()];
        sealed += txn.execute_raw(stmt(backend, sql, values)).await?.rows_affected();
    }
    txn.commit().await?;
    if sealed > 0 {
        tracing::info!(sealed, "staff TOTP secrets sealed with the data key");
    }
    Ok(sealed)
}

#[derive(FromQueryResult)]
struct StoredSecret {
    id: Uuid,
    totp_secret: Option<String>,
}

/// The TOTP seed of the account with `email` (the demo prints its staff member's at start-up).
pub async fn totp_secret_of(db: &DatabaseConnection, key: &DataKey, email: &str) -> Result<Option<TotpSecret>> {
    let sql = "SELECT id, totp_secret FROM account WHERE email = $1";
    let row = StoredSecret::find_by_statement(stmt(db.get_database_backend(), sql, [email.into()])).one(db).await?;
    let Some(StoredSecret { id, totp_secret: Some(stored) }) = row else { return Ok(None) };
    open_totp(key, id, &stored).map(Some)
}
