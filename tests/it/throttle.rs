//! Throttling over HTTP, with distinct clients from distinct loopback addresses (127.0.0.2,
//! 127.0.0.3 …): only an account from one address is refused; the account or the address as a
//! whole only slows attempts down; mail-sending requests are throttled per address and per
//! target; the client address comes from forwarding headers only through trusted proxies; the
//! answers of signUp, requestPasswordReset and requestChildLink do not depend on the account
//! existing or on the SMTP server (docs/security-auth.md).

use passerelle_domain::auth::AccountKind;
use passerelle_domain::db::stmt;
use passerelle_domain::partner::{PartnerRole, add_partner_member, create_partner};
use passerelle_tests::accounts::{PASSWORD, account, sign_in};
use passerelle_tests::{TestApp, code};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const LOG_IN: &str = "mutation($e: String!, $p: String!) { logIn(input: { email: $e, password: $p, device: { deviceId: \"d\", platform: WEB, name: \"w\" } }) { accessToken } }";
const SIGN_UP: &str = "mutation($e: String!) { signUp(input: { email: $e, password: \"a long enough passphrase\", displayName: \"N\" }) { verificationSent } }";
const RESET: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";

async fn log_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> (reqwest::header::HeaderMap, Value) {
    app.graphql_via(client, None, &[], LOG_IN, json!({ "e": email, "p": password })).await
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers.get("retry-after")?.to_str().ok()?.parse().ok()
}

