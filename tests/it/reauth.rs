//! Step-up before sensitive operations: a session that has not proved its credentials within
//! 10 minutes (sign-in counts) gets `REAUTH_REQUIRED`; `reauthenticate` with the password (and a
//! fresh TOTP code for staff) opens the window again; wrong answers are throttled per session.
//!
//! Sessions are aged by moving their proof time back in the database: no sleeping.

use passerelle_domain::auth::{AccountKind, StaffRole};
use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::db::stmt;
use passerelle_domain::identity::TotpSecret;
use passerelle_domain::partner::{PartnerRole, add_partner_member, create_partner};
use passerelle_tests::accounts::{PASSWORD, account, sign_in, staff, totp};
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{TestApp, code, count};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde_json::{Value, json};
use uuid::Uuid;

const REAUTH: &str =
    "mutation($p: String!, $t: String) { reauthenticate(input: { password: $p, totpCode: $t }) { validUntil } }";
const GRANT: &str = "mutation($c: ID!) { runCampaignGrant(campaignId: $c) { passes } }";
const ELIGIBILITY: &str = "mutation($p: ID!, $c: ID!, $e: Boolean!) { setEligibility(input: { pupilId: $p, campaignId: $c, eligible: $e, reason: \"test\" }) { eligible } }";
const LINK: &str = "mutation($a: ID!, $p: ID!) { linkChildToAccount(input: { accountId: $a, pupilId: $p, reason: \"test\" }) { linked } }";
const CREATE_CLIENT: &str =
    "mutation { createApiClient(input: { name: \"Logiciel\" }) { apiClient { id clientId } clientSecret } }";
const ROTATE: &str = "mutation($c: ID!) { rotateApiClientSecret(input: { apiClientId: $c }) { clientSecret } }";
const REVOKE: &str = "mutation($c: ID!) { revokeApiClient(input: { apiClientId: $c }) { revokedAt } }";

/// Moves the account's last proof of credentials `minutes` into the past.
async fn age_sessions(app: &TestApp, account: Uuid, minutes: i64) {
    let sql = "UPDATE device_session SET reauthenticated_at_us = reauthenticated_at_us - $2 WHERE account_id = $1";
    let values = [account.into(), (minutes * 60_000_000).into()];
    app.db.execute_raw(stmt(app.db.get_database_backend(), sql, values)).await.unwrap();
}

async fn rows(app: &TestApp, table: &str) -> i64 {
    count(&app.db, &format!("SELECT COUNT(*) AS n FROM {table}")).await
}

