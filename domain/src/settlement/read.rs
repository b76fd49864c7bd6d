//! Reading batches, their lines (staff; the partner's own lines) and the items behind them.

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::model::{BatchStatus, ItemKind};
use crate::db::stmt;
use crate::error::{Error, Result};
use crate::ledger::Wallet;
use crate::money::Cents;
use crate::spending::{Page, before};

/// A batch as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettlementBatch {
    pub id: Uuid,
    pub funder_id: Uuid,
    pub cutoff: NaiveDate,
    pub cutoff_us: i64,
    pub status: BatchStatus,
    pub execution_date: NaiveDate,
    pub total: Cents,
    pub partners: i32,
    pub items: i32,
    pub carried_partners: i32,
    pub created_by: String,
    pub created_at_us: i64,
    pub approved_by: Option<String>,
    pub approved_at_us: Option<i64>,
}

#[derive(FromQueryResult)]
struct BatchRow {
    id: Uuid,
    funder_id: Uuid,
    cutoff: String,
    cutoff_us: i64,
    status: BatchStatus,
    execution_date: String,
    total_cents: i64,
    partners: i32,
    items: i32,
    carried_partners: i32,
    created_by: String,
    created_at_us: i64,
    approved_by: Option<String>,
    approved_at_us: Option<i64>,
}

fn stored_day(text: &str) -> Result<NaiveDate> {
    text.parse().map_err(|_| Error::internal(sea_orm::DbErr::Type(format!("bad stored date {text:?}"))))
}

impl TryFrom<BatchRow> for SettlementBatch {
    type Error = Error;

    fn try_from(r: BatchRow) -> Result<Self> {
        Ok(SettlementBatch {
            cutoff: stored_day(&r.cutoff)?,
            execution_date: stored_day(&r.execution_date)?,
            id: r.id,
            funder_id: r.funder_id,
            cutoff_us: r.cutoff_us,
            status: r.status,
            total: Cents(r.total_cents),
            partners: r.partners,
            items: r.items,
            carried_partners: r.carried_partners,
            created_by: r.created_by,
            created_at_us: r.created_at_us,
            approved_by: r.approved_by,
            approved_at_us: r.approved_at_us,
        })
    }
}

pub async fn get_settlement_batch<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<SettlementBatch> {
    let sql = "SELECT id, funder_id, cutoff, cutoff_us, status, execution_date, total_cents, partners, items, \
               carried_partners, created_by, created_at_us, approved_by, approved_at_us FROM settlement_batch \
               WHERE id = $1";
    let row = BatchRow::find_by_statement(stmt(db.get_database_backend(), sql, [id.into()])).one(db).await?;
    row.ok_or(Error::NotFound("settlement batch"))?.try_into()
}

/// One partner's transfer in a batch, with the batch's status and date (what the partner sees).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementLine {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub partner_id: Uuid,
    pub partner_name: String,
    pub amount: Cents,
    pub redeemed_cents: i64,
    pub refunded_cents: i64,
    pub items: i32,
    pub account_holder: String,
    pub iban: String,
    pub bic: Option<String>,
    pub status: BatchStatus,
    pub execution_date: NaiveDate,
    pub created_at_us: i64,
}

#[derive(FromQueryResult)]
struct LineRow {
    id: Uuid,
    batch_id: Uuid,
    partner_id: Uuid,
    partner_name: String,
    amount: Cents,
    redeemed_cents: i64,
    refunded_cents: i64,
    items: i32,
    account_holder: String,
    iban: String,
    bic: Option<String>,
    status: BatchStatus,
    execution_date: String,
    created_at_us: i64,
}

impl TryFrom<LineRow> for SettlementLine {
    type Error = Error;

    fn try_from(r: LineRow) -> Result<Self> {
        Ok(SettlementLine {
            execution_date: stored_day(&r.execution_date)?,
            id: r.id,
            batch_id: r.batch_id,
            partner_id: r.partner_id,
            partner_name: r.partner_name,
            amount: r.amount,
            redeemed_cents: r.redeemed_cents,
            refunded_cents: r.refunded_cents,
            items: r.items,
            account_holder: r.account_holder,
            iban: r.iban,
            bic: r.bic,
            status: r.status,
            created_at_us: r.created_at_us,
        })
    }
}

async fn lines<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<Vec<SettlementLine>> {
    let rows = LineRow::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

const LINE_SELECT: &str = "SELECT l.id, l.batch_id, l.partner_id, p.name AS partner_name, l.amount, l.redeemed_cents, \
    l.refunded_cents, l.items, l.account_holder, l.iban, l.bic, b.status, b.execution_date, l.created_at_us \
    FROM settlement_line l JOIN settlement_batch b ON b.id = l.batch_id JOIN partner p ON p.id = l.partner_id";

/// The lines of a batch, by partner name.
pub async fn batch_lines<C: ConnectionTrait>(db: &C, batch: Uuid) -> Result<Vec<SettlementLine>> {
    lines(db, &format!("{LINE_SELECT} WHERE l.batch_id = $1 ORDER BY p.name, l.partner_id"), vec![batch.into()]).await
}

/// A partner's reimbursements, newest first.
pub async fn partner_lines<C: ConnectionTrait>(db: &C, partner: Uuid, page: &Page) -> Result<Vec<SettlementLine>> {
    let (at, id) = before(page);
    let sql = format!(
        "{LINE_SELECT} WHERE l.partner_id = $1 AND (l.created_at_us < $2 OR (l.created_at_us = $2 AND l.id < $3)) \
         ORDER BY l.created_at_us DESC, l.id DESC LIMIT $4"
    );
    lines(db, &sql, vec![partner.into(), at.into(), id.into(), (page.first as i64).into()]).await
}

/// One settled redemption or refund, as a statement lists it.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct StatementRow {
    pub partner_id: Uuid,
    pub partner_name: String,
    pub line_id: Uuid,
    pub kind: ItemKind,
    pub source_id: Uuid,
    pub redemption_id: Uuid,
    pub wallet: Wallet,
    /// Signed: refunds are negative.
    pub amount: Cents,
    pub at_us: i64,
}

/// The items of a batch (of one partner when `partner` is given), by partner then time.
pub async fn statement_rows<C: ConnectionTrait>(
    db: &C,
    batch: Uuid,
    partner: Option<Uuid>,
) -> Result<Vec<StatementRow>> {
    let mut values: Vec<Value> = vec![batch.into()];
    let mut filter = String::new();
    if let Some(p) = partner {
        values.push(p.into());
        filter.push_str(" AND l.partner_id = $2");
    }
    let sql = format!(
        "SELECT l.partner_id, p.name AS partner_name, l.id AS line_id, i.kind, i.source_id, r.id AS redemption_id, \
         r.wallet, i.amount, COALESCE(f.created_at_us, r.created_at_us) AS at_us \
         FROM settlement_item i JOIN settlement_line l ON l.id = i.line_id JOIN partner p ON p.id = l.partner_id \
         LEFT JOIN redemption_refund f ON i.kind = 'refund' AND f.id = i.source_id \
         JOIN redemption r ON r.id = COALESCE(f.redemption_id, i.source_id) \
         WHERE i.batch_id = $1{filter} ORDER BY p.name, l.partner_id, at_us, i.source_id"
    );
    Ok(StatementRow::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?)
}
