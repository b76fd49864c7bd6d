//! Write transactions, and SQLite writers taking turns.
//!
//! SQLite has one writer at a time per file. A second writer's `BEGIN IMMEDIATE` fails with
//! SQLITE_BUSY, and SQLite's busy handler then sleeps and tries again: 1, 2, 5, 10, 15, 20,
//! 25 ms and on up to 100 ms between tries, with no queue. When many writers wait, a few
//! lucky ones keep taking the file and the others back off. `ledger-bench` at 32 clients
//! showed exactly that: p50 0.35 ms, p99 329.6 ms, which is the sum of the handler's first
//! twelve sleeps. Nothing bounds a writer's wait but the busy timeout, after which its
//! statement fails as busy.
//!
//! So in this process the writers on one SQLite file first queue for one of [`TURNS`] turns
//! (tokio's semaphore is first come, first served). Two turns, not one: with one, each
//! handover also waits for the next writer's `BEGIN` to reach its connection's thread
//! (throughput −11 to −29 % at 8 and 32 clients). With two, the next writer's `BEGIN` is
//! already waiting on the file while the current one works.
//!
//! Fairness has a price. Measured with `ledger-bench` at 8 and 32 clients on 2 cores:
//! - p99 went from 54–80 ms to 8–12 ms at 8 clients, and from 230–330 ms to 21–28 ms at 32;
//! - throughput fell by 2–21 % depending on the case and the sitting.
//!
//! Sleeping writers use no CPU, and SQLite lets a lucky one take the file again at once. A
//! queue wakes each writer in turn instead, a round of context switches per handover. A
//! payment that may wait a third of a second, or fail as busy, is worse than a lower peak:
//! SQLite is the embedded and test database, and production runs on PostgreSQL. Three or four
//! turns were slower than two, with longer tails. See the README's ledger section.
//!
//! The file's lock and the busy handler still arbitrate between processes (`passerelle serve`
//! beside `passerelle worker`). They also take over when a turn waits past the busy timeout,
//! so nothing waits forever here. PostgreSQL locks rows, not the database: no turns there.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::BUSY_TIMEOUT;

/// Writers of one SQLite file at work or ready at once, in this process (see above).
const TURNS: usize = 2;

/// A transaction that will write, holding its turn to write (SQLite) until it ends.
///
/// Reads and writes go through it as through the [`DatabaseTransaction`] it derefs to. It
/// ends with [`WriteTxn::commit`] or [`WriteTxn::rollback`]. Dropped, it rolls back, and its
/// turn passes on once the transaction is dropped (fields drop in order).
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _turn: Option<OwnedSemaphorePermit>,
}

/// Starts a transaction that will write. On SQLite it waits for one of the file's turns in
/// this process (above), then runs `BEGIN IMMEDIATE`, which takes the write lock up front: a
/// DEFERRED transaction that reads then writes can fail with SQLITE_BUSY half-way, while an
/// IMMEDIATE one runs alone. On PostgreSQL it is a plain READ COMMITTED transaction; the
/// conditional updates do the rest.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    let turn = match turns_of(db) {
        // Past the busy timeout (or if the turns were closed, which they never are), the
        // transaction goes on without a turn and the file's own lock decides.
        Some(turns) => tokio::time::timeout(BUSY_TIMEOUT, turns.acquire_owned()).await.ok().and_then(Result::ok),
        None => None,
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    Ok(WriteTxn { txn, _turn: turn })
}

/// The turns of the SQLite file behind `db` (`None` on PostgreSQL). Pools on the same
/// file share them. There is one entry per file this process ever wrote: a server has one, and
/// the test binary a few hundred. Every write transaction looks its file up, so the path is
/// copied only the first time.
fn turns_of(db: &DatabaseConnection) -> Option<Arc<Semaphore>> {
    static FILES: LazyLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> = LazyLock::new(Default::default);
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let file = options.get_filename();
    let mut files = FILES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(turns) = files.get(file) {
        return Some(turns.clone());
    }
    let turns = Arc::new(Semaphore::new(TURNS));
    files.insert(file.to_owned(), turns.clone());
    Some(turns)
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite(dir: &std::path::Path, name: &str) -> DatabaseConnection {
        let url = format!("sqlite://{}", dir.join(name).display());
        crate::db::connect(&url, 2).await.expect("connect")
    }

    /// Two pools on one file share its turns; another file has its own. An open write
    /// transaction holds one turn until it commits or is dropped.
    #[tokio::test]
    async fn pools_on_one_file_share_its_turns() {
        let dir = std::env::temp_dir().join(format!("passerelle-turns-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (a, b, other) = (sqlite(&dir, "a.db").await, sqlite(&dir, "a.db").await, sqlite(&dir, "b.db").await);
        let (ta, tb, to) = (turns_of(&a).expect("a"), turns_of(&b).expect("b"), turns_of(&other).expect("other"));
        assert!(Arc::ptr_eq(&ta, &tb));
        assert!(!Arc::ptr_eq(&ta, &to));
        assert_eq!(ta.available_permits(), TURNS);

        let txn = begin_write(&a).await.expect("begin");
        assert_eq!(tb.available_permits(), TURNS - 1, "the open transaction holds a turn of the file");
        assert_eq!(to.available_permits(), TURNS, "another file's turns are free");
        txn.execute_unprepared("CREATE TABLE t (x INTEGER)").await.expect("write");
        txn.commit().await.expect("commit");
        assert_eq!(tb.available_permits(), TURNS, "the turn passed on at the commit");

        let txn = begin_write(&b).await.expect("begin on the other pool");
        assert_eq!(ta.available_permits(), TURNS - 1);
        drop(txn);
        assert_eq!(ta.available_permits(), TURNS, "a dropped transaction gives its turn back");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
