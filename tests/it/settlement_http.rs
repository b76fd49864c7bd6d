//! Settlement over HTTP: staff of the funder set the treasury account and a club's bank details
//! (validated by a second person), create and approve a batch, read its SEPA file and
//! statement; the club reads its reimbursements; parents and another funder's staff are
//! refused.

use passerelle_domain::Cents;
use passerelle_domain::auth::{AccountKind, StaffRole};
use passerelle_domain::ledger::Wallet;
use passerelle_domain::partner::{PartnerRole, add_partner_member};
use passerelle_domain::spending::{self, PayPartner};
use passerelle_tests::accounts::{PASSWORD, account, sign_in, staff, totp};
use passerelle_tests::school::funder;
use passerelle_tests::settlement::{SIRET, assert_valid_sepa, iban, today};
use passerelle_tests::spending::family;
use passerelle_tests::{TestApp, code, count};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const TREASURY: &str =
    "mutation($i: FunderSettlementAccountInput!) { setFunderSettlementAccount(input: $i) { ibanMasked schedule } }";
const SET_BANK: &str =
    "mutation($i: PartnerBankDetailsInput!) { setPartnerBankDetails(input: $i) { iban validated setBy } }";
const VALIDATE: &str = "mutation($i: ValidatePartnerBankDetailsInput!) { validatePartnerBankDetails(input: $i) { validated validatedBy } }";
const CREATE: &str = "mutation($f: ID!, $c: NaiveDate!) { createSettlementBatch(input: { funderId: $f, cutoff: $c }) { id status totalAmount partnerCount lines { partner { name } amount } } }";
const APPROVE: &str = "mutation($b: ID!) { approveSettlementBatch(batchId: $b) { status approvedBy } }";
const BATCH: &str = "query($b: ID!) { settlementBatch(id: $b) { status sepaXml statementCsv } }";
const REAUTH: &str =
    "mutation($p: String!, $t: String) { reauthenticate(input: { password: $p, totpCode: $t }) { validUntil } }";
const REIMBURSEMENTS: &str =
    "{ reimbursements(first: 10) { edges { node { amount status executionDate ibanMasked statementCsv } } } }";

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"].as_str().unwrap_or("")
}

