//! Accounts: sign-up with e-mail verification, staff with roles and TOTP.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde::Serialize;
use uuid::Uuid;

use super::throttle::Throttle;
use super::totp_store::seal_totp;
use crate::db::{begin_write, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::{DataKey, PasswordPolicy, TokenHash, TotpSecret, check_password, hash_password, new_email_token};
use crate::mail::Message;

crate::stored_enum! {
    /// What kind of person signs in. Stored in `account.kind` as its snake_case name.
    pub enum AccountKind {
        Parent,
        PartnerMember,
        Staff,
    }
}

impl AccountKind {
    /// ANSSI: 12 characters for users, 16 for administrators (A2).
    pub fn password_policy(self) -> PasswordPolicy {
        if self == AccountKind::Staff { PasswordPolicy::Staff } else { PasswordPolicy::Standard }
    }
}

crate::stored_enum! {
    /// A staff role, scoped to one funder. Stored in `staff_role.role` as its snake_case name.
    pub enum StaffRole {
        Admin,
        EligibilityOfficer,
        FinanceOfficer,
        Auditor,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: Uuid,
    pub kind: AccountKind,
    pub email: String,
    pub email_verified: bool,
    pub display_name: String,
    pub active: bool,
}

pub(super) const COLUMNS: &str = "id, kind, email, email_verified_at_us, display_name, status";

/// `account` as [`COLUMNS`] select it.
#[derive(FromQueryResult)]
pub(super) struct AccountRow {
    id: Uuid,
    kind: AccountKind,
    email: String,
    email_verified_at_us: Option<i64>,
    display_name: String,
    /// `active`, or why the account was switched off (`disabled`…): anything but `active`
    /// signs nobody in.
    status: String,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Account {
        Account {
            id: r.id,
            kind: r.kind,
            email: r.email,
            email_verified: r.email_verified_at_us.is_some(),
            display_name: r.display_name,
            active: r.status == "active",
        }
    }
}

/// An account with its password hash (`None` for accounts signing in elsewhere).
#[derive(FromQueryResult)]
struct AccountWithHash {
    #[sea_orm(nested)]
    account: AccountRow,
    password_hash: Option<String>,
}

#[derive(FromQueryResult)]
struct KindRow {
    kind: AccountKind,
}

/// The kind of account `id`; `None` when there is no such account.
pub(crate) async fn account_kind<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<AccountKind>> {
    let sql = "SELECT kind FROM account WHERE id = $1";
    let row = KindRow::find_by_statement(stmt(db.get_database_backend(), sql, [id.into()])).one(db).await?;
    Ok(row.map(|r| r.kind))
}

/// Trims and lower-cases; refuses what cannot be an address.
pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(e) } else { Err(Error::bad_input("email", "not an e-mail address")) }
}

pub async fn find_account_by_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Option<(Account, Option<String>)>> {
    let sql = format!("SELECT {COLUMNS}, password_hash FROM account WHERE email = $1");
    let row = AccountWithHash::find_by_statement(stmt(db.get_database_backend(), &sql, [email.into()])).one(db).await?;
    Ok(row.map(|r| (r.account.into(), r.password_hash)))
}

/// Creates a parent or partner account (demo seed, CLI, sign-up). Staff accounts carry a TOTP
/// seed sealed with the data key: [`create_staff_account`].
pub async fn create_account(
    db: &DatabaseConnection,
    kind: AccountKind,
    email: &str,
    password: &str,
    display_name: &str,
    verified: bool,
    roles: &[(Uuid, StaffRole)],
) -> Result<(Account, Option<TotpSecret>)> {
    if kind == AccountKind::Staff {
        return Err(Error::bad_input("kind", "staff accounts are created with create_staff_account"));
    }
    insert_account(db, None, kind, email, password, display_name, verified, roles).await
}

/// Creates a staff account with `roles`; returns it with the new TOTP secret to enrol in an
/// authenticator app (stored sealed with `key`, never in clear).
pub async fn create_staff_account(
    db: &DatabaseConnection,
    key: &DataKey,
    email: &str,
    password: &str,
    display_name: &str,
    roles: &[(Uuid, StaffRole)],
) -> Result<(Account, TotpSecret)> {
    let (account, totp) =
        insert_account(db, Some(key), AccountKind::Staff, email, password, display_name, true, roles).await?;
    Ok((account, totp.ok_or(Error::NotFound("TOTP secret"))?))
}

