//! Writing pupils, a batch at a time.
//!
//! One `SELECT` of the batch's stored rows (id, fingerprint, `left_at`, last import), then one
//! multi-row `INSERT` for new pupils, an `UPDATE` per pupil whose fingerprint or `left_at`
//! changed, and one `UPDATE … SET last_import_id` for the unchanged ones. That last write does
//! not move `updated_at_us`: it only records that this import saw the pupil, which is how the
//! end of a full snapshot finds the leavers without keeping every key in memory.
//!
//! Counting is per pupil and per import: a pupil already seen earlier in the same import (a CSV
//! pupil whose rows are not contiguous) is written again if needed but not counted twice.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use uuid::Uuid;

use super::issues::{Issue, IssueSink};
use super::links::{LinkFields, PupilSide, write_pupil_side};
use super::rows::{PupilRow, person_key};
use super::sql::{by_ids, exec, insert_rows, select_by_keys};
use super::stage::{Ctx, LeftAt, LinkMode, Op, StagedPupil};
use super::types::{Counts, LinkCounts, RosterFormat};
use crate::ids::GradeLevel;

const COLS: [&str; 21] = [
    "id",
    "funder_id",
    "source_key",
    "ine",
    "siecle_id",
    "family_name",
    "usage_name",
    "given_name",
    "birth_date",
    "school_key",
    "uai",
    "class_name",
    "mef",
    "grade",
    "boursier",
    "echelon",
    "left_at",
    "fingerprint",
    "last_import_id",
    "created_at_us",
    "updated_at_us",
];

const SELECT_STATE: &str = "SELECT id, source_key, fingerprint, left_at, last_import_id FROM pupil";
const SELECT_FULL: &str = "SELECT id, source_key, ine, siecle_id, family_name, usage_name, given_name, birth_date, \
                           school_key, uai, class_name, mef, grade, boursier, echelon, left_at FROM pupil";

/// What the counters need to know about a stored pupil.
struct State {
    id: Uuid,
    fingerprint: String,
    left_at: Option<NaiveDate>,
    last_import_id: Option<Uuid>,
}

/// Counters and issues shared by one batch write.
pub(super) struct Tally<'a> {
    pub counts: &'a mut Counts,
    pub links: &'a mut LinkCounts,
    pub sink: &'a mut IssueSink,
    /// The file being read, for issues.
    pub file: &'a str,
}

fn grade_value(g: Option<GradeLevel>) -> Value {
    g.map(|g| g.as_str().to_owned()).into()
}

