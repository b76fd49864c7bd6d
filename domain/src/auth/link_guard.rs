//! Per-child caps on link challenges and code attempts, across every account
//! (`child_link_guard`): the counters `links.rs` reserves, and the staff's way out.

use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use uuid::Uuid;

use crate::db::stmt;
use crate::error::Result;

/// Link challenges one child may get before the staff review it: a family needs a handful.
pub const MAX_CHALLENGES_PER_CHILD: i64 = 20;
/// Code attempts one child may get across all challenges: 30 guesses at a 6-digit code
/// succeed with probability 3·10⁻⁵.
pub const MAX_ATTEMPTS_PER_CHILD: i64 = 30;

#[derive(FromQueryResult)]
struct Challenges {
    challenges: i64,
}

/// Counts a challenge for `pupil`; returns how many it has had (this one included).
pub(super) async fn count_child_challenge<C: ConnectionTrait>(db: &C, pupil: Uuid) -> Result<i64> {
    let sql = "INSERT INTO child_link_guard (pupil_id, challenges, attempts) VALUES ($1, 1, 0) \
               ON CONFLICT (pupil_id) DO UPDATE SET challenges = child_link_guard.challenges + 1 \
               RETURNING challenges";
    let row = Challenges::find_by_statement(stmt(db.get_database_backend(), sql, [pupil.into()])).one(db).await?;
    Ok(row.map_or(i64::MAX, |r| r.challenges))
}

/// Reserves one code attempt for `pupil`: false when the child is past either cap (one
/// conditional upsert: parallel confirmations cannot overshoot; after a review the row is
/// gone and counting starts again).
pub(super) async fn reserve_child_attempt<C: ConnectionTrait>(db: &C, pupil: Uuid) -> Result<bool> {
    let sql = "INSERT INTO child_link_guard (pupil_id, challenges, attempts) VALUES ($1, 0, 1) \
               ON CONFLICT (pupil_id) DO UPDATE SET attempts = child_link_guard.attempts + 1 \
               WHERE child_link_guard.attempts < $2 AND child_link_guard.challenges <= $3 RETURNING attempts";
    let values: [Value; 3] = [pupil.into(), MAX_ATTEMPTS_PER_CHILD.into(), MAX_CHALLENGES_PER_CHILD.into()];
    let row = Attempts::find_by_statement(stmt(db.get_database_backend(), sql, values)).one(db).await?;
    Ok(row.is_some_and(|r| r.attempts <= MAX_ATTEMPTS_PER_CHILD))
}

#[derive(FromQueryResult)]
struct Attempts {
    attempts: i64,
}

/// After a staff review: the child's counters start afresh. True when there were any.
pub async fn clear_child_link_guard<C: ConnectionTrait>(db: &C, pupil: Uuid) -> Result<bool> {
    let sql = "DELETE FROM child_link_guard WHERE pupil_id = $1";
    Ok(db.execute_raw(stmt(db.get_database_backend(), sql, [pupil.into()])).await?.rows_affected() == 1)
}
