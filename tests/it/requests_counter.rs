//! Requests opened at the counter, and the effects of the other kinds: a lost card replaced
//! (balances and open tickets carried over, the old number refused), an enrolment approved
//! (eligibility, pass and credit in the decision's transaction, once).

use passerelle_domain::Cents;
use passerelle_domain::auth::StaffRole;
use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::ledger::{Wallet, audit};
use passerelle_domain::spending::{self, ChargeCard, RedeemTicket};
use passerelle_domain::usecase::recompute_and_grant;
use passerelle_tests::accounts::sign_in;
use passerelle_tests::requests::{decide, mutate, notices, staff_token};
use passerelle_tests::spending::family;
use passerelle_tests::{TestApp, code, count};
use serde_json::json;

#[tokio::test]
async fn a_lost_card_opened_at_the_counter_is_replaced_with_its_balance_and_tickets() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    let pass = &f.passes[0];
    let ticket = f.ticket(&app.db, 0, 1500, Some(f.sport), "before-loss").await;
    let (_, agent) = staff_token(&app, f.funder, StaffRole::EligibilityOfficer).await;

    // At the counter, for the family (who will follow it in the app).
    let input = json!({ "kind": "LOST_CARD", "subjectId": pass.id.to_string(), "requesterAccountId": f.parent.to_string(),
                        "message": "Carte perdue au gymnase, signalée au guichet." });
    let body = mutate(&app, &agent, "openRequestAtCounter", "OpenRequestAtCounterInput", input).await;
    let r = &body["data"]["openRequestAtCounter"];
    assert_eq!((r["channel"].as_str(), r["status"].as_str()), (Some("COUNTER"), Some("SUBMITTED")), "{body}");
    assert_eq!(r["events"][0]["atCounter"], true, "{body}");
    assert_eq!(r["events"][0]["party"], "FAMILY", "opened for the family: {body}");
    let id = r["id"].as_str().unwrap().to_owned();
    // Blocked at once.
    let blocked = spending::pass_for_parent(&app.db, f.parent, pass.id).await.unwrap();
    assert_eq!(blocked.status, spending::PassStatus::Blocked);
    // The family sees it in the app, opened at the counter.
    let parent = sign_in(&app, &f.parent_email, None).await;
    let q = "{ requests(first: 5) { edges { node { id channel kind } } } }";
    let mine = app.graphql_as(&parent, q, json!({})).await;
    assert_eq!(
        mine["data"]["requests"]["edges"][0]["node"],
        json!({ "id": id, "channel": "COUNTER", "kind": "LOST_CARD" })
    );
    // A second one for the same card while this one is open: refused, nothing written.
    let again = json!({ "kind": "LOST_CARD", "subjectId": pass.id.to_string() });
    let body = mutate(&app, &parent, "submitRequest", "SubmitRequestInput", again).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM request").await, 1);

    let body = decide(&app, &agent, &id, "APPROVE", Some("Nouvelle carte envoyée.")).await;
    assert_eq!(body["data"]["decideRequest"]["status"], "APPROVED", "{body}");
    let replaced = spending::pass_for_parent(&app.db, f.parent, pass.id).await.unwrap();
    assert_eq!(replaced.status, spending::PassStatus::Active);
    assert_ne!(replaced.number, pass.number);
    assert!(!replaced.has_pin, "the new card needs its own PIN");
    // Balances carried over (the 15 € ticket still held), and the ticket still redeems.
    let sport = f.balance(&app.db, 0, Wallet::Sport).await;
    assert_eq!((sport.available.0, sport.held.0), (2500, 1500));
    let redeem = RedeemTicket {
        code: ticket.code,
        amount: Some(Cents(1500)),
        activity_id: None,
        idempotency_key: "after".into(),
    };
    spending::redeem_ticket(&app.db, f.sport, &redeem).await.expect("the ticket lives on the new card");
    // The old number is refused as blocked, not unknown.
    let charge = ChargeCard {
        card_number: pass.number.clone(),
        pin: "1234".into(),
        wallet: Wallet::Sport,
        amount: Cents(100),
        activity_id: None,
        idempotency_key: "old-card".into(),
    };
    let refused = spending::charge_card(&app.db, f.sport, &charge).await.unwrap_err();
    assert_eq!(refused.code(), "CARD_BLOCKED");
    let told: Vec<String> = notices(&app, &id, f.parent).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(told, ["submitted", "approved"]);
    assert!(audit(&app.db).await.unwrap().is_clean());
    app.stop().await;
}

