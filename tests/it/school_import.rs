//! Roster import through the real database, format by format: the committed AAF and SIECLE
//! fixtures, a CSV in UTF-8 and in Latin-9, and a malformed file that rejects the whole import.

use chrono::NaiveDate;
use passerelle_domain::school::import::*;
use passerelle_tests::roster::files::{CSV, aaf, eleve, latin9, parent, structure};
use passerelle_tests::roster::{
    AAF_ELEVE, AAF_ETAB, AAF_PERSREL, SIECLE_ELEVES, SIECLE_NOMENCLATURE, SIECLE_RESP, TempDir, assert_counts, fixture,
    funder, guardian, import, issue_codes, issues, last_writes, links_of, pupil, rows, s,
};
use passerelle_tests::{count, fresh_db};
use sea_orm::{DatabaseConnection, QueryResult};
use uuid::Uuid;

#[tokio::test]
async fn aaf_fixtures_pupils_guardians_links_schools_and_bad_uais() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    // Pupils before their structures: the UAIs are resolved at the end whatever the order.
    let paths = [fixture(AAF_ELEVE), fixture(AAF_ETAB), fixture(AAF_PERSREL)];
    let sum = import(db, f, RosterFormat::Aaf, &paths, true).await;
    assert_eq!(sum.status, ImportStatus::Succeeded);
    assert_counts(&sum, 8, 0, 0, 0, 0);
    assert_eq!((sum.guardians.created, sum.schools.created), (8, 10));
    assert_eq!((sum.links.created, sum.links.one_sided), (18, 0));
    assert_eq!(sum.warnings, 7); // 6 pseudo-structure UAIs + 1 CAP MEF
    assert_eq!(sum.files.iter().map(|f| f.records).collect::<Vec<_>>(), [8, 10, 8]);

    let p = pupil(db, "aaf:2605692").await;
    assert_eq!(
        (s(&p, "family_name"), s(&p, "usage_name"), s(&p, "given_name")),
        (Some("AZOT".into()), Some("Long".into()), Some("Kù".into()))
    );
    assert_eq!(s(&p, "siecle_id").as_deref(), Some("837982"));
    assert_eq!(p.try_get::<Option<NaiveDate>>("", "birth_date").unwrap(), NaiveDate::from_ymd_opt(1995, 9, 14));
    assert_eq!((s(&p, "school_key").as_deref(), s(&p, "uai").as_deref()), (Some("aaf:52006"), Some("0059951P")));
    assert_eq!((s(&p, "class_name").as_deref(), s(&p, "grade")), (Some("RUS1TERM"), None)); // CAP: no collège level
    assert_eq!(p.try_get::<Option<bool>>("", "boursier").unwrap(), Some(false));
    // ENTEleveLibelleMEF, as exported (even for a MEF that is not a collège level).
    assert_eq!(s(&p, "mef_label").as_deref(), Some("1CAP2  COIFFURE"));
    let p2 = pupil(db, "aaf:2605693").await;
    assert_eq!((s(&p2, "given_name").as_deref(), s(&p2, "grade").as_deref()), (Some("Åslög"), Some("5E")));
    assert_eq!(s(&p2, "mef_label").as_deref(), Some("5EME"));
    assert_eq!((s(&p2, "uai").as_deref(), s(&p2, "class_name").as_deref()), (Some("1013001F"), Some("213")));
    let names = rows(db, "SELECT given_name FROM pupil ORDER BY source_key", vec![]).await;
    let names: Vec<String> = names.iter().map(|r| r.try_get("", "given_name").unwrap()).collect();
    assert_eq!(names, ["Kù", "Åslög", "Uò", "Amélie", "Cécile", "Styrbjörn", "Michèle", "Noémie"]);

    // Legal levels from the old link codes; a contact has level 0. Only the pupil side says so.
    assert_eq!(
        links_of(db, "aaf:2605692").await,
        [("aaf:2867253".into(), 1, "2".into(), "pupil".into()), ("aaf:2867254".into(), 2, "1".into(), "pupil".into())]
    );
    assert_eq!(links_of(db, "aaf:2605693").await[0], ("aaf:2866652".into(), 0, "4".into(), "pupil".into()));

    let g = guardian(db, "aaf:1986923").await;
    assert_eq!(
        (s(&g, "family_name"), s(&g, "usage_name"), s(&g, "given_name")),
        (Some("LYBLE".into()), Some("Nichols".into()), Some("Mélodie".into()))
    );
    assert_eq!(
        (s(&g, "title").as_deref(), s(&g, "postal_code").as_deref(), s(&g, "city").as_deref()),
        (Some("M."), Some("04100"), Some("MANOSQUE"))
    );
    assert_eq!(s(&guardian(db, "aaf:2002782").await, "title"), None);

    // Pseudo-structures are kept, flagged, and their warnings stored as issues.
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM school WHERE uai_valid = false").await, 6);
    let sch = rows(db, "SELECT * FROM school WHERE source_key = 'aaf:52000'", vec![]).await;
    assert_eq!(
        (s(&sch[0], "uai").as_deref(), s(&sch[0], "academie").as_deref()),
        (Some("1004001V"), Some("AIX-MARSEILLE"))
    );
    let stored = issues(db, sum.import_id).await;
    let bad_uai: Vec<_> = stored.iter().filter(|i| i.1 == "UAI_CHECK_LETTER").collect();
    assert_eq!(bad_uai.len(), 6);
    assert!(bad_uai.iter().all(|i| i.0 == AAF_ETAB));
    assert_eq!(bad_uai[0].2.as_deref(), Some("52000"));
    assert!(stored.contains(&(AAF_ELEVE.into(), "UNKNOWN_MEF".into(), Some("2605692".into()))));

    // The import is listed with its counts.
    let listed = list_imports(db, f, 10, None).await.unwrap();
    assert_eq!(
        (listed.len(), listed[0].status, listed[0].created, listed[0].warnings),
        (1, ImportStatus::Succeeded, 8, 7)
    );
    assert_eq!(listed[0].files[2].name, AAF_PERSREL);
    assert!(listed[0].finished_at_us.is_some());
    assert_eq!((listed[0].guardians, listed[0].schools, listed[0].links), (sum.guardians, sum.schools, sum.links));

    // Importing it again changes nothing.
    let before = last_writes(db).await;
    let again = import(db, f, RosterFormat::Aaf, &paths, true).await;
    assert_counts(&again, 0, 0, 8, 0, 0);
    assert_eq!((again.guardians.unchanged, again.schools.unchanged, again.links), (8, 10, LinkCounts::default()));
    assert_eq!(last_writes(db).await, before);
}