/// A code that is none of the ones the server could accept in the next minutes.
fn wrong_code(secret: &TotpSecret) -> String {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let near: Vec<String> = (0..6).map(|s| secret.code_at(now + s * 30 - 60)).collect();
    ["000000", "111111", "222222", "333333", "444444", "555555", "666666"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap()
        .into()
}

struct Staffed {
    app: TestApp,
    campaign: Uuid,
    pupil: Uuid,
    parent: Uuid,
    admin: Uuid,
    secret: TotpSecret,
    token: String,
}

async fn staffed() -> Staffed {
    let app = TestApp::spawn().await;
    let f = funder(&app.db, "92").await;
    let campaign = upsert_campaign(&app.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "t").await.unwrap().id;
    let pupil =
        insert_pupils(&app.db, f, &[PupilSeed { key: "k", grade: "6E", uai: "0921778H", boursier: false }]).await[0];
    let parent = account(&app, AccountKind::Parent, "parent@example.org").await;
    let (admin, secret) = staff(&app, "admin@example.org", &[(f, StaffRole::Admin)]).await;
    let token = sign_in(&app, "admin@example.org", Some(&totp(&secret, 0))).await;
    Staffed { app, campaign, pupil, parent, admin, secret, token }
}

/// The three sensitive staff operations of the test, with their variables: the pupil made
/// eligible, the grant, the pupil linked to the parent.
fn sensitive(s: &Staffed) -> [(&'static str, &'static str, Value); 3] {
    let (c, p, a) = (s.campaign.to_string(), s.pupil.to_string(), s.parent.to_string());
    [
        ("setEligibility", ELIGIBILITY, json!({ "p": p, "c": c, "e": true })),
        ("runCampaignGrant", GRANT, json!({ "c": c })),
        ("linkChildToAccount", LINK, json!({ "a": a, "p": p })),
    ]
}

#[derive(FromQueryResult)]
struct Override {
    override_eligible: Option<bool>,
}

/// The staff override stored for the pupil, if any.
async fn override_of(s: &Staffed) -> Option<bool> {
    let sql = "SELECT override_eligible FROM eligibility WHERE pupil_id = $1 AND campaign_id = $2";
    let statement = stmt(s.app.db.get_database_backend(), sql, [s.pupil.into(), s.campaign.into()]);
    let row = Override::find_by_statement(statement).one(&s.app.db).await.unwrap();
    row.and_then(|r| r.override_eligible)
}

#[tokio::test]
async fn a_stale_session_must_reauthenticate_before_sensitive_operations() {
    let s = staffed().await;
    let app = &s.app;
    // Nine minutes after sign-in the window is still open.
    age_sessions(app, s.admin, 9).await;
    let vars = json!({ "p": s.pupil.to_string(), "c": s.campaign.to_string(), "e": false });
    let body = app.graphql_as(&s.token, ELIGIBILITY, vars).await;
    assert_eq!(body["data"]["setEligibility"]["eligible"], false, "{body}");
    assert_eq!(override_of(&s).await, Some(false));
    age_sessions(app, s.admin, 2).await;
    for (name, q, vars) in sensitive(&s) {
        let body = app.graphql_as(&s.token, q, vars).await;
        assert_eq!(code(&body), "REAUTH_REQUIRED", "{name}: {body}");
    }
    assert_eq!(override_of(&s).await, Some(false), "the pupil is still ineligible");
    assert_eq!((rows(app, "pass").await, rows(app, "family_link").await), (0, 0), "no pass, no link");
    assert_eq!(rows(app, "audit_event").await, 0, "nothing was done");
    let reads = app.graphql_as(&s.token, "{ viewer { email } }", json!({})).await;
    assert_eq!(reads["data"]["viewer"]["email"], "admin@example.org", "the session itself is fine");

    let body = app.graphql_as(&s.token, REAUTH, json!({ "p": PASSWORD, "t": totp(&s.secret, 1) })).await;
    let until: chrono::DateTime<chrono::Utc> =
        body["data"]["reauthenticate"]["validUntil"].as_str().unwrap_or_else(|| panic!("{body}")).parse().unwrap();
    let left = until - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(9) && left <= chrono::Duration::minutes(11), "{left}");
    let [eligibility, grant, link] = sensitive(&s);
    let body = app.graphql_as(&s.token, eligibility.1, eligibility.2).await;
    assert_eq!(body["data"]["setEligibility"]["eligible"], true, "after reauthenticate: {body}");
    assert_eq!(override_of(&s).await, Some(true), "the override was stored");
    let body = app.graphql_as(&s.token, grant.1, grant.2).await;
    assert_eq!(body["data"]["runCampaignGrant"]["passes"], 1, "after reauthenticate: {body}");
    assert_eq!(rows(app, "pass").await, 1, "the pupil's pass was created");
    let body = app.graphql_as(&s.token, link.1, link.2).await;
    assert_eq!(body["data"]["linkChildToAccount"]["linked"], true, "after reauthenticate: {body}");
    assert_eq!(rows(app, "family_link").await, 1, "the parent was linked");
    assert_eq!(rows(app, "audit_event").await, 1, "the link was recorded");
    s.app.stop().await;
}

