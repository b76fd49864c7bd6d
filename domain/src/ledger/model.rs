//! Pure ledger types and arithmetic: no database here, so the rules can be read and tested alone.

use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Cents;

pub type AccountId = Uuid;
pub type TransferId = Uuid;

/// Longest idempotency key accepted (the mobile contract says ≤ 255 characters).
pub const MAX_KEY_LEN: usize = 255;
/// Most legs in one operation: a grant has one per wallet; nothing legitimate needs dozens.
pub const MAX_LEGS: usize = 32;
/// Default largest amount of one leg: 10 million euros, far above any Pass amount, far below
/// where sums of legs and counters could overflow `i64` (32 legs × 10⁹ × 10⁸ operations).
pub const DEFAULT_MAX_LEG_AMOUNT: Cents = Cents(1_000_000_000);
/// Longest hold: a ticket lives at most until its campaign's deadline, within a school year.
pub const MAX_HOLD_TIMEOUT_MS: i64 = 400 * 24 * 3600 * 1000;

/// The leg cap in force (process-wide: set once from configuration at start-up).
static MAX_LEG_AMOUNT: AtomicI64 = AtomicI64::new(DEFAULT_MAX_LEG_AMOUNT.0);

/// Sets the largest amount one leg may move (`PASSERELLE_MAX_LEG_CENTS`); at least one cent.
pub fn set_max_leg_amount(cap: Cents) {
    MAX_LEG_AMOUNT.store(cap.0.max(1), Ordering::Relaxed);
}

/// The largest amount one leg may move.
pub fn max_leg_amount() -> Cents {
    Cents(MAX_LEG_AMOUNT.load(Ordering::Relaxed))
}

/// `*total += by`, refusing an overflow rather than wrapping (release builds do not check):
/// a wrapped debit total would pass the conditional update and mint money.
pub(crate) fn add_checked(total: &mut i64, by: i64) -> Result<(), LedgerError> {
    *total = total.checked_add(by).ok_or_else(|| LedgerError::Invalid("the amounts overflow".into()))?;
    Ok(())
}

crate::stored_enum! {
    /// The two Pass wallets. Credit never moves between them unless a transfer says so.
    ///
    /// The house pattern for every stored or exposed enum: strum gives `Display`/`FromStr` in
    /// snake_case (the stored text), `DeriveValueType` binds and reads it through them, so an
    /// unknown stored value is a read error, never a silent default.
    #[derive(PartialOrd, Ord)]
    pub enum Wallet {
        Sport,
        Culture,
    }
}

impl Wallet {
    pub const ALL: [Wallet; 2] = [Wallet::Sport, Wallet::Culture];
}

crate::stored_enum! {
    /// What an account stands for.
    pub enum AccountKind {
        /// One per pass and wallet; never overdrawn.
        PassWallet,
        /// The funder's budget for one campaign; goes negative as credit is granted.
        FunderBudget,
        /// What the funder owes a partner for redemptions not yet settled.
        PartnerPayable,
        /// What has been paid out to a partner.
        PartnerSettled,
        /// Credit lost after the campaign's deadline (per campaign).
        ExpiredCredit,
        /// Money reserved by tickets not yet redeemed (one per pass, in its campaign, so no row is
        /// shared by every family: the pending credits of ticket holds). A redemption posts the hold here and passes the amount on to the partner in the
        /// same operation: a bearer ticket does not know its partner until then.
        TicketsOutstanding,
    }
}

crate::stored_enum! {
    /// Why money moved; stored on every transfer for statements and statistics.
    pub enum TransferKind {
        Grant,
        TopUp,
        Ticket,
        Payment,
        CardCharge,
        Refund,
        Expiry,
        Settlement,
        Correction,
    }
}

impl TransferKind {
    /// Money a family spends from a wallet: gated by the card's status and the campaign's
    /// deadlines (the ledger's [`super::update`] gate).
    pub fn is_spending(self) -> bool {
        matches!(self, TransferKind::Ticket | TransferKind::Payment | TransferKind::CardCharge)
    }
}

