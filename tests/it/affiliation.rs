//! A club joins and is paid, through HTTP: it applies (bad IBAN, SIRET, BIC, coordinates or an
//! unaccepted convention refused naming the field, nothing written), staff approve, it
//! publishes an activity, a parent finds it by commune and by distance and pays it, and the
//! payment is in the next settlement batch. Suspended, it can no longer be paid nor named on a
//! ticket.

use passerelle_domain::auth::{Actor, StaffRole};
use passerelle_domain::ledger::Wallet;
use passerelle_domain::partner::{CONVENTION_VERSION, validate_partner_bank_details};
use passerelle_domain::settlement::{CreateBatch, batch_lines, create_settlement_batch};
use passerelle_tests::accounts::{sign_in, staff};
use passerelle_tests::requests::staff_token;
use passerelle_tests::settlement::{SIRET, iban, today, treasury};
use passerelle_tests::spending::family;
use passerelle_tests::{TestApp, code, count};
use serde_json::{Value, json};

const APPLY: &str =
    "mutation($i: PartnerApplicationInput!) { applyForAffiliation(input: $i) { id kind status partnerId } }";

fn application(funder: &str) -> Value {
    json!({
        "funderId": funder, "name": "Club d'escalade de Clamart", "kind": "ASSOCIATION", "categories": ["SPORT"],
        "address": "12 rue de la Paix", "postcode": "92140", "commune": "Clamart", "communeInsee": "92023",
        "lat": 48.8006, "lon": 2.2664, "contactEmail": "bureau@escalade-clamart.example.org",
        "legalName": "Association Escalade Clamart", "siret": SIRET, "iban": iban(42), "bic": "BNPAFRPP",
        "accountHolder": "Escalade Clamart", "conventionVersion": CONVENTION_VERSION, "acceptConvention": true,
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

#[tokio::test]
async fn a_club_applies_is_approved_found_paid_and_settled_then_suspended() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    let funder = f.funder.to_string();
    // The club's person opens an account by themselves.
    let q = "mutation($i: SignUpInput!) { signUp(input: $i) { verificationSent } }";
    let input = json!({ "email": "bureau@escalade.example.org", "password": passerelle_tests::accounts::PASSWORD,
                        "displayName": "Bureau de l'escalade", "accountKind": "PARTNER_MEMBER" });
    assert_eq!(app.graphql(q, json!({ "i": input })).await["data"]["signUp"]["verificationSent"], true);
    let kind =
        "SELECT COUNT(*) AS n FROM account WHERE email = 'bureau@escalade.example.org' AND kind = 'partner_member'";
    assert_eq!(count(&app.db, kind).await, 1);
    let club = sign_in(&app, "bureau@escalade.example.org", None).await;

    // Bad applications name their field and write nothing.
    let good = application(&funder);
    let bad = [
        (with(good.clone(), "iban", json!("FR7630006000011234567890188")), "iban"),
        (with(good.clone(), "siret", json!("73282932000075")), "siret"),
        (with(good.clone(), "bic", json!("BNP")), "bic"),
        (with(good.clone(), "lat", json!(123.0)), "lat"),
        (with(good.clone(), "communeInsee", json!("9202")), "communeInsee"),
        (with(good.clone(), "acceptConvention", json!(false)), "acceptConvention"),
        (with(good.clone(), "conventionVersion", json!("2019-01")), "conventionVersion"),
    ];
    let partners = "SELECT COUNT(*) AS n FROM partner";
    let before = count(&app.db, partners).await;
    for (input, field) in bad {
        let body = app.graphql_as(&club, APPLY, json!({ "i": input })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(count(&app.db, partners).await, before);
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM request").await, 0);

    let body = app.graphql_as(&club, APPLY, json!({ "i": good })).await;
    let r = &body["data"]["applyForAffiliation"];
    assert_eq!((r["kind"].as_str(), r["status"].as_str()), (Some("PARTNER_AFFILIATION"), Some("SUBMITTED")), "{body}");
    let partner = r["partnerId"].as_str().unwrap().to_owned();
    let request = r["id"].as_str().unwrap().to_owned();
    // Once only: the account now acts for that partner.
    assert_eq!(code(&app.graphql_as(&club, APPLY, json!({ "i": application(&funder) })).await), "CONFLICT");
    let profile = "{ partnerProfile { id status } }";
    assert_eq!(app.graphql_as(&club, profile, json!({})).await["data"]["partnerProfile"]["status"], "PENDING");
    // Pending: not in the directory yet, and it cannot be paid.
    let parent = sign_in(&app, &f.parent_email, None).await;
    let search = "query($f: PartnerFilterInput) { partners(filter: $f) { edges { node { id name distanceKm } } } }";
    let found = |b: &Value| {
        b["data"]["partners"]["edges"].as_array().map_or(0, |e| e.iter().filter(|e| e["node"]["id"] == partner).count())
    };
    assert_eq!(found(&app.graphql_as(&parent, search, json!({ "f": { "commune": "Clamart" } })).await), 0);

    // Staff approve (the request is approved with it, and the club told).
    let (_, admin) = staff_token(&app, f.funder, StaffRole::Admin).await;
    let q = "mutation($p: ID!) { approvePartner(partnerId: $p) { id status categories } }";
    let body = app.graphql_as(&admin, q, json!({ "p": partner })).await;
    assert_eq!(body["data"]["approvePartner"]["status"], "APPROVED", "{body}");
    let q = "query($r: ID!) { request(id: $r) { status decidedAt } }";
    assert_eq!(app.graphql_as(&club, q, json!({ "r": request })).await["data"]["request"]["status"], "APPROVED");

    // It publishes; a parent finds it by commune and by distance, and pays it.
    let activity = json!({ "title": "Escalade en salle", "category": "SPORT", "price": "90.00", "commune": "Clamart",
                           "communeInsee": "92023", "lat": 48.8010, "lon": 2.2670 });
    let q = "mutation($i: ActivityInput!) { upsertActivity(input: $i) { id } }";
    let body = app.graphql_as(&club, q, json!({ "i": activity })).await;
    let activity_id = body["data"]["upsertActivity"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    assert_eq!(found(&app.graphql_as(&parent, search, json!({ "f": { "commune": "clamart" } })).await), 1);
    let near = json!({ "f": { "near": { "lat": 48.8000, "lon": 2.2650, "radiusKm": 1.0 }, "text": "escalade" } });
    assert_eq!(found(&app.graphql_as(&parent, search, near).await), 1);
    let pay = "mutation($i: PayPartnerInput!) { payPartner(input: $i) { redemption { id amount } } }";
    let input = json!({ "passId": f.passes[0].id.to_string(), "wallet": "SPORT", "amount": "30.00", "partnerId": partner,
                        "activityId": activity_id, "idempotencyKey": "escalade-1" });
    let body = app.graphql_as(&parent, pay, json!({ "i": input })).await;
    assert_eq!(body["data"]["payPartner"]["redemption"]["amount"], "30.00", "{body}");

    // A finance officer other than the club validates its IBAN; the next batch pays the club.
    let (finance, _) = staff(&app, "finance@example.org", &[(f.funder, StaffRole::FinanceOfficer)]).await;
    let finance = Actor::account(finance, "finance@example.org");
    let partner_id = partner.parse().unwrap();
    validate_partner_bank_details(&app.db, partner_id, &iban(42), &finance).await.expect("validated");
    treasury(&app.db, f.funder).await;
    let batch =
        create_settlement_batch(&app.db, &CreateBatch { funder_id: f.funder, cutoff: today() }, &finance, &|_, _| {})
            .await
            .expect("batch");
    let lines = batch_lines(&app.db, batch.id).await.unwrap();
    let line = lines.iter().find(|l| l.partner_id == partner_id).expect("the club is paid");
    assert_eq!((line.amount.0, line.iban.as_str()), (3000, iban(42).as_str()));

    // A ticket for the club, issued while it is approved.
    let ticket = "mutation($i: IssueTicketInput!) { issueTicket(input: $i) { ticket { code } } }";
    let input = json!({ "passId": f.passes[0].id.to_string(), "wallet": "SPORT", "amount": "5.00", "partnerId": partner, "idempotencyKey": "t-before" });
    let body = app.graphql_as(&parent, ticket, json!({ "i": input })).await;
    let code_before =
        body["data"]["issueTicket"]["ticket"]["code"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();

    // Suspended: no new ticket names it, no payment reaches it, it redeems nothing.
    let q = "mutation($i: PartnerStatusInput!) { suspendPartner(input: $i) { status } }";
    let body =
        app.graphql_as(&admin, q, json!({ "i": { "partnerId": partner, "reason": "Contrôle en cours." } })).await;
    assert_eq!(body["data"]["suspendPartner"]["status"], "SUSPENDED", "{body}");
    let input = json!({ "passId": f.passes[0].id.to_string(), "wallet": "SPORT", "amount": "10.00", "partnerId": partner, "idempotencyKey": "t-susp" });
    assert_eq!(code(&app.graphql_as(&parent, ticket, json!({ "i": input })).await), "CONFLICT");
    let input = json!({ "passId": f.passes[0].id.to_string(), "wallet": "SPORT", "amount": "5.00", "partnerId": partner, "idempotencyKey": "escalade-2" });
    assert_eq!(code(&app.graphql_as(&parent, pay, json!({ "i": input })).await), "CONFLICT");
    let charge = "mutation($i: ChargeCardInput!) { chargeCard(input: $i) { replayed } }";
    let input = json!({ "cardNumber": f.passes[0].number, "pin": "1234", "wallet": "SPORT", "amount": "5.00", "idempotencyKey": "c-susp" });
    assert_eq!(code(&app.graphql_as(&club, charge, json!({ "i": input })).await), "CONFLICT");
    let redeem = "mutation($i: RedeemTicketInput!) { redeemTicket(input: $i) { replayed } }";
    let input = json!({ "code": code_before, "idempotencyKey": "r-susp" });
    assert_eq!(code(&app.graphql_as(&club, redeem, json!({ "i": input })).await), "CONFLICT");
    assert_eq!(found(&app.graphql_as(&parent, search, json!({ "f": { "commune": "Clamart" } })).await), 0);
    let sport = f.balance(&app.db, 0, Wallet::Sport).await;
    assert_eq!((sport.available.0, sport.held.0), (500, 500), "only the payment left; the ticket is still held");
    app.stop().await;
}
