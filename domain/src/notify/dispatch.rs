//! The outbox dispatcher. Several may run at once (every `serve` and `worker`): rows are
//! claimed with a lease by one conditional update (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! claimers skip each other's rows; on SQLite the write lock serialises claimers), and a
//! channel already recorded in `delivery` is never sent again for the same event.

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::{NotificationKind, Push, PushError, PushSender, preferences};
use crate::db::{begin_write, now_us, stmt};
use crate::error::{Error, Result};
use crate::mail::{Mail, Mailer};

/// Attempts before a row is marked failed (about a day of backoff).
pub const MAX_ATTEMPTS: i32 = 12;
/// How long a claim holds a row: a dispatcher that dies releases it after this.
const LEASE_US: i64 = 60_000_000;

/// What one pass of the dispatcher did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    pub events: u64,
    pub inbox: u64,
    pub pushes: u64,
    pub emails: u64,
    pub tokens_removed: u64,
    pub retried: u64,
    pub failed: u64,
}

#[derive(FromQueryResult)]
struct Claimed {
    id: Uuid,
    topic: String,
    payload: String,
    attempts: i32,
}

/// Claims up to `limit` due rows and delivers them.
pub async fn dispatch(
    db: &DatabaseConnection,
    push: Option<&Arc<dyn PushSender>>,
    mail: Option<&Arc<dyn Mailer>>,
    limit: u64,
) -> Result<DispatchReport> {
    let mut report = DispatchReport::default();
    for row in claim(db, limit).await? {
        report.events += 1;
        let outcome = deliver(db, push, mail, &row, &mut report).await;
        settle(db, &row, outcome, &mut report).await?;
    }
    Ok(report)
}

async fn claim(db: &DatabaseConnection, limit: u64) -> Result<Vec<Claimed>> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let txn = begin_write(db).await?;
    let now = now_us(&txn).await?;
    let sql = format!(
        "UPDATE outbox SET claimed_until_us = $1 + {LEASE_US}, attempts = attempts + 1 WHERE id IN \
         (SELECT id FROM outbox WHERE dispatched_at_us IS NULL AND failed_at_us IS NULL AND next_attempt_at_us <= $1 \
         AND (claimed_until_us IS NULL OR claimed_until_us <= $1) ORDER BY next_attempt_at_us, id LIMIT $2 {lock}) \
         RETURNING id, topic, payload, attempts"
    );
    let rows = Claimed::find_by_statement(stmt(backend, &sql, [now.into(), (limit as i64).into()])).all(&txn).await?;
    txn.commit().await?;
    Ok(rows)
}

/// Why a row must be tried again, or given up.
enum Undelivered {
    Retry { after_secs: Option<u64>, reason: String },
    Fail(String),
}

#[derive(FromQueryResult)]
struct Recipient {
    account_id: Uuid,
    email: String,
}

#[derive(FromQueryResult)]
struct Device {
    id: Uuid,
    token: String,
    platform: String,
}

async fn deliver(
    db: &DatabaseConnection,
    push: Option<&Arc<dyn PushSender>>,
    mail: Option<&Arc<dyn Mailer>>,
    row: &Claimed,
    report: &mut DispatchReport,
) -> Result<(), Undelivered> {
    if row.topic != "pass_updated" {
        return Err(Undelivered::Fail(format!("unknown topic {:?}", row.topic)));
    }
    let payload: serde_json::Value =
        serde_json::from_str(&row.payload).map_err(|e| Undelivered::Fail(format!("payload: {e}")))?;
    let kind: NotificationKind = payload["reason"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| Undelivered::Fail(format!("unknown reason in {}", row.payload)))?;
    let pass = payload["pass_id"].as_str().and_then(|p| Uuid::parse_str(p).ok());
    let pass = pass.ok_or_else(|| Undelivered::Fail("no pass_id".into()))?;
    let backend = db.get_database_backend();
    let retry = |e: Error| Undelivered::Retry { after_secs: None, reason: e.to_string() };
    let sql = "SELECT DISTINCT l.account_id, a.email FROM family_link l JOIN pass p ON p.pupil_id = l.pupil_id \
               JOIN account a ON a.id = l.account_id WHERE p.id = $1 AND l.revoked_at_us IS NULL";
    let recipients =
        Recipient::find_by_statement(stmt(backend, sql, [pass.into()])).all(db).await.map_err(|e| retry(e.into()))?;
    let ids = serde_json::json!({ "pass_id": pass }).to_string();
    let mut pending: Option<Undelivered> = None;
    for r in recipients {
        // Stamped when written: subscribers (`notificationAdded`) follow the inbox by this time.
        let sql = format!(
            "INSERT INTO notification (id, account_id, event_id, kind, payload, created_at_us, read_at_us) \
             VALUES ($1, $2, $3, $4, $5, {}, NULL) ON CONFLICT (account_id, event_id) DO NOTHING",
            crate::db::now_us_sql(backend)
        );
        let values: [Value; 5] =
            [Uuid::now_v7().into(), r.account_id.into(), row.id.into(), kind.into(), ids.clone().into()];
        report.inbox += db.execute_raw(stmt(backend, &sql, values)).await.map_err(|e| retry(e.into()))?.rows_affected();
        let choice = preferences(db, r.account_id).await.map_err(retry)?;
        let choice = choice.into_iter().find(|p| p.kind == kind);
        if let (Some(sender), true) = (push, choice.is_none_or(|c| c.push)) {
            let sql = "SELECT id, token, platform FROM push_token WHERE account_id = $1 ORDER BY created_at_us";
            let devices = Device::find_by_statement(stmt(backend, sql, [r.account_id.into()]))
                .all(db)
                .await
                .map_err(|e| retry(e.into()))?;
            for d in devices {
                let channel = format!("push:{}", d.id);
                if delivered(db, row.id, &channel).await.map_err(retry)? {
                    continue;
                }
                let data = BTreeMap::from([
                    ("kind".to_owned(), kind.to_string()),
                    ("event_id".to_owned(), row.id.to_string()),
                    ("pass_id".to_owned(), pass.to_string()),
                ]);
                let message = Push {
                    token: d.token,
                    platform: d.platform,
                    title: kind.title().into(),
                    body: kind.body().into(),
                    data,
                };
                match sender.send(message).await {
                    Ok(()) => {
                        record(db, row.id, &channel).await.map_err(retry)?;
                        report.pushes += 1;
                    }
                    Err(PushError::InvalidToken) => {
                        let sql = "DELETE FROM push_token WHERE id = $1";
                        db.execute_raw(stmt(backend, sql, [d.id.into()])).await.map_err(|e| retry(e.into()))?;
                        report.tokens_removed += 1;
                    }
                    Err(PushError::Retry { retry_after_secs, reason }) => {
                        pending = Some(Undelivered::Retry { after_secs: retry_after_secs, reason });
                    }
                    Err(PushError::Config(reason)) => {
                        tracing::error!(%reason, "push configuration error: push not sent");
                    }
                }
            }
        }
        if let (Some(mailer), true) = (mail, choice.map_or(kind.email_by_default(), |c| c.email)) {
            let channel = format!("email:{}", r.account_id);
            if !delivered(db, row.id, &channel).await.map_err(retry)? {
                let text = format!("{}\n\n{}\n\nRéférence : {}\n", kind.title(), kind.body(), row.id);
                let m = Mail { to: r.email, subject: format!("Pass+ : {}", kind.title()), body: text };
                match mailer.send(m).await {
                    Ok(()) => {
                        record(db, row.id, &channel).await.map_err(retry)?;
                        report.emails += 1;
                    }
                    Err(e) => pending = Some(Undelivered::Retry { after_secs: None, reason: format!("mail: {e}") }),
                }
            }
        }
    }
    pending.map_or(Ok(()), Err)
}

