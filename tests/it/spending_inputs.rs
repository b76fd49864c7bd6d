//! The bad inputs of `shared/reference/security.md` §7 that concern spending, over HTTP: each
//! gets a clean error with its code, no 500, and changes nothing (balances, tickets and
//! redemptions are counted before and after).

use passerelle_domain::auth::{AccountKind, create_account};
use passerelle_domain::ledger::Wallet;
use passerelle_domain::partner::{PartnerRole, add_partner_member};
use passerelle_tests::accounts::{PASSWORD, sign_in};
use passerelle_tests::spending::{Family, family};
use passerelle_tests::{TestApp, code, count};
use serde_json::{Value, json};

const ISSUE: &str = "mutation($i: IssueTicketInput!) { issueTicket(input: $i) { replayed ticket { id code amount } } }";
const PAY: &str = "mutation($i: PayPartnerInput!) { payPartner(input: $i) { replayed redemption { id amount } } }";
const REDEEM: &str = "mutation($i: RedeemTicketInput!) { redeemTicket(input: $i) { replayed redemption { id } } }";

struct World {
    app: TestApp,
    f: Family,
    parent: String,
    club: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 2, false).await;
    let parent = sign_in(&app, &f.parent_email, None).await;
    let member = create_account(&app.db, AccountKind::PartnerMember, "club@example.org", PASSWORD, "Club", true, &[])
        .await
        .unwrap()
        .0
        .id;
    add_partner_member(&app.db, f.sport, member, PartnerRole::Member).await.unwrap();
    let club = sign_in(&app, "club@example.org", None).await;
    World { app, f, parent, club }
}

impl World {
    /// Everything a refused request must leave as it was.
    async fn state(&self) -> (i64, i64, i64, i64) {
        let db = &self.app.db;
        (
            count(db, "SELECT COUNT(*) AS n FROM ticket").await,
            count(db, "SELECT COUNT(*) AS n FROM redemption").await,
            count(db, "SELECT COUNT(*) AS n FROM ledger_transfer").await,
            self.f.balance(db, 0, Wallet::Sport).await.available.0,
        )
    }

    fn pay(&self, amount: Value, key: &str) -> Value {
        json!({ "i": { "passId": self.f.passes[0].id.to_string(), "wallet": "SPORT", "amount": amount,
            "partnerId": self.f.sport.to_string(), "idempotencyKey": key } })
    }
}

#[tokio::test]
async fn wrong_amounts_and_keys_are_refused_with_their_code_and_change_nothing() {
    let w = world().await;
    let before = w.state().await;
    let huge = "92233720368547758.07";
    for (amount, key, expected) in [
        (json!("-5.00"), "k1".to_owned(), "BAD_USER_INPUT"),
        (json!("0"), "k2".to_owned(), "BAD_USER_INPUT"),
        (json!("1.555"), "k3".to_owned(), "BAD_USER_INPUT"),
        (json!(huge), "k4".to_owned(), "BAD_USER_INPUT"),
        (json!(true), "k5".to_owned(), "BAD_USER_INPUT"),
        (json!("40.01"), "k6".to_owned(), "INSUFFICIENT_FUNDS"),
        (json!("5.00"), String::new(), "BAD_USER_INPUT"),
        (json!("5.00"), "x".repeat(10 * 1024), "BAD_USER_INPUT"),
    ] {
        let body = w.app.graphql_as(&w.parent, PAY, w.pay(amount.clone(), &key)).await;
        assert_eq!(code(&body), expected, "{amount} / key of {} chars: {body}", key.len());
        let ticket_key = if key.is_empty() { key.clone() } else { format!("{key}-t") };
        let body = w.app.graphql_as(&w.parent, ISSUE, w.pay(amount.clone(), &ticket_key)).await;
        assert_eq!(code(&body), expected, "ticket of {amount}: {body}");
    }
    // A field the input does not have (mass assignment) is a validation error.
    let mut sneaky = w.pay(json!("5.00"), "k7");
    sneaky["i"]["status"] = json!("REDEEMED");
    assert_eq!(code(&w.app.graphql_as(&w.parent, PAY, sneaky).await), "BAD_USER_INPUT");
    assert_eq!(w.state().await, before, "refusals leave no trace");
    w.app.stop().await;
}

