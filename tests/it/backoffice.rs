//! Back-office GraphQL operations over HTTP: campaigns, pupils, eligibility, the grant.

use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{TestApp, code, count};
use serde_json::{Value, json};

const UPSERT: &str = "mutation($input: CampaignInput!) { upsertCampaign(input: $input) { id schoolYear policyVersion \
    generationDeadline wallets { wallet base boursier } } }";

fn campaign_input(funder: &str, base: &str) -> Value {
    json!({ "input": {
        "funderId": funder, "schoolYear": 2026, "name": "Pass+ 2026-2027",
        "wallets": [
            { "wallet": "SPORT", "base": base, "boursier": "50.00" },
            { "wallet": "CULTURE", "base": "40.00", "boursier": "50.00" }
        ],
        "eligibleGrades": ["SIXIEME", "CINQUIEME", "QUATRIEME", "TROISIEME"],
        "territory": "SCHOOL", "departement": "92",
        "opensOn": "2026-09-01", "generationDeadline": "2027-06-30", "validationDeadline": "2028-06-30"
    }})
}

#[tokio::test]
async fn staff_set_up_a_campaign_review_pupils_and_run_the_grant() {
    let app = TestApp::spawn_back_office().await;
    let f = funder(&app.db, "92").await;
    let ids = insert_pupils(
        &app.db,
        f,
        &[
            PupilSeed { key: "a", grade: "6E", uai: "0921778H", boursier: true },
            PupilSeed { key: "b", grade: "3E", uai: "0752387M", boursier: false },
        ],
    )
    .await;
    let body = app.graphql(UPSERT, campaign_input(&f.to_string(), "40.00")).await;
    let c = &body["data"]["upsertCampaign"];
    assert_eq!(
        (c["policyVersion"].as_i64(), c["generationDeadline"].as_str()),
        (Some(1), Some("2027-06-30")),
        "{body}"
    );
    assert_eq!(c["wallets"][0]["base"], "40.00");
    let campaign = c["id"].as_str().unwrap().to_owned();

    let bad = app.graphql(UPSERT, campaign_input(&f.to_string(), "40.001")).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
    let worse = app.graphql(UPSERT, campaign_input(&f.to_string(), "60.00")).await;
    assert_eq!(code(&worse), "BAD_USER_INPUT", "boursier below base: {worse}");

    let grant = app
        .graphql(
            "mutation($c: ID!) { runCampaignGrant(campaignId: $c) { passes passesCreated creditedAmount } }",
            json!({ "c": campaign }),
        )
        .await;
    assert_eq!(
        grant["data"]["runCampaignGrant"],
        json!({ "passes": 1, "passesCreated": 1, "creditedAmount": "100.00" }),
        "{grant}"
    );

    let q = "query($c: ID!, $e: Boolean) { pupils(filter: { campaignId: $c, eligible: $e }, first: 10) { edges { node { id gradeLevel uai } } pageInfo { hasNextPage } } }";
    let ineligible = app.graphql(q, json!({ "c": campaign, "e": false })).await;
    let edges = ineligible["data"]["pupils"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 1, "{ineligible}");
    assert_eq!(edges[0]["node"]["id"], ids[1].to_string());

    let set =
        "mutation($i: SetEligibilityInput!) { setEligibility(input: $i) { eligible computed reasons overrideReason } }";
    let input = json!({ "i": { "pupilId": ids[1].to_string(), "campaignId": campaign, "eligible": true, "reason": "lives in Antony" } });
    let row = app.graphql(set, input).await;
    assert_eq!(row["data"]["setEligibility"]["eligible"], true, "{row}");
    assert_eq!(row["data"]["setEligibility"]["computed"], "INELIGIBLE");
    let again = app.graphql("mutation($c: ID!) { runCampaignGrant(campaignId: $c) { passes passesCreated creditedAmount alreadyDone } }", json!({ "c": campaign })).await;
    assert_eq!(
        again["data"]["runCampaignGrant"],
        json!({ "passes": 2, "passesCreated": 1, "creditedAmount": "80.00", "alreadyDone": 2 }),
        "{again}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pagination_is_capped_and_cursors_are_checked() {
    let app = TestApp::spawn_back_office().await;
    let f = funder(&app.db, "92").await;
    let keys: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
    let seeds: Vec<PupilSeed<'_>> =
        keys.iter().map(|k| PupilSeed { key: k, grade: "5E", uai: "0921778H", boursier: false }).collect();
    insert_pupils(&app.db, f, &seeds).await;
    let q = "query($n: Int, $a: String) { pupils(first: $n, after: $a) { edges { cursor } pageInfo { hasNextPage } } }";
    let p1 = app.graphql(q, json!({ "n": 3 })).await;
    assert_eq!(p1["data"]["pupils"]["pageInfo"]["hasNextPage"], true);
    let last = p1["data"]["pupils"]["edges"][2]["cursor"].clone();
    let p2 = app.graphql(q, json!({ "n": 3, "a": last })).await;
    assert_eq!(p2["data"]["pupils"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(p2["data"]["pupils"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(code(&app.graphql(q, json!({ "n": 101 })).await), "BAD_USER_INPUT");
    assert_eq!(code(&app.graphql(q, json!({ "n": 0 })).await), "BAD_USER_INPUT");
    assert_eq!(code(&app.graphql(q, json!({ "n": 2, "a": "not-a-cursor!" })).await), "BAD_USER_INPUT");
    app.stop().await;
}

#[tokio::test]
async fn production_refuses_the_development_back_office() {
    // The settings refuse the flag in production (api's config tests); set it anyway, as a
    // mistaken deployment might, to check the schema's own guard.
    // Documents allowed from everyone: the guard under test is the back office's, not the
    // trusted-documents check that would refuse an anonymous document first.
    let env = [("PASSERELLE_ENV", "production"), ("PASSERELLE_TRUSTED_DOCUMENTS", "allow")];
    let app = TestApp::spawn_adjusted(&env, |s| s.dev_back_office = true).await;
    let f = funder(&app.db, "92").await;
    let body = app.graphql(UPSERT, campaign_input(&f.to_string(), "40.00")).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body["data"].is_null(), "{body}");
    let body = app.graphql("{ pupils(first: 5) { edges { cursor } } }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM campaign").await, 0, "nothing was written");
    let upload = app.client.post(app.url("/uploads")).body("uai;ine\n").send().await.unwrap();
    assert_eq!(upload.status(), 401, "uploads need a signed-in staff member");
    app.stop().await;
}
