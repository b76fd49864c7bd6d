//! Refresh-token rotation with reuse detection and a short grace for the app's own race (A9).
//!
//! Each refresh token works once; presenting a used one means it was stolen or replayed, and the
//! whole session is revoked, the thief's copy and the owner's alike. One exception: two threads
//! of the app refreshing at once with the same token. Then the token presented second is the
//! session's most recently rotated one, rotated less than [`REFRESH_GRACE_SECS`] ago, and the
//! request names the session's device: it is refused with `REFRESH_SUPERSEDED` and the session
//! lives on (the app keeps the tokens the first call received). Nothing is issued on that path,
//! so the grace gives a thief no tokens; it only delays the revocation by at most 20 seconds.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use super::sessions::{AuthConfig, Tokens, insert_refresh, issue, load_account, revoke, unauthenticated};
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::TokenHash;

/// How long the token rotated last stays "just rotated" (security.md A9: 10-30 s).
pub const REFRESH_GRACE_SECS: i64 = 20;

/// Rotates a refresh token. `device_id` is the id the app gave when it signed in on this device;
/// without it a reused token always revokes the session.
pub async fn refresh(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    refresh_token: &str,
    device_id: Option<&str>,
) -> Result<Tokens> {
    let backend = db.get_database_backend();
    let hash = TokenHash::of(refresh_token).to_hex();
    let txn = begin_write(db).await?;
    let now = now_us_sql(backend);
    let sql = format!(
        "SELECT r.id AS token_id, s.id AS session_id, s.account_id, \
         (s.revoked_at_us IS NULL AND s.expires_at_us > {now}) AS live FROM refresh_token r \
         JOIN device_session s ON s.id = r.session_id WHERE r.token_hash = $1"
    );
    let row = RefreshTarget::find_by_statement(stmt(backend, &sql, [hash.into()])).one(&txn).await?;
    let Some(RefreshTarget { token_id, session_id, account_id, live }) = row else {
        return Err(unauthenticated());
    };
    if !live {
        return Err(unauthenticated());
    }
    let sql = format!("UPDATE refresh_token SET used_at_us = {now} WHERE id = $1 AND used_at_us IS NULL");
    if txn.execute_raw(stmt(backend, &sql, [token_id.into()])).await?.rows_affected() == 0 {
        // Read after the update: on PostgreSQL it waited for the racing rotation to commit.
        if just_rotated(&txn, token_id, device_id).await? {
            tracing::info!(%session_id, "refresh raced with another refresh of the same device: refused, session kept");
            return Err(Error::RefreshSuperseded);
        }
        revoke(&txn, session_id, "refresh token reused").await?;
        txn.commit().await?;
        tracing::warn!(%session_id, "refresh token reuse: session revoked");
        return Err(unauthenticated());
    }
    let sql = format!("UPDATE device_session SET last_used_at_us = {now} WHERE id = $1");
    txn.execute_raw(stmt(backend, &sql, [session_id.into()])).await?;
    let account = load_account(&txn, account_id).await?.filter(|a| a.active).ok_or_else(unauthenticated)?;
    let token = insert_refresh(&txn, session_id, Some(token_id)).await?;
    txn.commit().await?;
    issue(db, auth, account, session_id, token).await
}

/// A refresh token and the state of its session.
#[derive(FromQueryResult)]
struct RefreshTarget {
    token_id: Uuid,
    session_id: Uuid,
    account_id: Uuid,
    live: bool,
}

#[derive(FromQueryResult)]
struct Rotation {
    /// Used less than the grace ago.
    recent: bool,
    /// The token its rotation made is not used yet: it is the one the newest token replaced
    /// (by time for tokens made before `replaces` existed).
    latest: bool,
    device_id: String,
}

/// Whether the used token `token_id` is the one its session rotated last, within the grace, and
/// the caller names the session's device.
async fn just_rotated<C: ConnectionTrait>(db: &C, token_id: Uuid, device_id: Option<&str>) -> Result<bool> {
    let Some(device_id) = device_id.map(str::trim).filter(|d| !d.is_empty()) else { return Ok(false) };
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT (r.used_at_us > {now} - $1) AS recent, \
         CASE WHEN EXISTS (SELECT 1 FROM refresh_token n WHERE n.replaces = r.id) \
         THEN NOT EXISTS (SELECT 1 FROM refresh_token n WHERE n.replaces = r.id AND n.used_at_us IS NOT NULL) \
         ELSE NOT EXISTS (SELECT 1 FROM refresh_token n WHERE n.session_id = r.session_id AND n.used_at_us > r.used_at_us) \
         END AS latest, s.device_id FROM refresh_token r JOIN device_session s ON s.id = r.session_id WHERE r.id = $2",
        now = now_us_sql(backend)
    );
    let values = [(REFRESH_GRACE_SECS * 1_000_000).into(), token_id.into()];
    let row = Rotation::find_by_statement(stmt(backend, &sql, values)).one(db).await?;
    Ok(row.is_some_and(|r| r.recent && r.latest && r.device_id == device_id))
}