#[tokio::test]
async fn idempotency_replays_the_same_request_and_refuses_another_under_the_same_key() {
    let w = world().await;
    let first = w.app.graphql_as(&w.parent, PAY, w.pay(json!("5.00"), "same")).await;
    assert_eq!(first["data"]["payPartner"]["replayed"], false, "{first}");
    let again = w.app.graphql_as(&w.parent, PAY, w.pay(json!("5.00"), "same")).await;
    assert_eq!(again["data"]["payPartner"]["replayed"], true);
    assert_eq!(again["data"]["payPartner"]["redemption"], first["data"]["payPartner"]["redemption"]);
    let after = w.state().await;
    let other = w.app.graphql_as(&w.parent, PAY, w.pay(json!("6.00"), "same")).await;
    assert_eq!(code(&other), "IDEMPOTENCY_CONFLICT", "{other}");
    assert_eq!(w.state().await, after);
    assert_eq!(after.3, 3500, "one payment of 5.00");
    // Concurrent requests with one key: one operation.
    let v = w.pay(json!("2.00"), "together");
    let answers = futures_util::future::join_all((0..6).map(|_| w.app.graphql_as(&w.parent, PAY, v.clone()))).await;
    let fresh = answers.iter().filter(|a| a["data"]["payPartner"]["replayed"] == false).count();
    assert_eq!(fresh, 1, "{answers:?}");
    assert_eq!(w.f.balance(&w.app.db, 0, Wallet::Sport).await.available.0, 3300);
    w.app.stop().await;
}

#[tokio::test]
async fn other_families_objects_are_not_found_and_roles_are_kept_apart() {
    let w = world().await;
    let ticket = w.f.ticket(&w.app.db, 0, 500, None, "mine").await;
    // Another parent: the pass, the ticket and payments from it are NOT_FOUND.
    create_account(&w.app.db, AccountKind::Parent, "other@example.org", PASSWORD, "Other", true, &[]).await.unwrap();
    let other = sign_in(&w.app, "other@example.org", None).await;
    let before = w.state().await;
    assert_eq!(code(&w.app.graphql_as(&other, PAY, w.pay(json!("1.00"), "o1")).await), "NOT_FOUND");
    assert_eq!(code(&w.app.graphql_as(&other, ISSUE, w.pay(json!("1.00"), "o2")).await), "NOT_FOUND");
    let cancel = "mutation($t: ID!) { cancelTicket(ticketId: $t) { status } }";
    assert_eq!(code(&w.app.graphql_as(&other, cancel, json!({ "t": ticket.id.to_string() })).await), "NOT_FOUND");
    let lost = "mutation($p: ID!) { reportLostCard(passId: $p) { status } }";
    let p = json!({ "p": w.f.passes[0].id.to_string() });
    assert_eq!(code(&w.app.graphql_as(&other, lost, p.clone()).await), "NOT_FOUND");
    // Roles: a parent cannot redeem or charge, a club cannot issue or pay.
    let redeem = json!({ "i": { "code": ticket.code, "idempotencyKey": "r1" } });
    assert_eq!(code(&w.app.graphql_as(&w.parent, REDEEM, redeem.clone()).await), "FORBIDDEN");
    assert_eq!(code(&w.app.graphql_as(&w.club, PAY, w.pay(json!("1.00"), "c1")).await), "FORBIDDEN");
    assert_eq!(code(&w.app.graphql_as(&w.club, ISSUE, w.pay(json!("1.00"), "c2")).await), "FORBIDDEN");
    // Anonymous: nothing.
    assert_eq!(code(&w.app.graphql(REDEEM, redeem).await), "UNAUTHENTICATED");
    // The theatre may not be paid from the sport wallet; an unknown partner is NOT_FOUND.
    let mut wrong = w.pay(json!("1.00"), "c3");
    wrong["i"]["partnerId"] = json!(w.f.culture.to_string());
    assert_eq!(code(&w.app.graphql_as(&w.parent, PAY, wrong.clone()).await), "BAD_USER_INPUT");
    wrong["i"]["partnerId"] = json!(uuid::Uuid::now_v7().to_string());
    assert_eq!(code(&w.app.graphql_as(&w.parent, PAY, wrong).await), "NOT_FOUND");
    assert_eq!(w.state().await, before);
    // Unlinked a moment ago: the parent loses the pass at once.
    let sql = "UPDATE family_link SET revoked_at_us = 1 WHERE account_id = $1";
    let stmt = passerelle_domain::db::stmt(w.app.db.get_database_backend(), sql, [w.f.parent.into()]);
    sea_orm::ConnectionTrait::execute_raw(&w.app.db, stmt).await.unwrap();
    assert_eq!(code(&w.app.graphql_as(&w.parent, PAY, w.pay(json!("1.00"), "u1")).await), "NOT_FOUND");
    assert_eq!(code(&w.app.graphql_as(&w.parent, lost, p).await), "NOT_FOUND");
    w.app.stop().await;
}

