//! AAF specifics through the real database: delta files (modify and delete requests),
//! links stated by one side only, the import history page by page, and a generated set of
//! 700 pupils imported twice.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use passerelle_domain::school::import::*;
use passerelle_tests::aaf_gen::write_aaf_set;
use passerelle_tests::roster::files::{aaf, delete, eleve, modify, parent, structure};
use passerelle_tests::roster::{
    TempDir, assert_counts, funder, guardian, import, issue_codes, issues, last_writes, links_of, pupil, rows, s,
};
use passerelle_tests::{count, fresh_db};
use uuid::Uuid;

#[tokio::test]
async fn aaf_delete_and_modify_requests() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let base = dir.write(
        "ENT_Complet_20250901_Eleve_0000.xml",
        aaf(&[
            structure("92001", "0921778H", "CLG$JOLIOT-CURIE"),
            structure("92002", "0752387M", "CLG$ANDRÉ MALRAUX"),
            eleve("1", "DUPONT", "Zoé", "92001", "601", &["100$10$1$1$1$1", "200$20$0$2$0$0"]),
            eleve("2", "MARTIN", "Léo", "92001", "602", &["100$10$1$1$1$1"]),
            eleve("3", "PETIT", "Inès", "92001", "603", &[]),
            parent("100", "DUPONT", "Hélène", &["1", "2"]),
            parent("200", "DUPONT", "Jérôme", &["1"]),
        ]),
    );
    let sum = import(db, f, RosterFormat::Aaf, &[base], true).await;
    assert_counts(&sum, 3, 0, 0, 0, 0);
    assert_eq!(links_of(db, "aaf:1").await[1], ("aaf:200".into(), 2, "20".into(), "both".into()));

    let delta = dir.write(
        "ENT_Delta_20251001_Eleve_0000.xml",
        aaf(&[
            modify(
                "Eleve",
                "1",
                &[
                    ("ENTPersonStructRattach", &["92002"]),
                    ("ENTEleveClasses", &["92002$5 B"]),
                    ("ENTEleveBoursier", &["O"]),
                    ("ENTEleveMEF", &["10110001110"]),
                    ("ENTElevePersRelEleve", &["100$10$1$1$1$1"]),
                ],
            ),
            delete("Eleve", "2"),
            modify("Eleve", "3", &[("givenName", &[])]),
            modify("Eleve", "999", &[("ENTEleveBoursier", &["O"])]),
            modify("PersRelEleve", "100", &[("mail", &["helene.dupont@example.org"])]),
            delete("PersRelEleve", "200"),
            modify("EtabEducNat", "92002", &[("ENTStructureNomCourant", &["CLG$ANDRÉ MALRAUX II"])]),
            delete("EtabEducNat", "92001"),
        ]),
    );
    let sum = import(db, f, RosterFormat::Aaf, &[delta], false).await;
    assert_eq!(sum.status, ImportStatus::Succeeded);
    // Pupil 1 patched, pupil 2 left, pupil 3's patch refused (no given name), 999 unknown.
    assert_counts(&sum, 0, 1, 0, 1, 2);
    assert_eq!((sum.guardians.updated, sum.guardians.left, sum.schools.updated), (1, 1, 1));
    let codes = issue_codes(db, sum.import_id).await;
    assert_eq!(codes, ["DELETE_IGNORED", "UNKNOWN_RECORD", "PUPIL_REJECTED"]);
    assert_eq!(sum.warnings, 3);
    // No guardian record of this delta names anyone: nothing to report as one-sided. The
    // father's link ends: the pupil's new list leaves him out, and he was deleted anyway.
    assert_eq!((sum.links.updated, sum.links.ended, sum.links.one_sided), (0, 1, 0));

    let p1 = pupil(db, "aaf:1").await;
    assert_eq!((s(&p1, "class_name").as_deref(), s(&p1, "grade").as_deref()), (Some("5 B"), Some("5E")));
    assert_eq!((s(&p1, "school_key").as_deref(), s(&p1, "uai").as_deref()), (Some("aaf:92002"), Some("0752387M")));
    assert_eq!(p1.try_get::<Option<bool>>("", "boursier").unwrap(), Some(true));
    assert_eq!((s(&p1, "given_name").as_deref(), s(&p1, "siecle_id")), (Some("Zoé"), None), "untouched fields kept");
    // The link list was replaced, and the father left: only the mother's link is current.
    assert_eq!(links_of(db, "aaf:1").await, [("aaf:100".into(), 1, "10".into(), "both".into())]);
    let p2 = pupil(db, "aaf:2").await;
    assert!(p2.try_get::<Option<NaiveDate>>("", "left_at").unwrap().is_some());
    assert_eq!(s(&pupil(db, "aaf:3").await, "given_name").as_deref(), Some("Inès"));
    assert_eq!(s(&guardian(db, "aaf:100").await, "email").as_deref(), Some("helene.dupont@example.org"));
    assert!(guardian(db, "aaf:200").await.try_get::<Option<NaiveDate>>("", "left_at").unwrap().is_some());
    let school = rows(db, "SELECT name FROM school WHERE source_key = 'aaf:92002'", vec![]).await;
    assert_eq!(school[0].try_get::<String>("", "name").unwrap(), "CLG - ANDRÉ MALRAUX II");
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM school").await, 2, "schools are never deleted");

    // The same delta again: the deletes and patches are already applied.
    let delta2 = dir.write(
        "again.xml",
        aaf(&[delete("Eleve", "2"), modify("PersRelEleve", "100", &[("mail", &["helene.dupont@example.org"])])]),
    );
    let sum = import(db, f, RosterFormat::Aaf, &[delta2], false).await;
    assert_counts(&sum, 0, 0, 1, 0, 0);
    assert_eq!(sum.guardians.unchanged, 1);
}