#[tokio::test]
async fn wrong_password_or_totp_is_refused_and_throttled_per_session() {
    let s = staffed().await;
    let app = &s.app;
    age_sessions(app, s.admin, 11).await;
    let good_code = totp(&s.secret, 1);
    let bad_code = wrong_code(&s.secret);
    let attempts = [
        json!({ "p": "not the password at all", "t": good_code }),
        json!({ "p": PASSWORD, "t": bad_code }),
        json!({ "p": PASSWORD, "t": null }),
        json!({ "p": "", "t": good_code }),
        json!({ "p": "still not the password", "t": good_code }),
    ];
    for vars in attempts {
        let body = app.graphql_as(&s.token, REAUTH, vars.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{vars}: {body}");
    }
    let grant = sensitive(&s)[1].clone();
    assert_eq!(code(&app.graphql_as(&s.token, grant.1, grant.2.clone()).await), "REAUTH_REQUIRED");
    // Five attempts per session: the sixth waits, even the right answer.
    let sixth = app.graphql_as(&s.token, REAUTH, json!({ "p": "wrong again", "t": good_code })).await;
    assert_eq!(code(&sixth), "RATE_LIMITED", "{sixth}");
    let right = app.graphql_as(&s.token, REAUTH, json!({ "p": PASSWORD, "t": good_code })).await;
    assert_eq!(code(&right), "RATE_LIMITED", "{right}");
    assert!(right["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s > 0), "{right}");
    assert_eq!(code(&app.graphql_as(&s.token, grant.1, grant.2).await), "REAUTH_REQUIRED");
    // The session is the hard key, not the account: the staff member signs in again (a new
    // session), and the stale session is not signed out either.
    let login = "mutation($p: String!, $t: String) { logIn(input: { email: \"admin@example.org\", password: $p, totpCode: $t, device: { deviceId: \"d\", platform: WEB, name: \"w\" } }) { accessToken } }";
    // The code of the next step was never spent: the refused attempts checked nothing.
    let body = app.graphql(login, json!({ "p": PASSWORD, "t": good_code })).await;
    assert!(body["data"]["logIn"]["accessToken"].is_string(), "{body}");
    assert!(app.graphql_as(&s.token, "{ viewer { id } }", json!({})).await["data"]["viewer"].is_object());
    s.app.stop().await;
}

#[tokio::test]
async fn partner_owners_step_up_with_their_password_before_handing_out_credentials() {
    let app = TestApp::spawn().await;
    let partner = create_partner(&app.db, "Club").await.unwrap();
    let owner = account(&app, AccountKind::PartnerMember, "owner@example.org").await;
    add_partner_member(&app.db, partner.id, owner, PartnerRole::Owner).await.unwrap();
    let token = sign_in(&app, "owner@example.org", None).await;
    let created = app.graphql_as(&token, CREATE_CLIENT, json!({})).await;
    let text = |v: &Value| v.as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let p = &created["data"]["createApiClient"];
    let (client, client_id, old_secret) =
        (text(&p["apiClient"]["id"]), text(&p["apiClient"]["clientId"]), text(&p["clientSecret"]));

    age_sessions(&app, owner, 11).await;
    assert_eq!(code(&app.graphql_as(&token, CREATE_CLIENT, json!({})).await), "REAUTH_REQUIRED");
    assert_eq!(code(&app.graphql_as(&token, ROTATE, json!({ "c": client })).await), "REAUTH_REQUIRED");
    let wrong = app.graphql_as(&token, REAUTH, json!({ "p": "not my password", "t": null })).await;
    assert_eq!(code(&wrong), "BAD_USER_INPUT");
    let ok = app.graphql_as(&token, REAUTH, json!({ "p": PASSWORD, "t": null })).await;
    assert!(ok["data"]["reauthenticate"]["validUntil"].is_string(), "no TOTP for partner members: {ok}");
    let rotated = app.graphql_as(&token, ROTATE, json!({ "c": client })).await;
    let new_secret = rotated["data"]["rotateApiClientSecret"]["clientSecret"].as_str();
    let new_secret = new_secret.unwrap_or_else(|| panic!("{rotated}")).to_owned();
    assert_ne!(new_secret, old_secret, "a new secret");
    let (old, _, _) = app.oauth_token(Some((&client_id, &old_secret)), "grant_type=client_credentials").await;
    assert_eq!(old, StatusCode::UNAUTHORIZED, "the old secret no longer works");
    let (new, _, body) = app.oauth_token(Some((&client_id, &new_secret)), "grant_type=client_credentials").await;
    assert_eq!(new, StatusCode::OK, "the new one does: {body}");

    // Cutting off credentials never waits for a step-up.
    age_sessions(&app, owner, 11).await;
    let revoked = app.graphql_as(&token, REVOKE, json!({ "c": client })).await;
    assert!(revoked["data"]["revokeApiClient"]["revokedAt"].is_string(), "{revoked}");
    let (status, _, body) = app.oauth_token(Some((&client_id, &new_secret)), "grant_type=client_credentials").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked client gets no token: {body}");
    app.stop().await;
}