#[tokio::test]
async fn a_club_cannot_reach_other_clubs_tickets_and_pages_are_bounded() {
    let w = world().await;
    let named = w.f.ticket(&w.app.db, 0, 500, Some(w.f.sport), "for-club").await;
    // The theatre (culture) sees neither a sport bearer ticket nor one named for the club.
    let member = create_account(&w.app.db, AccountKind::PartnerMember, "t@example.org", PASSWORD, "T", true, &[])
        .await
        .unwrap()
        .0
        .id;
    add_partner_member(&w.app.db, w.f.culture, member, PartnerRole::Member).await.unwrap();
    let theatre = sign_in(&w.app, "t@example.org", None).await;
    let bearer = w.f.ticket(&w.app.db, 1, 500, None, "bearer").await;
    let before = w.state().await;
    for t in [&named, &bearer] {
        let r = json!({ "i": { "code": t.code, "idempotencyKey": format!("steal-{}", t.code) } });
        assert_eq!(code(&w.app.graphql_as(&theatre, REDEEM, r).await), "NOT_FOUND");
        let q = "query($c: String!) { lookupTicket(code: $c) { status } }";
        assert_eq!(code(&w.app.graphql_as(&theatre, q, json!({ "c": t.code })).await), "NOT_FOUND");
    }
    // More than the ticket, a malformed code.
    let r = json!({ "i": { "code": named.code, "amount": "5.01", "idempotencyKey": "over" } });
    assert_eq!(code(&w.app.graphql_as(&w.club, REDEEM, r).await), "BAD_USER_INPUT");
    let r = json!({ "i": { "code": "'; DROP TABLE ticket--", "idempotencyKey": "inject" } });
    assert_eq!(code(&w.app.graphql_as(&w.club, REDEEM, r).await), "NOT_FOUND");
    assert_eq!(w.state().await, before);
    // Pagination bombs.
    let pass = w.f.passes[0].id.to_string();
    for first in [2_147_483_647_i64, -1, 0, 101] {
        let q = "query($f: Int) { children { pass { transactions(first: $f) { edges { cursor } } } } }";
        let body = w.app.graphql_as(&w.parent, q, json!({ "f": first })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "first: {first}: {body}");
        let q = "query($f: Int) { redemptions(first: $f) { edges { cursor } } }";
        assert_eq!(code(&w.app.graphql_as(&w.club, q, json!({ "f": first })).await), "BAD_USER_INPUT");
    }
    let q = "query($a: String) { redemptions(first: 5, after: $a) { edges { cursor } } }";
    assert_eq!(code(&w.app.graphql_as(&w.club, q, json!({ "a": "not a cursor" })).await), "BAD_USER_INPUT");
    let _ = pass;
    w.app.stop().await;
}
