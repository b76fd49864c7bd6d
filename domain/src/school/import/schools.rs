//! Schools (AAF structures, SIECLE/CSV UAIs) and the UAI of AAF pupils.
//!
//! An AAF pupil names its structure by jointure id, not by UAI; the structures usually come in
//! the same import, in any file order. So pupils are stored with `school_key = aaf:<jointure>`
//! and the UAI of that structure: known at once when the structure is stored or came earlier in
//! the import (the importer keeps the académie's jointure → UAI map, a few thousand entries),
//! otherwise filled at the end of the import by one `UPDATE` with a correlated subquery
//! (portable SQL), which also follows a structure whose UAI changed. A school is never deleted
//! or marked left: pupils and money history point at it.

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::issues::{Issue, IssueSink};
use super::rows::{SchoolRow, school_key};
use super::sql::{exec, insert_rows, select_by_keys};
use super::stage::{Ctx, Op};
use super::types::Counts;
use crate::school::parse::{Structure, apply_structure_patch};

const COLS: [&str; 13] = [
    "id",
    "funder_id",
    "source_key",
    "uai",
    "uai_valid",
    "name",
    "kind",
    "postal_code",
    "city",
    "academie",
    "fingerprint",
    "created_at_us",
    "updated_at_us",
];

const SELECT: &str = "SELECT id, source_key, uai, name, kind, postal_code, city, academie, fingerprint FROM school";

/// What [`write`] compares a school with: its id and fingerprint.
#[derive(FromQueryResult)]
struct Stored {
    id: Uuid,
    source_key: String,
    fingerprint: String,
}

/// Writes a batch of schools. `counted` holds the keys already counted by this import (a
/// SIECLE school comes once per file): bounded by the number of schools.
pub(super) async fn write<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    batch: Vec<SchoolRow>,
    counts: &mut Counts,
    counted: &mut HashSet<String>,
) -> Result<(), DbErr> {
    if batch.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = batch.iter().map(|s| s.source_key.clone()).collect();
    let stored: HashMap<String, (Uuid, String)> =
        select_by_keys::<Stored, _>(db, SELECT, "source_key", ctx.funder_id, &keys)
            .await?
            .into_iter()
            .map(|s| (s.source_key, (s.id, s.fingerprint)))
            .collect();
    let mut inserts = Vec::new();
    for row in batch {
        let fp = row.fingerprint();
        let valid = row.uai_valid();
        let first = counted.insert(row.source_key.clone());
        match stored.get(&row.source_key) {
            None => {
                counts.created += u64::from(first);
                inserts.push(vec![
                    Uuid::now_v7().into(),
                    ctx.funder_id.into(),
                    row.source_key.into(),
                    row.uai.into(),
                    valid.into(),
                    row.name.into(),
                    row.kind.into(),
                    row.postal_code.into(),
                    row.city.into(),
                    row.academie.into(),
                    fp.into(),
                    ctx.now_us.into(),
                    ctx.now_us.into(),
                ]);
            }
            Some((id, old)) if *old != fp => {
                counts.updated += u64::from(first);
                let sql = "UPDATE school SET uai = $1, uai_valid = $2, name = $3, kind = $4, postal_code = $5, \
                           city = $6, academie = $7, fingerprint = $8, updated_at_us = $9 WHERE id = $10";
                let values: Vec<Value> = vec![
                    row.uai.into(),
                    valid.into(),
                    row.name.into(),
                    row.kind.into(),
                    row.postal_code.into(),
                    row.city.into(),
                    row.academie.into(),
                    fp.into(),
                    ctx.now_us.into(),
                    (*id).into(),
                ];
                exec(db, sql, values).await?;
            }
            Some(_) => counts.unchanged += u64::from(first),
        }
    }
    insert_rows(db, "school", &COLS, inserts, "").await
}

/// Queued `modifyRequest`s on stored structures, applied to rows rebuilt from the database.
pub(super) async fn load_ops<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    ops: Vec<(String, Op)>,
    sink: &mut IssueSink,
    file: &str,
) -> Result<Vec<SchoolRow>, DbErr> {
    let keys: Vec<String> = ops.iter().map(|(k, _)| school_key(ctx.format, k)).collect();
    let mut rebuilt: HashMap<String, Structure> = HashMap::new();
    for row in select_by_keys::<SchoolRow, _>(db, SELECT, "source_key", ctx.funder_id, &keys).await? {
        let s = row.to_record();
        rebuilt.insert(s.key.clone(), s);
    }
    let mut order: Vec<String> = Vec::new();
    let mut ordered: HashSet<String> = HashSet::new();
    for (key, op) in ops {
        let (Op::Modify(patch), Some(s)) = (op, rebuilt.get_mut(&key)) else {
            let msg = format!("modification of structure {key} ignored: no such structure");
            sink.push(Issue::about(file, Some(&key), "UNKNOWN_RECORD", msg));
            continue;
        };
        let _ = apply_structure_patch(s, &patch);
        if ordered.insert(key.clone()) {
            order.push(key);
        }
    }
    Ok(order.into_iter().filter_map(|k| rebuilt.remove(&k)).map(|s| SchoolRow::from_record(ctx.format, &s)).collect())
}

/// Gives every AAF pupil of the funder the UAI of its structure, touching only the rows whose
/// UAI differs (so a re-import changes nothing). `COALESCE(…, '')` compares NULLs portably.
pub(super) async fn resolve_uais<C: ConnectionTrait>(db: &C, ctx: &Ctx) -> Result<u64, DbErr> {
    let sub = "(SELECT s.uai FROM school s WHERE s.funder_id = pupil.funder_id AND s.source_key = pupil.school_key)";
    let sql = format!(
        "UPDATE pupil SET uai = {sub}, updated_at_us = $2 \
         WHERE funder_id = $1 AND school_key LIKE 'aaf:%' AND COALESCE(uai, '') <> COALESCE({sub}, '')"
    );
    exec(db, &sql, vec![ctx.funder_id.into(), ctx.now_us.into()]).await
}
