//! Database plumbing shared by every service: connecting, write transactions, raw statements
//! and the database clock.
//!
//! The hot money paths use hand-written SQL with `$1`-style placeholders: PostgreSQL takes
//! them natively and sqlx binds SQLite's `$N` parameters by number, so one string serves both.

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

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
        .map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    Database::connect(opts).await
}

/// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`, which takes the
/// write lock up front: a DEFERRED transaction that reads then writes can fail with
/// SQLITE_BUSY half-way, while an IMMEDIATE one waits its turn (busy timeout) and then runs
/// alone. On PostgreSQL it is a plain READ COMMITTED transaction; the conditional updates do
/// the rest.
pub async fn begin_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Builds a raw statement for the connection's backend.
pub fn stmt(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql, values)
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
    let sql = format!("SELECT {} AS now_us", now_us_sql(backend));
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("clock".into()))?;
    row.try_get("", "now_us")
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
    use sea_orm::RuntimeErr;
    let (DbErr::Query(RuntimeErr::SqlxError(inner)) | DbErr::Exec(RuntimeErr::SqlxError(inner))) = e else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = std::ops::Deref::deref(inner) else { return false };
    matches!(db.code().as_deref(), Some("40P01" | "40001" | "5" | "6" | "517"))
}
