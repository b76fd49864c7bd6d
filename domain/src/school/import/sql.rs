//! Small SQL builders for batched statements that run unchanged on SQLite and PostgreSQL:
//! numbered `$n` placeholders (PostgreSQL's syntax, which SQLite also binds by number),
//! multi-row `INSERT … VALUES (…), (…)` and `IN (…)` lists.
//!
//! Batches are kept at [`BATCH`] rows so that a statement never nears the parameter limits
//! (PostgreSQL 65,535; SQLite 32,766): 500 rows × 21 columns = 10,500 parameters. A fixed size
//! also means the same statement text, hence one prepared statement, for every full batch.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use crate::db::stmt;

/// Rows per batched statement.
pub(super) const BATCH: usize = 500;

/// `$start, $start+1, …` for `n` parameters.
pub(super) fn params(start: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(start + i).to_string());
    }
    s
}

/// `INSERT INTO table (cols) VALUES ($1, …), (…)` for `rows` rows.
pub(super) fn insert_sql(table: &str, cols: &[&str], rows: usize) -> String {
    let mut s = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        s.push_str(&params(1 + r * cols.len(), cols.len()));
        s.push(')');
    }
    s
}

/// Runs a statement, returning the number of rows it touched.
pub(super) async fn exec<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    let t = std::time::Instant::now();
    let n = values.len();
    let r = db.execute_raw(stmt(db.get_database_backend(), sql, values)).await?.rows_affected();
    let e = t.elapsed();
    if e.as_millis() > 20 {
        eprintln!("SLOW exec {:?} n={n} {}", e, &sql[..sql.len().min(90)]);
    }
    Ok(r)
}

/// Runs a query, returning every row.
pub(super) async fn query<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values)).await
}

/// Inserts `rows` (each `cols.len()` values, flattened) in batches of [`BATCH`].
pub(super) async fn insert_rows<C: ConnectionTrait>(
    db: &C,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Value>>,
) -> Result<(), DbErr> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(BATCH).collect();
        let sql = insert_sql(table, cols, chunk.len());
        exec(db, &sql, chunk.into_iter().flatten().collect()).await?;
    }
    Ok(())
}

/// `SELECT cols FROM table WHERE funder_id = $1 AND key_col IN (…)`, in batches of [`BATCH`] keys.
pub(super) async fn select_by_keys<C: ConnectionTrait>(
    db: &C,
    select: &str,
    key_col: &str,
    funder: Value,
    keys: &[String],
) -> Result<Vec<QueryResult>, DbErr> {
    let mut out = Vec::new();
    for chunk in keys.chunks(BATCH) {
        let sql = format!("{select} WHERE funder_id = $1 AND {key_col} IN ({})", params(2, chunk.len()));
        let mut values = Vec::with_capacity(chunk.len() + 1);
        values.push(funder.clone());
        values.extend(chunk.iter().map(|k| Value::from(k.clone())));
        out.extend(query(db, &sql, values).await?);
    }
    Ok(out)
}

/// `UPDATE/DELETE … WHERE id IN (…)` in batches; `head` holds `$1…$k` for `fixed` values and
/// ends just before the list, e.g. `UPDATE pupil SET last_import_id = $1 WHERE id IN`.
pub(super) async fn by_ids<C: ConnectionTrait>(
    db: &C,
    head: &str,
    fixed: Vec<Value>,
    ids: &[uuid::Uuid],
) -> Result<u64, DbErr> {
    let mut n = 0;
    for chunk in ids.chunks(BATCH) {
        let sql = format!("{head} ({})", params(fixed.len() + 1, chunk.len()));
        let mut values = fixed.clone();
        values.extend(chunk.iter().map(|id| Value::from(*id)));
        n += exec(db, &sql, values).await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_placeholders() {
        assert_eq!(params(3, 3), "$3, $4, $5");
        assert_eq!(insert_sql("t", &["a", "b"], 2), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
    }
}
