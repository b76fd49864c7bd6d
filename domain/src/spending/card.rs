//! The card at the club's desk: its PIN (set by the parent), the charge with card number and
//! PIN, and reporting it lost.
//!
//! A PIN has 4 to 6 digits: a small space, so what protects it is the count of wrong tries
//! (the fifth in a row blocks the card, like a bank card) and the throttles per card and per
//! partner; it is stored as an Argon2 hash all the same, never in clear.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use super::books::{SpendCaller, check_key, check_partner, pass_changed};
use super::pass::{PASS_SELECT, Pass, pass_for_parent};
use super::payments::{Redemption, RedemptionSource, spend};
use crate::auth::{AuthConfig, Principal, Slot, Throttle, reauthenticate, reserve, tokio_blocking};
use crate::db::stmt;
use crate::error::{Error, Result};
use crate::identity::{hash_password, verify_password};
use crate::ids::CardNumber;
use crate::ledger::{TransferKind, Wallet};
use crate::money::Cents;

/// Wrong PINs in a row that block the card.
pub const MAX_PIN_FAILURES: i64 = 5;
/// Charges per card: 10 at once, then one a minute (a desk never needs more).
const CARD_CHARGES: Throttle = Throttle { free: 10, max_block_secs: 600 };
/// Charges per partner: 120 at once, then two a second (a busy club on registration day).
const PARTNER_CHARGES: Throttle = Throttle { free: 120, max_block_secs: 60 };

fn check_pin(pin: &str) -> Result<()> {
    if (4..=6).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::bad_input("pin", "4 to 6 digits"))
    }
}

/// Sets the card's PIN after the parent proved their password again (it also counts as a
/// re-authentication of the session). Clears the count of wrong tries.
pub async fn set_card_pin(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    principal: &Principal,
    pass: Uuid,
    pin: &str,
    password: &str,
) -> Result<Pass> {
    let found = pass_for_parent(db, principal.account.id, pass).await?;
    check_pin(pin)?;
    reauthenticate(db, auth, principal, password, None).await?;
    let pin = pin.to_owned();
    // Argon2 off the async workers and within the sign-in's limit of hashes at once.
    let hash = tokio_blocking(move || hash_password(&pin)).await?;
    let sql = "UPDATE pass SET pin_hash = $2, pin_failures = 0 WHERE id = $1";
    db.execute_raw(stmt(db.get_database_backend(), sql, [found.id.into(), hash.into()])).await?;
    pass_for_parent(db, principal.account.id, pass).await
}