#[tokio::test]
async fn staff_settle_a_club_that_reads_its_reimbursements_and_others_are_refused() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    let (_, admin_totp) = staff(&app, "admin@example.org", &[(f.funder, StaffRole::Admin)]).await;
    let (_, finance_totp) = staff(&app, "finance@example.org", &[(f.funder, StaffRole::FinanceOfficer)]).await;
    let elsewhere = funder(&app.db, "93").await;
    let (_, other_totp) = staff(&app, "other@example.org", &[(elsewhere, StaffRole::Admin)]).await;
    let admin = sign_in(&app, "admin@example.org", Some(&totp(&admin_totp, 0))).await;
    let finance = sign_in(&app, "finance@example.org", Some(&totp(&finance_totp, 0))).await;
    let other = sign_in(&app, "other@example.org", Some(&totp(&other_totp, 0))).await;
    let parent = sign_in(&app, &f.parent_email, None).await;
    let member = account(&app, AccountKind::PartnerMember, "club@example.org").await;
    add_partner_member(&app.db, f.sport, member, PartnerRole::Member).await.unwrap();
    let club = sign_in(&app, "club@example.org", None).await;

    let treasury = json!({ "i": { "funderId": f.funder, "name": "Paierie départementale", "iban": iban(9), "bic": "BDFEFRPPCCT" } });
    let body = app.graphql_as(&admin, TREASURY, treasury.clone()).await;
    assert_eq!(body["data"]["setFunderSettlementAccount"]["schedule"], "SEMI_MONTHLY", "{body}");
    assert_eq!(code(&app.graphql_as(&other, TREASURY, treasury).await), "FORBIDDEN");

    // Bank details: each bad identifier names its field; then set by the admin, validated by
    // the finance officer (not by their author).
    let details = |iban: &str, siret: &str, bic: &str| json!({ "i": { "partnerId": f.sport, "legalName": "AS Judo Bagneux", "siret": siret, "iban": iban, "bic": bic, "accountHolder": "AS Judo Bagneux" } });
    let good = iban(1);
    for (vars, name) in [
        (details("FR7630002000010000000000100", SIRET, "AGRIFRPP882"), "iban"),
        (details(&good, "12345678901234", "AGRIFRPP882"), "siret"),
        (details(&good, SIRET, "AGRI"), "bic"),
    ] {
        let body = app.graphql_as(&admin, SET_BANK, vars).await;
        assert_eq!((code(&body), field(&body)), ("BAD_USER_INPUT", name), "{body}");
    }
    assert_eq!(code(&app.graphql_as(&other, SET_BANK, details(&good, SIRET, "AGRIFRPP882")).await), "FORBIDDEN");
    assert_eq!(code(&app.graphql_as(&parent, SET_BANK, details(&good, SIRET, "AGRIFRPP882")).await), "FORBIDDEN");
    let body = app.graphql_as(&admin, SET_BANK, details(&good, SIRET, "AGRIFRPP882")).await;
    assert_eq!(body["data"]["setPartnerBankDetails"]["validated"], false, "{body}");
    let validate = json!({ "i": { "partnerId": f.sport, "iban": good } });
    assert_eq!(code(&app.graphql_as(&admin, VALIDATE, validate.clone()).await), "CONFLICT");
    let body = app.graphql_as(&finance, VALIDATE, validate).await;
    assert_eq!(body["data"]["validatePartnerBankDetails"]["validatedBy"], "finance@example.org", "{body}");

    let pay = PayPartner {
        pass_id: f.passes[0].id,
        wallet: Wallet::Sport,
        amount: Cents(1500),
        partner_id: f.sport,
        activity_id: None,
        idempotency_key: "judo".into(),
    };
    spending::pay_partner(&app.db, f.parent, &pay).await.unwrap();

    let create = json!({ "f": f.funder, "c": today().to_string() });
    assert_eq!(code(&app.graphql_as(&parent, CREATE, create.clone()).await), "FORBIDDEN");
    assert_eq!(code(&app.graphql_as(&other, CREATE, create.clone()).await), "FORBIDDEN");
    let body = app.graphql_as(&finance, CREATE, create).await;
    let batch = &body["data"]["createSettlementBatch"];
    assert_eq!((batch["status"].as_str(), batch["totalAmount"].as_str()), (Some("DRAFT"), Some("15.00")), "{body}");
    assert_eq!(batch["lines"][0]["partner"]["name"], "Club de judo");
    let id = json!({ "b": batch["id"] });

    for who in [&parent, &other, &club] {
        let body = app.graphql_as(who, BATCH, id.clone()).await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(code(&app.graphql_as(who, APPROVE, id.clone()).await), "FORBIDDEN");
    }
    let unknown = app.graphql_as(&finance, BATCH, json!({ "b": uuid::Uuid::now_v7() })).await;
    assert_eq!(code(&unknown), "NOT_FOUND");

    // Approval moves money: a session that has not proved its credentials lately steps up.
    let aged = "UPDATE device_session SET reauthenticated_at_us = reauthenticated_at_us - 3600000000";
    app.db.execute_unprepared(aged).await.unwrap();
    assert_eq!(code(&app.graphql_as(&finance, APPROVE, id.clone()).await), "REAUTH_REQUIRED");
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM ledger_transfer WHERE kind = 'settlement'").await, 0);
    for (token, secret) in [(&finance, &finance_totp), (&admin, &admin_totp)] {
        let body = app.graphql_as(token, REAUTH, json!({ "p": PASSWORD, "t": totp(secret, 1) })).await;
        assert!(body["data"]["reauthenticate"]["validUntil"].is_string(), "{body}");
    }
    let body = app.graphql_as(&finance, APPROVE, id.clone()).await;
    assert_eq!(body["data"]["approveSettlementBatch"]["status"], "APPROVED", "{body}");
    let body = app.graphql_as(&admin, APPROVE, id.clone()).await;
    assert_eq!(body["data"]["approveSettlementBatch"]["approvedBy"], "finance@example.org", "{body}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM ledger_transfer WHERE kind = 'settlement'").await, 1);
    // Who did what, for other staff: details set, validated, the batch made and approved once.
    for (action, actor) in [
        ("partner_bank_details_set", "admin@example.org"),
        ("partner_bank_details_validated", "finance@example.org"),
        ("settlement_batch_created", "finance@example.org"),
        ("settlement_batch_approved", "finance@example.org"),
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM audit_event WHERE action = '{action}' AND actor = '{actor}'");
        assert_eq!(count(&app.db, &sql).await, 1, "{action}");
    }

    let body = app.graphql_as(&finance, BATCH, id).await;
    let read = &body["data"]["settlementBatch"];
    assert_valid_sepa(read["sepaXml"].as_str().unwrap_or_else(|| panic!("{body}")));
    let csv = read["statementCsv"].as_str().unwrap();
    assert!(
        csv.starts_with("partner_id;partner;") && csv.contains(";Club de judo;") && csv.contains(";15.00"),
        "{csv}"
    );

    let body = app.graphql_as(&club, REIMBURSEMENTS, json!({})).await;
    let edges = body["data"]["reimbursements"]["edges"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(edges.len(), 1);
    let line = &edges[0]["node"];
    assert_eq!((line["amount"].as_str(), line["status"].as_str()), (Some("15.00"), Some("APPROVED")));
    assert!(line["ibanMasked"].as_str().unwrap().starts_with("FR"));
    assert!(line["statementCsv"].as_str().unwrap().contains(";sport;15.00"));
    for who in [&parent, &finance] {
        assert_eq!(code(&app.graphql_as(who, REIMBURSEMENTS, json!({})).await), "FORBIDDEN");
    }
    app.stop().await;
}
