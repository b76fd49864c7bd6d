//! Sign-in, sessions, sign-out (refresh-token rotation is in [`super::refresh`]).

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::accounts::{self, Account, AccountKind, AccountRow, find_account_by_email, normalize_email, tokio_blocking};
use super::guard::{CredentialKeys, admit_credentials, credentials_ok};
use super::totp_store::open_totp;
use crate::db::{begin_write, now_us, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::{AccessTokenKeys, Claims, DataKey, TokenKind, dummy_verify, new_refresh_token, verify_password};

/// Token settings shared by every request.
pub struct AuthConfig {
    pub keys: AccessTokenKeys,
    pub issuer: String,
    pub audience: String,
    /// 15 minutes.
    pub access_ttl_secs: i64,
    /// Seals secrets kept at rest (staff TOTP seeds).
    pub data_key: DataKey,
}

/// The device a session lives on.
#[derive(Clone, Debug)]
pub struct Device {
    pub device_id: String,
    pub platform: String,
    pub name: String,
}

/// What a successful sign-in or refresh returns.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at_unix: i64,
    pub refresh_token: String,
    pub session_id: Uuid,
    pub account: Account,
}

pub(super) fn unauthenticated() -> Error {
    Error::Unauthenticated
}

pub(super) fn token_kind(kind: AccountKind) -> TokenKind {
    match kind {
        AccountKind::Parent => TokenKind::Parent,
        AccountKind::PartnerMember => TokenKind::PartnerMember,
        AccountKind::Staff => TokenKind::Staff,
    }
}

/// Session lifetime: 90 days for parents and partners, 12 hours for staff (A9).
fn session_ttl_secs(kind: AccountKind) -> i64 {
    if kind == AccountKind::Staff { 12 * 3600 } else { 90 * 24 * 3600 }
}

pub(super) fn check_device(d: &Device) -> Result<()> {
    let ok = |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control);
    if !ok(&d.device_id, 128) || !ok(&d.name, 100) || !["IOS", "ANDROID", "WEB"].contains(&d.platform.as_str()) {
        return Err(Error::bad_input(
            "device",
            "deviceId (≤ 128), platform (IOS, ANDROID, WEB) and name (≤ 100) are required",
        ));
    }
    Ok(())
}

/// Signs in with e-mail and password (+ TOTP for staff). Unknown e-mail, wrong password, wrong
/// code and disabled account all give `UNAUTHENTICATED` after the same Argon2 work.
///
/// The attempt is reserved on its throttling keys before anything is checked (`guard`): only
/// this account from this address can be refused (`RATE_LIMITED`); the account or the address
/// under attack from elsewhere only makes attempts wait a little, so the right password from
/// another address still signs in.
pub async fn log_in(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    email: &str,
    password: &str,
    totp_code: Option<&str>,
    device: &Device,
    ip: &str,
) -> Result<Tokens> {
    check_device(device)?;
    let email = normalize_email(email).unwrap_or_default();
    let keys = CredentialKeys::new("login", &email, ip);
    admit_credentials(db, &keys).await?;
    let found = if email.is_empty() { None } else { find_account_by_email(db, &email).await? };
    let supplied = password.to_owned();
    let verified = match &found {
        Some((account, Some(phc))) => {
            let phc = phc.clone();
            let ok = tokio_blocking(move || Ok(verify_password(&supplied, &phc))).await?;
            ok && account.active && totp_ok(db, &auth.data_key, account, totp_code).await?
        }
        _ => {
            tokio_blocking(move || {
                dummy_verify(&supplied);
                Ok(())
            })
            .await?;
            false
        }
    };
    let Some((account, _)) = found.filter(|_| verified) else {
        return Err(unauthenticated());
    };
    credentials_ok(db, &keys).await?;
    open_session(db, auth, account, device).await
}

/// Staff must give a current TOTP code, each code usable once (A5, A6).
pub(super) async fn totp_ok(
    db: &DatabaseConnection,
    key: &DataKey,
    account: &Account,
    code: Option<&str>,
) -> Result<bool> {
    if account.kind != AccountKind::Staff {
        return Ok(true);
    }
    let Some(code) = code else { return Ok(false) };
    let backend = db.get_database_backend();
    let sql = "SELECT totp_secret, totp_last_step FROM account WHERE id = $1";
    let row = TotpState::find_by_statement(stmt(backend, sql, [account.id.into()])).one(db).await?;
    let Some(TotpState { totp_secret: Some(stored), totp_last_step: last }) = row else { return Ok(false) };
    let secret = open_totp(key, account.id, &stored)?;
    let now = (now_us(db).await? / 1_000_000).max(0) as u64;
    let Some(step) = secret.verify(code, now, last.map(|l| l.max(0) as u64)) else { return Ok(false) };
    // Record the step only if nobody used it meanwhile (two sign-ins racing with one code).
    let sql =
        "UPDATE account SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)";
    Ok(db.execute_raw(stmt(backend, sql, [account.id.into(), (step as i64).into()])).await?.rows_affected() == 1)
}

#[derive(FromQueryResult)]
struct TotpState {
    totp_secret: Option<String>,
    totp_last_step: Option<i64>,
}

