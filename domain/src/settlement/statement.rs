//! The exports of a batch, rebuilt from its stored rows: the SEPA file and the CSV statements.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::funder::funder_settlement;
use super::read::{StatementRow, batch_lines, get_settlement_batch, statement_rows};
use super::sepa::{CreditTransferFile, Transfer, credit_transfer_xml};
use super::text::amount_text;
use crate::error::{Error, Result};
use crate::ids::{Bic, Iban};

fn paris(us: i64) -> chrono::DateTime<chrono_tz::Tz> {
    chrono::DateTime::from_timestamp_micros(us).unwrap_or_default().with_timezone(&chrono_tz::Europe::Paris)
}

/// The batch's `pain.001.001.03` file: one transfer per line, to the bank details the line
/// recorded. Ids are the batch's and the lines' UUIDs (32 hex digits): unique, within 35.
pub async fn batch_sepa_xml<C: ConnectionTrait>(db: &C, batch: Uuid) -> Result<String> {
    let b = get_settlement_batch(db, batch).await?;
    let funder = funder_settlement(db, b.funder_id).await?;
    let debtor = funder.treasury.ok_or_else(|| Error::Conflict("the funder's treasury account is not set".into()))?;
    let corrupt = || Error::internal(sea_orm::DbErr::Type("settlement line bank details".into()));
    let mut transfers = vec![];
    for l in batch_lines(db, batch).await? {
        transfers.push(Transfer {
            end_to_end_id: l.id.simple().to_string(),
            amount: l.amount,
            creditor_name: l.account_holder,
            iban: Iban::parse(&l.iban).map_err(|_| corrupt())?,
            bic: l.bic.as_deref().map(Bic::parse).transpose().map_err(|_| corrupt())?,
            remittance: format!(
                "Pass {} - remboursement au {} - {} operation(s) - ref {}",
                funder.funder_name,
                b.cutoff.format("%d/%m/%Y"),
                l.items,
                l.id.simple()
            ),
        });
    }
    let file = CreditTransferFile {
        message_id: b.id.simple().to_string(),
        created_at: paris(b.created_at_us).naive_local(),
        initiating_party: funder.funder_name.clone(),
        debtor,
        execution_date: b.execution_date,
        transfers,
    };
    credit_transfer_xml(&file)
}

/// A statement as CSV (`;`-separated, as French spreadsheets open it): one row per settled
/// redemption or refund. Text cells that a spreadsheet would run as a formula are quoted with
/// a leading `'`.
pub fn statement_csv(rows: &[StatementRow]) -> Result<String> {
    let mut w = csv::WriterBuilder::new().delimiter(b';').from_writer(Vec::new());
    let header = ["partner_id", "partner", "line_id", "date", "kind", "redemption_id", "wallet", "amount"];
    w.write_record(header).map_err(Error::internal)?;
    for r in rows {
        let kind: &'static str = r.kind.into();
        let wallet: &'static str = r.wallet.into();
        w.write_record([
            r.partner_id.to_string(),
            no_formula(&r.partner_name),
            r.line_id.to_string(),
            paris(r.at_us).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            kind.to_owned(),
            r.redemption_id.to_string(),
            wallet.to_owned(),
            amount_text(r.amount),
        ])
        .map_err(Error::internal)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::internal(e.into_error()))?;
    String::from_utf8(bytes).map_err(Error::internal)
}

fn no_formula(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() }
}

/// The CSV statement of a batch, of one partner when `partner` is given.
pub async fn batch_statement_csv<C: ConnectionTrait>(db: &C, batch: Uuid, partner: Option<Uuid>) -> Result<String> {
    statement_csv(&statement_rows(db, batch, partner).await?)
}
