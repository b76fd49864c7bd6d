//! Growing delays after failures, counted in the database (shared by every server process).
//!
//! After `free` failures in a row, each new failure blocks the key for 2^(n - free) seconds,
//! up to 15 minutes: a script gets nowhere, a person who mistyped waits a few seconds. Delays,
//! not hard locks, so nobody can lock a parent out by guessing on their behalf (A3).

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use crate::db::{now_us_sql, stmt};

/// How many free failures a key has, then the cap of the delay.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub free: i32,
    pub max_block_secs: i64,
}

impl Throttle {
    pub const LOGIN_ACCOUNT: Throttle = Throttle { free: 5, max_block_secs: 900 };
    pub const LOGIN_IP: Throttle = Throttle { free: 30, max_block_secs: 900 };
    pub const LINK_CODE: Throttle = Throttle { free: 5, max_block_secs: 3600 };
}

/// True when `key` is currently blocked.
pub async fn throttle_check<C: ConnectionTrait>(db: &C, key: &str) -> Result<bool, DbErr> {
    let sql = format!(
        "SELECT blocked_until_us > {} AS blocked FROM throttle WHERE key = $1",
        now_us_sql(db.get_database_backend())
    );
    let row = Blocked::find_by_statement(stmt(db.get_database_backend(), &sql, [key.into()])).one(db).await?;
    Ok(row.is_some_and(|r| r.blocked))
}

#[derive(FromQueryResult)]
struct Blocked {
    blocked: bool,
}

#[derive(FromQueryResult)]
struct Failures {
    failures: i32,
}

/// Counts a failure and extends the block when the free failures are used up.
pub async fn throttle_fail<C: ConnectionTrait>(db: &C, key: &str, t: Throttle) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    let insert = format!(
        "INSERT INTO throttle (key, failures, window_start_us, blocked_until_us) VALUES ($1, 1, {now}, 0) \
         ON CONFLICT (key) DO UPDATE SET failures = throttle.failures + 1"
    );
    db.execute_raw(stmt(backend, &insert, [key.into()])).await?;
    let sql = "SELECT failures FROM throttle WHERE key = $1";
    let failures =
        Failures::find_by_statement(stmt(backend, sql, [key.into()])).one(db).await?.map_or(0, |r| r.failures);
    if failures > t.free {
        let secs = 1i64.checked_shl((failures - t.free - 1).min(20) as u32).unwrap_or(i64::MAX).min(t.max_block_secs);
        let sql = format!("UPDATE throttle SET blocked_until_us = {now} + $2 WHERE key = $1");
        db.execute_raw(stmt(backend, &sql, [key.into(), (secs * 1_000_000).into()])).await?;
    }
    Ok(())
}

/// Forgets the failures of `key` (after a success).
pub async fn throttle_reset<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    db.execute_raw(stmt(db.get_database_backend(), "DELETE FROM throttle WHERE key = $1", [key.into()]))
        .await
        .map(|_| ())
}
