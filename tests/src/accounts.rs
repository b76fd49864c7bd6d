//! Accounts for end-to-end tests: created straight in the database (as the seed and staff
//! administration do), then signed in over GraphQL like an app.

use passerelle_domain::auth::{AccountKind, StaffRole, create_account, create_staff_account};
use passerelle_domain::identity::TotpSecret;
use passerelle_domain::identity::totp::STEP_SECS;
use serde_json::json;
use uuid::Uuid;

use crate::TestApp;

/// Every test account's password (long enough for the staff policy).
pub const PASSWORD: &str = "correct horse battery staple 2026";

/// A verified account of `kind` (no roles); its id.
pub async fn account(app: &TestApp, kind: AccountKind, email: &str) -> Uuid {
    create_account(&app.db, kind, email, PASSWORD, "Test", true, &[]).await.expect("create account").0.id
}

/// A staff account with `roles`; its id and TOTP secret.
pub async fn staff(app: &TestApp, email: &str, roles: &[(Uuid, StaffRole)]) -> (Uuid, TotpSecret) {
    let (a, totp) =
        create_staff_account(&app.db, &app.data_key, email, PASSWORD, "Agent", roles).await.expect("create staff");
    (a.id, totp)
}

/// The TOTP code of the current step (`steps_ahead` = 0) or of a later one. A code works once
/// per account, so a test that signs in then re-authenticates uses the current step, then the
/// next: the server accepts one step of drift either way, even across a step boundary.
pub fn totp(secret: &TotpSecret, steps_ahead: u64) -> String {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    secret.code_at(now + steps_ahead * STEP_SECS)
}

/// Signs in over GraphQL (with `totp_code` for staff) with the contract's `LogIn` operation,
/// sent by its hash as the apps do (so it also works where trusted documents are enforced);
/// the access token.
pub async fn sign_in(app: &TestApp, email: &str, totp_code: Option<&str>) -> String {
    let device = json!({ "deviceId": "test-device", "platform": "ANDROID", "name": "Test" });
    let v = json!({ "input": { "email": email, "password": PASSWORD, "totpCode": totp_code, "device": device } });
    let body = app.persisted(None, "parent/LogIn.graphql", v).await;
    body["data"]["logIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("sign-in of {email}: {body}")).to_owned()
}
