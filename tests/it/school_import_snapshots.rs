//! What full SIECLE and CSV snapshots say by omission: guardians who are gone are marked left
//! (and come back), responsibilities no longer listed end, and a family-link code can then no
//! longer reach a former guardian.

use passerelle_domain::auth::AccountKind;
use passerelle_domain::funder::ensure_funder_by_code;
use passerelle_domain::school::import::*;
use passerelle_tests::TestApp;
use passerelle_tests::accounts::{account, sign_in};
use passerelle_tests::count;
use passerelle_tests::roster::files::{latin9, siecle_eleves};
use passerelle_tests::roster::{TempDir, assert_counts, funder, guardian, import, last_writes, links_of};
use passerelle_tests::smtp::{SmtpSink, digits};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

/// A person of a SIECLE responsables file: (PERSONNE_ID, family name, given name).
type Person<'a> = (&'a str, &'a str, &'a str);

/// A Latin-9 `BEE_RESPONSABLES` file: the people, then the (ELEVE_ID, PERSONNE_ID, level)
/// responsibilities.
fn siecle_responsables(uai: &str, people: &[Person<'_>], resp: &[(&str, &str, u8)]) -> Vec<u8> {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<BEE_RESPONSABLES VERSION=\"2.1\"><PARAMETRES><UAJ>{uai}</UAJ>\
         </PARAMETRES><DONNEES><PERSONNES>\n"
    );
    for (id, family, given) in people {
        xml.push_str(&format!(
            "<PERSONNE PERSONNE_ID=\"{id}\"><LC_CIVILITE>MME</LC_CIVILITE><NOM_DE_FAMILLE>{family}</NOM_DE_FAMILLE>\
             <PRENOM>{given}</PRENOM><MEL>{id}@example.org</MEL></PERSONNE>\n"
        ));
    }
    xml.push_str("</PERSONNES><RESPONSABLES>\n");
    for (pupil, person, level) in resp {
        xml.push_str(&format!(
            "<RESPONSABLE_ELEVE><ELEVE_ID>{pupil}</ELEVE_ID><PERSONNE_ID>{person}</PERSONNE_ID>\
             <NIVEAU_RESPONSABILITE>{level}</NIVEAU_RESPONSABILITE><CODE_PARENTE>10</CODE_PARENTE>\
             <PERCOIT_LES_AIDES>true</PERCOIT_LES_AIDES></RESPONSABLE_ELEVE>\n"
        ));
    }
    xml.push_str("</RESPONSABLES></DONNEES></BEE_RESPONSABLES>\n");
    latin9(&xml)
}

async fn left(db: &DatabaseConnection, key: &str) -> bool {
    guardian(db, key).await.try_get::<Option<chrono::NaiveDate>>("", "left_at").unwrap().is_some()
}

/// The guardian keys of a pupil's links.
async fn guardians_of(db: &DatabaseConnection, pupil: &str) -> Vec<String> {
    links_of(db, pupil).await.into_iter().map(|l| l.0).collect()
}

const A: &str = "0921778H";
const B: &str = "0752387M";
const MOTHER: Person<'static> = ("100", "DUPONT", "Hélène");
const FATHER: Person<'static> = ("200", "DUPONT", "Jérôme");
const GRANDMA: Person<'static> = ("300", "ROUSSEAU", "Odette");
const TUTOR: Person<'static> = ("400", "PÉREZ", "Inès");

