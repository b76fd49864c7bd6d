//! Guards CI against a silently skipped PostgreSQL run.

use passerelle_tests::{Backend, fresh_db};

/// `.ci/run` sets `TEST_EXPECT_BACKEND`; if the suite is not on that backend, fail loudly.
#[tokio::test]
async fn suite_runs_on_the_expected_backend() {
    let tdb = fresh_db().await;
    let actual = match tdb.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    assert_eq!(actual, tdb.backend);
    if let Ok(expected) = std::env::var("TEST_EXPECT_BACKEND") {
        assert_eq!(actual.name(), expected, "the suite was expected to run on {expected}");
    }
    println!("backend: {}", actual.name());
}