#[tokio::test]
async fn reporting_a_lost_card_in_the_app_files_the_replacement_request() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    let parent = sign_in(&app, &f.parent_email, None).await;
    let q = "mutation($p: ID!) { reportLostCard(passId: $p) { status } }";
    for _ in 0..2 {
        let body = app.graphql_as(&parent, q, json!({ "p": f.passes[0].id.to_string() })).await;
        assert_eq!(body["data"]["reportLostCard"]["status"], "BLOCKED", "{body}");
    }
    let q = "{ requests(first: 5) { edges { node { kind status channel passId } } } }";
    let body = app.graphql_as(&parent, q, json!({})).await;
    let expected = json!([{ "node": { "kind": "LOST_CARD", "status": "SUBMITTED", "channel": "APP", "passId": f.passes[0].id.to_string() } }]);
    assert_eq!(body["data"]["requests"]["edges"], expected, "one request however often it is reported: {body}");
    app.stop().await;
}

#[tokio::test]
async fn an_approved_enrolment_creates_the_pass_and_its_credit_exactly_once() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    // Next year's campaign: the child has no pass there yet.
    let next =
        upsert_campaign(&app.db, f.funder, 2027, "Pass+ 2027-2028", &Policy::pass_plus("92", 2027), "t").await.unwrap();
    let parent = sign_in(&app, &f.parent_email, None).await;
    let (_, agent) = staff_token(&app, f.funder, StaffRole::EligibilityOfficer).await;
    let child = f.passes[0].pupil_id.to_string();
    let input = json!({ "childId": child, "campaignId": next.id.to_string(), "boursierClaim": true });
    let body = mutate(&app, &parent, "enrol", "EnrolInput", input.clone()).await;
    let r = &body["data"]["enrol"];
    assert_eq!((r["kind"].as_str(), r["boursierClaim"].as_bool()), (Some("ENROLMENT"), Some(true)), "{body}");
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(code(&mutate(&app, &parent, "enrol", "EnrolInput", input.clone()).await), "CONFLICT");

    let passes = "SELECT COUNT(*) AS n FROM pass";
    assert_eq!(count(&app.db, passes).await, 1);
    let body = decide(&app, &agent, &id, "APPROVE", None).await;
    assert_eq!(body["data"]["decideRequest"]["status"], "APPROVED", "{body}");
    assert_eq!(count(&app.db, passes).await, 2);
    let all = spending::passes_of_pupils(&app.db, &[f.passes[0].pupil_id]).await.unwrap();
    let new = all.iter().find(|p| p.campaign_id == next.id).expect("a pass in the new campaign");
    let balances = spending::wallet_balances(&app.db, &[new.id]).await.unwrap();
    assert_eq!(balances.iter().map(|b| b.granted.0).sum::<i64>(), 10_000, "boursier total: {balances:?}");
    let elig = passerelle_domain::eligibility::get_eligibility(&app.db, f.passes[0].pupil_id, next.id).await.unwrap();
    assert_eq!(elig.map(|e| (e.eligible, e.override_eligible)), Some((true, Some(true))));

    // The yearly grant afterwards credits nothing twice; a new enrolment finds the pass.
    let run = recompute_and_grant(&app.db, next.id, &|_, _| {}).await.unwrap();
    assert_eq!((run.grant.credits, run.grant.passes_created), (0, 0), "{:?}", run.grant);
    let body = mutate(&app, &parent, "enrol", "EnrolInput", input).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert!(audit(&app.db).await.unwrap().is_clean());
    app.stop().await;
}
