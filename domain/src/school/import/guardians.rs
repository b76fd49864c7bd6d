//! Guardians: staged a batch at a time like pupils (`pupils.rs`, `merge`), plus the reverse
//! links of AAF guardians (`ENTAuxPersRelEleveEleve`).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::issues::Issue;
use super::links::{GuardianSide, stage_guardian_side};
use super::merge::{GUARDIAN, stage as stage_rows};
use super::pupils::Tally;
use super::rows::{GuardianRow, person_key};
use super::sql::select_by_keys;
use super::stage::{Ctx, LinkMode, Op, StagedGuardian};
use super::types::RosterFormat;

const SELECT_FULL: &str = "SELECT source_key, title, family_name, usage_name, given_name, email, mobile, home_phone, \
                           work_phone, postal_code, city, left_at FROM guardian";

/// Stages a batch of guardians (and, for AAF, the pupils they name).
pub(super) async fn stage<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    round_no: i64,
    batch: Vec<StagedGuardian>,
    t: &mut Tally<'_>,
) -> Result<(), DbErr> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut sides = Vec::new();
    for s in batch {
        let row = GuardianRow::from_record(ctx.format, &s.guardian);
        let refused = !row.is_complete();
        let mut statement = None;
        if refused {
            t.counts.rejected += 1;
            let msg = "person refused: no name at all";
            t.sink.push(Issue::about(t.file, Some(&s.guardian.key), "GUARDIAN_REJECTED", msg));
        } else if ctx.format == RosterFormat::Aaf && s.links != LinkMode::Ignore {
            // SIECLE and CSV give links as their own records; only AAF states them from this side.
            let token = Uuid::now_v7();
            statement = Some((token, s.links == LinkMode::Replace));
            sides.push(GuardianSide {
                guardian_key: row.source_key.clone(),
                token,
                pupil_keys: s.guardian.pupil_keys.iter().map(|k| person_key(ctx.format, k)).collect(),
            });
        }
        let left = s.left_at(ctx.today);
        let fp = row.fingerprint();
        rows.push(values(row, left, fp, refused, statement));
    }
    stage_rows(db, &GUARDIAN, round_no, rows).await?;
    t.sink.flush_if_full(db).await?;
    stage_guardian_side(db, &sides).await
}

/// `source_key, new_id, token, links_replace`, the data columns of `merge::GUARDIAN` in order,
/// `refused` (see `pupils::values`).
fn values(
    r: GuardianRow,
    left: Option<NaiveDate>,
    fp: String,
    refused: bool,
    links: Option<(Uuid, bool)>,
) -> Vec<Value> {
    vec![
        r.source_key.into(),
        Uuid::now_v7().into(),
        links.map(|(token, _)| token).into(),
        links.map(|(_, replace)| replace).into(),
        r.title.into(),
        r.family_name.into(),
        r.usage_name.into(),
        r.given_name.into(),
        r.email.into(),
        r.mobile.into(),
        r.home_phone.into(),
        r.work_phone.into(),
        r.postal_code.into(),
        r.city.into(),
        left.into(),
        fp.into(),
        refused.into(),
    ]
}

/// A stored guardian as [`SELECT_FULL`] reads it.
#[derive(FromQueryResult)]
struct StoredGuardian {
    #[sea_orm(nested)]
    row: GuardianRow,
    left_at: Option<NaiveDate>,
}

/// Queued ops on stored guardians, as staged guardians (see `pupils::load_ops`; the staging
/// must have been merged first).
pub(super) async fn load_ops<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    ops: Vec<(String, Op)>,
    t: &mut Tally<'_>,
) -> Result<Vec<StagedGuardian>, DbErr> {
    let mut keys: Vec<String> = ops.iter().map(|(k, _)| person_key(ctx.format, k)).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rebuilt: HashMap<String, StagedGuardian> = HashMap::with_capacity(keys.len());
    for StoredGuardian { row, left_at } in select_by_keys(db, SELECT_FULL, "source_key", ctx.funder_id, &keys).await? {
        let staged = StagedGuardian {
            guardian: row.to_record(),
            keep_left: Some(left_at),
            deleted: false,
            links: LinkMode::Ignore,
        };
        rebuilt.insert(staged.guardian.key.clone(), staged);
    }
    let mut order: Vec<String> = Vec::new();
    let mut ordered: HashSet<String> = HashSet::new();
    for (key, op) in ops {
        let Some(s) = rebuilt.get_mut(&key) else {
            let (what, refused) = match op {
                Op::Modify(_) => ("modification", true),
                Op::Delete => ("deletion", false),
            };
            t.counts.rejected += u64::from(refused);
            let msg = format!("{what} of person {key} ignored: no such person");
            t.sink.push(Issue::about(t.file, Some(&key), "UNKNOWN_RECORD", msg));
            continue;
        };
        match op {
            Op::Modify(patch) => s.patch(&patch),
            Op::Delete => s.deleted = true,
        }
        if ordered.insert(key.clone()) {
            order.push(key);
        }
    }
    Ok(order.into_iter().filter_map(|k| rebuilt.remove(&k)).collect())
}