crate::stored_enum! {
    /// The role a transfer row plays in the two-phase life of money.
    pub enum Phase {
        Posted,
        Pending,
        PostPending,
        VoidPending,
        ExpirePending,
    }
}

crate::stored_enum! {
    /// What the first run under an idempotency key did (`idempotency_key.outcome`).
    pub enum KeyOutcome {
        Succeeded,
        Failed,
    }
}

/// Where an account belongs: its funder, and its campaign when it lives for one (pass wallets,
/// budgets, expired credit; a partner's books span its funder's campaigns). Money never crosses
/// a funder, nor moves between two campaigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    pub funder: Uuid,
    pub campaign: Option<Uuid>,
}

impl Scope {
    pub fn campaign(funder: Uuid, campaign: Uuid) -> Scope {
        Scope { funder, campaign: Some(campaign) }
    }

    pub fn funder(funder: Uuid) -> Scope {
        Scope { funder, campaign: None }
    }
}

/// An account as a leg names it: its id, whether it carries the *must not overdraw* limit, and
/// its scope.
///
/// The limit decides the lock order inside a transaction (limited wallets first, unlimited
/// books last, so the hot book rows — a partner's payable, a campaign budget — stay locked
/// only for their final update and the commit). The database verifies both claims in the
/// conditional update: a leg that calls a limited account unlimited, or names another scope,
/// matches no row and is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountRef {
    pub id: AccountId,
    pub limited: bool,
    pub scope: Scope,
}

/// One step of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "leg")]
pub enum Leg {
    /// Move `amount` now.
    Transfer { kind: TransferKind, debit: AccountRef, credit: AccountRef, amount: Cents },
    /// Reserve `amount` on the debit account until posted, voided or expired.
    Hold { kind: TransferKind, debit: AccountRef, credit: AccountRef, amount: Cents, timeout_ms: i64 },
    /// Settle a hold for `amount` (default: all of it); the remainder goes back.
    Post { hold: TransferId, amount: Option<Cents> },
    /// Release a hold entirely.
    Void { hold: TransferId },
    /// Release a hold whose timeout has passed (by the database clock).
    Expire { hold: TransferId },
}

/// A notification to write in the same transaction as the money movement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub topic: String,
    pub account_id: Option<Uuid>,
    pub payload: serde_json::Value,
}

/// A request to the ledger: legs applied all or none, under one idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Who the key belongs to ("parent:<id>", "partner:<id>", "system:grant"): keys of
    /// different callers never collide nor reveal each other's results.
    pub scope: String,
    pub key: String,
    pub legs: Vec<Leg>,
    /// Business input beyond the legs (activity, partner…): part of the fingerprint.
    pub metadata: serde_json::Value,
    /// Written only if the operation succeeds; not part of the fingerprint.
    pub events: Vec<OutboxEvent>,
    /// What the caller asked for, when the legs derive from it and the moment (a ticket's hold
    /// timeout runs from now): then *it* is the fingerprint, so a retry of the same request
    /// replays instead of conflicting (the contract's idempotency is about the input).
    pub request: Option<serde_json::Value>,
    /// Business rows written with the money, only if the operation succeeds (not on a replay);
    /// not part of the fingerprint.
    pub rows: Vec<RowInsert>,
    /// What the caller read of the holds it posts (a ticket's row joins its hold): with them
    /// the whole operation can go as one statement on PostgreSQL (`ledger::one_statement`),
    /// its hold updates checking that the holds still say so. Never trusted: a hold that
    /// says otherwise sends the operation down the usual path. Not part of the fingerprint.
    pub known_holds: Vec<HoldTerms>,
}

/// A hold as its resolution needs it: its accounts, their limit flags, the amount held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldTerms {
    pub hold: TransferId,
    pub debit: AccountId,
    pub debit_limited: bool,
    pub credit: AccountId,
    pub credit_limited: bool,
    pub amount: Cents,
}

