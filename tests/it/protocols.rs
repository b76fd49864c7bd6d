//! Issue 9 (part E): a refresh racing with itself keeps the session, a password reset spends
//! every outstanding reset link, staff TOTP seeds are sealed at rest.

use passerelle_domain::auth::{AccountKind, StaffRole, request_password_reset};
use passerelle_domain::db::stmt;
use passerelle_tests::accounts::{PASSWORD, account, staff, totp};
use passerelle_tests::school::funder;
use passerelle_tests::{TestApp, code};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const DEVICE: &str = "phone-7";
const LOG_IN: &str = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken refreshToken } }";
const REFRESH: &str = "mutation($t: String!, $d: String) { refreshSession(refreshToken: $t, deviceId: $d) \
    { accessToken refreshToken } }";
const VIEWER: &str = "{ viewer { email } }";

async fn log_in(app: &TestApp, email: &str, password: &str, totp_code: Option<&str>) -> Value {
    let device = json!({ "deviceId": DEVICE, "platform": "ANDROID", "name": "Pixel" });
    let v = json!({ "i": { "email": email, "password": password, "totpCode": totp_code, "device": device } });
    app.graphql(LOG_IN, v).await
}

/// A signed-in parent on DEVICE: (access token, refresh token).
async fn parent_session(app: &TestApp, email: &str) -> (String, String) {
    account(app, AccountKind::Parent, email).await;
    let body = log_in(app, email, PASSWORD, None).await;
    let s = &body["data"]["logIn"];
    (
        s["accessToken"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned(),
        s["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str, device: Option<&str>) -> Value {
    app.graphql(REFRESH, json!({ "t": token, "d": device })).await
}

fn refreshed(body: &Value) -> Option<(String, String)> {
    let s = &body["data"]["refreshSession"];
    Some((s["accessToken"].as_str()?.to_owned(), s["refreshToken"].as_str()?.to_owned()))
}

#[tokio::test]
async fn two_simultaneous_refreshes_with_one_token_keep_the_user_signed_in() {
    let app = TestApp::spawn().await;
    let (_, r1) = parent_session(&app, "racing@example.org").await;
    let (a, b) = tokio::join!(refresh(&app, &r1, Some(DEVICE)), refresh(&app, &r1, Some(DEVICE)));
    let won: Vec<_> = [&a, &b].into_iter().filter_map(refreshed).collect();
    assert_eq!(won.len(), 1, "one rotation: {a} {b}");
    let lost = if refreshed(&a).is_some() { &b } else { &a };
    assert_eq!(code(lost), "REFRESH_SUPERSEDED", "{lost}");
    // The session lives on: the winner's tokens work, and keep rotating.
    let (access, r2) = won[0].clone();
    assert_eq!(app.graphql_as(&access, VIEWER, json!({})).await["data"]["viewer"]["email"], "racing@example.org");
    let next = refresh(&app, &r2, Some(DEVICE)).await;
    assert!(refreshed(&next).is_some(), "{next}");
    app.stop().await;
}

#[tokio::test]
async fn the_grace_covers_only_the_last_rotation_of_the_same_device_for_a_moment() {
    let app = TestApp::spawn().await;
    // Another device's id: a reuse, the session is revoked.
    let (_, r1) = parent_session(&app, "other-device@example.org").await;
    let (_, r2) = refreshed(&refresh(&app, &r1, Some(DEVICE)).await).unwrap();
    assert_eq!(code(&refresh(&app, &r1, Some("another-phone")).await), "UNAUTHENTICATED");
    assert_eq!(code(&refresh(&app, &r2, Some(DEVICE)).await), "UNAUTHENTICATED", "session revoked");

    // A token two rotations old: a reuse.
    let (_, r1) = parent_session(&app, "old-token@example.org").await;
    let (_, r2) = refreshed(&refresh(&app, &r1, Some(DEVICE)).await).unwrap();
    let (_, r3) = refreshed(&refresh(&app, &r2, Some(DEVICE)).await).unwrap();
    assert_eq!(code(&refresh(&app, &r1, Some(DEVICE)).await), "UNAUTHENTICATED");
    assert_eq!(code(&refresh(&app, &r3, Some(DEVICE)).await), "UNAUTHENTICATED", "session revoked");

    // Two rotations in the same instant (SQLite's clock counts milliseconds): the older token
    // is still two rotations old, whatever the times say.
    let (_, r1) = parent_session(&app, "same-instant@example.org").await;
    let (_, r2) = refreshed(&refresh(&app, &r1, Some(DEVICE)).await).unwrap();
    let (_, r3) = refreshed(&refresh(&app, &r2, Some(DEVICE)).await).unwrap();
    let sql = "UPDATE refresh_token SET used_at_us = (SELECT MAX(used_at_us) FROM refresh_token) \
               WHERE used_at_us IS NOT NULL";
    app.db.execute_raw(stmt(app.db.get_database_backend(), sql, [])).await.unwrap();
    assert_eq!(code(&refresh(&app, &r1, Some(DEVICE)).await), "UNAUTHENTICATED");
    assert_eq!(code(&refresh(&app, &r3, Some(DEVICE)).await), "UNAUTHENTICATED", "session revoked");

    // The last rotation, but longer ago than the grace (the clock is the database's): a reuse.
    let (_, r1) = parent_session(&app, "late@example.org").await;
    let (_, r2) = refreshed(&refresh(&app, &r1, Some(DEVICE)).await).unwrap();
    let sql = "UPDATE refresh_token SET used_at_us = used_at_us - 21000000 WHERE used_at_us IS NOT NULL";
    app.db.execute_raw(stmt(app.db.get_database_backend(), sql, [])).await.unwrap();
    assert_eq!(code(&refresh(&app, &r1, Some(DEVICE)).await), "UNAUTHENTICATED");
    assert_eq!(code(&refresh(&app, &r2, Some(DEVICE)).await), "UNAUTHENTICATED", "session revoked");
    app.stop().await;
}

#[tokio::test]
async fn a_password_reset_spends_every_other_reset_link_of_the_account() {
    let app = TestApp::spawn().await;
    account(&app, AccountKind::Parent, "twice@example.org").await;
    let first = request_password_reset(&app.db, "twice@example.org", "127.0.0.1").await.unwrap().unwrap().1;
    let second = request_password_reset(&app.db, "twice@example.org", "127.0.0.1").await.unwrap().unwrap().1;
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    let body = app.graphql(reset, json!({ "t": second, "p": "the passphrase I chose" })).await;
    assert_eq!(body["data"]["resetPassword"], true, "{body}");
    // The older mail, read later (or by whoever reads that mailbox), sets nothing.
    let body = app.graphql(reset, json!({ "t": first, "p": "somebody else's passphrase" })).await;
    assert_eq!(body["data"]["resetPassword"], false, "{body}");
    assert!(log_in(&app, "twice@example.org", "the passphrase I chose", None).await["data"]["logIn"].is_object());
    app.stop().await;
}

async fn stored_totp(app: &TestApp, email: &str) -> String {
    let sql = "SELECT totp_secret FROM account WHERE email = $1";
    let row = app.db.query_one_raw(stmt(app.db.get_database_backend(), sql, [email.into()])).await.unwrap().unwrap();
    row.try_get::<Option<String>>("", "totp_secret").unwrap().unwrap_or_default()
}

#[tokio::test]
async fn staff_totp_seeds_are_sealed_at_rest_and_clear_ones_are_sealed_at_start_up() {
    let mut app = TestApp::spawn().await;
    let f = funder(&app.db, "92").await;
    let (id, secret) = staff(&app, "agent@example.org", &[(f, StaffRole::Admin)]).await;
    let stored = stored_totp(&app, "agent@example.org").await;
    assert!(stored.starts_with("enc1:") && !stored.contains(&secret.to_base32()), "{stored}");
    let body = log_in(&app, "agent@example.org", PASSWORD, Some(&totp(&secret, 0))).await;
    assert!(body["data"]["logIn"]["accessToken"].is_string(), "{body}");

    // A row from before sealing holds the seed in clear; the next start seals it, and the seed
    // still works.
    let sql = "UPDATE account SET totp_secret = $1 WHERE id = $2";
    let values = [secret.to_base32().into(), id.into()];
    app.db.execute_raw(stmt(app.db.get_database_backend(), sql, values)).await.unwrap();
    app.restart().await;
    let stored = stored_totp(&app, "agent@example.org").await;
    assert!(stored.starts_with("enc1:") && !stored.contains(&secret.to_base32()), "{stored}");
    let body = log_in(&app, "agent@example.org", PASSWORD, Some(&totp(&secret, 1))).await;
    assert!(body["data"]["logIn"]["accessToken"].is_string(), "{body}");

    // A sealed seed moved onto another account does not open there.
    let (other, _) = staff(&app, "agent2@example.org", &[(f, StaffRole::Auditor)]).await;
    let sql = "UPDATE account SET totp_secret = $1 WHERE id = $2";
    app.db.execute_raw(stmt(app.db.get_database_backend(), sql, [stored.into(), other.into()])).await.unwrap();
    let body = log_in(&app, "agent2@example.org", PASSWORD, Some(&totp(&secret, 0))).await;
    assert!(body["data"]["logIn"].is_null(), "{body}");
    app.stop().await;
}
