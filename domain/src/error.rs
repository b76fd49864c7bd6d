//! The one error type that leaves the domain crate.
//!
//! Each variant has a stable `code()` that is part of the mobile contract
//! (`mobile-contract/error-codes.md`). Messages of user-facing variants are safe to show;
//! `Internal` keeps its source for the logs and shows nothing of it to callers.

use crate::ledger::{LedgerError, Rejection};

/// Result alias used throughout the domain.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a domain operation can refuse, with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication required")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    /// Also used for objects that exist but belong to someone else (no existence oracle).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("this idempotency key was already used with a different request")]
    IdempotencyConflict,
    #[error("too many attempts, retry later")]
    RateLimited,
    /// Too many attempts from this key; the next one conforms in `retry_after_secs` (sent as
    /// `extensions.retryAfter` and the HTTP `Retry-After` header).
    #[error("too many attempts, retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The e-mail address of the account is not verified yet (needed to link a child).
    #[error("verify your e-mail address first")]
    EmailNotVerified,
    /// Too many link attempts were made for this child, across every account: the link now
    /// needs a review by the funder's staff.
    #[error("too many link attempts for this child: contact the funder's staff")]
    LinkReviewRequired,
    /// A sensitive operation, and the session has not proved its credentials again recently
    /// (security.md A6, A11): the app calls `reauthenticate`, then retries.
    #[error("this operation needs a recent re-authentication")]
    ReauthRequired,
    /// A refresh token the same device rotated a moment ago, in a racing request (security.md
    /// A9): the session lives on; the app uses the tokens the other request received.
    #[error("this refresh token was just rotated by another request of this device")]
    RefreshSuperseded,
    #[error("the campaign is closed")]
    CampaignClosed,
    #[error("the card is blocked")]
    CardBlocked,
    #[error("the ticket cannot be redeemed")]
    TicketNotRedeemable,
    /// A wrong card PIN; the card is blocked when none are left.
    #[error("wrong PIN ({attempts_left} attempts left)")]
    WrongPin { attempts_left: i64 },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The stable, machine-readable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::Forbidden => "FORBIDDEN",
            Error::NotFound(_) => "NOT_FOUND",
            Error::BadInput { .. } => "BAD_USER_INPUT",
            Error::Conflict(_) => "CONFLICT",
            Error::InsufficientFunds => "INSUFFICIENT_FUNDS",
            Error::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            Error::RateLimited | Error::Throttled { .. } => "RATE_LIMITED",
            Error::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Error::LinkReviewRequired => "LINK_REVIEW_REQUIRED",
            Error::ReauthRequired => "REAUTH_REQUIRED",
            Error::RefreshSuperseded => "REFRESH_SUPERSEDED",
            Error::CampaignClosed => "CAMPAIGN_CLOSED",
            Error::CardBlocked => "CARD_BLOCKED",
            Error::TicketNotRedeemable => "TICKET_NOT_REDEEMABLE",
            Error::WrongPin { .. } => "WRONG_PIN",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// A `BAD_USER_INPUT` naming the offending field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput { field: field.into(), message: message.into() }
    }

    /// Wraps an unexpected failure; its text goes to the logs only.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Internal(Box::new(e))
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        Error::internal(e)
    }
}

impl From<LedgerError> for Error {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Rejected(r) => match r {
                Rejection::InsufficientFunds { .. } => Error::InsufficientFunds,
                Rejection::AccountNotFound { .. } => Error::NotFound("account"),
                Rejection::HoldNotFound { .. } => Error::NotFound("hold"),
                Rejection::HoldNotPending | Rejection::HoldExpired | Rejection::HoldNotExpired => {
                    Error::Conflict(r.to_string())
                }
                Rejection::AmountExceedsHold => Error::bad_input("amount", r.to_string()),
                Rejection::CardBlocked { .. } => Error::CardBlocked,
                Rejection::CampaignClosed { .. } => Error::CampaignClosed,
                Rejection::RefundExceedsRedemption => Error::bad_input("amount", r.to_string()),
            },
            LedgerError::IdempotencyConflict => Error::IdempotencyConflict,
            LedgerError::Invalid(m) => Error::bad_input("operation", m),
            LedgerError::Db(d) => Error::internal(d),
        }
    }
}