/// A business row an operation writes with its money (a redemption naming its operation), as
/// an insert whose `$1` is the operation's id and `$2` its time — the ledger fills both — and
/// whose own values start at `$3`. As SQL rather than a callback, it rides in the statement
/// that writes the operation's rows on PostgreSQL (one round trip fewer).
#[derive(Clone, Debug, PartialEq)]
pub struct RowInsert {
    pub sql: String,
    pub values: Vec<sea_orm::Value>,
}

impl Operation {
    pub fn new(scope: impl Into<String>, key: impl Into<String>, legs: Vec<Leg>) -> Self {
        Operation {
            scope: scope.into(),
            key: key.into(),
            legs,
            metadata: serde_json::Value::Null,
            events: vec![],
            request: None,
            rows: vec![],
            known_holds: vec![],
        }
    }

    pub fn with_known_holds(mut self, holds: Vec<HoldTerms>) -> Self {
        self.known_holds = holds;
        self
    }

    pub fn with_rows(mut self, rows: Vec<RowInsert>) -> Self {
        self.rows = rows;
        self
    }

    pub fn with_request(mut self, request: serde_json::Value) -> Self {
        self.request = Some(request);
        self
    }

    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }

    pub fn with_events(mut self, events: Vec<OutboxEvent>) -> Self {
        self.events = events;
        self
    }

    /// SHA-256 of the canonical request (legs + metadata), hex: see [`super::fingerprint`].
    pub fn fingerprint(&self) -> Result<String, LedgerError> {
        super::fingerprint::fingerprint(self)
    }

    /// True when every leg expires a hold: the scheduler's operations.
    pub fn is_expiry(&self) -> bool {
        self.legs.iter().all(|l| matches!(l, Leg::Expire { .. }))
    }

    /// Structural checks done before touching the database.
    pub fn validate(&self) -> Result<(), LedgerError> {
        let invalid = |m: &str| Err(LedgerError::Invalid(m.to_owned()));
        if self.key.is_empty() || self.key.len() > MAX_KEY_LEN {
            return invalid("the idempotency key must have 1 to 255 characters");
        }
        if self.legs.is_empty() || self.legs.len() > MAX_LEGS {
            return invalid("an operation has 1 to 32 legs");
        }
        let mut holds = std::collections::HashSet::new();
        let cap = max_leg_amount();
        let (mut funder, mut campaign) = (None, None);
        for leg in &self.legs {
            match leg {
                Leg::Transfer { debit, credit, amount, .. } | Leg::Hold { debit, credit, amount, .. } => {
                    if amount.0 <= 0 {
                        return invalid("amounts must be positive");
                    }
                    if *amount > cap {
                        return Err(LedgerError::Invalid(format!("an amount is above the limit of {cap}")));
                    }
                    if debit.id == credit.id {
                        return invalid("debit and credit accounts must differ");
                    }
                    for scope in [debit.scope, credit.scope] {
                        if *funder.get_or_insert(scope.funder) != scope.funder {
                            return invalid("an operation cannot cross funders");
                        }
                        if let Some(c) = scope.campaign
                            && *campaign.get_or_insert(c) != c
                        {
                            return invalid("an operation cannot move money between campaigns");
                        }
                    }
                    if let Leg::Hold { timeout_ms, .. } = leg
                        && !(0..=MAX_HOLD_TIMEOUT_MS).contains(timeout_ms)
                    {
                        return invalid("a hold timeout must be between 0 and 400 days");
                    }
                }
                Leg::Post { hold, amount } => {
                    if amount.is_some_and(|a| a.0 <= 0) {
                        return invalid("amounts must be positive");
                    }
                    if amount.is_some_and(|a| a > cap) {
                        return Err(LedgerError::Invalid(format!("an amount is above the limit of {cap}")));
                    }
                    if !holds.insert(*hold) {
                        return invalid("a hold appears twice in one operation");
                    }
                }
                Leg::Void { hold } | Leg::Expire { hold } => {
                    if !holds.insert(*hold) {
                        return invalid("a hold appears twice in one operation");
                    }
                }
            }
        }
        Ok(())
    }
}

