//! Leavers: a SIECLE leaving date, a pupil missing from a full snapshot of its school (and
//! only its school), a generated set imported with fewer pupils and then whole again, and a
//! pupil refused by an import who stays on the roster.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use passerelle_domain::school::import::*;
use passerelle_tests::aaf_gen::write_aaf_set;
use passerelle_tests::roster::files::{aaf, eleve, siecle_eleves};
use passerelle_tests::roster::{TempDir, assert_counts, funder, import, issue_codes, links_of, pupil, s};
use passerelle_tests::{count, fresh_db};
use sea_orm::QueryResult;

#[tokio::test]
async fn siecle_leaving_dates_and_snapshot_scope_by_school() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let a = dir.write(
        "a.xml",
        siecle_eleves(
            "0921778H",
            &[
                ("1", "DE LA FŒUILLÉE", "Chloé", None),
                ("2", "MÉNARD", "Loïc", Some("15/01/2020")),
                ("3", "BENOÎT", "Zoé", Some("30/06/2999")),
            ],
        ),
    );
    let b = dir.write("b.xml", siecle_eleves("0752387M", &[("10", "PÉREZ", "Inès", None)]));
    let sum = import(db, f, RosterFormat::Siecle, &[a, b], true).await;
    assert_counts(&sum, 4, 0, 0, 0, 0);
    let p1 = pupil(db, "siecle:1").await;
    assert_eq!(
        (s(&p1, "family_name").as_deref(), s(&p1, "given_name").as_deref()),
        (Some("DE LA FŒUILLÉE"), Some("Chloé"))
    );
    let left = |r: &QueryResult| r.try_get::<Option<NaiveDate>>("", "left_at").unwrap();
    assert_eq!(left(&pupil(db, "siecle:2").await), NaiveDate::from_ymd_opt(2020, 1, 15));
    assert_eq!(left(&pupil(db, "siecle:3").await), None); // leaves later: still there
    assert_eq!(sum.schools.created, 2);

    // A full snapshot of school A only: pupil 3 is missing from it and leaves; school B's
    // pupil is out of scope.
    let a2 = dir.write(
        "a2.xml",
        siecle_eleves(
            "0921778H",
            &[("1", "DE LA FŒUILLÉE", "Chloé", None), ("2", "MÉNARD", "Loïc", Some("15/01/2020"))],
        ),
    );
    let sum = import(db, f, RosterFormat::Siecle, &[a2], true).await;
    assert_counts(&sum, 0, 0, 2, 1, 0);
    assert!(left(&pupil(db, "siecle:3").await).is_some());
    assert_eq!(left(&pupil(db, "siecle:10").await), None);
}

#[tokio::test]
async fn snapshot_leavers_are_marked_kept_and_come_back() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let (full, part) = (TempDir::new(), TempDir::new());
    let all_set = write_aaf_set(&full.0, 300, 5).unwrap();
    let all: Vec<PathBuf> = all_set.files().map(Path::to_owned).collect();
    // The same seed with fewer pupils: the same first 240 pupils and families; the families
    // of the last 60 pupils are gone with them (a family that started before pupil 240 stays).
    let fewer_set = write_aaf_set(&part.0, 240, 5).unwrap();
    let fewer: Vec<PathBuf> = fewer_set.files().map(Path::to_owned).collect();
    let gone_guardians = (all_set.guardians - fewer_set.guardians) as u64;
    assert!(gone_guardians > 0);
    import(db, f, RosterFormat::Aaf, &all, true).await;

    let sum = import(db, f, RosterFormat::Aaf, &fewer, true).await;
    assert_counts(&sum, 0, 0, 240, 60, 0);
    assert_eq!((sum.guardians.left, sum.guardians.unchanged as usize), (gone_guardians, fewer_set.guardians));
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM pupil").await, 300, "leavers are kept");
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM pupil WHERE left_at IS NOT NULL").await, 60);
    let left_guardians = "SELECT COUNT(*) AS n FROM guardian WHERE left_at IS NOT NULL";
    assert_eq!(count(db, left_guardians).await as u64, gone_guardians);
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM guardian").await as usize, all_set.guardians, "kept too");
    let gone = pupil(db, "aaf:3000299").await;
    assert!(gone.try_get::<Option<NaiveDate>>("", "left_at").unwrap().is_some());
    // A leaver's links to guardians who left with them end; a link to a guardian still there
    // (an older sibling stays) loses only the guardian's voice.
    assert!(links_of(db, "aaf:3000299").await.is_empty(), "its family left too");
    let to_left = "SELECT COUNT(*) AS n FROM guardianship x JOIN guardian g ON g.funder_id = x.funder_id \
                   AND g.source_key = x.guardian_key WHERE g.left_at IS NOT NULL";
    assert_eq!(count(db, to_left).await, 0);
    let pupil_only = count(db, "SELECT COUNT(*) AS n FROM guardianship WHERE stated_by = 'pupil'").await as u64;
    assert_eq!(sum.links.updated, pupil_only);
    assert_eq!(sum.links.ended + pupil_only, (all_set.links - fewer_set.links) as u64);
    assert_eq!(sum.links.created, 0);

    // A partial (not full) import never marks anyone.
    let sum = import(db, f, RosterFormat::Aaf, &fewer[1..], false).await;
    assert_eq!((sum.left, sum.guardians.left, sum.links.ended), (0, 0, 0));

    // Back in the roster: left_at cleared, counted updated, the links back.
    let sum = import(db, f, RosterFormat::Aaf, &all, true).await;
    assert_counts(&sum, 0, 60, 240, 0, 0);
    assert_eq!((sum.guardians.updated, sum.guardians.left), (gone_guardians, 0));
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM pupil WHERE left_at IS NOT NULL").await, 0);
    assert_eq!(count(db, left_guardians).await, 0);
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM guardianship").await as usize, all_set.links);
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM guardianship WHERE stated_by <> 'both'").await, 0);
}

#[tokio::test]
async fn a_refused_pupil_is_counted_reported_and_not_a_leaver() {
    let t = fresh_db().await;
    let db = &t.db;
    let f = funder(db).await;
    let dir = TempDir::new();
    let first = dir.write(
        "a.xml",
        aaf(&[eleve("1", "DUPONT", "Zoé", "92001", "601", &[]), eleve("2", "MARTIN", "Léo", "92001", "601", &[])]),
    );
    import(db, f, RosterFormat::Aaf, &[first], true).await;
    // Pupil 2 comes back without a given name: refused, but still on the roster.
    let second = dir.write(
        "b.xml",
        aaf(&[eleve("1", "DUPONT", "Zoé", "92001", "601", &[]), eleve("2", "MARTIN", "", "92001", "601", &[])]),
    );
    let sum = import(db, f, RosterFormat::Aaf, &[second], true).await;
    assert_counts(&sum, 0, 0, 1, 0, 1);
    let codes = issue_codes(db, sum.import_id).await;
    assert_eq!(codes, ["MISSING_NAME", "PUPIL_REJECTED"]);
    let p2 = pupil(db, "aaf:2").await;
    assert_eq!(s(&p2, "given_name").as_deref(), Some("Léo"));
    assert_eq!(p2.try_get::<Option<NaiveDate>>("", "left_at").unwrap(), None);
}
