//! Staging and merging of pupils and guardians (see `staging` for why).
//!
//! A staged row carries the record's stored columns and fingerprint, an id for the row if it is
//! new, `refused` (incomplete: counted and reported at staging, never written, but still
//! *seen*), the link statement of the record (`token`, `links_replace`, see `links`) and two
//! generations: the merge round it was last staged in (`gen`) and first staged in
//! (`first_gen`). A key staged again replaces its data (`ON CONFLICT … DO UPDATE`) but is
//! counted once: a CSV pupil whose rows are not contiguous is one pupil.
//!
//! A merge handles the rows of the current round with three statements: count (one join with
//! the stored rows), insert the keys not stored, update the rows whose fingerprint or `left_at`
//! differ. `last_import_id` is set on the rows it writes: the import that last changed the row.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};

use super::sql::{count, exec, insert_rows, query};
use super::stage::Ctx;
use super::types::Counts;

/// A stored kind of person and its staging table.
pub(super) struct Entity {
    pub real: &'static str,
    pub staged: &'static str,
    /// Imported columns, `left_at` and `fingerprint` included, in staging order.
    pub data: &'static [&'static str],
}

pub(super) const PUPIL: Entity = Entity {
    real: "pupil",
    staged: "imp_pupil",
    data: &[
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
        // Derived from `mef` (see `mefs`), not fingerprinted.
        "mef_label",
        "grade",
        "boursier",
        "echelon",
        "left_at",
        "fingerprint",
    ],
};

pub(super) const GUARDIAN: Entity = Entity {
    real: "guardian",
    staged: "imp_guardian",
    data: &[
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
    ],
};

/// The stored row `r` holds what the staged row `t` says.
const SAME: &str = "(r.fingerprint = t.fingerprint AND r.left_at IS NOT DISTINCT FROM t.left_at)";

/// Stages rows laid out as `source_key, new_id, token, links_replace, data…, refused` (keys
/// unique in the batch) in merge round `round_no`. A record that says nothing of links (`token` and
/// `links_replace` NULL) keeps the link statement of an earlier staging of the same key.
pub(super) async fn stage<C: ConnectionTrait>(
    db: &C,
    e: &Entity,
    round_no: i64,
    rows: Vec<Vec<Value>>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let staged = e.staged;
    let mut cols = vec!["source_key", "new_id", "token", "links_replace"];
    cols.extend_from_slice(e.data);
    cols.extend_from_slice(&["refused", "gen", "first_gen"]);
    let mut set: Vec<String> =
        e.data.iter().chain(&["refused", "gen"]).map(|c| format!("{c} = excluded.{c}")).collect();
    set.push(format!("token = COALESCE(excluded.token, {staged}.token)"));
    set.push(format!("links_replace = COALESCE(excluded.links_replace, {staged}.links_replace)"));
    let suffix = format!(" ON CONFLICT (source_key) DO UPDATE SET {}", set.join(", "));
    let rows = rows
        .into_iter()
        .map(|mut r| {
            r.extend([Value::from(round_no), Value::from(round_no)]);
            r
        })
        .collect();
    insert_rows(db, staged, &cols, rows, &suffix).await
}

/// What [`merge`] counts before it writes.
#[derive(FromQueryResult)]
struct MergeCounts {
    created: i64,
    unchanged: i64,
    /// Newly left.
    gone: i64,
    updated: i64,
}

/// Merges the rows staged in round `round_no` into the real table; returns what it counted
/// (`rejected` is counted at staging).
pub(super) async fn merge<C: ConnectionTrait>(db: &C, ctx: &Ctx, e: &Entity, round_no: i64) -> Result<Counts, DbErr> {
    let (real, staged) = (e.real, e.staged);
    let went = "(r.left_at IS NULL AND t.left_at IS NOT NULL)";
    let sum = |cond: &str| format!("COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0)");
    let counts_sql = format!(
        "SELECT {} AS created, {} AS unchanged, {} AS gone, {} AS updated \
         FROM {staged} t LEFT JOIN {real} r ON r.funder_id = $1 AND r.source_key = t.source_key \
         WHERE t.gen = $2 AND t.first_gen = $2 AND NOT t.refused",
        sum("r.id IS NULL"),
        sum(&format!("r.id IS NOT NULL AND {SAME}")),
        sum(&format!("r.id IS NOT NULL AND NOT {SAME} AND {went}")),
        sum(&format!("r.id IS NOT NULL AND NOT {SAME} AND NOT {went}")),
    );
    let mut counts = Counts::default();
    let rows: Vec<MergeCounts> = query(db, &counts_sql, vec![ctx.funder_id.into(), round_no.into()]).await?;
    if let Some(r) = rows.first() {
        (counts.created, counts.unchanged, counts.left, counts.updated) =
            (count(r.created)?, count(r.unchanged)?, count(r.gone)?, count(r.updated)?);
    }

    let data = e.data.join(", ");
    let insert = format!(
        "INSERT INTO {real} (id, funder_id, source_key, {data}, last_import_id, created_at_us, updated_at_us) \
         SELECT new_id, $1, source_key, {data}, $2, $3, $3 FROM {staged} t WHERE t.gen = $4 AND NOT t.refused \
         AND NOT EXISTS (SELECT 1 FROM {real} r WHERE r.funder_id = $1 AND r.source_key = t.source_key)"
    );
    let values = vec![ctx.funder_id.into(), ctx.import_id.into(), ctx.now_us.into(), round_no.into()];
    exec(db, &insert, values).await?;

    let set: Vec<String> = e.data.iter().map(|c| format!("{c} = t.{c}")).collect();
    let update = format!(
        "UPDATE {real} SET {}, last_import_id = $1, updated_at_us = $2 FROM {staged} t \
         WHERE t.gen = $3 AND NOT t.refused AND {real}.funder_id = $4 AND {real}.source_key = t.source_key \
         AND NOT ({real}.fingerprint = t.fingerprint AND {real}.left_at IS NOT DISTINCT FROM t.left_at)",
        set.join(", ")
    );
    let values = vec![ctx.import_id.into(), ctx.now_us.into(), round_no.into(), ctx.funder_id.into()];
    exec(db, &update, values).await?;
    Ok(counts)
}
