//! Spending the Pass: what families and clubs do with the credit (Pass+ rules,
//! `shared/reference/pass-plus-domain.md`).
//!
//! Three ways to spend, all ledger operations under the caller's idempotency key:
//! - a **ticket**: the parent reserves an amount (a ledger hold on the wallet) for one partner or
//!   for the bearer; the club checks its signed `qrPayload` offline, then redeems it (posts the
//!   hold, at most what was held; the rest goes back). Cancelling voids the hold; the scheduler
//!   expires it at its validity. The ticket's status is the hold's state: one conditional
//!   update decides between redeem, cancel and expiry, whoever comes first;
//! - a **payment** from the parent app to a partner (`payPartner`);
//! - a **card charge** at the club's desk with the card number and its PIN (`chargeCard`).
//!
//! Money goes from the pass wallet to the partner's payable account (what the funder owes
//! the club), which the reimbursement batches settle later. A ticket's hold credits the
//! campaign's *tickets outstanding* account: the club is not known for a bearer ticket, so
//! redeeming posts the hold there and passes the amount on to the club in the same operation.
//!
//! Who may touch what is decided here, not in resolvers: a parent reaches only the passes of
//! children linked to them (anything else is `NOT_FOUND`), a partner only its own tickets and
//! redemptions, and only approved partners of the pass's funder, from the wallets of their
//! categories, are paid.

mod books;
mod card;
mod keys;
mod pass;
mod payments;
mod redeem;
mod remind;
mod sweep;
mod tickets;

pub use books::SpendCaller;
pub(crate) use card::block_card_in;
pub use card::{ChargeCard, MAX_PIN_FAILURES, charge_card, report_lost_card, set_card_pin};
pub use keys::{TICKET_JWT_TYPE, TicketClaims, TicketKeys, jwks};
pub(crate) use pass::{PASS_COLUMNS_AS_PASS, pass_by_id};
pub use pass::{
    Pass, PassStatus, PassTransaction, TransactionStatus, WalletBalance, latest_transactions, pass_for_parent,
    passes_of_pupils, transactions, wallet_balances,
};
pub use payments::{
    PayPartner, Redemption, RedemptionSource, RefundRedemption, list_redemptions, pay_partner, refund_redemption,
};
pub use redeem::{RedeemTicket, TicketCheck, lookup_ticket, redeem_ticket};
pub use remind::remind;
pub use sweep::{SweepReport, sweep};
pub use tickets::{IssueTicket, Ticket, TicketStatus, cancel_ticket, issue_ticket, latest_tickets, list_tickets};

/// The longest idempotency key a caller may send (the contract's 255 characters).
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A keyset page request: at most `first` rows after the `(created_at_us, id)` cursor.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub first: u64,
    pub after: Option<(i64, uuid::Uuid)>,
}

/// The cursor bound of a page: rows strictly older than `after` (newest first).
pub(crate) fn before(page: &Page) -> (i64, uuid::Uuid) {
    page.after.unwrap_or((i64::MAX, uuid::Uuid::max()))
}
