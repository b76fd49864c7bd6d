//! Batched statements for SQLite and PostgreSQL: multi-row inserts, key lookups and id lists.
//!
//! The SQL is the same on both databases except for how a *list* of values travels, which is
//! what batches are made of, and where each engine has a cost that grows with the list:
//! - **PostgreSQL** gets one parameter per list: an array (`key = ANY($2)`) or, for inserts,
//!   a JSON array of rows read by `json_populate_recordset(NULL::table, $1::json)`, which
//!   converts each field to the column's type (NULLs included, which arrays cannot carry
//!   here); plain `json` text is read faster than `jsonb`, which is rebuilt as a tree first.
//!   The statement text is short and constant, so it parses and plans in no time.
//! - **SQLite** gets a multi-row `VALUES (?, …), (…)` / `IN (?, …)` with anonymous `?`
//!   placeholders: sqlx looks up each *named* (`$n`) parameter's name, which SQLite finds by a
//!   linear scan, so 10,000 `$n` parameters cost 50 million steps per statement; `?` costs one.
//!   ([`crate::db::stmt`] would rewrite in-order `$n` as `?` too, but writing `?` here spares
//!   formatting and rescanning 10,000-parameter statements: 8 to 14 % of a SQLite import.)
//!
//! Batches are [`batch_size`] rows: 500 on SQLite, so that a statement stays far below its
//! 32,766 parameters (500 rows × 21 columns = 10,500); 2,000 on PostgreSQL, where a batch is a
//! few parameters whatever its size and fewer round trips pay (a batch of records is still a
//! couple of MB at most).

use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use crate::db::stmt;

/// Rows per batched statement on SQLite (and for small lists everywhere).
pub(super) const BATCH: usize = 500;
/// Rows per batch on PostgreSQL.
const PG_BATCH: usize = 2_000;

/// Rows per batch (and records staged before a flush) for this database.
pub(super) fn batch_size(backend: DbBackend) -> usize {
    if backend == DbBackend::Postgres { PG_BATCH } else { BATCH }
}

fn is_pg<C: ConnectionTrait>(db: &C) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

pub(super) use crate::db::params;

/// `?, ?, …` for `n` parameters (SQLite lists).
fn anonymous(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Runs a statement, returning the number of rows it touched.
pub(super) async fn exec<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(db.execute_raw(stmt(db.get_database_backend(), sql, values)).await?.rows_affected())
}

/// Runs a query, returning every row as an `R`.
pub(super) async fn query<R: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<R>, DbErr> {
    R::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await
}

/// A stored or computed count (a `BIGINT`) as `u64`; a negative one is a read error.
pub(super) fn count(n: i64) -> Result<u64, DbErr> {
    u64::try_from(n).map_err(|_| DbErr::Type(format!("negative count {n}")))
}

/// Writes a bound value as JSON for `json_populate_recordset` (only the types the import
/// binds). Written straight into the statement's text: building a `serde_json::Value` map per
/// row first cost a sixth of the import's client time on PostgreSQL.
fn write_json(out: &mut Vec<u8>, v: Value) -> Result<(), DbErr> {
    use std::io::Write as _;
    let io = |e: std::io::Error| DbErr::Custom(format!("import: rows as JSON: {e}"));
    match v {
        Value::String(Some(s)) => serde_json::to_writer(&mut *out, &s).map_err(|e| io(e.into()))?,
        Value::Uuid(Some(u)) => write!(out, "\"{u}\"").map_err(io)?,
        Value::Bool(Some(b)) => write!(out, "{b}").map_err(io)?,
        Value::SmallInt(Some(i)) => write!(out, "{i}").map_err(io)?,
        Value::BigInt(Some(i)) => write!(out, "{i}").map_err(io)?,
        Value::ChronoDate(Some(d)) => write!(out, "\"{}\"", d.format("%Y-%m-%d")).map_err(io)?,
        Value::String(None)
        | Value::Uuid(None)
        | Value::Bool(None)
        | Value::SmallInt(None)
        | Value::BigInt(None)
        | Value::ChronoDate(None) => out.extend_from_slice(b"null"),
        other => return Err(DbErr::Custom(format!("import: cannot send {other:?} as JSON"))),
    }
    Ok(())
}