#[tokio::test]
async fn siecle_fixtures_pupil_division_guardians_addresses_and_links() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let paths = [fixture(SIECLE_ELEVES), fixture(SIECLE_RESP), fixture(SIECLE_NOMENCLATURE)];
    let sum = import(db, f, RosterFormat::Siecle, &paths, false).await;
    assert_eq!(sum.status, ImportStatus::Succeeded, "{sum:#?}");
    assert_counts(&sum, 1, 0, 0, 0, 0);
    assert_eq!((sum.guardians.created, sum.schools.created, sum.links.created, sum.warnings), (3, 1, 3, 0));
    // The nomenclature's one MEF label is kept for its code; the fixture pupil's MEF (3e) is
    // not in it, so the pupil has no label.
    assert_eq!(sum.files[2].records, 1);
    let mefs = rows(db, "SELECT code, label FROM mef", vec![]).await;
    assert_eq!(mefs.len(), 1);
    assert_eq!((s(&mefs[0], "code"), s(&mefs[0], "label")), (Some("10110001110".into()), Some("5EME".into())));

    let p = pupil(db, "siecle:1541944").await;
    assert_eq!((s(&p, "family_name").as_deref(), s(&p, "given_name").as_deref()), (Some("ESCAGLIA"), Some("Jeanine")));
    assert_eq!((s(&p, "ine").as_deref(), s(&p, "grade").as_deref()), (Some("070876696HA"), Some("3E")));
    // The division (D) from the later STRUCTURES section, not the group (G).
    assert_eq!((s(&p, "class_name").as_deref(), s(&p, "uai").as_deref()), (Some("301"), Some("0660864F")));
    assert_eq!(s(&p, "school_key").as_deref(), Some("uai:0660864F"));
    assert_eq!(p.try_get::<Option<NaiveDate>>("", "left_at").unwrap(), None);
    assert_eq!(s(&p, "mef_label"), None);
    let sch = rows(db, "SELECT uai, uai_valid FROM school WHERE source_key = 'uai:0660864F'", vec![]).await;
    assert!(sch[0].try_get::<bool>("", "uai_valid").unwrap());

    // The address comes after the people, as a patch applied before the guardian is written.
    let g = guardian(db, "siecle:209401").await;
    assert_eq!(
        (s(&g, "title").as_deref(), s(&g, "family_name").as_deref(), s(&g, "given_name").as_deref()),
        (Some("MME"), Some("ROCK"), Some("Maryline"))
    );
    assert_eq!(
        (s(&g, "postal_code").as_deref(), s(&g, "city").as_deref()),
        (Some("14270"), Some("MEZIDON VALLEE D AUGE"))
    );
    assert_eq!(s(&g, "mobile").as_deref(), Some("+33764444288"));

    let l =
        rows(db, "SELECT * FROM guardianship WHERE pupil_key = 'siecle:610308' ORDER BY guardian_key", vec![]).await;
    assert_eq!(l.len(), 2);
    let flags = |r: &QueryResult| -> (i16, bool, Option<bool>, Option<bool>, String) {
        (
            r.try_get("", "legal_level").unwrap(),
            r.try_get("", "financial").unwrap(),
            r.try_get("", "receives_aid").unwrap(),
            r.try_get("", "houses_pupil").unwrap(),
            r.try_get("", "stated_by").unwrap(),
        )
    };
    assert_eq!(flags(&l[0]), (1, true, Some(true), Some(true), "pupil".into()));
    // Split family: the other legal guardian neither receives the aid nor houses the child.
    assert_eq!(flags(&l[1]), (1, false, Some(false), Some(false), "pupil".into()));

    let before = last_writes(db).await;
    let again = import(db, f, RosterFormat::Siecle, &paths, false).await;
    assert_counts(&again, 0, 0, 1, 0, 0);
    assert_eq!((again.guardians.unchanged, again.links), (3, LinkCounts::default()));
    assert_eq!(last_writes(db).await, before);
}

