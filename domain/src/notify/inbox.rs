//! The app's inbox, the account's devices and its notification preferences.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::NotificationKind;
use crate::db::{now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::spending::Page;

/// One inbox entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct Notification {
    pub id: Uuid,
    /// The event it tells of: the same event is never shown twice.
    pub event_id: Uuid,
    pub kind: NotificationKind,
    /// `{"pass_id": …}`: ids only.
    pub payload: String,
    pub created_at_us: i64,
    pub read_at_us: Option<i64>,
}

/// The account's inbox, newest first.
pub async fn list_notifications<C: ConnectionTrait>(
    db: &C,
    account: Uuid,
    unread_only: bool,
    page: &Page,
) -> Result<Vec<Notification>> {
    let (at, id) = crate::spending::before(page);
    let sql = "SELECT id, event_id, kind, payload, created_at_us, read_at_us FROM notification \
               WHERE account_id = $1 AND ($2 = FALSE OR read_at_us IS NULL) \
               AND (created_at_us < $3 OR (created_at_us = $3 AND id < $4)) \
               ORDER BY created_at_us DESC, id DESC LIMIT $5";
    let values: [Value; 5] = [account.into(), unread_only.into(), at.into(), id.into(), (page.first as i64).into()];
    Ok(Notification::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await?)
}

/// The account's entries after `(created_at_us, id)`, oldest first, at most `limit`: what a
/// live subscriber that fell behind may have missed.
pub async fn notifications_after<C: ConnectionTrait>(
    db: &C,
    account: Uuid,
    after: (i64, Uuid),
    limit: u64,
) -> Result<Vec<Notification>> {
    let sql = "SELECT id, event_id, kind, payload, created_at_us, read_at_us FROM notification \
               WHERE account_id = $1 AND (created_at_us > $2 OR (created_at_us = $2 AND id > $3)) \
               ORDER BY created_at_us, id LIMIT $4";
    let values: [Value; 4] = [account.into(), after.0.into(), after.1.into(), (limit as i64).into()];
    Ok(Notification::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await?)
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// One entry of the account's inbox (another account's: `NOT_FOUND`).
pub async fn get_notification<C: ConnectionTrait>(db: &C, account: Uuid, id: Uuid) -> Result<Notification> {
    let sql = "SELECT id, event_id, kind, payload, created_at_us, read_at_us FROM notification \
               WHERE id = $1 AND account_id = $2";
    let row = Notification::find_by_statement(stmt(db.get_database_backend(), sql, [id.into(), account.into()]));
    row.one(db).await?.ok_or(Error::NotFound("notification"))
}

pub async fn unread_count<C: ConnectionTrait>(db: &C, account: Uuid) -> Result<i64> {
    let sql = "SELECT COUNT(*) AS n FROM notification WHERE account_id = $1 AND read_at_us IS NULL";
    let row = Count::find_by_statement(stmt(db.get_database_backend(), sql, [account.into()])).one(db).await?;
    Ok(row.map_or(0, |r| r.n))
}

/// Marks these entries (all of them when `ids` is `None`) read; returns how many changed.
/// Another account's ids change nothing.
pub async fn mark_read(db: &DatabaseConnection, account: Uuid, ids: Option<&[Uuid]>) -> Result<u64> {
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    let mut values: Vec<Value> = vec![account.into()];
    let mut sql = format!("UPDATE notification SET read_at_us = {now} WHERE account_id = $1 AND read_at_us IS NULL");
    if let Some(ids) = ids {
        if ids.is_empty() || ids.len() > 100 {
            return Err(Error::bad_input("ids", "1 to 100 ids, or none for all"));
        }
        let list = crate::db::params(2, ids.len());
        sql.push_str(&format!(" AND id IN ({list})"));
        values.extend(ids.iter().map(|i| Value::from(*i)));
    }
    Ok(db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected())
}

/// Push and e-mail for one kind (both on unless the account turned them off).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct Preference {
    pub kind: NotificationKind,
    pub push: bool,
    pub email: bool,
}

/// Every kind, with the account's choice or the default (push on; e-mail per
/// [`NotificationKind::email_by_default`]).
pub async fn preferences<C: ConnectionTrait>(db: &C, account: Uuid) -> Result<Vec<Preference>> {
    use strum::VariantArray as _;
    let sql = "SELECT kind, push, email FROM notification_preference WHERE account_id = $1";
    let set = Preference::find_by_statement(stmt(db.get_database_backend(), sql, [account.into()])).all(db).await?;
    Ok(NotificationKind::VARIANTS
        .iter()
        .map(|k| {
            let default = Preference { kind: *k, push: true, email: k.email_by_default() };
            set.iter().find(|p| p.kind == *k).copied().unwrap_or(default)
        })
        .collect())
}

pub async fn set_preference(db: &DatabaseConnection, account: Uuid, p: Preference) -> Result<Preference> {
    let sql = "INSERT INTO notification_preference (id, account_id, kind, push, email) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (account_id, kind) DO UPDATE SET push = excluded.push, email = excluded.email";
    let values: [Value; 5] = [Uuid::now_v7().into(), account.into(), p.kind.into(), p.push.into(), p.email.into()];
    db.execute_raw(stmt(db.get_database_backend(), sql, values)).await?;
    Ok(p)
}

/// Records a device's token for the account (an app calls it at every start: `last_seen_at`
/// is refreshed, and a token that moved to another account follows it).
pub async fn register_push_token(db: &DatabaseConnection, account: Uuid, token: &str, platform: &str) -> Result<()> {
    let token = token.trim();
    if token.is_empty() || token.len() > 4096 || token.chars().any(char::is_whitespace) {
        return Err(Error::bad_input("token", "a device registration token"));
    }
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    let sql = format!(
        "INSERT INTO push_token (id, account_id, token, platform, created_at_us, last_seen_at_us) \
         VALUES ($1, $2, $3, $4, {now}, {now}) ON CONFLICT (token) DO UPDATE SET account_id = excluded.account_id, \
         platform = excluded.platform, last_seen_at_us = excluded.last_seen_at_us"
    );
    let values: [Value; 4] = [Uuid::now_v7().into(), account.into(), token.into(), platform.into()];
    db.execute_raw(stmt(backend, &sql, values)).await?;
    Ok(())
}