#[allow(clippy::too_many_arguments)]
async fn insert_account(
    db: &DatabaseConnection,
    key: Option<&DataKey>,
    kind: AccountKind,
    email: &str,
    password: &str,
    display_name: &str,
    verified: bool,
    roles: &[(Uuid, StaffRole)],
) -> Result<(Account, Option<TotpSecret>)> {
    let email = normalize_email(email)?;
    check_password(kind.password_policy(), password, &[&email, display_name])
        .map_err(|e| Error::bad_input("password", e.to_string()))?;
    let owned = password.to_owned();
    let hash = tokio_blocking(move || hash_password(&owned)).await?;
    let totp = key.map(|key| (key, TotpSecret::generate()));
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let now = now_us_sql(backend);
    let id = Uuid::now_v7();
    let verified_sql = if verified { now } else { "NULL" };
    let sql = format!(
        "INSERT INTO account (id, kind, email, email_verified_at_us, password_hash, display_name, status, totp_secret, created_at_us) \
         VALUES ($1, $2, $3, {verified_sql}, $4, $5, 'active', $6, {now}) ON CONFLICT (email) DO NOTHING"
    );
    let values = [
        id.into(),
        kind.into(),
        email.clone().into(),
        hash.into(),
        display_name.trim().into(),
        totp.as_ref().map(|(key, secret)| seal_totp(key, id, secret)).into(),
    ];
    if txn.execute_raw(stmt(backend, &sql, values)).await?.rows_affected() == 0 {
        return Err(Error::Conflict("an account already uses this e-mail".into()));
    }
    for (funder, role) in roles {
        let sql = format!(
            "INSERT INTO staff_role (id, account_id, funder_id, role, created_at_us) VALUES ($1, $2, $3, $4, {now})"
        );
        txn.execute_raw(stmt(backend, &sql, [Uuid::now_v7().into(), id.into(), (*funder).into(), (*role).into()]))
            .await?;
    }
    let account = find_account_by_email(&txn, &email).await?.ok_or(Error::NotFound("account"))?.0;
    txn.commit().await?;
    Ok((account, totp.map(|(_, secret)| secret)))
}

/// Parent (or partner member) self sign-up. The verification mail is queued with its token (the
/// token is also returned, for tools), or nothing when the address is taken — the caller
/// answers the same either way (no oracle).
/// Throttled per client address and per target address before any hashing (`RATE_LIMITED`).
pub async fn sign_up(
    db: &DatabaseConnection,
    kind: AccountKind,
    email: &str,
    password: &str,
    name: &str,
    ip: &str,
) -> Result<Option<(Account, String)>> {
    if kind == AccountKind::Staff {
        return Err(Error::Forbidden);
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::bad_input("displayName", "1 to 100 characters"));
    }
    // What the input alone refuses is refused before counting: it sends nothing.
    let to = normalize_email(email)?;
    check_password(kind.password_policy(), password, &[&to, name])
        .map_err(|e| Error::bad_input("password", e.to_string()))?;
    super::guard::admit_mail_request(db, "signup", Throttle::SIGN_UP_IP, ip, Some(&to)).await?;
    let account = match create_account(db, kind, email, password, name, false, &[]).await {
        Ok((a, _)) => a,
        Err(Error::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let token = issue_email_token(db, &account, "verify", 48 * 3600, |to, name, token| Message::VerifyEmail {
        to,
        name,
        token,
    })
    .await?;
    Ok(Some((account, token)))
}

/// Creates a single-use e-mail token and queues its mail in one transaction: the mail goes out
/// (through the outbox's dispatcher, after the answer) exactly when the token exists. Returns
/// the token for callers without mail (tools, tests).
async fn issue_email_token(
    db: &DatabaseConnection,
    account: &Account,
    purpose: &str,
    ttl_secs: i64,
    message: impl FnOnce(String, String, String) -> Message,
) -> Result<String> {
    let (token, hash) = new_email_token();
    let message = message(account.email.clone(), account.display_name.clone(), token.clone());
    let txn = begin_write(db).await?;
    store_email_token(&txn, account.id, purpose, &hash, ttl_secs).await?;
    crate::mail::queue(&txn, Some(account.id), &message).await?;
    txn.commit().await?;
    Ok(token)
}

async fn store_email_token<C: ConnectionTrait>(
    db: &C,
    account: Uuid,
    purpose: &str,
    hash: &TokenHash,
    ttl_secs: i64,
) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = format!(
        "INSERT INTO email_token (id, account_id, purpose, token_hash, expires_at_us) VALUES ($1, $2, $3, $4, {} + $5)",
        now_us_sql(backend)
    );
    let values =
        [Uuid::now_v7().into(), account.into(), purpose.into(), hash.to_hex().into(), (ttl_secs * 1_000_000).into()];
    db.execute_raw(stmt(backend, &sql, values)).await?;
    Ok(())
}

/// Consumes a verification token (single use, 48 hours). False when unknown, used or expired.
pub async fn verify_email(db: &DatabaseConnection, token: &str) -> Result<bool> {
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    let txn = begin_write(db).await?;
    let Some(account) = consume_email_token(&txn, token, "verify").await? else {
        return Ok(false);
    };
    let sql = format!("UPDATE account SET email_verified_at_us = {now} WHERE id = $1 AND email_verified_at_us IS NULL");
    txn.execute_raw(stmt(backend, &sql, [account.into()])).await?;
    txn.commit().await?;
    Ok(true)
}