#[derive(FromQueryResult)]
struct Found {
    n: i64,
}

async fn delivered<C: ConnectionTrait>(db: &C, event: Uuid, channel: &str) -> Result<bool> {
    let sql = "SELECT COUNT(*) AS n FROM delivery WHERE event_id = $1 AND channel = $2";
    let row =
        Found::find_by_statement(stmt(db.get_database_backend(), sql, [event.into(), channel.into()])).one(db).await?;
    Ok(row.is_some_and(|r| r.n > 0))
}

async fn record<C: ConnectionTrait>(db: &C, event: Uuid, channel: &str) -> Result<()> {
    let sql = format!(
        "INSERT INTO delivery (id, event_id, channel, sent_at_us) VALUES ($1, $2, $3, {}) \
         ON CONFLICT (event_id, channel) DO NOTHING",
        crate::db::now_us_sql(db.get_database_backend())
    );
    db.execute_raw(stmt(db.get_database_backend(), &sql, [Uuid::now_v7().into(), event.into(), channel.into()]))
        .await?;
    Ok(())
}

/// Exponential backoff with jitter: 2^attempts seconds (capped at an hour), ± 20 %.
fn backoff_us(attempts: i32) -> i64 {
    let base = 1_000_000_i64 << attempts.clamp(0, 12);
    let base = base.min(3_600_000_000);
    let jitter = (rand::random::<u64>() % 41) as i64 - 20;
    base + base * jitter / 100
}

async fn settle(
    db: &DatabaseConnection,
    row: &Claimed,
    outcome: Result<(), Undelivered>,
    report: &mut DispatchReport,
) -> Result<()> {
    let backend = db.get_database_backend();
    let now = now_us(db).await?;
    let (sql, values): (&str, Vec<Value>) = match outcome {
        Ok(()) => (
            "UPDATE outbox SET dispatched_at_us = $2, claimed_until_us = NULL WHERE id = $1",
            vec![row.id.into(), now.into()],
        ),
        Err(Undelivered::Retry { after_secs, reason }) if row.attempts < MAX_ATTEMPTS => {
            report.retried += 1;
            let wait = backoff_us(row.attempts).max(after_secs.map_or(0, |s| s as i64 * 1_000_000));
            (
                "UPDATE outbox SET next_attempt_at_us = $2, claimed_until_us = NULL, last_error = $3 WHERE id = $1",
                vec![row.id.into(), (now + wait).into(), reason.into()],
            )
        }
        Err(Undelivered::Retry { reason, .. } | Undelivered::Fail(reason)) => {
            report.failed += 1;
            tracing::warn!(event = %row.id, %reason, "notification given up");
            (
                "UPDATE outbox SET failed_at_us = $2, claimed_until_us = NULL, last_error = $3 WHERE id = $1",
                vec![row.id.into(), now.into(), reason.into()],
            )
        }
    };
    db.execute_raw(stmt(backend, sql, values)).await?;
    Ok(())
}

/// Drops device tokens not seen for 60 days (Firebase's token hygiene advice).
pub async fn prune_push_tokens(db: &DatabaseConnection) -> Result<u64> {
    let now = now_us(db).await?;
    let sql = "DELETE FROM push_token WHERE last_seen_at_us < $1";
    let cutoff = now - 60 * 86_400 * 1_000_000;
    Ok(db.execute_raw(stmt(db.get_database_backend(), sql, [cutoff.into()])).await?.rows_affected())
}