pub(super) async fn open_session(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    account: Account,
    device: &Device,
) -> Result<Tokens> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let now = now_us_sql(backend);
    let session_id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO device_session (id, account_id, device_id, platform, device_name, created_at_us, last_used_at_us, \
         reauthenticated_at_us, expires_at_us) VALUES ($1, $2, $3, $4, $5, {now}, {now}, {now}, {now} + $6)"
    );
    let values: [Value; 6] = [
        session_id.into(),
        account.id.into(),
        device.device_id.trim().into(),
        device.platform.clone().into(),
        device.name.trim().into(),
        (session_ttl_secs(account.kind) * 1_000_000).into(),
    ];
    txn.execute_raw(stmt(backend, &sql, values)).await?;
    let refresh = insert_refresh(&txn, session_id, None).await?;
    txn.commit().await?;
    issue(db, auth, account, session_id, refresh).await
}

/// A new refresh token of the session; `replaces`: the token whose rotation makes it.
pub(super) async fn insert_refresh<C: ConnectionTrait>(
    db: &C,
    session_id: Uuid,
    replaces: Option<Uuid>,
) -> Result<String> {
    let (token, hash) = new_refresh_token();
    let sql = format!(
        "INSERT INTO refresh_token (id, session_id, token_hash, replaces, created_at_us) VALUES ($1, $2, $3, $4, {})",
        now_us_sql(db.get_database_backend())
    );
    db.execute_raw(stmt(
        db.get_database_backend(),
        &sql,
        [Uuid::now_v7().into(), session_id.into(), hash.to_hex().into(), replaces.into()],
    ))
    .await?;
    Ok(token)
}

pub(super) async fn issue(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    account: Account,
    session_id: Uuid,
    refresh_token: String,
) -> Result<Tokens> {
    let now = now_us(db).await? / 1_000_000;
    let claims = Claims::new(
        &auth.issuer,
        &auth.audience,
        account.id,
        session_id,
        token_kind(account.kind),
        now,
        auth.access_ttl_secs,
    );
    Ok(Tokens {
        access_token: auth.keys.issue(&claims),
        access_expires_at_unix: claims.exp,
        refresh_token,
        session_id,
        account,
    })
}

pub(super) async fn revoke<C: ConnectionTrait>(db: &C, session_id: Uuid, reason: &str) -> Result<()> {
    let sql = format!(
        "UPDATE device_session SET revoked_at_us = {}, revoked_reason = $2 WHERE id = $1 AND revoked_at_us IS NULL",
        now_us_sql(db.get_database_backend())
    );
    db.execute_raw(stmt(db.get_database_backend(), &sql, [session_id.into(), reason.into()])).await?;
    Ok(())
}

/// Ends a session (sign-out, or "revoke this device" from the sessions list).
pub async fn log_out(db: &DatabaseConnection, account_id: Uuid, session_id: Uuid) -> Result<bool> {
    let sql = format!(
        "UPDATE device_session SET revoked_at_us = {}, revoked_reason = 'signed out' \
         WHERE id = $1 AND account_id = $2 AND revoked_at_us IS NULL",
        now_us_sql(db.get_database_backend())
    );
    let r = db.execute_raw(stmt(db.get_database_backend(), &sql, [session_id.into(), account_id.into()])).await?;
    Ok(r.rows_affected() == 1)
}

/// The account of a live session (not revoked, not expired by the database clock), in one
/// statement: every authenticated request reads it.
pub(super) async fn session_account<C: ConnectionTrait>(
    db: &C,
    session: Uuid,
    account: Uuid,
) -> Result<Option<Account>> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT {} FROM account WHERE id = $2 AND EXISTS (SELECT 1 FROM device_session s WHERE s.id = $1 \
         AND s.account_id = $2 AND s.revoked_at_us IS NULL AND s.expires_at_us > {})",
        accounts::COLUMNS,
        crate::db::now_us_sql(backend)
    );
    let row = AccountRow::find_by_statement(stmt(backend, &sql, [session.into(), account.into()])).one(db).await?;
    Ok(row.map(Account::from))
}

pub(super) async fn load_account<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Account>> {
    let sql = format!("SELECT {} FROM account WHERE id = $1", accounts::COLUMNS);
    let row = AccountRow::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).one(db).await?;
    Ok(row.map(Account::from))
}

/// A device session as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct Session {
    pub id: Uuid,
    pub device_id: String,
    pub platform: String,
    pub name: String,
    pub created_at_us: i64,
    pub last_used_at_us: i64,
}

/// The live sessions of an account, newest first.
pub async fn list_sessions(db: &DatabaseConnection, account_id: Uuid) -> Result<Vec<Session>> {
    let sql = format!(
        "SELECT id, device_id, platform, device_name AS name, created_at_us, last_used_at_us FROM device_session \
         WHERE account_id = $1 AND revoked_at_us IS NULL AND expires_at_us > {} ORDER BY created_at_us DESC",
        now_us_sql(db.get_database_backend())
    );
    Ok(Session::find_by_statement(stmt(db.get_database_backend(), &sql, [account_id.into()])).all(db).await?)
}
