//! `passerelle settle`'s use case: make a batch (approve it when asked), then write its SEPA
//! file and one CSV statement per partner into a directory.

use std::path::{Path, PathBuf};

use sea_orm::DatabaseConnection;
use serde::Serialize;
use uuid::Uuid;

use super::approve::approve_settlement_batch;
use super::create::{CreateBatch, create_settlement_batch};
use super::read::{StatementRow, statement_rows};
use super::statement::{batch_sepa_xml, statement_csv};
use crate::auth::Actor;
use crate::error::{Error, Result};

/// What `passerelle settle` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettleRun {
    pub batch_id: Uuid,
    /// Partners paid (one transfer each).
    pub partners: i32,
    /// Redemptions and refunds settled (the statements' lines).
    pub lines: i32,
    pub total_cents: i64,
    pub approved: bool,
    /// The files written: the SEPA file first, then the statements.
    pub files: Vec<PathBuf>,
}

/// Makes the batch, approves it when `approve`, and writes `sepa-<batch>.xml` and
/// `statement-<batch>-<partner>.csv` into `out` (created if missing).
pub async fn settle_to_files(
    db: &DatabaseConnection,
    input: &CreateBatch,
    approve: bool,
    out: &Path,
    actor: &Actor,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<SettleRun> {
    std::fs::create_dir_all(out).map_err(|e| Error::bad_input("out", e.to_string()))?;
    let mut batch = create_settlement_batch(db, input, actor, progress).await?;
    if approve {
        batch = approve_settlement_batch(db, batch.id, actor).await?;
    }
    let id = batch.id.simple();
    let sepa = out.join(format!("sepa-{id}.xml"));
    write(&sepa, &batch_sepa_xml(db, batch.id).await?)?;
    let mut files = vec![sepa];
    let rows = statement_rows(db, batch.id, None).await?;
    for part in rows.chunk_by(|a: &StatementRow, b: &StatementRow| a.partner_id == b.partner_id) {
        let path = out.join(format!("statement-{id}-{}.csv", part[0].partner_id.simple()));
        write(&path, &statement_csv(part)?)?;
        files.push(path);
    }
    Ok(SettleRun {
        batch_id: batch.id,
        partners: batch.partners,
        lines: batch.items,
        total_cents: batch.total.0,
        approved: batch.status == super::BatchStatus::Approved,
        files,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::bad_input("out", format!("{}: {e}", path.display())))
}
