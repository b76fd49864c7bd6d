//! "Credit about to be lost": 30 and 7 days before a campaign's generation deadline, the
//! families whose child still holds credit are told, once per pass and threshold (the
//! `reminder` row and the outbox row are written in one transaction; a second scheduler finds
//! the row and writes nothing).

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde_json::json;
use uuid::Uuid;

use super::books::pass_changed;
use crate::db::{begin_write, now_us, stmt};
use crate::error::Result;
use crate::ledger::write_outbox;

const DAY_US: i64 = 86_400_000_000;

#[derive(FromQueryResult)]
struct Due {
    pass_id: Uuid,
    threshold_days: i32,
}

/// Writes the reminders due now (at most `limit`); returns how many.
pub async fn remind(db: &DatabaseConnection, limit: u64) -> Result<u64> {
    let now = now_us(db).await?;
    let sql = "SELECT DISTINCT a.owner_id AS pass_id, \
               CASE WHEN c.generation_deadline_us <= $1 + $2 THEN 7 ELSE 30 END AS threshold_days \
               FROM ledger_account a JOIN campaign c ON c.id = a.campaign_id \
               WHERE a.kind = 'pass_wallet' AND c.generation_deadline_us > $1 AND c.generation_deadline_us <= $1 + $3 \
               AND a.credits_posted - a.debits_posted - a.debits_pending > 0 \
               AND NOT EXISTS (SELECT 1 FROM reminder r WHERE r.pass_id = a.owner_id AND r.threshold_days = \
               CASE WHEN c.generation_deadline_us <= $1 + $2 THEN 7 ELSE 30 END) LIMIT $4";
    let values: [Value; 4] = [now.into(), (7 * DAY_US).into(), (30 * DAY_US).into(), (limit as i64).into()];
    let due = Due::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await?;
    let mut written = 0;
    for d in due {
        let txn = begin_write(db).await?;
        let sql = "INSERT INTO reminder (id, pass_id, threshold_days, created_at_us) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (pass_id, threshold_days) DO NOTHING";
        let values: [Value; 4] = [Uuid::now_v7().into(), d.pass_id.into(), d.threshold_days.into(), now.into()];
        if txn.execute_raw(stmt(txn.get_database_backend(), sql, values)).await?.rows_affected() == 1 {
            let mut event = pass_changed(d.pass_id, "credit_expiring");
            event.payload["days"] = json!(d.threshold_days);
            write_outbox(&txn, &[event]).await?;
            written += 1;
        }
        txn.commit().await?;
    }
    Ok(written)
}
