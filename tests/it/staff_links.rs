//! Staff link and unlink parents and pupils over GraphQL: the funder's admins and eligibility
//! officers only, with a reason, audited, effective on the parent's next request.

use passerelle_domain::auth::{AccountKind, StaffRole};
use passerelle_domain::db::stmt;
use passerelle_tests::accounts::{account, sign_in, staff, totp};
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{TestApp, code};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

const LINK: &str = "mutation($i: LinkChildToAccountInput!) { linkChildToAccount(input: $i) { accountId pupilId linked reason author at } }";
const UNLINK: &str =
    "mutation($i: UnlinkChildInput!) { unlinkChild(input: $i) { accountId pupilId linked reason author at } }";
const CHILDREN: &str = "{ children { id } }";

fn input(account: Uuid, pupil: Uuid, reason: &str) -> Value {
    json!({ "i": { "accountId": account.to_string(), "pupilId": pupil.to_string(), "reason": reason } })
}

/// Rows of the audit trail, oldest first: (action, actor, subject, object, reason).
async fn audit_rows(app: &TestApp) -> Vec<(String, String, Uuid, Uuid, String)> {
    let sql = "SELECT action, actor, subject_account_id, object_id, reason FROM audit_event ORDER BY created_at_us, id";
    let rows = app.db.query_all_raw(stmt(app.db.get_database_backend(), sql, [])).await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "action").unwrap(),
                r.try_get("", "actor").unwrap(),
                r.try_get("", "subject_account_id").unwrap(),
                r.try_get("", "object_id").unwrap(),
                r.try_get("", "reason").unwrap(),
            )
        })
        .collect()
}

struct World {
    app: TestApp,
    f92: Uuid,
    f78: Uuid,
    pupil: Uuid,
    parent: Uuid,
    parent_token: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let (f92, f78) = (funder(&app.db, "92").await, funder(&app.db, "78").await);
    let seed = PupilSeed { key: "csv:1", grade: "6E", uai: "0921778H", boursier: false };
    let pupil = insert_pupils(&app.db, f92, &[seed]).await[0];
    let parent = account(&app, AccountKind::Parent, "parent@example.org").await;
    let parent_token = sign_in(&app, "parent@example.org", None).await;
    World { app, f92, f78, pupil, parent, parent_token }
}

async fn staff_token(app: &TestApp, email: &str, funder: Uuid, role: StaffRole) -> String {
    let (_, secret) = staff(app, email, &[(funder, role)]).await;
    sign_in(app, email, Some(&totp(&secret, 0))).await
}

#[tokio::test]
async fn a_staff_link_and_unlink_are_audited_and_apply_on_the_parents_next_request() {
    let w = world().await;
    let app = &w.app;
    let officer = staff_token(app, "officer@example.org", w.f92, StaffRole::EligibilityOfficer).await;
    assert_eq!(app.graphql_as(&w.parent_token, CHILDREN, json!({})).await["data"]["children"], json!([]));

    let linked = app.graphql_as(&officer, LINK, input(w.parent, w.pupil, "  Tuteur absent du dossier  ")).await;
    let change = &linked["data"]["linkChildToAccount"];
    assert_eq!(change["linked"], true, "{linked}");
    assert_eq!(change["reason"], "Tuteur absent du dossier");
    assert_eq!(change["author"], "officer@example.org");
    assert!(change["at"].is_string());
    let kids = app.graphql_as(&w.parent_token, CHILDREN, json!({})).await;
    assert_eq!(kids["data"]["children"], json!([{ "id": w.pupil.to_string() }]), "linked on the next request");

    let unlinked = app.graphql_as(&officer, UNLINK, input(w.parent, w.pupil, "Décision du juge")).await;
    assert_eq!(unlinked["data"]["unlinkChild"]["linked"], false, "{unlinked}");
    // Same session, next request: the child is gone.
    assert_eq!(app.graphql_as(&w.parent_token, CHILDREN, json!({})).await["data"]["children"], json!([]));

    let sql = "SELECT revoked_reason FROM family_link WHERE account_id = $1 AND via = 'staff'";
    let row = app.db.query_one_raw(stmt(app.db.get_database_backend(), sql, [w.parent.into()])).await.unwrap();
    assert_eq!(row.unwrap().try_get::<String>("", "revoked_reason").unwrap(), "Décision du juge");
    let actor = "officer@example.org".to_owned();
    assert_eq!(
        audit_rows(app).await,
        vec![
            ("link_child".into(), actor.clone(), w.parent, w.pupil, "Tuteur absent du dossier".into()),
            ("unlink_child".into(), actor, w.parent, w.pupil, "Décision du juge".into()),
        ]
    );
    // The pupil can be linked again later, by an admin this time.
    let admin = staff_token(app, "admin@example.org", w.f92, StaffRole::Admin).await;
    let again = app.graphql_as(&admin, LINK, input(w.parent, w.pupil, "Nouvelle décision")).await;
    assert_eq!(again["data"]["linkChildToAccount"]["linked"], true, "{again}");
    assert_eq!(
        app.graphql_as(&w.parent_token, CHILDREN, json!({})).await["data"]["children"].as_array().map(Vec::len),
        Some(1)
    );
    w.app.stop().await;
}

