//! Reimbursing partners (issue 13): clubs front the cost, the funder pays them back by SEPA
//! transfer, in batches, on demand or on the funder's schedule.
//!
//! * A batch takes every posted redemption and refund of the funder up to its cutoff that no
//!   batch took before, and groups them per partner ([`model::group`]): a partner whose net is
//!   not positive, or whose bank details are not validated, is carried to the next batch (its
//!   items stay open).
//! * A redemption or refund is settled once and only once: `settlement_item` has a unique
//!   index on the source, and batch creations of one funder run one at a time (a lock on the
//!   funder's row on PostgreSQL, `BEGIN IMMEDIATE` on SQLite).
//! * Approval moves each line's net from the partner's payable to its settled account through
//!   the ledger, in one transaction with the batch's status and one `partner_settled` outbox row
//!   per partner; a second approval finds the batch approved and moves nothing.
//! * Exports: the `pain.001.001.03` file ([`sepa`]) and per-partner CSV statements
//!   ([`statement`]), both rebuilt from the stored rows, so every read gives the same file.

mod approve;
mod create;
mod export;
mod funder;
pub mod model;
mod read;
pub mod sepa;
mod statement;
pub mod text;

pub use approve::{PARTNER_SETTLED, approve_settlement_batch};
pub use create::{CreateBatch, create_settlement_batch, due_cutoff, settle_due};
pub use export::{SettleRun, settle_to_files};
pub use funder::{FunderSettlement, TreasuryInput, funder_settlement, set_funder_settlement};
pub use model::{BatchStatus, ItemKind, Schedule};
pub use read::{
    SettlementBatch, SettlementLine, StatementRow, batch_lines, get_settlement_batch, partner_lines, statement_rows,
};
pub use statement::{batch_sepa_xml, batch_statement_csv, statement_csv};
