//! E-mail verification and family links over real SMTP: codes go to the school record's
//! contact, a parent reaches only linked children, unlinking applies at once.

use passerelle_domain::auth::{
    AccountKind, Actor, LinkAction, LinkDecision, create_account, decide_family_link, pupil_funder,
};
use passerelle_domain::funder::ensure_funder_by_code;
use passerelle_domain::school::import::{ImportFile, ImportOptions, RosterFormat, import_roster};
use passerelle_tests::smtp::{SmtpSink, digits, dispatched_mail_rows, parts};
use passerelle_tests::{TestApp, code, count};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

const ROSTER: &str = "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;echelon;resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;date_sortie\n\
0921778H;;900001;MARTIN;Léa;14/03/2015;10010012110;6A;N;;800001;1;10;MARTIN;Claire;claire@example.org;;1;1;\n\
0921778H;;900001;MARTIN;Léa;14/03/2015;10010012110;6A;N;;800009;0;90;VOISIN;Paul;paul@example.org;;0;0;\n\
0921778H;;900002;DUBOIS;Noah;07/05/2011;10310019110;3D;N;;800004;1;20;DUBOIS;Marc;marc@example.org;;1;1;\n";

async fn roster(app: &TestApp) {
    let f = ensure_funder_by_code(&app.db, "92", "Hauts-de-Seine", "92").await.unwrap();
    let path = app.data_dir.join("roster.csv");
    std::fs::write(&path, ROSTER).unwrap();
    let files = [ImportFile { name: "roster.csv".into(), path }];
    let options = ImportOptions { full_snapshot: true, author: "test".into() };
    let s = import_roster(&app.db, f.id, RosterFormat::Csv, &files, &options, &|_| {}).await.unwrap();
    assert_eq!(s.created, 2);
}

async fn parent_token(app: &TestApp, email: &str) -> (Uuid, String) {
    let id = create_account(&app.db, AccountKind::Parent, email, PASSWORD, "Parent", true, &[]).await.unwrap().0.id;
    let q = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }";
    let v = json!({ "i": { "email": email, "password": PASSWORD, "device": { "deviceId": "d", "platform": "IOS", "name": "i" } } });
    let body = app.graphql(q, v).await;
    (id, body["data"]["logIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned())
}

/// The 256-bit token (43 base64url characters on a line of its own) of the last mail to `to`.
async fn token_in(sink: &SmtpSink, to: &str) -> String {
    let mail = sink.next_to(to).await;
    mail.data
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 43 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .expect("token line")
        .to_owned()
}

const REQUEST: &str = "mutation($i: RequestChildLinkInput!) { requestChildLink(input: $i) { challengeId expiresAt } }";
const CONFIRM: &str = "mutation($c: ID!, $k: String!) { confirmChildLink(challengeId: $c, code: $k) { id givenName school { uai } gradeLevel } }";
const CHILDREN: &str = "{ children { id givenName } }";

fn lea() -> Value {
    json!({ "i": { "uai": "0921778h", "pupilFamilyName": "Martin", "pupilGivenName": "lea", "pupilBirthDate": "2015-03-14" } })
}

#[tokio::test]
async fn sign_up_sends_a_verification_token_that_works_once() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    let q = "mutation($i: SignUpInput!) { signUp(input: $i) { verificationSent } }";
    let body = app
        .graphql(q, json!({ "i": { "email": "New.Parent@Example.org", "password": PASSWORD, "displayName": "Nina" } }))
        .await;
    assert_eq!(body["data"]["signUp"]["verificationSent"], true, "{body}");
    let token = token_in(&sink, "new.parent@example.org").await;
    // Text and HTML, both with the token.
    let sent = parts(&sink.next_to("new.parent@example.org").await.data);
    let kinds: Vec<&str> = sent.iter().map(|(kind, _)| kind.split(';').next().unwrap_or_default()).collect();
    assert_eq!(kinds, ["text/plain", "text/html"], "{sent:?}");
    assert!(sent.iter().all(|(_, body)| body.contains(&token)), "{sent:?}");
    assert!(sent[1].1.contains("Bonjour Nina,"), "{}", sent[1].1);
    // Sent through the outbox, which keeps no token once it went out.
    let rows = dispatched_mail_rows(&app.db, "new.parent@example.org").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["message"].as_str(), rows[0]["token"].as_str()), (Some("verify_email"), Some("")));
    assert!(!rows[0].to_string().contains(&token), "{}", rows[0]);
    let verify = "mutation($t: String!) { verifyEmail(token: $t) }";
    assert_eq!(app.graphql(verify, json!({ "t": token })).await["data"]["verifyEmail"], true);
    assert_eq!(app.graphql(verify, json!({ "t": token })).await["data"]["verifyEmail"], false, "single use");
    app.stop().await;
}

