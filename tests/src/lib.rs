//! Test support shared by the end-to-end tests (`tests/it`) and the benchmarks (`src/bin`).
//!
//! Every test gets a fresh database: a SQLite file in a temporary directory by default, or —
//! when `TEST_DATABASE_URL` points at a PostgreSQL server — a fresh database created on that
//! server. The same tests therefore run on both backends; `.ci/run` runs them twice.

pub mod aaf_gen;
pub mod accounts;
pub mod app;
pub mod db;
pub mod fake_fcm;
pub mod ledger;
pub mod ledger_model;
pub mod oidc_provider;
pub mod requests;
pub mod roster;
pub mod school;
pub mod settlement;
pub mod smtp;
pub mod spending;
pub mod ws;

pub use app::{TestApp, code};
pub use db::{Backend, TestDb, count, fresh_db, fresh_db_with_pool};