#[tokio::test]
async fn siecle_snapshots_end_dropped_responsibilities_and_mark_missing_guardians_left() {
    let t = passerelle_tests::fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    // School A: Zoé and her brother Léo; school B: Noé, whose tutor is Léo's father too.
    let eleves_a =
        dir.write("a-eleves.xml", siecle_eleves(A, &[("1", "DUPONT", "Zoé", None), ("2", "DUPONT", "Léo", None)]));
    let eleves_b = dir.write("b-eleves.xml", siecle_eleves(B, &[("10", "PÉREZ", "Noé", None)]));
    let family = [MOTHER, FATHER, GRANDMA];
    let all_resp = [("1", "100", 1), ("1", "200", 1), ("2", "100", 1), ("2", "200", 1), ("2", "300", 0)];
    let resp_a = dir.write("a-resp.xml", siecle_responsables(A, &family, &all_resp));
    let resp_b =
        dir.write("b-resp.xml", siecle_responsables(B, &[FATHER, TUTOR], &[("10", "200", 2), ("10", "400", 1)]));
    let first = [eleves_a.clone(), resp_a.clone(), eleves_b, resp_b];
    let sum = import(db, f, RosterFormat::Siecle, &first, true).await;
    assert_counts(&sum, 3, 0, 0, 0, 0);
    assert_eq!((sum.guardians.created, sum.links.created), (4, 7));

    // School A again: the father no longer has Zoé in his care and the grandmother is gone.
    let resp_a2 = dir.write(
        "a-resp2.xml",
        siecle_responsables(A, &[MOTHER, FATHER], &[("1", "100", 1), ("2", "100", 1), ("2", "200", 1)]),
    );
    let sum = import(db, f, RosterFormat::Siecle, &[eleves_a.clone(), resp_a2], true).await;
    assert_counts(&sum, 0, 0, 2, 0, 0);
    assert_eq!((sum.guardians.unchanged, sum.guardians.left, sum.guardians.updated), (2, 1, 0));
    assert_eq!((sum.links.ended, sum.links.created, sum.links.updated), (2, 0, 0));
    assert_eq!(guardians_of(db, "siecle:1").await, ["siecle:100"]);
    assert_eq!(guardians_of(db, "siecle:2").await, ["siecle:100", "siecle:200"]);
    assert!(left(db, "siecle:300").await, "kept, marked left");
    assert!(!left(db, "siecle:200").await && !left(db, "siecle:400").await);
    // School B was not in this snapshot: its links stand.
    assert_eq!(guardians_of(db, "siecle:10").await, ["siecle:200", "siecle:400"]);

    // The father leaves school A's file altogether: still Noé's guardian in school B, so he
    // has not left; only his link in A ends.
    let resp_a3 = dir.write("a-resp3.xml", siecle_responsables(A, &[MOTHER], &[("1", "100", 1), ("2", "100", 1)]));
    let sum = import(db, f, RosterFormat::Siecle, &[eleves_a.clone(), resp_a3], true).await;
    assert_eq!((sum.guardians.left, sum.links.ended), (0, 1));
    assert!(!left(db, "siecle:200").await);
    assert_eq!(guardians_of(db, "siecle:2").await, ["siecle:100"]);

    // A pupils file sent without its guardians file says nothing about families.
    let before = last_writes(db).await;
    let sum = import(db, f, RosterFormat::Siecle, std::slice::from_ref(&eleves_a), true).await;
    assert_eq!((sum.unchanged, sum.guardians.left, sum.links.ended), (2, 0, 0));
    assert_eq!(last_writes(db).await, before, "nothing written");

    // The first set again: the grandmother is back, active, with her link.
    let sum = import(db, f, RosterFormat::Siecle, &first, true).await;
    assert_eq!((sum.guardians.updated, sum.guardians.unchanged, sum.guardians.left), (1, 3, 0));
    assert_eq!((sum.links.created, sum.links.ended), (3, 0));
    assert!(!left(db, "siecle:300").await);
    assert_eq!(guardians_of(db, "siecle:2").await, ["siecle:100", "siecle:200", "siecle:300"]);
    let before = last_writes(db).await;
    let sum = import(db, f, RosterFormat::Siecle, &first, true).await;
    assert_eq!((sum.unchanged, sum.guardians.unchanged, sum.links), (3, 4, LinkCounts::default()));
    assert_eq!(last_writes(db).await, before, "a re-import writes nothing");
}

const HEADER: &str = "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;\
echelon;resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;date_sortie\n";
const LEA: &str = "0921778H;;900001;MARTIN;Léa;14/03/2015;10010012110;6A;N;";
const HUGO: &str = "0921778H;;900002;MARTIN;Hugo;07/05/2012;10110001110;5B;N;";
const CLAIRE: &str = ";800001;1;10;MARTIN;Claire;claire@example.org;;1;1;";
const MARC: &str = ";800002;1;20;MARTIN;Marc;marc@example.org;;0;0;";
const NOBODY: &str = ";;;;;;;;;;";