/// Starts a password reset: a single-use token valid one hour, queued in a mail to the account's
/// address (and returned, for tools). `None` for an unknown address, and nothing queued — the
/// caller answers the same either way (A4), including the throttling per client address and
/// per target address.
pub async fn request_password_reset(
    db: &DatabaseConnection,
    email: &str,
    ip: &str,
) -> Result<Option<(Account, String)>> {
    let to = normalize_email(email).ok();
    super::guard::admit_mail_request(db, "reset", Throttle::MAIL_IP, ip, to.as_deref()).await?;
    let Some(email) = to else { return Ok(None) };
    let Some((account, _)) = find_account_by_email(db, &email).await?.filter(|(a, _)| a.active) else {
        return Ok(None);
    };
    let token =
        issue_email_token(db, &account, "reset", 3600, |to, name, token| Message::PasswordReset { to, name, token })
            .await?;
    Ok(Some((account, token)))
}

/// Sets a new password with a reset token (single use), revokes every session of the account
/// (whoever knew the old password is signed out everywhere, A10) and spends every other
/// outstanding reset token of the account.
pub async fn reset_password(db: &DatabaseConnection, token: &str, new_password: &str) -> Result<bool> {
    let backend = db.get_database_backend();
    let sql = "SELECT a.kind, a.email, a.display_name FROM email_token t JOIN account a ON a.id = t.account_id \
               WHERE t.token_hash = $1 AND t.purpose = 'reset' AND t.used_at_us IS NULL";
    // An unknown stored kind is a read error: the password policy depends on it.
    let row =
        ResetTarget::find_by_statement(stmt(backend, sql, [TokenHash::of(token).to_hex().into()])).one(db).await?;
    let Some(ResetTarget { kind, email, display_name }) = row else {
        return Ok(false);
    };
    check_password(kind.password_policy(), new_password, &[&email, &display_name])
        .map_err(|e| Error::bad_input("newPassword", e.to_string()))?;
    let owned = new_password.to_owned();
    let hash = tokio_blocking(move || hash_password(&owned)).await?;
    let txn = begin_write(db).await?;
    let now = now_us_sql(backend);
    let Some(account) = consume_email_token(&txn, token, "reset").await? else {
        return Ok(false);
    };
    txn.execute_raw(stmt(
        backend,
        "UPDATE account SET password_hash = $2 WHERE id = $1",
        [account.into(), hash.into()],
    ))
    .await?;
    let sql = format!(
        "UPDATE device_session SET revoked_at_us = {now}, revoked_reason = 'password reset' WHERE account_id = $1 AND revoked_at_us IS NULL"
    );
    txn.execute_raw(stmt(backend, &sql, [account.into()])).await?;
    // The other reset links of the account die with this reset: a mail read later, or by
    // someone else, must not set the password again.
    let sql = format!(
        "UPDATE email_token SET used_at_us = {now} WHERE account_id = $1 AND purpose = 'reset' AND used_at_us IS NULL"
    );
    txn.execute_raw(stmt(backend, &sql, [account.into()])).await?;
    txn.commit().await?;
    Ok(true)
}

/// The account a reset token is for: what the password policy needs.
#[derive(FromQueryResult)]
struct ResetTarget {
    kind: AccountKind,
    email: String,
    display_name: String,
}

#[derive(FromQueryResult)]
struct AccountId {
    account_id: Uuid,
}

/// Marks a live e-mail token of `purpose` used (one conditional update: a token works once even
/// when two requests race) and returns its account.
async fn consume_email_token<C: ConnectionTrait>(db: &C, token: &str, purpose: &str) -> Result<Option<Uuid>> {
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    let sql = format!(
        "UPDATE email_token SET used_at_us = {now} WHERE token_hash = $1 AND purpose = $2 AND used_at_us IS NULL \
         AND expires_at_us > {now} RETURNING account_id"
    );
    let values = [TokenHash::of(token).to_hex().into(), purpose.into()];
    let row = AccountId::find_by_statement(stmt(backend, &sql, values)).one(db).await?;
    Ok(row.map(|r| r.account_id))
}

/// Argon2 takes ~20-50 ms of CPU: off the async workers, and at most one per CPU at once
/// (`guard::argon2_slots`).
pub(crate) async fn tokio_blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, crate::identity::PasswordError> + Send + 'static,
) -> Result<T> {
    let _permit = super::guard::argon2_slots().acquire().await.map_err(Error::internal)?;
    let joined = tokio::task::spawn_blocking(f).await.map_err(Error::internal)?;
    joined.map_err(|e| Error::bad_input("password", e.to_string()))
}