/// Writes a batch of staged pupils (and the links they state).
pub(super) async fn write<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    batch: Vec<StagedPupil>,
    t: &mut Tally<'_>,
) -> Result<(), DbErr> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    let mut sides = Vec::new();
    for s in batch {
        let row = PupilRow::from_record(ctx.format, &s.pupil);
        if !row.is_complete() {
            t.counts.rejected += 1;
            let msg = "pupil refused: a family name and a given name are required";
            t.sink.push(Issue::about(t.file, Some(&s.pupil.key), "PUPIL_REJECTED", msg));
            refused.push(row.source_key);
            continue;
        }
        if s.links != LinkMode::Ignore {
            let links =
                s.pupil.links.iter().map(|l| (person_key(ctx.format, &l.guardian_key), LinkFields::of(l))).collect();
            sides.push(PupilSide { pupil_key: row.source_key.clone(), links, replace: s.links == LinkMode::Replace });
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
    // A refused record still says the pupil is on the roster: not a snapshot leaver.
    for key in &refused {
        if let Some(st) = stored.get(key).filter(|st| st.last_import_id != Some(ctx.import_id)) {
            seen.push(st.id);
        }
    }
    insert_rows(db, "pupil", &COLS, inserts).await?;
    by_ids(db, "UPDATE pupil SET last_import_id = $1 WHERE id IN", vec![ctx.import_id.into()], &seen).await?;
    t.sink.flush_if_full(db).await?;
    write_pupil_side(db, ctx, &sides, t.links).await
}

fn insert_values(ctx: &Ctx, r: PupilRow, left: Option<NaiveDate>, fp: String) -> Vec<Value> {
    vec![
        Uuid::now_v7().into(),
        ctx.funder_id.into(),
        r.source_key.into(),
        r.ine.into(),
        r.siecle_id.into(),
        r.family_name.into(),
        r.usage_name.into(),
        r.given_name.into(),
        r.birth_date.into(),
        r.school_key.into(),
        r.uai.into(),
        r.class_name.into(),
        r.mef.into(),
        grade_value(r.grade),
        r.boursier.into(),
        r.echelon.into(),
        left.into(),
        fp.into(),
        Some(ctx.import_id).into(),
        ctx.now_us.into(),
        ctx.now_us.into(),
    ]
}

/// Rewrites a changed pupil. An AAF pupil's UAI is not written here: it is resolved from its
/// structure at the end of the import (see `schools::resolve_uais`).
async fn update<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    id: Uuid,
    r: PupilRow,
    left: Option<NaiveDate>,
    fp: String,
) -> Result<(), DbErr> {
    let uai = if ctx.format == RosterFormat::Aaf { "" } else { ", uai = $18" };
    let sql = format!(
        "UPDATE pupil SET ine = $1, siecle_id = $2, family_name = $3, usage_name = $4, given_name = $5, \
         birth_date = $6, school_key = $7, class_name = $8, mef = $9, grade = $10, boursier = $11, echelon = $12, \
         left_at = $13, fingerprint = $14, last_import_id = $15, updated_at_us = $16{uai} WHERE id = $17"
    );
    let mut values: Vec<Value> = vec![
        r.ine.into(),
        r.siecle_id.into(),
        r.family_name.into(),
        r.usage_name.into(),
        r.given_name.into(),
        r.birth_date.into(),
        r.school_key.into(),
        r.class_name.into(),
        r.mef.into(),
        grade_value(r.grade),
        r.boursier.into(),
        r.echelon.into(),
        left.into(),
        fp.into(),
        Some(ctx.import_id).into(),
        ctx.now_us.into(),
        id.into(),
    ];
    if ctx.format != RosterFormat::Aaf {
        values.push(r.uai.into());
    }
    exec(db, &sql, values).await?;
    Ok(())
}

fn read_row(r: &QueryResult) -> Result<(PupilRow, Option<NaiveDate>), DbErr> {
    let grade: Option<String> = r.try_get("", "grade")?;
    let row = PupilRow {
        source_key: r.try_get("", "source_key")?,
        ine: r.try_get("", "ine")?,
        siecle_id: r.try_get("", "siecle_id")?,
        family_name: r.try_get("", "family_name")?,
        usage_name: r.try_get("", "usage_name")?,
        given_name: r.try_get("", "given_name")?,
        birth_date: r.try_get("", "birth_date")?,
        school_key: r.try_get("", "school_key")?,
        uai: r.try_get("", "uai")?,
        class_name: r.try_get("", "class_name")?,
        mef: r.try_get("", "mef")?,
        grade: grade.and_then(|g| g.parse().ok()),
        boursier: r.try_get("", "boursier")?,
        echelon: r.try_get("", "echelon")?,
    };
    Ok((row, r.try_get("", "left_at")?))
}

/// Turns queued `modifyRequest`s and `deleteRequest`s into staged pupils: each stored pupil is
/// rebuilt from its row, then its ops are applied in order. Ops on unknown pupils are reported
/// (`UNKNOWN_RECORD`); a patch for one is a refused record.
pub(super) async fn load_ops<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    ops: Vec<(String, Op)>,
    t: &mut Tally<'_>,
) -> Result<Vec<StagedPupil>, DbErr> {
    let mut keys: Vec<String> = ops.iter().map(|(k, _)| person_key(ctx.format, k)).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rebuilt: HashMap<String, StagedPupil> = HashMap::with_capacity(keys.len());
    for r in select_by_keys(db, SELECT_FULL, "source_key", ctx.funder_id.into(), &keys).await? {
        let (row, left_at) = read_row(&r)?;
        let staged = StagedPupil {
            pupil: row.to_record(left_at),
            left: LeftAt::Keep(left_at),
            deleted: false,
            links: LinkMode::Ignore,
        };
        rebuilt.insert(staged.pupil.key.clone(), staged);
    }
    let mut order: Vec<String> = Vec::new();
    for (key, op) in ops {
        let Some(s) = rebuilt.get_mut(&key) else {
            let (what, refused) = match op {
                Op::Modify(_) => ("modification", true),
                Op::Delete => ("deletion", false),
            };
            t.counts.rejected += u64::from(refused);
            let msg = format!("{what} of pupil {key} ignored: no such pupil");
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