#[tokio::test]
async fn one_sided_links_are_reported_and_replaced_links_removed() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let first = dir.write(
        "a.xml",
        aaf(&[
            eleve("1", "DUPONT", "Zoé", "92001", "601", &["100$10$1$1$0$0", "300$39$0$0$1$0"]),
            parent("100", "DUPONT", "Hélène", &["1"]),
            // Names pupil 1, who does not name this person back.
            parent("200", "INCONNU", "Paul", &["1"]),
        ]),
    );
    let sum = import(db, f, RosterFormat::Aaf, &[first], true).await;
    assert_eq!(sum.links.one_sided, 1);
    assert_eq!(
        links_of(db, "aaf:1").await,
        [
            ("aaf:100".into(), 1, "10".into(), "both".into()),
            ("aaf:200".into(), 0, "".into(), "guardian".into()),
            ("aaf:300".into(), 0, "39".into(), "pupil".into())
        ]
    );
    let stored = issues(db, sum.import_id).await;
    assert_eq!(stored, [("".into(), "LINK_ONE_SIDED".into(), Some("200".into()))]);

    // The next full snapshot: the pupil no longer names 300 and person 200 no longer names the
    // pupil; both links are gone.
    let second = dir.write(
        "b.xml",
        aaf(&[
            eleve("1", "DUPONT", "Zoé", "92001", "601", &["100$10$1$1$0$0"]),
            parent("100", "DUPONT", "Hélène", &["1"]),
            parent("200", "INCONNU", "Paul", &[]),
        ]),
    );
    let sum = import(db, f, RosterFormat::Aaf, &[second], true).await;
    assert_eq!((sum.links.ended, sum.links.one_sided, sum.links.created), (2, 0, 0));
    assert_eq!(links_of(db, "aaf:1").await, [("aaf:100".into(), 1, "10".into(), "both".into())]);
}

#[tokio::test]
async fn imports_are_listed_newest_first_page_by_page() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let file = dir.write("a.xml", aaf(&[eleve("1", "DUPONT", "Zoé", "92001", "601", &[])]));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(import(db, f, RosterFormat::Aaf, std::slice::from_ref(&file), false).await.import_id);
    }
    let page = list_imports(db, f, 2, None).await.unwrap();
    assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[2], ids[1]]);
    assert_eq!((page[0].author.as_str(), page[0].format, page[0].unchanged), ("test", RosterFormat::Aaf, 1));
    let last = page.last().unwrap();
    let next = list_imports(db, f, 2, Some((last.started_at_us, last.id))).await.unwrap();
    assert_eq!(next.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[0]]);
    assert!(list_imports(db, Uuid::now_v7(), 10, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn generated_set_reimport_is_idempotent() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let set = write_aaf_set(&dir.0, 700, 11).unwrap();
    let paths: Vec<PathBuf> = set.files().map(Path::to_owned).collect();
    let first = import(db, f, RosterFormat::Aaf, &paths, true).await;
    assert_counts(&first, 700, 0, 0, 0, 0);
    assert_eq!((first.guardians.created as usize, first.schools.created), (set.guardians, 120));
    assert_eq!(first.links.created as usize, set.links);
    assert_eq!(first.links.one_sided, 0);
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM guardianship WHERE stated_by <> 'both'").await, 0);
    let legal = count(db, "SELECT COUNT(*) AS n FROM guardianship WHERE legal_level > 0").await;
    assert_eq!(legal as usize, set.legal_links);
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM pupil WHERE boursier = true").await as usize, set.boursiers);
    // Every pupil got its collège's UAI; the Latin-9 structure names read right.
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM pupil WHERE uai LIKE '092%'").await, 700);
    let names = rows(db, "SELECT name FROM school WHERE source_key IN ('aaf:920001', 'aaf:920008')", vec![]).await;
    let mut names: Vec<String> = names.iter().map(|r| r.try_get("", "name").unwrap()).collect();
    names.sort();
    assert_eq!(names, ["CLG - SŒUR EMMANUELLE", "CLG - ÉVARISTE GALOIS"]);

    let before = last_writes(db).await;
    let second = import(db, f, RosterFormat::Aaf, &paths, true).await;
    assert_counts(&second, 0, 0, 700, 0, 0);
    assert_eq!(second.guardians.unchanged as usize, set.guardians);
    assert_eq!((second.schools.unchanged, second.links), (120, LinkCounts::default()));
    assert_eq!(second.warnings, first.warnings);
    assert_eq!(last_writes(db).await, before);
}
