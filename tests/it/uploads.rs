//! `POST /uploads`: staff who may import rosters, in every environment (production included),
//! through the one authentication extractor; files bound to their uploader.

use passerelle_domain::auth::{AccountKind, StaffRole};
use passerelle_tests::accounts::{account, sign_in, staff, totp};
use passerelle_tests::school::funder;
use passerelle_tests::{TestApp, code};
use serde_json::{Value, json};

const CSV: &str = "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;\
echelon;resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;\
date_sortie\r\n0921778H;070832327JA;501;LEFÈVRE;Chloé;02/03/2013;10010012110;6 A;O;2;9001;1;10;LEFÈVRE;Hélène;\
h@example.org;0600000001;1;1;\r\n";

const IMPORT: &str = "mutation($i: ImportRosterInput!) { importRoster(input: $i) { status created } }";

async fn upload(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(app.url("/uploads")).body(CSV);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

fn import_input(funder: uuid::Uuid, upload: &str) -> Value {
    json!({ "i": { "funderId": funder.to_string(), "format": "CSV", "uploadIds": [upload] } })
}

#[tokio::test]
async fn anonymous_callers_and_bad_tokens_get_401_parents_and_auditors_403() {
    let app = TestApp::spawn().await;
    let f = funder(&app.db, "92").await;

    let anonymous = upload(&app, None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(code(&anonymous.json().await.unwrap()), "UNAUTHENTICATED");

    let forged = upload(&app, Some("not-a-token")).await;
    assert_eq!(forged.status(), 401);
    assert_eq!(code(&forged.json().await.unwrap()), "UNAUTHENTICATED");

    account(&app, AccountKind::Parent, "parent@example.org").await;
    let parent = sign_in(&app, "parent@example.org", None).await;
    let refused = upload(&app, Some(&parent)).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(code(&refused.json().await.unwrap()), "FORBIDDEN");

    // Staff, but not allowed to import rosters.
    let (_, secret) = staff(&app, "auditor@example.org", &[(f, StaffRole::Auditor)]).await;
    let auditor = sign_in(&app, "auditor@example.org", Some(&totp(&secret, 0))).await;
    let refused = upload(&app, Some(&auditor)).await;
    assert_eq!(refused.status(), 403);

    // Nothing was stored for any of them.
    let stored = std::fs::read_dir(app.data_dir.join("uploads")).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "refused uploads leave no file");
    app.stop().await;
}

#[tokio::test]
async fn in_production_staff_upload_and_import_and_no_one_else_can_use_the_upload() {
    let app = TestApp::spawn_with(&[("PASSERELLE_ENV", "production")]).await;
    let (f92, f78) = (funder(&app.db, "92").await, funder(&app.db, "78").await);
    let (_, secret_a) = staff(&app, "a@example.org", &[(f92, StaffRole::EligibilityOfficer)]).await;
    let (_, secret_b) = staff(&app, "b@example.org", &[(f78, StaffRole::Admin)]).await;
    let a = sign_in(&app, "a@example.org", Some(&totp(&secret_a, 0))).await;
    let b = sign_in(&app, "b@example.org", Some(&totp(&secret_b, 0))).await;

    let r = upload(&app, Some(&a)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();

    // Staff of another funder: not for their own funder (the file is not theirs) nor for A's.
    let body = app.graphql_as(&b, IMPORT, import_input(f78, &id)).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app.graphql_as(&b, IMPORT, import_input(f92, &id)).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    // The uploader imports it.
    let body = app.graphql_as(&a, IMPORT, import_input(f92, &id)).await;
    assert_eq!(body["data"]["importRoster"]["status"], "SUCCEEDED", "{body}");
    assert_eq!(body["data"]["importRoster"]["created"], 1, "{body}");
    app.stop().await;
}
