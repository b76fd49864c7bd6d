//! Warnings of an import, stored as `roster_import_issue` rows.
//!
//! Every warning is counted; only the first [`MAX_STORED`] are stored. A broken export can carry
//! a warning per record (an unknown MEF in every pupil of 100,000): storing them all would make
//! the report unreadable and the table huge, while the first thousands already show the pattern
//! and the count tells the size. Rows are written in batches, inside the import's transaction,
//! so a rejected import leaves no warnings behind either.

use sea_orm::{ConnectionTrait, DbErr, Value};
use uuid::Uuid;

use super::sql::{BATCH, insert_rows};
use crate::school::parse::ParseWarning;

/// Issue rows stored per import.
pub(super) const MAX_STORED: u64 = 10_000;

const COLS: [&str; 8] = ["id", "import_id", "file", "line", "col", "record_key", "code", "message"];

/// One issue before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Issue {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub record_key: Option<String>,
    pub code: String,
    pub message: String,
}

impl Issue {
    pub fn from_warning(file: &str, w: ParseWarning) -> Issue {
        Issue {
            file: file.to_owned(),
            line: w.line,
            column: w.column,
            record_key: w.record_key,
            code: w.code.to_owned(),
            message: w.message,
        }
    }

    /// A warning of the importer itself, about a record (no position: records do not keep one).
    pub fn about(file: &str, key: Option<&str>, code: &str, message: impl Into<String>) -> Issue {
        Issue {
            file: file.to_owned(),
            line: 0,
            column: 0,
            record_key: key.map(str::to_owned),
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn values(self, import_id: Uuid) -> Vec<Value> {
        vec![
            Uuid::now_v7().into(),
            import_id.into(),
            self.file.into(),
            clamp(self.line).into(),
            clamp(self.column).into(),
            self.record_key.into(),
            self.code.into(),
            self.message.into(),
        ]
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Counts every warning, buffers and stores the first [`MAX_STORED`].
pub(super) struct IssueSink {
    import_id: Uuid,
    buffer: Vec<Issue>,
    /// Warnings seen (stored or not).
    pub total: u64,
    stored: u64,
}

impl IssueSink {
    pub fn new(import_id: Uuid) -> Self {
        IssueSink { import_id, buffer: Vec::new(), total: 0, stored: 0 }
    }

    /// Counts the issue; keeps it if the cap allows. Call [`IssueSink::flush_if_full`] after.
    pub fn push(&mut self, issue: Issue) {
        self.total += 1;
        if self.stored + (self.buffer.len() as u64) < MAX_STORED {
            self.buffer.push(issue);
        }
    }

    /// How many more rows may still be stored.
    pub fn room(&self) -> u64 {
        MAX_STORED.saturating_sub(self.stored + self.buffer.len() as u64)
    }

    pub async fn flush_if_full<C: ConnectionTrait>(&mut self, db: &C) -> Result<(), DbErr> {
        if self.buffer.len() >= BATCH { self.flush(db).await } else { Ok(()) }
    }

    pub async fn flush<C: ConnectionTrait>(&mut self, db: &C) -> Result<(), DbErr> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<Value>> = self.buffer.drain(..).map(|i| i.values(self.import_id)).collect();
        self.stored += rows.len() as u64;
        insert_rows(db, "roster_import_issue", &COLS, rows, "").await
    }
}

/// Stores one issue outside the sink (the error of a rejected import, after the rollback).
pub(super) async fn insert_one<C: ConnectionTrait>(db: &C, import_id: Uuid, issue: Issue) -> Result<(), DbErr> {
    insert_rows(db, "roster_import_issue", &COLS, vec![issue.values(import_id)], "").await
}
