//! Step-up: before a sensitive operation (the grant, eligibility and family-link decisions,
//! API credentials) the person proves their credentials again, so a stolen unlocked phone or a
//! leaked access token is not enough (security.md A6, A11; MASVS-AUTH-3).
//!
//! The device session row keeps the time of the last proof (`reauthenticated_at_us`); signing
//! in counts as one. Times come from the database clock, like every other session decision, so
//! several servers agree.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use super::accounts::{AccountKind, tokio_blocking};
use super::guard::{CredentialKeys, admit_credentials, credentials_ok};
use super::principal::Principal;
use super::sessions::{AuthConfig, totp_ok};
use crate::db::{now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::{dummy_verify, verify_password};

/// How long a proof covers sensitive operations.
pub const REAUTH_WINDOW_SECS: i64 = 10 * 60;

/// Checks the password (and, for staff, a fresh TOTP code) of the signed-in person and marks
/// the current session as re-authenticated. Returns until when, in µs.
///
/// Attempts are reserved before the check (`guard`): the session is the hard key (a stolen
/// session gets five guesses, then one every few minutes), and the account's sign-in key only
/// adds a short wait, so a stranger guessing the password elsewhere cannot stop a staff member
/// from stepping up. A wrong answer is `BAD_USER_INPUT` (the session itself is fine: the app
/// must not sign out), a used-up session `RATE_LIMITED`.
pub async fn reauthenticate(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    principal: &Principal,
    password: &str,
    totp_code: Option<&str>,
) -> Result<i64> {
    let account = &principal.account;
    let keys = CredentialKeys::reauth(principal.session_id, &account.email);
    admit_credentials(db, &keys).await?;
    let backend = db.get_database_backend();
    let sql = "SELECT password_hash FROM account WHERE id = $1";
    let row = PasswordHash::find_by_statement(stmt(backend, sql, [account.id.into()])).one(db).await?;
    let phc = row.and_then(|r| r.password_hash);
    let supplied = password.to_owned();
    let password_ok = tokio_blocking(move || {
        Ok(match phc {
            Some(phc) => verify_password(&supplied, &phc),
            None => {
                dummy_verify(&supplied);
                false
            }
        })
    })
    .await?;
    // Staff always give a code; the code is spent only when the password was right.
    let ok =
        password_ok && (account.kind != AccountKind::Staff || totp_ok(db, &auth.data_key, account, totp_code).await?);
    if !ok {
        return Err(Error::bad_input("password", "wrong password or code"));
    }
    credentials_ok(db, &keys).await?;
    let now = now_us_sql(backend);
    let sql = format!(
        "UPDATE device_session SET reauthenticated_at_us = {now} WHERE id = $1 AND account_id = $2 \
         AND revoked_at_us IS NULL RETURNING reauthenticated_at_us"
    );
    let values = [principal.session_id.into(), account.id.into()];
    let row = Reauthenticated::find_by_statement(stmt(backend, &sql, values)).one(db).await?;
    let at = row.ok_or(Error::Unauthenticated)?.reauthenticated_at_us;
    Ok(at + REAUTH_WINDOW_SECS * 1_000_000)
}

#[derive(FromQueryResult)]
struct PasswordHash {
    password_hash: Option<String>,
}

#[derive(FromQueryResult)]
struct Reauthenticated {
    reauthenticated_at_us: i64,
}

/// `REAUTH_REQUIRED` unless `session` proved its credentials within [`REAUTH_WINDOW_SECS`].
pub async fn require_recent_auth(db: &DatabaseConnection, session: Uuid) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT id FROM device_session WHERE id = $1 AND revoked_at_us IS NULL \
         AND reauthenticated_at_us > {} - $2",
        now_us_sql(backend)
    );
    let values = [session.into(), (REAUTH_WINDOW_SECS * 1_000_000).into()];
    match db.query_one_raw(stmt(backend, &sql, values)).await? {
        Some(_) => Ok(()),
        None => Err(Error::ReauthRequired),
    }
}