#[tokio::test]
async fn only_admins_and_eligibility_officers_of_the_pupils_funder_may_decide() {
    let w = world().await;
    let app = &w.app;
    let finance = staff_token(app, "finance@example.org", w.f92, StaffRole::FinanceOfficer).await;
    let auditor = staff_token(app, "auditor@example.org", w.f92, StaffRole::Auditor).await;
    let other_funder = staff_token(app, "other@example.org", w.f78, StaffRole::Admin).await;
    for (who, token) in
        [("finance", &finance), ("auditor", &auditor), ("78 admin", &other_funder), ("parent", &w.parent_token)]
    {
        for q in [LINK, UNLINK] {
            let body = app.graphql_as(token, q, input(w.parent, w.pupil, "reason")).await;
            assert_eq!(code(&body), "FORBIDDEN", "{who}: {body}");
        }
    }
    let body = app.graphql(LINK, input(w.parent, w.pupil, "reason")).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(audit_rows(app).await.is_empty(), "refusals write nothing");
    assert_eq!(app.graphql_as(&w.parent_token, CHILDREN, json!({})).await["data"]["children"], json!([]));
    w.app.stop().await;
}

#[tokio::test]
async fn bad_reasons_unknown_ids_and_repeated_decisions_are_refused_without_effect() {
    let w = world().await;
    let app = &w.app;
    let admin = staff_token(app, "admin@example.org", w.f92, StaffRole::Admin).await;
    let staff_account = Uuid::parse_str(
        app.graphql_as(&admin, "{ viewer { id } }", json!({})).await["data"]["viewer"]["id"].as_str().unwrap(),
    )
    .unwrap();
    let long = "x".repeat(501);
    let cases: Vec<(&str, Value, &str)> = vec![
        (LINK, input(w.parent, w.pupil, ""), "BAD_USER_INPUT"),
        (LINK, input(w.parent, w.pupil, "   "), "BAD_USER_INPUT"),
        (LINK, input(w.parent, w.pupil, &long), "BAD_USER_INPUT"),
        (LINK, input(w.parent, w.pupil, "bell\u{7}"), "BAD_USER_INPUT"),
        (LINK, input(Uuid::new_v4(), w.pupil, "reason"), "NOT_FOUND"),
        (LINK, input(w.parent, Uuid::new_v4(), "reason"), "NOT_FOUND"),
        (LINK, input(staff_account, w.pupil, "reason"), "BAD_USER_INPUT"),
        (UNLINK, input(w.parent, w.pupil, "not linked yet"), "NOT_FOUND"),
        (UNLINK, input(w.parent, Uuid::new_v4(), "reason"), "NOT_FOUND"),
        (
            LINK,
            json!({ "i": { "accountId": "nope", "pupilId": w.pupil.to_string(), "reason": "r" } }),
            "BAD_USER_INPUT",
        ),
    ];
    for (q, vars, expected) in &cases {
        let body = app.graphql_as(&admin, q, vars.clone()).await;
        assert_eq!(code(&body), *expected, "{vars}: {body}");
    }
    assert!(audit_rows(app).await.is_empty(), "nothing half-written");
    assert_eq!(
        app.graphql_as(&admin, LINK, input(w.parent, w.pupil, "ok")).await["data"]["linkChildToAccount"]["linked"],
        true
    );
    let twice = app.graphql_as(&admin, LINK, input(w.parent, w.pupil, "again")).await;
    assert_eq!(code(&twice), "CONFLICT", "{twice}");
    assert_eq!(audit_rows(app).await.len(), 1);
    w.app.stop().await;
}