/// A département CSV whose rows are (pupil part, guardian part).
fn csv(rows: &[(&str, &str)]) -> String {
    let mut out = HEADER.to_owned();
    for (pupil, guardian) in rows {
        out.push_str(&format!("{pupil}{guardian}\n"));
    }
    out
}

async fn import_csv(app: &TestApp, funder: Uuid, name: &str, text: &str) -> ImportSummary {
    let path = app.data_dir.join(name);
    std::fs::write(&path, text).unwrap();
    let files = [ImportFile { name: name.into(), path }];
    let options = ImportOptions { full_snapshot: true, author: "test".into() };
    import_roster(&app.db, funder, RosterFormat::Csv, &files, &options, &|_| {}).await.unwrap()
}

/// Asks for a code to link Léa; the body of the answer.
async fn ask_for_lea(app: &TestApp, token: &str) -> Value {
    let q = "mutation($i: RequestChildLinkInput!) { requestChildLink(input: $i) { challengeId } }";
    let lea = json!({ "uai": "0921778H", "pupilFamilyName": "MARTIN", "pupilGivenName": "Léa", "pupilBirthDate": "2015-03-14" });
    let body = app.graphql_as(token, q, json!({ "i": lea })).await;
    assert!(body["data"]["requestChildLink"]["challengeId"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn a_csv_snapshot_that_drops_a_guardian_stops_link_codes_to_them() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    let f = ensure_funder_by_code(&app.db, "92", "Hauts-de-Seine", "92").await.unwrap().id;
    account(&app, AccountKind::Parent, "someone@example.org").await;
    let token = sign_in(&app, "someone@example.org", None).await;
    let both = csv(&[(LEA, CLAIRE), (LEA, MARC), (HUGO, CLAIRE), (HUGO, MARC)]);
    let sum = import_csv(&app, f, "1.csv", &both).await;
    assert_eq!((sum.created, sum.guardians.created, sum.links.created), (2, 2, 4));
    // Two legal guardians: the code goes to the first one on the record, Claire.
    ask_for_lea(&app, &token).await;
    let mail = sink.next_to("claire@example.org").await;
    assert!(digits(&mail.data, 6).is_some());

    // A court decision: Claire keeps Hugo but no longer Léa. She is still on the roster.
    let sum = import_csv(&app, f, "2.csv", &csv(&[(LEA, MARC), (HUGO, CLAIRE), (HUGO, MARC)])).await;
    assert_eq!((sum.links.ended, sum.links.created, sum.guardians.left), (1, 0, 0));
    ask_for_lea(&app, &token).await;
    assert_eq!(sink.wait_for("marc@example.org", 1).await.len(), 1, "the code went to Marc");
    assert_eq!(sink.messages_to("claire@example.org").len(), 1, "no code for the former guardian");

    // Marc leaves the roster: marked left, his links end; Léa has nobody to send a code to.
    let sum = import_csv(&app, f, "3.csv", &csv(&[(LEA, NOBODY), (HUGO, CLAIRE)])).await;
    assert_eq!((sum.guardians.left, sum.guardians.unchanged, sum.links.ended), (1, 1, 2));
    assert!(links_of(&app.db, "csv:900001").await.is_empty());
    ask_for_lea(&app, &token).await;
    assert_eq!(sink.messages_to("marc@example.org").len(), 1, "no code for a guardian who left");
    assert_eq!(sink.messages_to("claire@example.org").len(), 1);

    // Both back on the next roster: Marc is active again and Léa's code goes to Claire.
    let sum = import_csv(&app, f, "4.csv", &both).await;
    assert_eq!((sum.guardians.updated, sum.guardians.left, sum.links.created), (1, 0, 3));
    ask_for_lea(&app, &token).await;
    assert_eq!(sink.wait_for("claire@example.org", 2).await.len(), 2);
    let stored = count(&app.db, "SELECT COUNT(*) AS n FROM guardian WHERE left_at IS NOT NULL").await;
    assert_eq!(stored, 0);
    app.stop().await;
}