#[tokio::test]
async fn csv_in_utf8_with_bom_and_in_latin9() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(CSV.as_bytes());
    let utf8 = dir.write("eleves-utf8.csv", bom);
    let sum = import(db, f, RosterFormat::Csv, &[utf8], true).await;
    // Pupil 501's last row is not next to the others: read twice, counted once.
    assert_counts(&sum, 2, 0, 0, 0, 0);
    assert_eq!((sum.guardians.created, sum.links.created, sum.schools.created), (3, 3, 2));
    let stored = issues(db, sum.import_id).await;
    assert_eq!(stored, [("eleves-utf8.csv".into(), "UAI_CHECK_LETTER".into(), Some("502".into()))]);

    let p = pupil(db, "csv:501").await;
    assert_eq!((s(&p, "family_name").as_deref(), s(&p, "given_name").as_deref()), (Some("LEFÈVRE"), Some("Chloé")));
    assert_eq!((s(&p, "class_name").as_deref(), s(&p, "grade").as_deref()), (Some("6 A"), Some("6E")));
    assert_eq!((s(&p, "uai").as_deref(), s(&p, "school_key").as_deref()), (Some("0921778H"), Some("uai:0921778H")));
    assert_eq!(p.try_get::<Option<i16>>("", "echelon").unwrap(), Some(2));
    assert_eq!(p.try_get::<Option<bool>>("", "boursier").unwrap(), Some(true));
    assert_eq!(s(&pupil(db, "csv:502").await, "family_name").as_deref(), Some("CŒUR"));
    assert_eq!(s(&guardian(db, "csv:9001").await, "given_name").as_deref(), Some("Hélène"));
    let l = rows(db, "SELECT * FROM guardianship WHERE pupil_key = 'csv:501' ORDER BY guardian_key", vec![]).await;
    let aid = |r: &QueryResult| -> (String, i16, Option<bool>, Option<bool>) {
        (
            r.try_get("", "guardian_key").unwrap(),
            r.try_get("", "legal_level").unwrap(),
            r.try_get("", "receives_aid").unwrap(),
            r.try_get("", "houses_pupil").unwrap(),
        )
    };
    assert_eq!(aid(&l[0]), ("csv:9001".into(), 1, Some(true), Some(true)));
    assert_eq!(aid(&l[1]), ("csv:9002".into(), 2, Some(false), Some(false)));
    let schools = rows(db, "SELECT uai_valid FROM school ORDER BY source_key", vec![]).await;
    let valid: Vec<bool> = schools.iter().map(|r| r.try_get("", "uai_valid").unwrap()).collect();
    assert_eq!(valid, [true, false]);

    // The same rows saved by a Windows spreadsheet (Latin-9): the same names, nothing changes.
    let before = last_writes(db).await;
    let latin = dir.write("eleves-latin9.csv", latin9(CSV));
    let sum = import(db, f, RosterFormat::Csv, &[latin], true).await;
    assert_counts(&sum, 0, 0, 2, 0, 0);
    assert_eq!((sum.guardians.unchanged, sum.schools.unchanged), (3, 2));
    let codes = issue_codes(db, sum.import_id).await;
    assert_eq!(codes, ["CSV_LATIN9", "UAI_CHECK_LETTER"]);
    assert_eq!(last_writes(db).await, before);
}

