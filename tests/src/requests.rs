//! Requests end to end: staff signed in like the back office, documents uploaded like the app,
//! and the family's notifications read from the committed outbox.

use passerelle_domain::auth::StaffRole;
use passerelle_domain::db::stmt;
use reqwest::StatusCode;
use sea_orm::FromQueryResult;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::TestApp;
use crate::accounts::{sign_in, staff, totp};

/// The smallest document that reads as a PDF (what the server checks: its first bytes).
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// What the tests read of a request.
pub const FIELDS: &str = "id kind status channel childId passId campaignId boursierClaim assigneeId acknowledgedAt \
    respondedAt decidedAt events { action party atCounter fromStatus toStatus publicMessage internalNote } \
    attachments { id contentType size }";

/// A staff member of `funder` with `role`, signed in (a fresh sign-in also counts as the
/// recent re-authentication decisions need); their id and access token.
pub async fn staff_token(app: &TestApp, funder: Uuid, role: StaffRole) -> (Uuid, String) {
    let email = format!("agent-{}@example.org", Uuid::new_v4().simple());
    let (id, secret) = staff(app, &email, &[(funder, role)]).await;
    (id, sign_in(app, &email, Some(&totp(&secret, 0))).await)
}

/// `POST /attachments` with `bytes` as the body.
pub async fn upload(app: &TestApp, token: Option<&str>, bytes: Vec<u8>) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url("/attachments")).body(bytes);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("upload");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `GET /attachments/{id}`: the status and the bytes.
pub async fn download(app: &TestApp, token: &str, id: &str) -> (StatusCode, Vec<u8>) {
    let res = app.client.get(app.url(&format!("/attachments/{id}"))).bearer_auth(token).send().await.expect("download");
    let status = res.status();
    (status, res.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
}

/// Runs `mutation { <op>(input: $i) { FIELDS } }` and returns the whole answer.
pub async fn mutate(app: &TestApp, token: &str, op: &str, input_type: &str, input: Value) -> Value {
    let q = format!("mutation($i: {input_type}!) {{ {op}(input: $i) {{ {FIELDS} }} }}");
    app.graphql_as(token, &q, json!({ "i": input })).await
}

/// Runs a staff decision on `request`.
pub async fn decide(app: &TestApp, token: &str, request: &str, decision: &str, message: Option<&str>) -> Value {
    let input = json!({ "requestId": request, "decision": decision, "publicMessage": message });
    mutate(app, token, "decideRequest", "DecideRequestInput", input).await
}

#[derive(FromQueryResult)]
struct Notice {
    payload: String,
    account_id: Option<Uuid>,
}

/// The family's notifications of `request` committed to the outbox, in order: (reason,
/// status) — each one checked to go to `account`.
pub async fn notices(app: &TestApp, request: &str, account: Uuid) -> Vec<(String, String)> {
    let sql = "SELECT payload, account_id FROM outbox WHERE topic = 'request_updated' ORDER BY created_at_us, id";
    let rows =
        Notice::find_by_statement(stmt(app.db.get_database_backend(), sql, [])).all(&app.db).await.expect("outbox");
    rows.into_iter()
        .filter_map(|r| {
            let p: Value = serde_json::from_str(&r.payload).expect("payload");
            (p["request_id"] == request).then(|| {
                assert_eq!(r.account_id, Some(account), "{p}");
                assert_eq!(p["account_id"], account.to_string(), "{p}");
                (p["reason"].as_str().unwrap_or("").to_owned(), p["status"].as_str().unwrap_or("").to_owned())
            })
        })
        .collect()
}

/// How many rows `table` holds.
pub async fn rows(app: &TestApp, table: &str) -> i64 {
    crate::count(&app.db, &format!("SELECT COUNT(*) AS n FROM {table}")).await
}
