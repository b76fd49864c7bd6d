//! Writing guardians, a batch at a time: the same scheme as pupils (`pupils.rs`), plus the
//! reverse links of AAF guardians (`ENTAuxPersRelEleveEleve`).

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use uuid::Uuid;

use super::issues::Issue;
use super::links::{GuardianSide, write_guardian_side};
use super::pupils::Tally;
use super::rows::{GuardianRow, person_key};
use super::sql::{by_ids, exec, insert_rows, select_by_keys};
use super::stage::{Ctx, LinkMode, Op, StagedGuardian};
use super::types::RosterFormat;

const COLS: [&str; 18] = [
    "id",
    "funder_id",
    "source_key",
    "title",
    "family_name",
    "usage_name",
    "given_name",
    "email",
    "mobile",
    "home_phone",
    "work_phone",
    "postal_code",
    "city",
    "left_at",
    "fingerprint",
    "last_import_id",
    "created_at_us",
    "updated_at_us",
];

const SELECT_STATE: &str = "SELECT id, source_key, fingerprint, left_at, last_import_id FROM guardian";
const SELECT_FULL: &str = "SELECT source_key, title, family_name, usage_name, given_name, email, mobile, home_phone, \
                           work_phone, postal_code, city, left_at FROM guardian";

struct State {
    id: Uuid,
    fingerprint: String,
    left_at: Option<NaiveDate>,
    last_import_id: Option<Uuid>,
}

/// Writes a batch of staged guardians (and, for AAF, the pupils they name).
pub(super) async fn write<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    batch: Vec<StagedGuardian>,
    t: &mut Tally<'_>,
) -> Result<(), DbErr> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    let mut sides = Vec::new();
    for s in batch {
        let row = GuardianRow::from_record(ctx.format, &s.guardian);
        if !row.is_complete() {
            t.counts.rejected += 1;
            let msg = "person refused: no name at all";
            t.sink.push(Issue::about(t.file, Some(&s.guardian.key), "GUARDIAN_REJECTED", msg));
            refused.push(row.source_key);
            continue;
        }
        // SIECLE and CSV give links as their own records; only AAF states them from this side.
        if ctx.format == RosterFormat::Aaf && s.links != LinkMode::Ignore {
            sides.push(GuardianSide {
                guardian_key: row.source_key.clone(),
                pupil_keys: s.guardian.pupil_keys.iter().map(|k| person_key(ctx.format, k)).collect(),
                replace: s.links == LinkMode::Replace,
            });
        }
        let left = s.left_at(ctx.today);
        let fp = row.fingerprint();
        rows.push((row, left, fp));
    }
    let keys: Vec<String> = rows.iter().map(|(r, _, _)| r.source_key.clone()).chain(refused.iter().cloned()).collect();
    let mut stored: HashMap<String, State> = HashMap::with_capacity(keys.len());
    for r in select_by_keys(db, SELECT_STATE, "source_key", ctx.funder_id.into(), &keys).await? {
        let key: String = r.try_get("", "source_key")?;
        let state = State {
            id: r.try_get("", "id")?,
            fingerprint: r.try_get("", "fingerprint")?,
            left_at: r.try_get("", "left_at")?,
            last_import_id: r.try_get("", "last_import_id")?,
        };
        stored.insert(key, state);
    }

    let mut inserts = Vec::new();
    let mut seen = Vec::new();
    for (row, left, fp) in rows {
        let Some(st) = stored.get(&row.source_key) else {
            t.counts.created += 1;
            inserts.push(insert_values(ctx, row, left, fp));
            continue;
        };
        let counted = st.last_import_id == Some(ctx.import_id);
        if st.fingerprint != fp || st.left_at != left {
            if !counted {
                if st.left_at.is_none() && left.is_some() { t.counts.left += 1 } else { t.counts.updated += 1 }
            }
            update(db, ctx, st.id, row, left, fp).await?;
        } else if !counted {
            t.counts.unchanged += 1;
            seen.push(st.id);
        }
    }
    for key in &refused {
        if let Some(st) = stored.get(key).filter(|st| st.last_import_id != Some(ctx.import_id)) {
            seen.push(st.id);
        }
    }
    insert_rows(db, "guardian", &COLS, inserts).await?;
    by_ids(db, "UPDATE guardian SET last_import_id = $1 WHERE id IN", vec![ctx.import_id.into()], &seen).await?;
    t.sink.flush_if_full(db).await?;
    write_guardian_side(db, ctx, &sides, t.links).await
}

fn insert_values(ctx: &Ctx, r: GuardianRow, left: Option<NaiveDate>, fp: String) -> Vec<Value> {
    vec![
        Uuid::now_v7().into(),
        ctx.funder_id.into(),
        r.source_key.into(),
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
        Some(ctx.import_id).into(),
        ctx.now_us.into(),
        ctx.now_us.into(),
    ]
}

async fn update<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    id: Uuid,
    r: GuardianRow,
    left: Option<NaiveDate>,
    fp: String,
) -> Result<(), DbErr> {
    let sql = "UPDATE guardian SET title = $1, family_name = $2, usage_name = $3, given_name = $4, email = $5, \
               mobile = $6, home_phone = $7, work_phone = $8, postal_code = $9, city = $10, left_at = $11, \
               fingerprint = $12, last_import_id = $13, updated_at_us = $14 WHERE id = $15";
    let values: Vec<Value> = vec![
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
        Some(ctx.import_id).into(),
        ctx.now_us.into(),
        id.into(),
    ];
    exec(db, sql, values).await?;
    Ok(())
}

fn read_row(r: &QueryResult) -> Result<(GuardianRow, Option<NaiveDate>), DbErr> {
    let row = GuardianRow {
        source_key: r.try_get("", "source_key")?,
        title: r.try_get("", "title")?,
        family_name: r.try_get("", "family_name")?,
        usage_name: r.try_get("", "usage_name")?,
        given_name: r.try_get("", "given_name")?,
        email: r.try_get("", "email")?,
        mobile: r.try_get("", "mobile")?,
        home_phone: r.try_get("", "home_phone")?,
        work_phone: r.try_get("", "work_phone")?,
        postal_code: r.try_get("", "postal_code")?,
        city: r.try_get("", "city")?,
    };
    Ok((row, r.try_get("", "left_at")?))
}

/// Queued ops on stored guardians, as staged guardians (see `pupils::load_ops`).
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
    for r in select_by_keys(db, SELECT_FULL, "source_key", ctx.funder_id.into(), &keys).await? {
        let (row, left_at) = read_row(&r)?;
        let staged = StagedGuardian {
            guardian: row.to_record(),
            keep_left: Some(left_at),
            deleted: false,
            links: LinkMode::Ignore,
        };
        rebuilt.insert(staged.guardian.key.clone(), staged);
    }
    let mut order: Vec<String> = Vec::new();
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
        if !order.contains(&key) {
            order.push(key);
        }
    }
    Ok(order.into_iter().filter_map(|k| rebuilt.remove(&k)).collect())
}