#[tokio::test]
async fn malformed_file_rejects_the_whole_import() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let good = dir.write("ENT_Complet_20250901_EtabEducNat_0000.xml", aaf(&[structure("92001", "0921778H", "CLG$A")]));
    let broken = format!(
        "<ficAlimMENESR>\n{}\n{}\n<addRequest><identifier><id>9</valeur></identifier></addRequest>\n</ficAlimMENESR>\n",
        eleve("1", "DUPONT", "Zoé", "92001", "601", &["100$10$1$1$1$1"]),
        parent("100", "DUPONT", "Hélène", &["1"]),
    );
    let bad = dir.write("ENT_Complet_20250901_Eleve_0000.xml", broken);
    let files = [ImportFile::from_path(&good), ImportFile::from_path(&bad)];
    let options = ImportOptions { full_snapshot: true, author: "test".into() };
    let sum = import_roster(db, f, RosterFormat::Aaf, &files, &options, &|_| {}).await.unwrap();
    assert_eq!(sum.status, ImportStatus::Rejected);
    assert_counts(&sum, 0, 0, 0, 0, 0);
    let e = sum.files[1].error.clone().expect("the broken file has the error");
    assert_eq!((e.file.as_str(), e.line), ("ENT_Complet_20250901_Eleve_0000.xml", 4));
    assert!(e.column > 1, "{e}");
    assert!(sum.files[0].error.is_none() && sum.files[0].records == 1);
    let err = sum.error.clone().unwrap();
    assert!(err.starts_with("ENT_Complet_20250901_Eleve_0000.xml:4:"), "{err}");

    // Nothing of it was written, not even the good file before it.
    for table in ["school", "pupil", "guardian", "guardianship"] {
        assert_eq!(count(db, &format!("SELECT COUNT(*) AS n FROM {table}")).await, 0, "{table}");
    }
    let listed = list_imports(db, f, 10, None).await.unwrap();
    assert_eq!((listed[0].status, listed[0].error.as_deref()), (ImportStatus::Rejected, Some(err.as_str())));
    let stored = import_issues(db, sum.import_id, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].code.as_str(), stored[0].line, stored[0].column), ("MALFORMED_FILE", 4, e.column));
    let refused = sum.into_result().unwrap_err();
    assert_eq!(refused.code(), "BAD_USER_INPUT");
    assert!(refused.to_string().contains(":4:"), "{refused}");

    // Bad requests are refused before anything starts.
    let none = import_roster(db, f, RosterFormat::Aaf, &[], &options, &|_| {}).await.unwrap_err();
    assert_eq!(none.code(), "BAD_USER_INPUT");
    let missing = [ImportFile { name: "nope.xml".into(), path: dir.0.join("nope.xml") }];
    let missing = import_roster(db, f, RosterFormat::Aaf, &missing, &options, &|_| {}).await.unwrap_err();
    assert!(missing.to_string().contains("nope.xml"), "{missing}");
    let unknown =
        import_roster(db, Uuid::now_v7(), RosterFormat::Aaf, &files[..1], &options, &|_| {}).await.unwrap_err();
    assert_eq!(unknown.code(), "NOT_FOUND");
    assert_eq!(list_imports(db, f, 10, None).await.unwrap().len(), 1);
    assert_eq!("SIECLE".parse::<RosterFormat>().unwrap(), RosterFormat::Siecle);
    assert_eq!("xls".parse::<RosterFormat>().unwrap_err().to_string(), "Matching variant not found");
}

/// The import's future can run on a multi-threaded runtime (axum, tokio::spawn).
#[allow(dead_code)]
fn import_future_is_send(db: &DatabaseConnection) {
    fn assert_send<T: Send>(_: T) {}
    let progress = |_: &Progress| {};
    assert_send(import_roster(db, Uuid::nil(), RosterFormat::Aaf, &[], &ImportOptions::default(), &progress));
}
