//! Sign-in, sessions and tokens over HTTP: rotation and reuse, forged tokens, enumeration,
//! throttling (aliases count one by one), staff TOTP and role scoping.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passerelle_domain::auth::{AccountKind, StaffRole, create_account, create_staff_account};
use passerelle_domain::identity::{AccessTokenKeys, Claims, TokenKind, TotpSecret};
use passerelle_tests::school::funder;
use passerelle_tests::{TestApp, code};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";
const LOG_IN: &str = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken refreshToken account { id kind } } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";
const VIEWER: &str = "{ viewer { email kind roles { role } } }";

fn login_vars(email: &str, password: &str, totp: Option<&str>) -> Value {
    json!({ "i": { "email": email, "password": password, "totpCode": totp,
                   "device": { "deviceId": "device-1", "platform": "ANDROID", "name": "Pixel" } } })
}

async fn parent(app: &TestApp, email: &str) -> Uuid {
    create_account(&app.db, AccountKind::Parent, email, PASSWORD, "Parent", true, &[]).await.unwrap().0.id
}

async fn log_in(app: &TestApp, email: &str) -> (String, String) {
    let body = app.graphql(LOG_IN, login_vars(email, PASSWORD, None)).await;
    let p = &body["data"]["logIn"];
    assert!(p["accessToken"].is_string(), "{body}");
    (p["accessToken"].as_str().unwrap().to_owned(), p["refreshToken"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    parent(&app, "a@example.org").await;
    let (_, r1) = log_in(&app, "a@example.org").await;
    let body = app.graphql(REFRESH, json!({ "t": r1 })).await;
    let a2 = body["data"]["refreshSession"]["accessToken"].as_str().unwrap().to_owned();
    let r2 = body["data"]["refreshSession"]["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(app.graphql_as(&a2, VIEWER, json!({})).await["data"]["viewer"]["email"], "a@example.org");
    // The spent token comes back (stolen copy): the session dies, for the thief and the owner.
    assert_eq!(code(&app.graphql(REFRESH, json!({ "t": r1 })).await), "UNAUTHENTICATED");
    assert_eq!(code(&app.graphql(REFRESH, json!({ "t": r2 })).await), "UNAUTHENTICATED");
    assert_eq!(code(&app.graphql_as(&a2, VIEWER, json!({})).await), "UNAUTHENTICATED", "revocation applies at once");
    app.stop().await;
}

#[tokio::test]
async fn log_out_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    parent(&app, "b@example.org").await;
    let (access, refresh) = log_in(&app, "b@example.org").await;
    assert_eq!(app.graphql_as(&access, "mutation { logOut }", json!({})).await["data"]["logOut"], true);
    assert_eq!(code(&app.graphql_as(&access, VIEWER, json!({})).await), "UNAUTHENTICATED");
    assert_eq!(code(&app.graphql(REFRESH, json!({ "t": refresh })).await), "UNAUTHENTICATED");
    app.stop().await;
}

#[tokio::test]
async fn unknown_email_wrong_password_and_disabled_account_answer_alike() {
    let app = TestApp::spawn().await;
    let id = parent(&app, "c@example.org").await;
    let unknown = app.graphql(LOG_IN, login_vars("nobody@example.org", PASSWORD, None)).await;
    let wrong = app.graphql(LOG_IN, login_vars("c@example.org", "not the password at all", None)).await;
    let sql = "UPDATE account SET status = 'disabled' WHERE id = $1";
    use sea_orm::ConnectionTrait;
    app.db.execute_raw(passerelle_domain::db::stmt(app.db.get_database_backend(), sql, [id.into()])).await.unwrap();
    let disabled = app.graphql(LOG_IN, login_vars("c@example.org", PASSWORD, None)).await;
    for b in [&unknown, &wrong, &disabled] {
        assert_eq!(code(b), "UNAUTHENTICATED", "{b}");
        assert_eq!(b["errors"][0]["message"], unknown["errors"][0]["message"]);
    }
    app.stop().await;
}

#[tokio::test]
async fn aliased_attempts_count_one_by_one_and_end_in_rate_limiting() {
    let app = TestApp::spawn().await;
    parent(&app, "d@example.org").await;
    let aliases: String = (0..8)
        .map(|i| format!("a{i}: logIn(input: {{ email: \"d@example.org\", password: \"wrong password {i}\", device: {{ deviceId: \"x\", platform: WEB, name: \"b\" }} }}) {{ accessToken }} "))
        .collect();
    let body = app.graphql(&format!("mutation {{ {aliases} }}"), json!({})).await;
    assert!(body["errors"].as_array().is_some_and(|e| e.len() == 8), "{body}");
    // The right password is now refused for a while: the eight failures counted.
    let body = app.graphql(LOG_IN, login_vars("d@example.org", PASSWORD, None)).await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    app.stop().await;
}

fn forge(header: &str, payload: &Value, sig: &str) -> String {
    format!("{}.{}.{sig}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload.to_string()))
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let id = parent(&app, "e@example.org").await;
    let (good, _) = log_in(&app, "e@example.org").await;
    assert_eq!(app.graphql_as(&good, VIEWER, json!({})).await["data"]["viewer"]["kind"], "PARENT");
    let payload_b64 = good.split('.').nth(1).unwrap();
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload_b64).unwrap()).unwrap();
    let sid: Uuid = payload["sid"].as_str().unwrap().parse().unwrap();
    let iss = payload["iss"].as_str().unwrap().to_owned();
    let now = payload["iat"].as_i64().unwrap();
    // alg: none, unsigned.
    let none = forge(r#"{"alg":"none","typ":"JWT"}"#, &payload, "");
    // A token signed by another key.
    let other = AccessTokenKeys::generate().issue(&Claims::new(&iss, &iss, id, sid, TokenKind::Parent, now, 600));
    // The server's own key (dev key in its data dir), but expired or for another audience.
    let pem = std::fs::read_to_string(app.data_dir.join("jwt-ed25519.pem")).unwrap();
    let server_key = AccessTokenKeys::from_pkcs8_pem(&pem).unwrap();
    let expired = server_key.issue(&Claims::new(&iss, &iss, id, sid, TokenKind::Parent, now - 7200, 600));
    let audience =
        server_key.issue(&Claims::new(&iss, "https://elsewhere.example", id, sid, TokenKind::Parent, now, 600));
    let staff_claim = server_key.issue(&Claims::new(&iss, &iss, id, Uuid::new_v4(), TokenKind::Staff, now, 600));
    for (what, token) in [
        ("alg none", none),
        ("other key", other),
        ("expired", expired),
        ("audience", audience),
        ("unknown session", staff_claim),
    ] {
        let body = app.graphql_as(&token, VIEWER, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{what}: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn staff_need_a_fresh_totp_code_and_act_only_on_their_funder() {
    let app = TestApp::spawn().await;
    let f92 = funder(&app.db, "92").await;
    let f78 = funder(&app.db, "78").await;
    let password = "a long staff passphrase 2026";
    let (_, secret) =
        create_staff_account(&app.db, &app.data_key, "s@example.org", password, "Agent", &[(f92, StaffRole::Admin)])
            .await
            .unwrap();
    let secret: TotpSecret = secret;
    assert_eq!(code(&app.graphql(LOG_IN, login_vars("s@example.org", password, None)).await), "UNAUTHENTICATED");
    let now = chrono::Utc::now().timestamp() as u64;
    let totp = secret.code_at(now);
    let ok = app.graphql(LOG_IN, login_vars("s@example.org", password, Some(&totp))).await;
    let token = ok["data"]["logIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("{ok}")).to_owned();
    let replay = app.graphql(LOG_IN, login_vars("s@example.org", password, Some(&totp))).await;
    assert_eq!(code(&replay), "UNAUTHENTICATED", "a TOTP code works once");
    assert_eq!(app.graphql_as(&token, VIEWER, json!({})).await["data"]["viewer"]["roles"][0]["role"], "ADMIN");

    let campaigns = "query($f: ID!) { campaigns(funderId: $f) { id } }";
    assert!(app.graphql_as(&token, campaigns, json!({ "f": f92.to_string() })).await["data"]["campaigns"].is_array());
    assert_eq!(code(&app.graphql_as(&token, campaigns, json!({ "f": f78.to_string() })).await), "FORBIDDEN");
    assert_eq!(code(&app.graphql(campaigns, json!({ "f": f92.to_string() })).await), "UNAUTHENTICATED");
    parent(&app, "p@example.org").await;
    let (parent_token, _) = log_in(&app, "p@example.org").await;
    assert_eq!(code(&app.graphql_as(&parent_token, campaigns, json!({ "f": f92.to_string() })).await), "FORBIDDEN");
    app.stop().await;
}

#[tokio::test]
async fn sign_up_answers_the_same_for_a_taken_address() {
    let app = TestApp::spawn().await;
    parent(&app, "taken@example.org").await;
    let q = "mutation($i: SignUpInput!) { signUp(input: $i) { verificationSent } }";
    let new =
        app.graphql(q, json!({ "i": { "email": "new@example.org", "password": PASSWORD, "displayName": "N" } })).await;
    let taken = app
        .graphql(q, json!({ "i": { "email": "taken@example.org", "password": PASSWORD, "displayName": "T" } }))
        .await;
    assert_eq!(new, taken);
    let weak =
        app.graphql(q, json!({ "i": { "email": "w@example.org", "password": "short", "displayName": "W" } })).await;
    assert_eq!(code(&weak), "BAD_USER_INPUT");
    let common = app
        .graphql(q, json!({ "i": { "email": "x@example.org", "password": "1qaz2wsx3edc", "displayName": "X" } }))
        .await;
    assert_eq!(code(&common), "BAD_USER_INPUT", "{common}");
    app.stop().await;
}
