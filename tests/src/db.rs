//! Fresh, migrated databases for tests and benchmarks.

use std::path::PathBuf;

use passerelle_domain::db::stmt;
use passerelle_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use uuid::Uuid;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend the suite was asked to use (`TEST_DATABASE_URL` set → PostgreSQL).
    pub fn selected() -> Backend {
        if admin_url().is_some() { Backend::Postgres } else { Backend::Sqlite }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty())
}

/// A migrated database that lives as long as the value (the SQLite directory is removed on
/// drop; PostgreSQL test databases are named `passerelle_t_*` and dropped by `.ci/run`).
pub struct TestDb {
    pub db: DatabaseConnection,
    pub url: String,
    pub backend: Backend,
    dir: Option<PathBuf>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Creates and migrates a fresh database on the selected backend, with a pool of `pool` connections.
pub async fn fresh_db_with_pool(pool: u32) -> TestDb {
    let (url, backend, dir) = match admin_url() {
        Some(admin) => {
            let name = format!("passerelle_t_{}", Uuid::new_v4().simple());
            let conn = passerelle_domain::db::connect(&admin, 1)
                .await
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
            conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            let _ = conn.close().await;
            (replace_db_name(&admin, &name), Backend::Postgres, None)
        }
        None => {
            let dir = std::env::temp_dir().join(format!("passerelle-test-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            (format!("sqlite://{}?mode=rwc", dir.join("test.db").display()), Backend::Sqlite, Some(dir))
        }
    };
    // Migrate over a connection of its own, then open the pool (as the server does).
    let once = passerelle_domain::db::connect(&url, 1).await.expect("connect to test database");
    Migrator::up(&once, None).await.expect("migrate test database");
    once.close().await.expect("close migration connection");
    let db = passerelle_domain::db::connect(&url, pool).await.expect("connect to test database");
    TestDb { db, url, backend, dir }
}

/// A fresh database with a pool suited to concurrency tests.
pub async fn fresh_db() -> TestDb {
    fresh_db_with_pool(16).await
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

/// The `n` column of a one-row query without parameters (`SELECT COUNT(*) AS n FROM …`).
pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = Count::find_by_statement(stmt(db.get_database_backend(), sql, [])).one(db).await;
    row.unwrap_or_else(|e| panic!("{sql}: {e}")).unwrap_or_else(|| panic!("{sql}: no row")).n
}

/// `postgres://u@h:5432/test?x=y` → `postgres://u@h:5432/<name>?x=y`.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::replace_db_name("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(super::replace_db_name("postgres://h/test?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
        assert_eq!(super::replace_db_name("postgres://h", "x"), "postgres://h/x");
    }
}
