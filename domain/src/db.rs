//! Database plumbing shared by every service: connecting, write transactions, raw statements
//! and the database clock.
//!
//! The hot money paths use hand-written SQL with `$1`-style placeholders: PostgreSQL takes
//! them natively and sqlx binds SQLite's `$N` parameters by number, so one string serves both.

use std::time::Duration;

mod write;
pub use write::{WriteTxn, begin_write};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    FromQueryResult, Statement, Value,
};

/// How long a SQLite writer waits for its turn (in this process, then for the file's lock)
/// before its statement fails as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a pool on `url` (`sqlite://…` or `postgres://…`) with the settings the ledger relies on.
///
/// SQLite: WAL journal (readers never block the writer), `synchronous=NORMAL` (durable against a
/// process crash; the ledger's tests kill processes, not power), a 30 s busy timeout so
/// IMMEDIATE transactions queue instead of failing, foreign keys on, file created if missing.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        // A pooled connection is pinged before use only after 30 s idle (where a proxy, a
        // failover or a firewall may have dropped it), not at every checkout: sqlx's default
        // ping is a round trip (PostgreSQL) or a hop to the connection's thread (SQLite) before
        // each statement outside a transaction, and sqlx already pings each connection when it
        // goes back to the pool.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        // Generic plans: each connection plans a statement once and reuses the plan. Left to
        // choose, PostgreSQL kept re-planning the home screen's batched reads at every call
        // (1–2 ms each, more than running them); forced, the spending benchmark's home query
        // went from 873 to 1,356/s (p99 94 → 39 ms) and redemptions gained 10 %. Bulk jobs,
        // whose tables grow under them, ask for custom plans per transaction
        // ([`plan_each_statement`]).
        // No parallel workers: a worker is a process started for one statement. The home
        // screen's history, a few milliseconds of index scans, was planned with two (their
        // start-up, page faults and all, was most of PostgreSQL's time and cut the home query
        // to a third). Short statements from many clients are this service's work.
        .map_sqlx_postgres_opts(|o| {
            o.options([("plan_cache_mode", "force_generic_plan"), ("max_parallel_workers_per_gather", "0")])
        })
        .map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(BUSY_TIMEOUT)
                .foreign_keys(true)
        });
    Database::connect(opts).await
}

/// `$start, $start+1, …` for `n` parameters (an `IN (…)` list).
pub fn params(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `column` is one of `ids`, as a condition from parameter `$start` on, with its values.
///
/// PostgreSQL gets one array parameter (`= ANY(CAST($n AS uuid[]))`), so the statement's
/// text — hence its prepared, planned statement on each connection — is the same whatever the
/// list's length. With `IN ($n, …)` every length is a new statement to parse and plan (2 ms
/// for the home screen's history), and a DataLoader's batches come in every length. SQLite
/// keeps the `IN` list: preparing is cheap there, and it has no arrays.
pub fn in_ids(backend: DbBackend, column: &str, start: usize, ids: &[uuid::Uuid]) -> (String, Vec<Value>) {
    match backend {
        DbBackend::Postgres => {
            let list: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
            (format!("{column} = ANY(CAST(${start} AS uuid[]))"), vec![format!("{{{}}}", list.join(",")).into()])
        }
        _ if ids.is_empty() => ("1 = 0".to_owned(), vec![]),
        _ => (format!("{column} IN ({})", params(start, ids.len())), ids.iter().map(|id| (*id).into()).collect()),
    }
}

/// Builds a raw statement for the connection's backend.
///
/// On SQLite, `$1, $2, …` used once each and in order become anonymous `?`: sqlx asks SQLite
/// for every *named* parameter's name, which SQLite finds by a linear walk of the statement's
/// names, so binding n named parameters costs O(n²) — half of the grant's time went there with
/// 5,500-parameter inserts. Anonymous parameters bind by position. Statements that reuse or
/// reorder parameters keep their names (they are small).
pub fn stmt(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let anonymous = if backend == DbBackend::Sqlite { anonymous_placeholders(sql) } else { None };
    match anonymous {
        Some(sql) => Statement::from_sql_and_values(backend, sql, values),
        None => Statement::from_sql_and_values(backend, sql, values),
    }
}

/// `sql` with `$1 … $n` replaced by `?`, if they appear exactly once each and in order outside
/// string literals; `None` otherwise (or when there is nothing to replace).
fn anonymous_placeholders(sql: &str) -> Option<String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut next, mut i, mut start, mut in_literal) = (1usize, 0usize, 0usize, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_literal = !in_literal,
            b'$' if !in_literal => {
                let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                let n: usize = sql.get(i + 1..i + 1 + digits)?.parse().ok()?;
                if n != next {
                    return None;
                }
                out.push_str(&sql[start..i]);
                out.push('?');
                next += 1;
                i += digits;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if next == 1 {
        return None;
    }
    out.push_str(&sql[start..]);
    Some(out)
}

/// Bytes of bound data we put in one PostgreSQL statement.
///
/// sqlx 0.9.0 leaves Nagle's algorithm on (its TCP_NODELAY was dropped, sqlx issue #4335): a
/// message larger than the socket's initial send buffer (16 KiB) leaves in two writes, and the
/// short second one waits for the server's delayed ACK — 40 ms per statement. Measured with
/// one `SELECT` over n bound UUIDs: 16 KB of parameters 0.28 ms, 24 KB 42.8 ms. Bulk statements therefore carry at
/// most this much on PostgreSQL and make more round trips (0.2 ms each on a local socket).
pub const PG_STATEMENT_BYTES: usize = 12 * 1024;

/// How many rows of about `row_bytes` bound bytes go in one bulk statement: as many as fit in
/// [`PG_STATEMENT_BYTES`] on PostgreSQL; `sqlite_rows` on SQLite, where nothing is sent over a
/// socket and only the 32,766-parameter limit bounds a statement.
pub fn rows_per_statement(backend: DbBackend, row_bytes: usize, sqlite_rows: usize) -> usize {
    match backend {
        DbBackend::Postgres => (PG_STATEMENT_BYTES / row_bytes.max(1)).clamp(1, sqlite_rows.max(1)),
        _ => sqlite_rows.max(1),
    }
}

/// Inserts `rows` (each one value per column of `cols`) into `table` with multi-row
/// statements sized by [`rows_per_statement`] (`row_bytes`: the bound bytes of one row);
/// `progress(done, total)` after each statement.
pub async fn insert_rows<C: ConnectionTrait>(
    db: &C,
    table: &str,
    cols: &str,
    rows: &[Vec<Value>],
    row_bytes: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let (total, mut done) = (rows.len() as u64, 0u64);
    for chunk in rows.chunks(rows_per_statement(backend, row_bytes, 500)) {
        let mut n = 0;
        let tuples: Vec<String> = chunk
            .iter()
            .map(|row| {
                let cells: Vec<String> = row
                    .iter()
                    .map(|_| {
                        n += 1;
                        format!("${n}")
                    })
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let sql = format!("INSERT INTO {table} ({cols}) VALUES {}", tuples.join(", "));
        db.execute_raw(stmt(backend, &sql, chunk.iter().flatten().cloned())).await?;
        done += chunk.len() as u64;
        progress(done, total);
    }
    Ok(())
}

/// SQL for "now" in microseconds since the Unix epoch, from the database's own clock.
///
/// Anything the ledger decides on time (hold expiry) compares against this value, never the
/// application server's clock: several servers may disagree, the database is one.
pub fn now_us_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
        // julianday('now') has millisecond precision; unixepoch('subsec') would need 3.42.
        _ => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
    }
}

/// Reads the database clock.
pub async fn now_us<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    #[derive(FromQueryResult)]
    struct Clock {
        now_us: i64,
    }
    let sql = format!("SELECT {} AS now_us", now_us_sql(backend));
    let row = Clock::find_by_statement(Statement::from_string(backend, sql)).one(db).await?;
    Ok(row.ok_or_else(|| DbErr::RecordNotFound("clock".into()))?.now_us)
}

