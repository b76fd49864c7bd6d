//! Roster details kept by the import: MEF labels (AAF per pupil, SIECLE through its
//! nomenclature, whatever the file order) and the counts of guardians, schools and links, read
//! back from the database, through GraphQL and in the summary the CLI prints.

use passerelle_domain::auth::StaffRole;
use passerelle_domain::school::import::*;
use passerelle_tests::accounts::{sign_in, staff, totp};
use passerelle_tests::count;
use passerelle_tests::roster::files::{CSV, latin9, siecle_eleves};
use passerelle_tests::roster::{
    AAF_ELEVE, AAF_ETAB, AAF_PERSREL, TempDir, fixture, funder, import, last_writes, pupil, s,
};
use passerelle_tests::{TestApp, fresh_db};
use serde_json::{Value, json};
use uuid::Uuid;

/// A Latin-9 `BEE_NOMENCLATURES` file with these (CODE_MEF, LIBELLE_LONG).
fn nomenclature(mefs: &[(&str, &str)]) -> Vec<u8> {
    let mut xml = "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<BEE_NOMENCLATURES VERSION=\"3.1\">\
                   <PARAMETRES><UAJ>0921778H</UAJ></PARAMETRES><DONNEES><MEFS>\n"
        .to_owned();
    for (code, label) in mefs {
        xml.push_str(&format!(
            "<MEF CODE_MEF=\"{code}\"><FORMATION>X</FORMATION><LIBELLE_LONG>{label}</LIBELLE_LONG>\
             <LIBELLE_EDITION>{label}</LIBELLE_EDITION></MEF>\n"
        ));
    }
    xml.push_str("</MEFS></DONNEES></BEE_NOMENCLATURES>\n");
    latin9(&xml)
}

#[tokio::test]
async fn mef_labels_come_from_the_siecle_nomenclature_in_any_order_and_apply_by_code() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let eleves = dir.write("eleves.xml", siecle_eleves("0921778H", &[("1", "DUPONT", "Zoé", None)]));
    // The nomenclature after the pupils: the pupil is written first, then labelled.
    let nomenclature_1 =
        dir.write("nomenclature.xml", nomenclature(&[("10010012110", "6EME"), ("10110001110", "5EME")]));
    let both = [eleves.clone(), nomenclature_1];
    let sum = import(db, f, RosterFormat::Siecle, &both, true).await;
    assert_eq!((sum.created, sum.files[1].records), (1, 2));
    assert_eq!(s(&pupil(db, "siecle:1").await, "mef_label").as_deref(), Some("6EME"));
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM mef").await, 2);

    // The same files, then the pupils alone: nothing changes, nothing is written.
    let before = last_writes(db).await;
    let sum = import(db, f, RosterFormat::Siecle, &both, true).await;
    assert_eq!(sum.unchanged, 1);
    let sum = import(db, f, RosterFormat::Siecle, std::slice::from_ref(&eleves), true).await;
    assert_eq!(sum.unchanged, 1);
    assert_eq!(last_writes(db).await, before);
    assert_eq!(s(&pupil(db, "siecle:1").await, "mef_label").as_deref(), Some("6EME"), "kept");

    // A new nomenclature alone relabels the pupils of that code.
    let nomenclature_2 = dir.write("nomenclature-2.xml", nomenclature(&[("10010012110", "6EME BILANGUE")]));
    import(db, f, RosterFormat::Siecle, &[nomenclature_2], false).await;
    assert_eq!(s(&pupil(db, "siecle:1").await, "mef_label").as_deref(), Some("6EME BILANGUE"));
    assert_ne!(last_writes(db).await, before);

    // A CSV (which has no labels) gets the label of a known code.
    let csv = dir.write("eleves.csv", CSV);
    import(db, f, RosterFormat::Csv, &[csv], true).await;
    assert_eq!(s(&pupil(db, "csv:502").await, "mef_label").as_deref(), Some("5EME"));
    assert_eq!(s(&pupil(db, "csv:501").await, "mef_label").as_deref(), Some("6EME BILANGUE"));
}

const ROSTER_IMPORTS: &str = "query($f: ID!) { rosterImports(funderId: $f, first: 10) { edges { node { \
    created updated unchanged left rejected warnings \
    guardians { created updated unchanged left rejected } schools { created updated unchanged } \
    links { created updated ended oneSided } } } } }";

const IMPORT_ROSTER: &str = "mutation($i: ImportRosterInput!) { importRoster(input: $i) { status \
    created updated unchanged left guardians { created unchanged left } schools { created updated } \
    links { created ended } } }";