/// Throttling keys stored for `key`.
async fn keys(app: &TestApp, key: &str) -> i64 {
    let sql = "SELECT COUNT(*) AS n FROM throttle WHERE key = $1";
    let row = app.db.query_one_raw(stmt(app.db.get_database_backend(), sql, [key.into()])).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn forty_wrong_passwords_from_one_address_do_not_stop_the_parent_elsewhere() {
    let app = TestApp::spawn().await;
    account(&app, AccountKind::Parent, "target@example.org").await;
    let attacker = TestApp::client_from("127.0.0.2");
    let mut refused = 0;
    for i in 0..40 {
        let (headers, body) = log_in(&app, &attacker, "target@example.org", &format!("guess number {i}")).await;
        match code(&body) {
            "UNAUTHENTICATED" => assert!(i < 5, "attempt {i} was checked: {body}"),
            "RATE_LIMITED" => {
                refused += 1;
                assert!(retry_after(&headers).is_some_and(|s| s >= 1), "Retry-After on attempt {i}");
            }
            other => panic!("attempt {i}: {other}: {body}"),
        }
    }
    assert_eq!(refused, 35, "five attempts per account and address, then refusals");
    // The right password from the attacker's address waits too…
    assert_eq!(code(&log_in(&app, &attacker, "target@example.org", PASSWORD).await.1), "RATE_LIMITED");
    // …but the parent, elsewhere, signs in.
    let (_, body) = log_in(&app, &TestApp::client_from("127.0.0.3"), "target@example.org", PASSWORD).await;
    assert!(body["data"]["logIn"]["accessToken"].is_string(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn forty_unknown_e_mails_from_one_address_do_not_stop_a_correct_sign_in_there() {
    let app = TestApp::spawn().await;
    account(&app, AccountKind::Parent, "behind-the-nat@example.org").await;
    let shared = TestApp::client_from("127.0.0.4");
    for i in 0..40 {
        let (_, body) = log_in(&app, &shared, &format!("nobody{i}@example.org"), "some password or other").await;
        // Past 30 the address's attempts are spaced out (a wait), not refused.
        assert_eq!(code(&body), "UNAUTHENTICATED", "attempt {i}: {body}");
    }
    let (_, body) = log_in(&app, &shared, "behind-the-nat@example.org", PASSWORD).await;
    assert!(body["data"]["logIn"]["accessToken"].is_string(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn parallel_wrong_passwords_get_at_most_five_checks() {
    let app = TestApp::spawn().await;
    account(&app, AccountKind::Parent, "parallel@example.org").await;
    let client = TestApp::client_from("127.0.0.5");
    let attempts = (0..20).map(|i| {
        let (app, client) = (&app, &client);
        async move { log_in(app, client, "parallel@example.org", &format!("parallel guess {i}")).await.1 }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let checked = answers.iter().filter(|b| code(b) == "UNAUTHENTICATED").count();
    let refused = answers.iter().filter(|b| code(b) == "RATE_LIMITED").count();
    assert_eq!((checked, refused), (5, 15), "{answers:?}");
    app.stop().await;
}

#[tokio::test]
async fn thirty_sign_ups_from_one_address_are_rate_limited_with_retry_after() {
    let app = TestApp::spawn().await;
    let client = TestApp::client_from("127.0.0.6");
    let mut limited = Vec::new();
    for i in 0..30 {
        let (headers, body) =
            app.graphql_via(&client, None, &[], SIGN_UP, json!({ "e": format!("new{i}@example.org") })).await;
        if code(&body) == "RATE_LIMITED" {
            let secs = retry_after(&headers).unwrap_or_else(|| panic!("no Retry-After on sign-up {i}"));
            assert_eq!(body["errors"][0]["extensions"]["retryAfter"].as_u64(), Some(secs));
            limited.push(i);
        } else {
            assert_eq!(body["data"]["signUp"]["verificationSent"], true, "{body}");
        }
    }
    assert_eq!(limited, (20..30).collect::<Vec<_>>(), "20 sign-ups an hour from one address");
    // Another address is not concerned.
    let (_, body) = app
        .graphql_via(&TestApp::client_from("127.0.0.7"), None, &[], SIGN_UP, json!({ "e": "else@example.org" }))
        .await;
    assert_eq!(body["data"]["signUp"]["verificationSent"], true, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn mail_to_one_address_is_throttled_whether_or_not_it_has_an_account() {
    let app = TestApp::spawn().await;
    account(&app, AccountKind::Parent, "known@example.org").await;
    for target in ["known@example.org", "unknown@example.org"] {
        let mut answers = Vec::new();
        // From a new address each time: only the target is counted here.
        for i in 0..4 {
            let client = TestApp::client_from(&format!("127.0.1.{}", i + 1));
            let (query, vars) =
                if i % 2 == 0 { (SIGN_UP, json!({ "e": target })) } else { (RESET, json!({ "e": target })) };
            answers.push(app.graphql_via(&client, None, &[], query, vars).await.1);
        }
        let codes: Vec<&str> = answers.iter().map(code).collect();
        assert_eq!(codes, ["", "", "", "RATE_LIMITED"], "{target}: {answers:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let app = TestApp::spawn_with(&[("PASSERELLE_TRUSTED_PROXIES", "127.0.0.8/32, 10.0.0.0/8")]).await;
    let attempt = |client: reqwest::Client, forwarded: &'static str| {
        let app = &app;
        async move {
            let vars = json!({ "e": "someone@example.org", "p": "wrong password here" });
            app.graphql_via(&client, None, &[("x-forwarded-for", forwarded)], LOG_IN, vars).await.1
        }
    };
    // An untrusted peer's header is its own claim: its own address is counted.
    assert_eq!(code(&attempt(TestApp::client_from("127.0.0.9"), "203.0.113.9").await), "UNAUTHENTICATED");
    assert_eq!((keys(&app, "login:ip:127.0.0.9").await, keys(&app, "login:ip:203.0.113.9").await), (1, 0));
    // Through the trusted proxy, the client's address, read from the nearest hop back.
    let body = attempt(TestApp::client_from("127.0.0.8"), "198.51.100.1, 203.0.113.9, 10.1.2.3").await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert_eq!((keys(&app, "login:ip:127.0.0.8").await, keys(&app, "login:ip:203.0.113.9").await), (0, 1));
    // IPv6 clients are counted by their /64.
    attempt(TestApp::client_from("127.0.0.8"), "2001:db8:1:2::5").await;
    attempt(TestApp::client_from("127.0.0.8"), "2001:db8:1:2:ffff::6").await;
    assert_eq!(keys(&app, "login:ip:2001:db8:1:2::/64").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn strangers_guessing_lock_out_neither_reauthentication_nor_a_partner_client() {
    let app = TestApp::spawn().await;
    account(&app, AccountKind::Parent, "stepping-up@example.org").await;
    let token = sign_in(&app, "stepping-up@example.org", None).await;
    let stranger = TestApp::client_from("127.0.0.10");
    for i in 0..10 {
        log_in(&app, &stranger, "stepping-up@example.org", &format!("stranger guess {i}")).await;
    }
    let reauth = "mutation($p: String!) { reauthenticate(input: { password: $p }) { validUntil } }";
    let body = app.graphql_as(&token, reauth, json!({ "p": PASSWORD })).await;
    assert!(body["data"]["reauthenticate"]["validUntil"].is_string(), "{body}");

    // A partner's client id is public: guessing its secret from elsewhere locks nobody out.
    let partner = create_partner(&app.db, "Club").await.unwrap();
    let owner = account(&app, AccountKind::PartnerMember, "owner@example.org").await;
    add_partner_member(&app.db, partner.id, owner, PartnerRole::Owner).await.unwrap();
    let owner_token = sign_in(&app, "owner@example.org", None).await;
    let create = "mutation { createApiClient(input: { name: \"Logiciel\" }) { apiClient { clientId } clientSecret } }";
    let body = app.graphql_as(&owner_token, create, json!({})).await;
    let client_id = body["data"]["createApiClient"]["apiClient"]["clientId"].as_str().unwrap().to_owned();
    let secret = body["data"]["createApiClient"]["clientSecret"].as_str().unwrap().to_owned();
    let exchange = |client: reqwest::Client, secret: String| {
        let (app, client_id) = (&app, client_id.clone());
        async move {
            let r = client
                .post(app.url("/oauth/token"))
                .basic_auth(client_id, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials")
                .send()
                .await
                .unwrap();
            r.status()
        }
    };
    for i in 0..10 {
        exchange(stranger.clone(), format!("{}{i}", &secret[..secret.len() - 1])).await;
    }
    assert_eq!(exchange(stranger.clone(), secret.clone()).await, reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(exchange(TestApp::client_from("127.0.0.11"), secret).await, reqwest::StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn sign_up_and_reset_answer_alike_for_known_and_unknown_even_with_smtp_down() {
    // Nothing listens on port 9: every delivery fails.
    let app = TestApp::spawn_with(&[("PASSERELLE_SMTP_URL", "smtp://127.0.0.1:9")]).await;
    account(&app, AccountKind::Parent, "exists@example.org").await;
    let client = TestApp::client_from("127.0.0.12");
    let ask = |query: &'static str, email: &'static str| {
        let (app, client) = (&app, &client);
        async move { app.graphql_via(client, None, &[], query, json!({ "e": email })).await.1 }
    };
    let (known, unknown) = (ask(RESET, "exists@example.org").await, ask(RESET, "ghost@example.org").await);
    assert_eq!(known, json!({ "data": { "requestPasswordReset": true } }));
    assert_eq!(known, unknown);
    let (taken, new) = (ask(SIGN_UP, "exists@example.org").await, ask(SIGN_UP, "fresh@example.org").await);
    assert_eq!(taken, json!({ "data": { "signUp": { "verificationSent": true } } }));
    assert_eq!(taken, new);
    app.stop().await;
}