/// PostgreSQL: plan the rest of this transaction's statements for their actual parameters.
/// For bulk jobs (an import, a grant), which fill tables that were empty or small when their
/// statements were first prepared: a cached generic plan costed then (a scan of a "small"
/// table) stays in use as the tables grow. Measured on a 100,000-pupil grant: 5,000 → 7,500
/// passes/s. Not for every connection: the interactive ledger path lives on cached plans
/// (forcing custom plans on every connection cost it a quarter of its throughput).
pub async fn plan_each_statement(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(stmt(DbBackend::Postgres, "SET LOCAL plan_cache_mode = force_custom_plan", [])).await?;
    }
    Ok(())
}

/// A transaction type alias for readability in service signatures.
pub type Tx = DatabaseTransaction;

/// True when the error is a unique-constraint violation (the same key written twice).
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// True for failures that a fresh attempt of the same transaction can cure: PostgreSQL
/// deadlocks (40P01) and serialization failures (40001), SQLite's busy/locked states.
pub fn is_retryable(e: &DbErr) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40P01" | "40001" | "5" | "6" | "517"))
}

/// The database's own code for the error of a statement (SQLSTATE on PostgreSQL, the
/// extended result code on SQLite), if the database reported one.
pub fn sqlstate(e: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    let (DbErr::Query(RuntimeErr::SqlxError(inner)) | DbErr::Exec(RuntimeErr::SqlxError(inner))) = e else {
        return None;
    };
    let sea_orm::sqlx::Error::Database(db) = std::ops::Deref::deref(inner) else { return None };
    db.code().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_parameters_become_anonymous() {
        let sql = "INSERT INTO t (a, b) VALUES ($1, $2), ($3, 'x$4') RETURNING id";
        assert_eq!(
            anonymous_placeholders(sql).as_deref(),
            Some("INSERT INTO t (a, b) VALUES (?, ?), (?, 'x$4') RETURNING id")
        );
        assert_eq!(anonymous_placeholders("SELECT $1, $10").as_deref(), None);
        let ten: Vec<String> = (1..=10).map(|i| format!("${i}")).collect();
        assert_eq!(anonymous_placeholders(&ten.join(",")).as_deref(), Some("?,?,?,?,?,?,?,?,?,?"));
    }

    #[test]
    fn reused_reordered_or_absent_parameters_keep_their_names() {
        assert_eq!(anonymous_placeholders("UPDATE t SET a = $2 WHERE id = $1"), None);
        assert_eq!(anonymous_placeholders("UPDATE t SET a = $1, b = $1"), None);
        assert_eq!(anonymous_placeholders("SELECT 1"), None);
        assert_eq!(anonymous_placeholders("SELECT $"), None);
    }

    #[test]
    fn rows_per_statement_keeps_postgres_messages_small() {
        assert_eq!(rows_per_statement(DbBackend::Postgres, 100, 500), 122);
        assert_eq!(rows_per_statement(DbBackend::Postgres, 10, 500), 500);
        assert_eq!(rows_per_statement(DbBackend::Postgres, 1 << 20, 500), 1);
        assert_eq!(rows_per_statement(DbBackend::Sqlite, 100, 500), 500);
    }
}
