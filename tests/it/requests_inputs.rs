//! Requests: bad inputs and wrong callers get their code and write nothing; two staff members
//! deciding at once → exactly one decision, the money moved once.

use passerelle_domain::auth::{AccountKind, StaffRole};
use passerelle_domain::ledger::{Wallet, audit};
use passerelle_tests::accounts::{account, sign_in};
use passerelle_tests::requests::{PDF, decide, mutate, rows, staff_token, upload};
use passerelle_tests::school::funder;
use passerelle_tests::spending::family;
use passerelle_tests::{TestApp, code};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn bad_requests_get_their_code_and_leave_nothing_behind() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    let pass = f.passes[0].id.to_string();
    let parent = sign_in(&app, &f.parent_email, None).await;
    account(&app, AccountKind::Parent, "stranger@example.org").await;
    let stranger = sign_in(&app, "stranger@example.org", None).await;
    let (_, admin) = staff_token(&app, f.funder, StaffRole::Admin).await;
    let other_funder = funder(&app.db, "78").await;
    let (_, elsewhere) = staff_token(&app, other_funder, StaffRole::Admin).await;

    // Documents: not a PDF/JPEG/PNG (whatever it claims), too large, anonymous, club software.
    let (status, body) = upload(&app, Some(&parent), b"name,iban\nx,y\n".to_vec()).await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    let mut big = PDF.to_vec();
    big.resize(10 * 1024 * 1024 + 1, b' ');
    assert_eq!(upload(&app, Some(&parent), big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(upload(&app, None, PDF.to_vec()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(rows(&app, "attachment").await, 0);
    let (_, theirs) = upload(&app, Some(&stranger), PDF.to_vec()).await;

    let submit = |input: serde_json::Value| {
        let (app, parent) = (&app, parent.clone());
        async move { mutate(app, &parent, "submitRequest", "SubmitRequestInput", input).await }
    };
    let cases = [
        // A bonus needs its proof.
        (json!({ "kind": "BOURSIER_BONUS", "subjectId": pass }), "BAD_USER_INPUT"),
        // Someone else's document.
        (json!({ "kind": "BOURSIER_BONUS", "subjectId": pass, "attachmentIds": [theirs["id"]] }), "NOT_FOUND"),
        // A pass that is not the family's (or does not exist).
        (json!({ "kind": "LOST_CARD", "subjectId": uuid::Uuid::new_v4().to_string() }), "NOT_FOUND"),
        // An enrolment names its campaign.
        (json!({ "kind": "ENROLMENT", "subjectId": f.passes[0].pupil_id.to_string() }), "BAD_USER_INPUT"),
        // A dispute says what is wrong.
        (json!({ "kind": "REDEMPTION_DISPUTE", "subjectId": uuid::Uuid::new_v4().to_string() }), "BAD_USER_INPUT"),
        (json!({ "kind": "LOST_CARD", "subjectId": "not-an-id" }), "BAD_USER_INPUT"),
        (json!({ "kind": "LOST_CARD", "subjectId": pass, "message": "x".repeat(4001) }), "BAD_USER_INPUT"),
    ];
    for (input, expected) in cases {
        let body = submit(input.clone()).await;
        assert_eq!(code(&body), expected, "{input}: {body}");
    }
    // The stranger cannot file about this family's pass.
    let body = mutate(
        &app,
        &stranger,
        "submitRequest",
        "SubmitRequestInput",
        json!({ "kind": "LOST_CARD", "subjectId": pass }),
    )
    .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    assert_eq!((rows(&app, "request").await, rows(&app, "request_event").await), (0, 0));
    assert_eq!(f.balance(&app.db, 0, Wallet::Sport).await.available.0, 4000);

    let body = submit(json!({ "kind": "DATA_CORRECTION", "subjectId": f.passes[0].pupil_id.to_string(),
                              "campaignId": f.campaign.to_string(), "message": "Mauvais collège." }))
    .await;
    let id = body["data"]["submitRequest"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    let events = rows(&app, "request_event").await;
    // The family does not decide, nor writes internal notes; staff of another funder do not see it.
    assert_eq!(code(&decide(&app, &parent, &id, "APPROVE", None).await), "FORBIDDEN");
    let note = json!({ "requestId": id, "message": "psst", "internal": true });
    assert_eq!(code(&mutate(&app, &parent, "commentRequest", "CommentRequestInput", note).await), "BAD_USER_INPUT");
    assert_eq!(code(&decide(&app, &elsewhere, &id, "APPROVE", None).await), "NOT_FOUND");
    let q = "query($r: ID!) { request(id: $r) { id } }";
    assert_eq!(code(&app.graphql_as(&elsewhere, q, json!({ "r": id })).await), "NOT_FOUND");
    let q = "query($f: ID!) { requestQueue(filter: { funderId: $f }) { edges { node { id } } } }";
    assert_eq!(code(&app.graphql_as(&elsewhere, q, json!({ "f": f.funder.to_string() })).await), "FORBIDDEN");
    // A refusal must say why; answering when nothing was asked is out of turn.
    assert_eq!(code(&decide(&app, &admin, &id, "REJECT", None).await), "BAD_USER_INPUT");
    let answer = json!({ "requestId": id, "message": "encore moi" });
    assert_eq!(code(&mutate(&app, &parent, "answerRequest", "AnswerRequestInput", answer).await), "CONFLICT");
    assert_eq!(rows(&app, "request_event").await, events, "refusals write no event");

    // The queue shows it to its funder's staff, oldest first, filtered.
    let q = "query($f: ID!) { requestQueue(filter: { funderId: $f, status: SUBMITTED, kind: DATA_CORRECTION }) { edges { node { id } } } }";
    let body = app.graphql_as(&admin, q, json!({ "f": f.funder.to_string() })).await;
    assert_eq!(body["data"]["requestQueue"]["edges"], json!([{ "node": { "id": id } }]), "{body}");
    let q = "query($f: ID!) { requestQueue(filter: { funderId: $f, status: APPROVED }) { edges { node { id } } } }";
    let body = app.graphql_as(&admin, q, json!({ "f": f.funder.to_string() })).await;
    assert_eq!(body["data"]["requestQueue"]["edges"], json!([]), "{body}");
    app.stop().await;
}

/// Approve and reject at the same moment, round after round: each request ends decided once,
/// and a pass is topped up exactly when its approval won.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_staff_members_deciding_at_once_make_one_decision() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 6, false).await;
    let parent = sign_in(&app, &f.parent_email, None).await;
    let (_, one) = staff_token(&app, f.funder, StaffRole::Admin).await;
    let (_, two) = staff_token(&app, f.funder, StaffRole::EligibilityOfficer).await;
    let mut approved = vec![];
    for (i, pass) in f.passes.iter().enumerate() {
        let (_, doc) = upload(&app, Some(&parent), PDF.to_vec()).await;
        let input = json!({ "kind": "BOURSIER_BONUS", "subjectId": pass.id.to_string(), "attachmentIds": [doc["id"]] });
        let body = mutate(&app, &parent, "submitRequest", "SubmitRequestInput", input).await;
        let id = body["data"]["submitRequest"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
        let (a, b) = tokio::join!(
            decide(&app, &one, &id, "APPROVE", None),
            decide(&app, &two, &id, "REJECT", Some("Pièce illisible."))
        );
        let outcomes = [code(&a).to_owned(), code(&b).to_owned()];
        let winners = outcomes.iter().filter(|c| c.is_empty()).count();
        assert_eq!(winners, 1, "round {i}: {a} / {b}");
        assert!(outcomes.contains(&"CONFLICT".to_owned()), "round {i}: {a} / {b}");
        approved.push(code(&a).is_empty());
    }
    assert_eq!(rows(&app, "request_event").await, 2 * f.passes.len() as i64, "one submit and one decision each");
    for (i, won) in approved.iter().enumerate() {
        let expected = if *won { 5000 } else { 4000 };
        assert_eq!(f.balance(&app.db, i, Wallet::Sport).await.granted.0, expected, "pass {i}");
        assert_eq!(f.balance(&app.db, i, Wallet::Culture).await.granted.0, expected, "pass {i}");
    }
    assert!(audit(&app.db).await.unwrap().is_clean());
    app.stop().await;
}
