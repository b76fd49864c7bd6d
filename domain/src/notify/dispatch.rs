//! The outbox dispatcher. Several may run at once (every `serve` and `worker`): rows are
//! claimed with a lease by one conditional update (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! claimers skip each other's rows; on SQLite the write lock serialises claimers), and a
//! channel already recorded in `delivery` is never sent again for the same event.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::PushSender;
use crate::db::{begin_write, now_us, stmt};
use crate::error::{Error, Result};
use crate::mail::Mailer;

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
pub(super) enum Undelivered {
    Retry { after_secs: Option<u64>, reason: String },
    Fail(String),
}

/// A database error while delivering: the row is tried again later.
pub(super) fn retry(e: impl Into<Error>) -> Undelivered {
    Undelivered::Retry { after_secs: None, reason: e.into().to_string() }
}

/// Each topic's delivery is in `fanout` (inbox, push, e-mail) and `email` (account mails).
async fn deliver(
    db: &DatabaseConnection,
    push: Option<&Arc<dyn PushSender>>,
    mail: Option<&Arc<dyn Mailer>>,
    row: &Claimed,
    report: &mut DispatchReport,
) -> Result<(), Undelivered> {
    let channels = super::fanout::Channels { push, mail };
    super::fanout::deliver_row(db, &channels, row.id, &row.topic, &row.payload, report).await
}

#[derive(FromQueryResult)]
struct Found {
    n: i64,
}

pub(super) async fn delivered<C: ConnectionTrait>(db: &C, event: Uuid, channel: &str) -> Result<bool> {
    let sql = "SELECT COUNT(*) AS n FROM delivery WHERE event_id = $1 AND channel = $2";
    let row =
        Found::find_by_statement(stmt(db.get_database_backend(), sql, [event.into(), channel.into()])).one(db).await?;
    Ok(row.is_some_and(|r| r.n > 0))
}

pub(super) async fn record<C: ConnectionTrait>(db: &C, event: Uuid, channel: &str) -> Result<()> {
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