#[tokio::test]
async fn a_parent_links_a_child_with_the_code_sent_to_the_school_record() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    roster(&app).await;
    let (_, token) = parent_token(&app, "claire.app@example.org").await;
    assert_eq!(app.graphql_as(&token, CHILDREN, json!({})).await["data"]["children"], json!([]));
    let ch = app.graphql_as(&token, REQUEST, lea()).await;
    let challenge = ch["data"]["requestChildLink"]["challengeId"].as_str().unwrap_or_else(|| panic!("{ch}")).to_owned();
    // The code went to the legal guardian on the school record, not to the neighbour (level 0).
    let mail = sink.next_to("claire@example.org").await;
    assert!(sink.last_to("paul@example.org").is_none());
    let code_sent = digits(&mail.data, 6).expect("6-digit code");
    assert!(parts(&mail.data).iter().all(|(_, body)| body.contains(&code_sent) && body.contains("Léa")));
    let rows = dispatched_mail_rows(&app.db, "claire@example.org").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["message"].as_str(), rows[0]["code"].as_str()), (Some("link_code"), Some("")));
    let wrong = if code_sent == "000000" { "111111" } else { "000000" };
    assert_eq!(code(&app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": wrong })).await), "BAD_USER_INPUT");
    let ok = app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": code_sent })).await;
    assert_eq!(ok["data"]["confirmChildLink"]["givenName"], "Léa", "{ok}");
    assert_eq!(ok["data"]["confirmChildLink"]["gradeLevel"], "SIXIEME");
    let again = app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": code_sent })).await;
    assert_eq!(code(&again), "CONFLICT", "a code works once");
    let kids = app.graphql_as(&token, CHILDREN, json!({})).await;
    assert_eq!(kids["data"]["children"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

/// A `requestChildLink` answer with its per-request values checked and masked: the challenge
/// id (a UUID, its version kept) and the expiry (a timestamp, returned beside).
fn masked(mut body: Value) -> (Value, chrono::DateTime<chrono::Utc>) {
    let answer = &mut body["data"]["requestChildLink"];
    let id: Uuid = answer["challengeId"].as_str().and_then(|i| i.parse().ok()).expect("a challenge id");
    answer["challengeId"] = json!(format!("uuid-v{}", id.get_version_num()));
    let expires = answer["expiresAt"].as_str().and_then(|e| e.parse().ok()).expect("an expiry");
    answer["expiresAt"] = json!("timestamp");
    (body, expires)
}

#[tokio::test]
async fn no_match_gives_the_same_answer_and_no_code_can_open_it() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    roster(&app).await;
    let (_, token) = parent_token(&app, "prober@example.org").await;
    let nobody = json!({ "i": { "uai": "0921778H", "pupilFamilyName": "Martin", "pupilGivenName": "Léa", "pupilBirthDate": "2015-03-15" } });
    let (status, body) = app.graphql_answer(Some(&token), REQUEST, nobody).await;
    let challenge =
        body["data"]["requestChildLink"]["challengeId"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    assert!(sink.messages_to("claire@example.org").is_empty(), "nothing sent");
    // A request that matches Léa answers the same way: only the mail tells them apart.
    let (matched_status, matched) = app.graphql_answer(Some(&token), REQUEST, lea()).await;
    // Sent after the answer: wait for it.
    assert_eq!(sink.wait_for("claire@example.org", 1).await.len(), 1, "a code for the matching request");
    let ((body, expires), (matched, matched_expires)) = (masked(body), masked(matched));
    assert_eq!((status, body), (matched_status, matched));
    assert!((matched_expires - expires).abs() < chrono::Duration::seconds(5), "the same lifetime");
    for k in ["000000", "123456", "999999"] {
        assert_eq!(code(&app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": k })).await), "BAD_USER_INPUT");
    }
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_codes_kill_the_challenge() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    roster(&app).await;
    let (_, token) = parent_token(&app, "guesser@example.org").await;
    let ch = app.graphql_as(&token, REQUEST, lea()).await;
    let challenge = ch["data"]["requestChildLink"]["challengeId"].as_str().unwrap().to_owned();
    let real = digits(&sink.next_to("claire@example.org").await.data, 6).unwrap();
    let wrong = if real == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(
            code(&app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": wrong })).await),
            "BAD_USER_INPUT"
        );
    }
    let late = app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": real })).await;
    assert_eq!(code(&late), "RATE_LIMITED", "even the right code is refused after 5 attempts: {late}");
    app.stop().await;
}

#[tokio::test]
async fn another_parent_cannot_use_a_challenge_and_unlinking_applies_at_once() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    roster(&app).await;
    let (claire, token) = parent_token(&app, "claire2@example.org").await;
    let (_, other) = parent_token(&app, "other@example.org").await;
    let ch = app.graphql_as(&token, REQUEST, lea()).await;
    let challenge = ch["data"]["requestChildLink"]["challengeId"].as_str().unwrap().to_owned();
    let real = digits(&sink.next_to("claire@example.org").await.data, 6).unwrap();
    assert_eq!(code(&app.graphql_as(&other, CONFIRM, json!({ "c": challenge, "k": real })).await), "NOT_FOUND");
    let linked = app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": real })).await;
    let pupil: Uuid = linked["data"]["confirmChildLink"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.graphql_as(&other, CHILDREN, json!({})).await["data"]["children"], json!([]));
    let funder = pupil_funder(&app.db, pupil).await.unwrap();
    let decision =
        LinkDecision { action: LinkAction::Unlink, funder, account: claire, pupil, reason: "court decision" };
    decide_family_link(&app.db, &Actor::tool("test"), &decision).await.unwrap();
    assert_eq!(app.graphql_as(&token, CHILDREN, json!({})).await["data"]["children"], json!([]));
    app.stop().await;
}

const RESET: &str = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";

/// Asks for a reset mail to `email`; the answer (always true).
const ASK_RESET: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";

async fn ask_reset(app: &TestApp, email: &str) -> Value {
    app.graphql(ASK_RESET, json!({ "e": email })).await["data"]["requestPasswordReset"].clone()
}

#[tokio::test]
async fn a_password_reset_by_e_mail_signs_out_every_device() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    let (_, old_token) = parent_token(&app, "forgetful@example.org").await;
    let known = app.graphql_answer(None, ASK_RESET, json!({ "e": "forgetful@example.org" })).await;
    assert_eq!(known.1["data"]["requestPasswordReset"], true, "{}", known.1);
    let unknown = app.graphql_answer(None, ASK_RESET, json!({ "e": "unknown@example.org" })).await;
    assert_eq!(unknown, known, "the same answer for an unknown address");
    // Queued in the request's transaction: one row, for the known address only.
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM outbox WHERE topic = 'mail'").await, 1);
    assert!(dispatched_mail_rows(&app.db, "unknown@example.org").await.is_empty());
    assert!(sink.messages_to("unknown@example.org").is_empty());
    let token = token_in(&sink, "forgetful@example.org").await;
    let rows = dispatched_mail_rows(&app.db, "forgetful@example.org").await;
    assert_eq!(
        (rows.len(), rows[0]["message"].as_str(), rows[0]["token"].as_str()),
        (1, Some("password_reset"), Some(""))
    );
    let weak = app.graphql(RESET, json!({ "t": token, "p": "short" })).await;
    assert_eq!(code(&weak), "BAD_USER_INPUT");
    assert_eq!(
        app.graphql(RESET, json!({ "t": token, "p": "a brand new passphrase" })).await["data"]["resetPassword"],
        true
    );
    assert_eq!(
        app.graphql(RESET, json!({ "t": token, "p": "another new passphrase" })).await["data"]["resetPassword"],
        false,
        "single use"
    );
    assert_eq!(
        code(&app.graphql_as(&old_token, CHILDREN, json!({})).await),
        "UNAUTHENTICATED",
        "old sessions are gone"
    );
    let q = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }";
    let v = json!({ "i": { "email": "forgetful@example.org", "password": "a brand new passphrase", "device": { "deviceId": "d", "platform": "IOS", "name": "i" } } });
    assert!(app.graphql(q, v).await["data"]["logIn"]["accessToken"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn a_reset_for_an_account_of_unknown_kind_fails_and_changes_nothing() {
    use sea_orm::ConnectionTrait;
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    let (id, old_token) = parent_token(&app, "odd@example.org").await;
    assert_eq!(ask_reset(&app, "odd@example.org").await, true);
    let token = token_in(&sink, "odd@example.org").await;
    let set_kind = |kind: &'static str| {
        let sql = "UPDATE account SET kind = $1 WHERE id = $2";
        app.db.execute_raw(passerelle_domain::db::stmt(app.db.get_database_backend(), sql, [kind.into(), id.into()]))
    };
    // A kind this version does not know (a later release, a hand edit): its password policy is
    // unknown, so the reset is refused rather than checked against another kind's policy.
    set_kind("robot").await.unwrap();
    let refused = app.graphql(RESET, json!({ "t": token, "p": "a brand new passphrase" })).await;
    assert_eq!(code(&refused), "INTERNAL", "{refused}");
    set_kind("parent").await.unwrap();
    assert!(app.graphql_as(&old_token, CHILDREN, json!({})).await["data"]["children"].is_array(), "sessions kept");
    assert_eq!(
        app.graphql(RESET, json!({ "t": token, "p": "a brand new passphrase" })).await["data"]["resetPassword"],
        true,
        "the token was not spent"
    );
    app.stop().await;
}

/// A count read from the database.
async fn number(app: &TestApp, sql: &str, id: Uuid) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = app.db.query_one_raw(passerelle_domain::db::stmt(app.db.get_database_backend(), sql, [id.into()]));
    row.await.unwrap().unwrap_or_else(|| panic!("no row: {sql}")).try_get("", "n").unwrap()
}

/// On several worker threads: the confirmations really overlap (on one thread, the old
/// read-then-increment happened to interleave harmlessly).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_confirmations_make_at_most_five_guesses() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    roster(&app).await;
    let (_, token) = parent_token(&app, "racer@example.org").await;
    let ch = app.graphql_as(&token, REQUEST, lea()).await;
    let challenge: Uuid = ch["data"]["requestChildLink"]["challengeId"].as_str().unwrap().parse().unwrap();
    let real = digits(&sink.next_to("claire@example.org").await.data, 6).unwrap();
    let guesses = (0..20).map(|i| {
        let (app, token) = (&app, &token);
        let guess = format!("{:06}", (real.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        async move { app.graphql_as(token, CONFIRM, json!({ "c": challenge, "k": guess })).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let wrong = answers.iter().filter(|b| code(b) == "BAD_USER_INPUT").count();
    let refused = answers.iter().filter(|b| code(b) == "RATE_LIMITED").count();
    assert_eq!((wrong, refused), (5, 15), "{answers:?}");
    let sql = "SELECT CAST(attempts AS BIGINT) AS n FROM link_challenge WHERE id = $1";
    assert_eq!(number(&app, sql, challenge).await, 5, "guesses counted in the challenge");
    let sql = "SELECT g.attempts AS n FROM child_link_guard g JOIN link_challenge c ON c.pupil_id = g.pupil_id WHERE c.id = $1";
    assert_eq!(number(&app, sql, challenge).await, 5, "and for the child");
    app.stop().await;
}

#[tokio::test]
async fn only_a_verified_address_may_ask_for_a_link() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    roster(&app).await;
    create_account(&app.db, AccountKind::Parent, "unverified@example.org", PASSWORD, "P", false, &[]).await.unwrap();
    let q = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }";
    let v = json!({ "i": { "email": "unverified@example.org", "password": PASSWORD, "device": { "deviceId": "d", "platform": "IOS", "name": "i" } } });
    let body = app.graphql(q, v).await;
    let token = body["data"]["logIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    let refused = app.graphql_as(&token, REQUEST, lea()).await;
    assert_eq!(code(&refused), "EMAIL_NOT_VERIFIED", "{refused}");
    let sql = "SELECT COUNT(*) AS n FROM link_challenge WHERE account_id <> $1";
    assert_eq!(number(&app, sql, Uuid::nil()).await, 0, "no challenge, hence no code sent");
    app.stop().await;
}

#[tokio::test]
async fn a_child_gets_thirty_guesses_across_accounts_then_needs_a_staff_review() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    roster(&app).await;
    let mut last = None;
    for n in 1..=7 {
        let (_, token) = parent_token(&app, &format!("prober{n}@example.org")).await;
        let ch = app.graphql_as(&token, REQUEST, lea()).await;
        let challenge = ch["data"]["requestChildLink"]["challengeId"].as_str().unwrap().to_owned();
        let mails = sink.wait_for("claire@example.org", n).await;
        let real = digits(&mails[n - 1].data, 6).unwrap();
        if n == 7 {
            last = Some((token, challenge, real));
            break;
        }
        let wrong = if real == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            let body = app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": wrong })).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        }
    }
    // Thirty guesses were spent on Léa by six accounts: even the right code waits for staff.
    let (token, challenge, real) = last.unwrap();
    let body = app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": real })).await;
    assert_eq!(code(&body), "LINK_REVIEW_REQUIRED", "{body}");
    let pupil: Uuid = {
        use sea_orm::ConnectionTrait;
        let sql = "SELECT pupil_id FROM link_challenge WHERE id = $1";
        let id: Uuid = challenge.parse().unwrap();
        let row = app.db.query_one_raw(passerelle_domain::db::stmt(app.db.get_database_backend(), sql, [id.into()]));
        row.await.unwrap().unwrap().try_get("", "pupil_id").unwrap()
    };
    assert!(passerelle_domain::auth::clear_child_link_guard(&app.db, pupil).await.unwrap());
    let body = app.graphql_as(&token, CONFIRM, json!({ "c": challenge, "k": real })).await;
    assert_eq!(body["data"]["confirmChildLink"]["givenName"], "Léa", "after the review: {body}");
    app.stop().await;
}
