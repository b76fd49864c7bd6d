//! How long families wait: per kind, the median and 90th percentile from submission to
//! acknowledgement (prise en compte), to the first staff response (traitement) and to the
//! decision (résolution), and how many requests are past the policy's target. Démarches
//! Simplifiées shows users a percentile of decided − deposited for the same reason: a mean
//! hides the requests that wait.

use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::Serialize;
use strum::VariantArray;
use uuid::Uuid;

use super::rules::{RequestKind, RequestStatus};
use crate::campaign::list_campaigns;
use crate::db::{now_us, stmt};
use crate::error::Result;

const HOUR_US: f64 = 3_600_000_000.0;
const DAY_US: i64 = 86_400_000_000;

/// One delay over the requests that reached its milestone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Delay {
    pub count: u64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

/// The figures of one kind of request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindDelays {
    pub kind: RequestKind,
    pub submitted: u64,
    pub open: u64,
    pub decided: u64,
    pub acknowledgement: Delay,
    pub first_response: Delay,
    pub decision: Delay,
    /// The policy's decision target for this kind, in days.
    pub target_days: u16,
    /// Open requests older than the target.
    pub open_past_target: u64,
    /// Decided requests that took longer than the target.
    pub decided_past_target: u64,
}

/// The `p`-th percentile (0–100) of sorted values, nearest-rank: always one of the values,
/// so "90 % were acknowledged within N hours" holds for a request that really waited N.
pub fn percentile(sorted: &[i64], p: u8) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (usize::from(p.min(100)) * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn delay(mut waits: Vec<i64>) -> Delay {
    waits.sort_unstable();
    let hours = |v: Option<i64>| v.map(|us| us as f64 / HOUR_US);
    Delay {
        count: waits.len() as u64,
        median_hours: hours(percentile(&waits, 50)),
        p90_hours: hours(percentile(&waits, 90)),
    }
}

#[derive(FromQueryResult)]
struct Times {
    kind: RequestKind,
    status: RequestStatus,
    created_at_us: i64,
    acknowledged_at_us: Option<i64>,
    responded_at_us: Option<i64>,
    decided_at_us: Option<i64>,
}

/// The figures of every kind for `funder` (its latest campaign's policy gives the targets).
/// Callers check access: staff readers in GraphQL, the operator on the CLI.
pub async fn delay_stats<C: ConnectionTrait>(db: &C, funder: Uuid) -> Result<Vec<KindDelays>> {
    let policy = list_campaigns(db, funder).await?.into_iter().max_by_key(|c| c.school_year).map(|c| c.policy);
    let now = now_us(db).await?;
    let sql = "SELECT kind, status, created_at_us, acknowledged_at_us, responded_at_us, decided_at_us \
               FROM request WHERE funder_id = $1";
    let rows = Times::find_by_statement(stmt(db.get_database_backend(), sql, [funder.into()])).all(db).await?;
    let mut out = Vec::with_capacity(RequestKind::VARIANTS.len());
    for &kind in RequestKind::VARIANTS {
        let target_days = policy.as_ref().map_or_else(
            || crate::campaign::Policy::pass_plus("00", 2000).decision_target_days(kind),
            |p| p.decision_target_days(kind),
        );
        let target = i64::from(target_days) * DAY_US;
        let of_kind: Vec<&Times> = rows.iter().filter(|r| r.kind == kind).collect();
        let since = |at: Option<i64>, r: &Times| at.map(|t| t - r.created_at_us);
        let waits = |pick: fn(&Times) -> Option<i64>| of_kind.iter().filter_map(|r| since(pick(r), r)).collect();
        let open: Vec<&&Times> = of_kind.iter().filter(|r| !r.status.is_closed()).collect();
        let decision: Vec<i64> = waits(|r| r.decided_at_us);
        out.push(KindDelays {
            kind,
            submitted: of_kind.len() as u64,
            open: open.len() as u64,
            decided: decision.len() as u64,
            acknowledgement: delay(waits(|r| r.acknowledged_at_us)),
            first_response: delay(waits(|r| r.responded_at_us)),
            open_past_target: open.iter().filter(|r| now - r.created_at_us > target).count() as u64,
            decided_past_target: decision.iter().filter(|d| **d > target).count() as u64,
            decision: delay(decision),
            target_days,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&v, 100), Some(10));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[1, 2], 0), Some(1));
    }

    proptest! {
        /// At least p % of the values are ≤ the p-th percentile, and it is one of them.
        #[test]
        fn a_percentile_bounds_its_share(mut v in proptest::collection::vec(0i64..1_000_000, 1..200), p in 1u8..=100) {
            v.sort_unstable();
            let q = percentile(&v, p).unwrap();
            prop_assert!(v.contains(&q));
            let at_most = v.iter().filter(|x| **x <= q).count();
            prop_assert!(at_most * 100 >= usize::from(p) * v.len());
        }
    }
}