/// Blocks the card at once: no ticket, payment, charge or redemption from it any more (the
/// ledger checks the card's status in the same update that moves money). The replacement
/// follows as a lost-card request, filed in the same transaction (already open: kept).
pub async fn report_lost_card(db: &DatabaseConnection, account: Uuid, pass: Uuid) -> Result<Pass> {
    let lost = crate::request::NewRequest {
        kind: Some(crate::request::RequestKind::LostCard),
        subject: crate::request::Subject { pass_id: Some(pass), ..Default::default() },
        ..Default::default()
    };
    match crate::request::submit(db, account, &lost).await {
        Ok(_) | Err(crate::Error::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    pass_for_parent(db, account, pass).await
}

/// Blocks an active card inside the caller's transaction, telling the family.
pub(crate) async fn block_card_in<C: ConnectionTrait>(txn: &C, pass: Uuid) -> Result<()> {
    let sql = "UPDATE pass SET status = 'blocked' WHERE id = $1 AND status = 'active'";
    if txn.execute_raw(stmt(txn.get_database_backend(), sql, [pass.into()])).await?.rows_affected() == 1 {
        crate::ledger::write_outbox(txn, &[pass_changed(pass, "card_blocked")]).await?;
    }
    Ok(())
}

#[derive(FromQueryResult)]
struct PinRow {
    pin_hash: Option<String>,
}

/// What a club's desk sends.
#[derive(Clone, Debug)]
pub struct ChargeCard {
    pub card_number: String,
    pub pin: String,
    pub wallet: Wallet,
    pub amount: Cents,
    pub activity_id: Option<String>,
    pub idempotency_key: String,
}

/// Charges a card at the partner's desk: throttled per card and per partner, then the PIN;
/// five wrong PINs in a row block the card.
pub async fn charge_card(db: &DatabaseConnection, partner: Uuid, input: &ChargeCard) -> Result<(Redemption, bool)> {
    check_key(&input.idempotency_key)?;
    let number = CardNumber::parse(&input.card_number).map_err(|e| Error::bad_input("cardNumber", e.to_string()))?;
    check_pin(&input.pin)?;
    for (key, limit) in [
        (format!("charge:card:{}", number.as_str()), CARD_CHARGES),
        (format!("charge:partner:{partner}"), PARTNER_CHARGES),
    ] {
        if let Slot::Full { retry_after_secs } = reserve(db, &key, limit, 0).await? {
            return Err(Error::Throttled { retry_after_secs });
        }
    }
    let backend = db.get_database_backend();
    let sql = format!("{PASS_SELECT} WHERE p.number = $1");
    let pass = Pass::find_by_statement(stmt(backend, &sql, [number.as_str().into()])).one(db).await?;
    let Some(pass) = pass else {
        // A number taken out of use by a replacement: the club is told the card is blocked
        // (the family has the new one), not that it never existed.
        let sql = "SELECT number FROM replaced_card WHERE number = $1";
        let replaced = db.query_one_raw(stmt(backend, sql, [number.as_str().into()])).await?;
        return Err(if replaced.is_some() { Error::CardBlocked } else { Error::NotFound("card") });
    };
    check_partner(db, partner, pass.funder_id, input.wallet).await?;
    let sql = "SELECT pin_hash FROM pass WHERE id = $1";
    let hash = PinRow::find_by_statement(stmt(backend, sql, [pass.id.into()])).one(db).await?.and_then(|r| r.pin_hash);
    let Some(hash) = hash else {
        return Err(Error::bad_input("pin", "no PIN was set for this card"));
    };
    if pass.status != super::PassStatus::Active {
        return Err(Error::CardBlocked);
    }
    let pin = input.pin.clone();
    if !tokio_blocking(move || Ok(verify_password(&pin, &hash))).await? {
        return Err(wrong_pin(db, &pass).await?);
    }
    let sql = "UPDATE pass SET pin_failures = 0 WHERE id = $1 AND pin_failures <> 0";
    db.execute_raw(stmt(backend, sql, [pass.id.into()])).await?;
    let row =
        Redemption::new_row(partner, pass.funder_id, pass.id, input.wallet, RedemptionSource::CardCharge, input.amount)
            .with_activity(input.activity_id.clone());
    spend(db, &SpendCaller::Partner { partner }, &pass, row, TransferKind::CardCharge, &input.idempotency_key).await
}

#[derive(FromQueryResult)]
struct Failures {
    pin_failures: i64,
}

/// Counts a wrong PIN (one atomic update: concurrent wrong tries all count) and blocks the
/// card at the fifth.
async fn wrong_pin(db: &DatabaseConnection, pass: &Pass) -> Result<Error> {
    let backend = db.get_database_backend();
    let txn = crate::db::begin_write(db).await?;
    let sql = "UPDATE pass SET pin_failures = pin_failures + 1, \
               status = CASE WHEN pin_failures + 1 >= $2 AND status = 'active' THEN 'blocked' ELSE status END \
               WHERE id = $1 RETURNING pin_failures";
    let row =
        Failures::find_by_statement(stmt(backend, sql, [pass.id.into(), MAX_PIN_FAILURES.into()])).one(&txn).await?;
    let failures = row.map_or(MAX_PIN_FAILURES, |r| r.pin_failures);
    if failures == MAX_PIN_FAILURES {
        crate::ledger::write_outbox(&txn, &[pass_changed(pass.id, "card_blocked")]).await?;
    }
    txn.commit().await?;
    Ok(if failures >= MAX_PIN_FAILURES {
        Error::CardBlocked
    } else {
        Error::WrongPin { attempts_left: MAX_PIN_FAILURES - failures }
    })
}