/// `rows` as a JSON array of objects keyed by `cols`.
fn rows_as_json(cols: &[&str], rows: Vec<Vec<Value>>) -> Result<String, DbErr> {
    let mut out = Vec::with_capacity(rows.len() * 64 * cols.len().max(1));
    out.push(b'[');
    for (i, row) in rows.into_iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"{" } else { b",{" });
        for (j, (c, v)) in cols.iter().zip(row).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, c).map_err(|e| DbErr::Custom(format!("import: rows as JSON: {e}")))?;
            out.push(b':');
            write_json(&mut out, v)?;
        }
        out.push(b'}');
    }
    out.push(b']');
    String::from_utf8(out).map_err(|e| DbErr::Custom(format!("import: rows as JSON: {e}")))
}

/// Inserts `rows` (each `cols.len()` values, in column order) in batches of [`batch_size`].
/// `suffix` follows the rows: `""`, or an `ON CONFLICT …` clause.
pub(super) async fn insert_rows<C: ConnectionTrait>(
    db: &C,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Value>>,
    suffix: &str,
) -> Result<(), DbErr> {
    let names = cols.join(", ");
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        // PostgreSQL: one statement per call, one parameter whatever the size. Not split, also
        // because sqlx 0.9.0 leaves Nagle's algorithm on (TCP_NODELAY dropped, sqlx issue
        // #4335, fixed after 0.9.0): a message a little larger than the socket's send buffer
        // goes out in two writes and the short second one waits for the server's delayed ACK,
        // 40 ms a statement. A 2,000-row chunk plus a small remainder made exactly such
        // messages; one large message per call does not stall. SQLite: its parameter limit.
        let size = if is_pg(db) { usize::MAX } else { BATCH };
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(size).collect();
        if is_pg(db) {
            let text = rows_as_json(cols, chunk)?;
            let sql = format!(
                "INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, $1::json){suffix}"
            );
            exec(db, &sql, vec![text.into()]).await?;
        } else {
            let row = format!("({})", anonymous(cols.len()));
            let sql = format!("INSERT INTO {table} ({names}) VALUES {}{suffix}", vec![row; chunk.len()].join(", "));
            exec(db, &sql, chunk.into_iter().flatten().collect()).await?;
        }
    }
    Ok(())
}

/// `SELECT … WHERE funder_id = ? AND key_col IN (keys)`, in batches of [`batch_size`] keys.
/// `select` is `SELECT cols FROM table`; each row is read as an `R`.
pub(super) async fn select_by_keys<R: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    select: &str,
    key_col: &str,
    funder: Uuid,
    keys: &[String],
) -> Result<Vec<R>, DbErr> {
    let mut out = Vec::new();
    for chunk in keys.chunks(batch_size(db.get_database_backend())) {
        let rows = if is_pg(db) {
            let sql = format!("{select} WHERE funder_id = $1 AND {key_col} = ANY($2)");
            query(db, &sql, vec![funder.into(), chunk.to_vec().into()]).await?
        } else {
            let sql = format!("{select} WHERE funder_id = ? AND {key_col} IN ({})", anonymous(chunk.len()));
            let mut values = Vec::with_capacity(chunk.len() + 1);
            values.push(funder.into());
            values.extend(chunk.iter().map(|k| Value::from(k.clone())));
            query(db, &sql, values).await?
        };
        out.extend(rows);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert_eq!(params(3, 3), "$3, $4, $5");
        assert_eq!(anonymous(3), "?, ?, ?");
    }

    #[test]
    fn values_as_json() {
        let d = chrono::NaiveDate::from_ymd_opt(2013, 7, 4);
        let rows = vec![
            vec![d.into(), Option::<String>::None.into(), Some(2i16).into(), Some("a \"b\"\n".to_owned()).into()],
            vec![Option::<chrono::NaiveDate>::None.into(), Some(true).into(), Some(-7i64).into(), Uuid::nil().into()],
        ];
        let text = rows_as_json(&["d", "s", "n", "t"], rows).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([
                {"d": "2013-07-04", "s": null, "n": 2, "t": "a \"b\"\n"},
                {"d": null, "s": true, "n": -7, "t": "00000000-0000-0000-0000-000000000000"}
            ])
        );
        assert!(rows_as_json(&["x"], vec![vec![1.5f64.into()]]).is_err());
    }
}
