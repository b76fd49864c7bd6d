//! The accounts spending moves money between, who may be paid from which wallet, and the
//! idempotency scope of each caller.

use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

use super::MAX_IDEMPOTENCY_KEY;
use super::pass::Pass;
use crate::db::stmt;
use crate::error::{Error, Result};
use serde_json::json;

use crate::ledger::{AccountKind, AccountRef, AccountSpec, OutboxEvent, Scope, Wallet, ensure_accounts};
use crate::partner::PartnerStatus;

/// Who spends or redeems: the key scope of their idempotency keys, and what they may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpendCaller {
    /// A parent account: reaches the passes of linked children.
    Parent { account: Uuid },
    /// A partner member or one of the partner's API clients: keys and objects are the
    /// partner's, whichever device or software sends them.
    Partner { partner: Uuid },
}

impl SpendCaller {
    /// The idempotency scope: keys of different callers never collide nor reveal each other.
    pub(super) fn key_scope(&self) -> String {
        match self {
            SpendCaller::Parent { account } => format!("parent:{account}"),
            SpendCaller::Partner { partner } => format!("partner:{partner}"),
        }
    }
}

/// The contract's rule for `idempotencyKey`: 1 to 255 characters.
pub(super) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY {
        return Err(Error::bad_input("idempotencyKey", "1 to 255 characters"));
    }
    Ok(())
}

/// A pass wallet and the account on the other side of the movement.
pub(super) async fn accounts<C: ConnectionTrait>(
    db: &C,
    pass: &Pass,
    wallet: Wallet,
    other: AccountSpec,
) -> Result<(AccountRef, AccountRef)> {
    let own = AccountSpec::pass_wallet(pass.funder_id, pass.campaign_id, pass.id, wallet);
    let refs = ensure_accounts(db, &[own, other]).await?;
    match refs.as_slice() {
        [w, o] => Ok((*w, *o)),
        _ => Err(Error::internal(sea_orm::DbErr::Custom("accounts not created".into()))),
    }
}

/// What the funder owes a partner (funder-wide: a club is paid from every campaign).
pub(super) fn payable(funder: Uuid, partner: Uuid) -> AccountSpec {
    AccountSpec::of(AccountKind::PartnerPayable, partner, Scope::funder(funder))
}

/// The campaign's tickets-outstanding account.
pub(super) fn outstanding(pass: &Pass) -> AccountSpec {
    AccountSpec::of(
        AccountKind::TicketsOutstanding,
        pass.campaign_id,
        Scope::campaign(pass.funder_id, pass.campaign_id),
    )
}

/// The campaign's expired credit.
pub(super) fn expired_credit(funder: Uuid, campaign: Uuid) -> AccountSpec {
    AccountSpec::of(AccountKind::ExpiredCredit, campaign, Scope::campaign(funder, campaign))
}

/// What decides whether a partner may be paid: its funder, categories and status.
#[derive(Clone, Debug, FromQueryResult)]
pub(super) struct PartnerTerms {
    pub(super) funder_id: Option<Uuid>,
    pub(super) categories: String,
    pub(super) status: PartnerStatus,
}

/// Checks that `partner` may be paid from `wallet` of a pass of `funder`: approved by that
/// funder, and of the wallet's category (sport credit pays sport partners). An unknown
/// partner, or one of another funder, is `NOT_FOUND`.
pub(super) async fn check_partner<C: ConnectionTrait>(
    db: &C,
    partner: Uuid,
    funder: Uuid,
    wallet: Wallet,
) -> Result<()> {
    let sql = "SELECT funder_id, categories, status FROM partner WHERE id = $1";
    let terms = PartnerTerms::find_by_statement(stmt(db.get_database_backend(), sql, [partner.into()])).one(db).await?;
    terms_allow(terms.as_ref(), funder, wallet)
}

/// [`check_partner`]'s rule, for terms already read (the redemption reads them with the ticket).
pub(super) fn terms_allow(terms: Option<&PartnerTerms>, funder: Uuid, wallet: Wallet) -> Result<()> {
    let terms = terms.filter(|t| t.funder_id == Some(funder)).ok_or(Error::NotFound("partner"))?;
    if terms.status != PartnerStatus::Approved {
        return Err(Error::Conflict("this partner is not approved for the Pass".into()));
    }
    if !crate::partner::categories_from_text(&terms.categories)?.contains(&wallet) {
        return Err(Error::bad_input("wallet", format!("this partner does not accept {wallet} credit")));
    }
    Ok(())
}

/// The outbox event of a committed change to a pass: subscriptions (`passUpdated`) and the
/// family's notifications read it; `reason` parses as a `notify::NotificationKind`.
pub(crate) fn pass_changed(pass: Uuid, reason: &str) -> OutboxEvent {
    OutboxEvent {
        topic: "pass_updated".into(),
        account_id: None,
        payload: json!({ "pass_id": pass, "reason": reason }),
    }
}