/// Uploads a CSV (`POST /uploads`) and imports it with `importRoster` as a full snapshot, as an
/// eligibility officer of `funder` (uploads need one); the mutation's answer.
async fn import_csv_through_graphql(app: &TestApp, funder: Uuid, text: String) -> Value {
    let email = format!("importer-{}@example.org", Uuid::new_v4().simple());
    let (_, secret) = staff(app, &email, &[(funder, StaffRole::EligibilityOfficer)]).await;
    let token = sign_in(app, &email, Some(&totp(&secret, 0))).await;
    let sent = app.client.post(app.url("/uploads")).bearer_auth(&token).body(text).send().await.unwrap();
    let r: Value = sent.json().await.unwrap();
    let id = r["id"].as_str().unwrap_or_else(|| panic!("{r}"));
    let input = json!({ "i": { "funderId": funder.to_string(), "format": "CSV", "uploadIds": [id] } });
    let body = app.graphql_as(&token, IMPORT_ROSTER, input).await;
    assert_eq!(body["data"]["importRoster"]["status"], "SUCCEEDED", "{body}");
    body["data"]["importRoster"].clone()
}

#[tokio::test]
async fn counts_are_stored_and_listed_and_mef_labels_shown_through_graphql() {
    let app = TestApp::spawn_back_office().await;
    let db = &app.db;
    let f = funder(db).await;
    let paths = [fixture(AAF_ELEVE), fixture(AAF_ETAB), fixture(AAF_PERSREL)];
    let first = import(db, f, RosterFormat::Aaf, &paths, true).await;

    // What the CLI prints with `--json`: the pupil counts at the top, the others beside them.
    let printed = serde_json::to_value(&first).unwrap();
    for (key, n) in [("created", 8), ("updated", 0), ("unchanged", 0), ("left", 0), ("rejected", 0), ("warnings", 7)] {
        assert_eq!(printed[key], n, "{key}: {printed}");
    }
    assert_eq!(printed["guardians"], json!({ "created": 8, "updated": 0, "unchanged": 0, "left": 0, "rejected": 0 }));
    assert_eq!(printed["schools"]["created"], 10);
    assert_eq!(printed["links"], json!({ "created": 18, "updated": 0, "ended": 0, "one_sided": 0 }));
    import(db, f, RosterFormat::Aaf, &paths, true).await;

    let q = "query($f: ID!) { pupils(filter: { funderId: $f, text: \"burke\" }) { edges { node { givenName gradeLevel mefLabel } } } }";
    let body = app.graphql(q, json!({ "f": f.to_string() })).await;
    assert_eq!(
        body["data"]["pupils"]["edges"][0]["node"],
        json!({ "givenName": "Åslög", "gradeLevel": "CINQUIEME", "mefLabel": "5EME" }),
        "{body}"
    );

    let body = app.graphql(ROSTER_IMPORTS, json!({ "f": f.to_string() })).await;
    let nodes: Vec<&Value> = body["data"]["rosterImports"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| &e["node"])
        .collect();
    let zero_links = json!({ "created": 0, "updated": 0, "ended": 0, "oneSided": 0 });
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        nodes[1],
        &json!({
            "created": 8, "updated": 0, "unchanged": 0, "left": 0, "rejected": 0, "warnings": 7,
            "guardians": { "created": 8, "updated": 0, "unchanged": 0, "left": 0, "rejected": 0 },
            "schools": { "created": 10, "updated": 0, "unchanged": 0 },
            "links": { "created": 18, "updated": 0, "ended": 0, "oneSided": 0 }
        })
    );
    let again = nodes[0];
    let unchanged = (&again["unchanged"], &again["guardians"]["unchanged"], &again["schools"]["unchanged"]);
    assert_eq!(unchanged, (&json!(8), &json!(8), &json!(10)), "{body}");
    assert_eq!(
        (&again["created"], &again["guardians"]["created"], &again["links"]),
        (&json!(0), &json!(0), &zero_links)
    );

    // Through `importRoster`: a CSV, then the same without one guardian (9002), who leaves
    // and whose link ends.
    let got = import_csv_through_graphql(&app, f, CSV.to_owned()).await;
    assert_eq!((got["created"].as_u64(), got["unchanged"].as_u64()), (Some(2), Some(0)));
    assert_eq!(got["guardians"], json!({ "created": 3, "unchanged": 0, "left": 0 }));
    assert_eq!((got["schools"]["created"].as_u64(), got["links"]["created"].as_u64()), (Some(2), Some(3)));
    let without: String = CSV.split_inclusive('\n').filter(|l| !l.contains(";9002;")).collect();
    let got = import_csv_through_graphql(&app, f, without).await;
    assert_eq!(got["guardians"], json!({ "created": 0, "unchanged": 2, "left": 1 }));
    assert_eq!(got["links"], json!({ "created": 0, "ended": 1 }));
    assert_eq!((got["unchanged"].as_u64(), got["left"].as_u64()), (Some(2), Some(0)));
    let body = app.graphql(ROSTER_IMPORTS, json!({ "f": f.to_string() })).await;
    let latest = &body["data"]["rosterImports"]["edges"][0]["node"];
    assert_eq!(latest["guardians"]["left"], 1, "{body}");
    assert_eq!(latest["links"]["ended"], 1);
    app.stop().await;
}