/// One transfer as stored and as returned to callers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub id: TransferId,
    pub kind: Option<TransferKind>,
    pub phase: Phase,
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Cents,
    pub pending_id: Option<TransferId>,
    pub expires_at_us: Option<i64>,
    pub created_at_us: i64,
}

/// What an operation did. Stored with the idempotency key and returned again on replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub op_id: Uuid,
    pub transfers: Vec<TransferRecord>,
    pub created_at_us: i64,
    /// True when this is the stored result of an earlier call with the same key.
    #[serde(skip)]
    pub replayed: bool,
}

/// A business refusal. Recorded with the idempotency key, so a retry gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "rejection")]
pub enum Rejection {
    #[error("insufficient funds on account {account}")]
    InsufficientFunds { account: AccountId },
    #[error("account {account} not found")]
    AccountNotFound { account: AccountId },
    #[error("hold {hold} not found")]
    HoldNotFound { hold: TransferId },
    #[error("the hold was already posted, voided or expired")]
    HoldNotPending,
    #[error("the hold has expired")]
    HoldExpired,
    #[error("the hold has not expired yet")]
    HoldNotExpired,
    #[error("cannot post more than the held amount")]
    AmountExceedsHold,
    #[error("the card of account {account} is not active")]
    CardBlocked { account: AccountId },
    #[error("the campaign of account {account} is closed for this operation")]
    CampaignClosed { account: AccountId },
    /// Business rules checked in the operation's transaction (`execute_with`).
    #[error("a refund cannot exceed what is left of the payment")]
    RefundExceedsRedemption,
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            Rejection::AccountNotFound { .. } => "ACCOUNT_NOT_FOUND",
            Rejection::HoldNotFound { .. } => "HOLD_NOT_FOUND",
            Rejection::HoldNotPending => "HOLD_NOT_PENDING",
            Rejection::HoldExpired => "HOLD_EXPIRED",
            Rejection::HoldNotExpired => "HOLD_NOT_EXPIRED",
            Rejection::AmountExceedsHold => "AMOUNT_EXCEEDS_HOLD",
            Rejection::CardBlocked { .. } => "CARD_BLOCKED",
            Rejection::CampaignClosed { .. } => "CAMPAIGN_CLOSED",
            Rejection::RefundExceedsRedemption => "REFUND_EXCEEDS_REDEMPTION",
        }
    }
}

/// Everything `execute` can return instead of an outcome.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    #[error("invalid operation: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
}

/// The four TigerBeetle counters of an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub credits_posted: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub debits_pending: i64,
}

/// A change to the four counters of one account, summed over an operation's legs.
pub type Delta = Counters;

impl Counters {
    /// What the owner can still spend: posted credits minus posted and pending debits
    /// (computed wide, so corrupt counters read as a large negative, never a wrapped positive).
    pub fn available(&self) -> i64 {
        let wide = i128::from(self.credits_posted) - i128::from(self.debits_posted) - i128::from(self.debits_pending);
        wide.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Posted balance (credits minus debits), holds not counted.
    pub fn balance(&self) -> i64 {
        let wide = i128::from(self.credits_posted) - i128::from(self.debits_posted);
        wide.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The counters after `d`, or `None` if any would overflow.
    pub fn checked_plus(&self, d: &Delta) -> Option<Counters> {
        Some(Counters {
            credits_posted: self.credits_posted.checked_add(d.credits_posted)?,
            debits_posted: self.debits_posted.checked_add(d.debits_posted)?,
            credits_pending: self.credits_pending.checked_add(d.credits_pending)?,
            debits_pending: self.debits_pending.checked_add(d.debits_pending)?,
        })
    }

    /// The *must not overdraw* rule, the one the conditional update enforces in SQL.
    pub fn respects_limit(&self, must_not_overdraw: bool) -> bool {
        !must_not_overdraw || self.available() >= 0
    }
}
