//! The Pass ledger: double entry, TigerBeetle-style (`shared/reference/ledger.md`).
//!
//! * Accounts carry four counters (credits/debits × posted/pending). Pass wallets carry
//!   *must not overdraw*: `debits_posted + debits_pending <= credits_posted`, checked by the
//!   conditional `UPDATE` that writes them, so no read-then-write race can overdraw one.
//! * Transfers are immutable rows; a correction is a new transfer.
//! * A hold (pending transfer) is resolved at most once — posted (≤ the held amount, the rest
//!   released), voided, or expired after its timeout by the database clock.
//! * An [`Operation`] is several legs applied in ONE transaction, all or none, with its
//!   idempotency row and its outbox rows. A key replayed with the same request returns the
//!   original outcome; with another request, `IdempotencyConflict`; a key whose first attempt
//!   was refused keeps being refused the same way.
//! * [`audit`] recomputes every account from the transfers and checks the invariants.

mod accounts;
mod audit;
mod batch;
mod fingerprint;
#[cfg(test)]
mod fingerprint_tests;
mod holds;
mod idempotency;
mod model;
mod one_statement;
mod rows;
mod service;
mod update;
mod writes;

pub use accounts::{Account, AccountSpec, ensure_account, ensure_accounts, get_account};
pub use audit::{AuditReport, audit};
pub use batch::{BatchOutcome, execute_batch, execute_batch_in};
pub use holds::expire_due_holds;
pub use model::{
    AccountId, AccountKind, AccountRef, Counters, DEFAULT_MAX_LEG_AMOUNT, Delta, HoldTerms, KeyOutcome, LedgerError,
    Leg, MAX_HOLD_TIMEOUT_MS, Operation, OutboxEvent, Outcome, Phase, Rejection, RowInsert, Scope, TransferId,
    TransferKind, TransferRecord, Wallet, max_leg_amount, set_max_leg_amount,
};
pub use service::{AfterLegs, Written, execute, execute_with};
pub use writes::write_outbox;
