//! What a pass writes: the inbox entries before anything is sent, then one transaction that
//! records the channels that went out, drops the device tokens FCM called gone, erases the
//! secret of the account mails sent and settles every claimed row (dispatched / retry with
//! backoff / failed).

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Value};
use uuid::Uuid;

use super::{Claimed, DispatchReport, MAX_ATTEMPTS, Undelivered};
use crate::db::{begin_write, now_us, now_us_sql, params, rows_per_statement, stmt};
use crate::error::Result;
use crate::notify::NotificationKind;

/// One inbox entry to write.
pub(super) struct Inbox {
    pub(super) account: Uuid,
    pub(super) event: Uuid,
    pub(super) kind: NotificationKind,
    pub(super) payload: String,
}

/// How one claimed row went.
pub(super) struct Outcome {
    /// The channels sent now (`push:<token id>`, `email:<account>`).
    pub(super) sent: Vec<String>,
    /// Device tokens FCM called gone.
    pub(super) gone: Vec<Uuid>,
    /// The row's payload without its secret, once its account mail went out.
    pub(super) erase: Option<String>,
    pub(super) result: std::result::Result<(), Undelivered>,
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome { sent: vec![], gone: vec![], erase: None, result: Ok(()) }
    }
}

impl Outcome {
    pub(super) fn retry(reason: String) -> Outcome {
        Outcome { result: Err(Undelivered::Retry { after_secs: None, reason }), ..Outcome::default() }
    }
}

/// Writes the inbox entries (one per account and event: a second dispatch writes nothing);
/// returns how many are new.
pub(super) async fn write_inbox(db: &DatabaseConnection, entries: &[Inbox]) -> Result<u64> {
    let backend = db.get_database_backend();
    // Stamped when written: subscribers (`notificationAdded`) follow the inbox by this time.
    let now = now_us_sql(backend);
    let mut written = 0;
    for chunk in entries.chunks(rows_per_statement(backend, 120, 1000)) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("({}, {now}, NULL)", params(i * 5 + 1, 5))).collect();
        let sql = format!(
            "INSERT INTO notification (id, account_id, event_id, kind, payload, created_at_us, read_at_us) \
             VALUES {} ON CONFLICT (account_id, event_id) DO NOTHING",
            rows.join(", ")
        );
        let values = chunk.iter().flat_map(|e| {
            [Uuid::now_v7().into(), e.account.into(), e.event.into(), e.kind.into(), e.payload.clone().into()]
        });
        written += db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected();
    }
    Ok(written)
}

/// Exponential backoff with jitter: 2^attempts seconds (capped at an hour), ± 20 %.
fn backoff_us(attempts: i32) -> i64 {
    let base = 1_000_000_i64 << attempts.clamp(0, 12);
    let base = base.min(3_600_000_000);
    let jitter = (rand::random::<u64>() % 41) as i64 - 20;
    base + base * jitter / 100
}

/// Records what went out and settles every row, in one transaction.
pub(super) async fn settle(
    db: &DatabaseConnection,
    rows: &[Claimed],
    outcomes: Vec<Outcome>,
    report: &mut DispatchReport,
) -> Result<()> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let now = now_us(&txn).await?;
    let sent: Vec<(Uuid, &String)> =
        rows.iter().zip(&outcomes).flat_map(|(r, o)| o.sent.iter().map(move |c| (r.id, c))).collect();
    record(&txn, &sent).await?;
    let gone: Vec<Uuid> = outcomes.iter().flat_map(|o| o.gone.iter().copied()).collect();
    for_chunks(&txn, "DELETE FROM push_token WHERE id IN ({ids})", &[], &gone).await?;
    let mut dispatched = vec![];
    for (row, outcome) in rows.iter().zip(outcomes) {
        if let Some(payload) = outcome.erase {
            let sql = "UPDATE outbox SET payload = $2 WHERE id = $1";
            txn.execute_raw(stmt(backend, sql, [row.id.into(), payload.into()])).await?;
        }
        let (sql, values): (&str, Vec<Value>) = match outcome.result {
            Ok(()) => {
                dispatched.push(row.id);
                continue;
            }
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
        txn.execute_raw(stmt(backend, sql, values)).await?;
    }
    let sql = "UPDATE outbox SET dispatched_at_us = $1, claimed_until_us = NULL WHERE id IN ({ids})";
    for_chunks(&txn, sql, &[now.into()], &dispatched).await?;
    txn.commit().await?;
    Ok(())
}

/// Runs `sql` (`{ids}` standing for the IN list, after the `fixed` parameters) over `ids` in chunks.
async fn for_chunks(txn: &DatabaseTransaction, sql: &str, fixed: &[Value], ids: &[Uuid]) -> Result<()> {
    let backend = txn.get_database_backend();
    for chunk in ids.chunks(rows_per_statement(backend, 16, 2000)) {
        let sql = sql.replace("{ids}", &params(fixed.len() + 1, chunk.len()));
        let values = fixed.iter().cloned().chain(chunk.iter().map(|id| Value::from(*id)));
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

/// Records the channels sent (`delivery`): a retry of the event skips them.
async fn record(txn: &DatabaseTransaction, sent: &[(Uuid, &String)]) -> Result<()> {
    let backend = txn.get_database_backend();
    let now = now_us_sql(backend);
    for chunk in sent.chunks(rows_per_statement(backend, 80, 2000)) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("({}, {now})", params(i * 3 + 1, 3))).collect();
        let sql = format!(
            "INSERT INTO delivery (id, event_id, channel, sent_at_us) VALUES {} \
             ON CONFLICT (event_id, channel) DO NOTHING",
            rows.join(", ")
        );
        let values = chunk
            .iter()
            .flat_map(|(event, channel)| [Uuid::now_v7().into(), (*event).into(), (*channel).clone().into()]);
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

/// Drops device tokens not seen for 60 days (Firebase's token hygiene advice).
pub async fn prune_push_tokens(db: &DatabaseConnection) -> Result<u64> {
    let now = now_us(db).await?;
    let sql = "DELETE FROM push_token WHERE last_seen_at_us < $1";
    let cutoff = now - 60 * 86_400 * 1_000_000;
    Ok(db.execute_raw(stmt(db.get_database_backend(), sql, [cutoff.into()])).await?.rows_affected())
}
