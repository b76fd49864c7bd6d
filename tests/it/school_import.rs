//! Roster import through the real database: every fixture, re-imports, leavers, malformed files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use passerelle_domain::db::stmt;
use passerelle_domain::school::import::*;
use passerelle_tests::aaf_gen::write_aaf_set;
use passerelle_tests::fresh_db;
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult, Value};
use uuid::Uuid;

pub(crate) const ENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ent/");
pub(crate) const AAF_ELEVE: &str = "EXCERPT_FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml";
pub(crate) const AAF_ETAB: &str = "FULL_ENTTSSERVICES_Complet_20130117_EtabEducNat_0000.xml";
pub(crate) const AAF_PERSREL: &str = "clean-FULL_ENTTSSERVICES_Complet_20130117_PersRelEleve_0000.xml";
pub(crate) const SIECLE_ELEVES: &str = "dossiersco_eleves_avec_adresse_avec_double_structure.xml";
pub(crate) const SIECLE_RESP: &str = "dossiersco_responsables_avec_adresses_simple.xml";
pub(crate) const SIECLE_NOMENCLATURE: &str = "dossiersco_nomenclature_simple.xml";

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        let d = std::env::temp_dir().join(format!("passerelle-import-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    pub(crate) fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!("{ENT}{name}"))
}

pub(crate) async fn funder(db: &DatabaseConnection) -> Uuid {
    let id = ensure_funder(db, "92", "Hauts-de-Seine", "92").await.unwrap();
    assert_eq!(ensure_funder(db, "92", "Hauts-de-Seine", "92").await.unwrap(), id, "idempotent");
    id
}

pub(crate) async fn import(
    db: &DatabaseConnection,
    funder: Uuid,
    format: RosterFormat,
    paths: &[PathBuf],
    full: bool,
) -> ImportSummary {
    let files: Vec<ImportFile> = paths.iter().map(ImportFile::from_path).collect();
    let options = ImportOptions { full_snapshot: full, author: "test".into() };
    let calls = AtomicU64::new(0);
    let progress = |p: &Progress| {
        assert!(p.bytes_read <= p.bytes_total, "{p:?}");
        calls.fetch_add(1, Ordering::Relaxed);
    };
    let s = import_roster(db, funder, format, &files, &options, &progress).await.unwrap();
    assert!(calls.load(Ordering::Relaxed) >= 1);
    s
}

pub(crate) async fn rows(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Vec<QueryResult> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values)).await.unwrap()
}

pub(crate) async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    rows(db, sql, vec![]).await[0].try_get("", "n").unwrap()
}

pub(crate) async fn pupil(db: &DatabaseConnection, key: &str) -> QueryResult {
    let sql = "SELECT * FROM pupil WHERE source_key = $1";
    rows(db, sql, vec![key.into()]).await.into_iter().next().unwrap_or_else(|| panic!("no pupil {key}"))
}

pub(crate) async fn guardian(db: &DatabaseConnection, key: &str) -> QueryResult {
    let sql = "SELECT * FROM guardian WHERE source_key = $1";
    rows(db, sql, vec![key.into()]).await.into_iter().next().unwrap_or_else(|| panic!("no guardian {key}"))
}

pub(crate) fn s(r: &QueryResult, col: &str) -> Option<String> {
    r.try_get("", col).unwrap()
}

/// (guardian key, legal level, relation code, stated_by) of a pupil's links, by guardian key.
pub(crate) async fn links_of(db: &DatabaseConnection, pupil_key: &str) -> Vec<(String, i16, String, String)> {
    let sql = "SELECT guardian_key, legal_level, relation_code, stated_by FROM guardianship \
               WHERE pupil_key = $1 ORDER BY guardian_key";
    rows(db, sql, vec![pupil_key.into()])
        .await
        .iter()
        .map(|r| {
            (
                r.try_get("", "guardian_key").unwrap(),
                r.try_get("", "legal_level").unwrap(),
                r.try_get("", "relation_code").unwrap(),
                r.try_get("", "stated_by").unwrap(),
            )
        })
        .collect()
}

/// (file, code, record key) of an import's stored issues.
async fn issues(db: &DatabaseConnection, import_id: Uuid) -> Vec<(String, String, Option<String>)> {
    import_issues(db, import_id, 1000).await.unwrap().into_iter().map(|i| (i.file, i.code, i.record_key)).collect()
}

/// The latest write time of every imported table: a no-op re-import must not move it.
pub(crate) async fn last_writes(db: &DatabaseConnection) -> Vec<i64> {
    let mut out = Vec::new();
    for t in ["pupil", "guardian", "guardianship", "school", "mef"] {
        out.push(count(db, &format!("SELECT COALESCE(MAX(updated_at_us), 0) AS n FROM {t}")).await);
        out.push(count(db, &format!("SELECT COUNT(*) AS n FROM {t}")).await);
    }
    out
}

pub(crate) fn assert_counts(s: &ImportSummary, created: u64, updated: u64, unchanged: u64, left: u64, rejected: u64) {
    assert_eq!(
        (s.created, s.updated, s.unchanged, s.left, s.rejected),
        (created, updated, unchanged, left, rejected),
        "{s:#?}"
    );
}

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

/// A SIECLE file in Latin-9 with a pupil who left (DATE_SORTIE in the past) and one who will.
pub(crate) fn siecle_eleves(uai: &str, pupils: &[(&str, &str, &str, Option<&str>)]) -> Vec<u8> {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<BEE_ELEVES VERSION=\"3.0\"><PARAMETRES><UAJ>{uai}</UAJ></PARAMETRES><DONNEES><ELEVES>\n"
    );
    for (id, family, given, left) in pupils {
        let left = left.map(|d| format!("<DATE_SORTIE>{d}</DATE_SORTIE>")).unwrap_or_default();
        xml.push_str(&format!(
            "<ELEVE ELEVE_ID=\"{id}\"><NOM_DE_FAMILLE>{family}</NOM_DE_FAMILLE><PRENOM>{given}</PRENOM><DATE_NAISS>02/03/2013</DATE_NAISS><CODE_MEF>10010012110</CODE_MEF>{left}</ELEVE>\n"
        ));
    }
    xml.push_str("</ELEVES></DONNEES></BEE_ELEVES>\n");
    latin9(&xml)
}

/// ISO-8859-15 bytes of a text (the test data only uses characters it has).
pub(crate) fn latin9(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            'Œ' => 0xBC,
            'œ' => 0xBD,
            'Š' => 0xA6,
            'š' => 0xA8,
            'Ž' => 0xB4,
            'ž' => 0xB8,
            'Ÿ' => 0xBE,
            '€' => 0xA4,
            c => u8::try_from(u32::from(c)).unwrap_or_else(|_| panic!("{c} is not Latin-9")),
        })
        .collect()
}

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

/// The body of an AAF file from its requests.
fn aaf(requests: &[String]) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ficAlimMENESR>\n{}\n</ficAlimMENESR>\n", requests.join("\n"))
}

fn category_attr(category: &str) -> &'static str {
    if category == "EtabEducNat" { "categorieStructure" } else { "categoriePersonne" }
}

fn values(vs: &[&str]) -> String {
    if vs.is_empty() {
        return "<value/>".to_owned();
    }
    vs.iter().map(|v| format!("<value>{v}</value>")).collect()
}

fn add(category: &str, id: &str, attrs: &[(&str, &[&str])]) -> String {
    let attrs: String = attrs.iter().map(|(n, vs)| format!("<attr name=\"{n}\">{}</attr>", values(vs))).collect();
    format!(
        "<addRequest><operationalAttributes><attr name=\"{}\"><value>{category}</value></attr></operationalAttributes>\
         <identifier><id>{id}</id></identifier><attributes>{attrs}</attributes></addRequest>",
        category_attr(category)
    )
}

fn modify(category: &str, id: &str, mods: &[(&str, &[&str])]) -> String {
    let mods: String = mods
        .iter()
        .map(|(n, vs)| format!("<modification name=\"{n}\" operation=\"replace\">{}</modification>", values(vs)))
        .collect();
    format!(
        "<modifyRequest><operationalAttributes><attr name=\"{}\"><value>{category}</value></attr></operationalAttributes>\
         <identifier><id>{id}</id></identifier><modifications>{mods}</modifications></modifyRequest>",
        category_attr(category)
    )
}

fn delete(category: &str, id: &str) -> String {
    format!(
        "<deleteRequest><operationalAttributes><attr name=\"{}\"><value>{category}</value></attr></operationalAttributes>\
         <identifier><id>{id}</id></identifier></deleteRequest>",
        category_attr(category)
    )
}

fn structure(id: &str, uai: &str, name: &str) -> String {
    add(
        "EtabEducNat",
        id,
        &[("ENTStructureUAI", &[uai]), ("ENTStructureNomCourant", &[name]), ("ENTStructureTypeStruct", &["COLLEGE"])],
    )
}

fn eleve(id: &str, family: &str, given: &str, structure: &str, class: &str, links: &[&str]) -> String {
    let class = format!("{structure}${class}");
    add(
        "Eleve",
        id,
        &[
            ("ENTPersonNomPatro", &[family]),
            ("givenName", &[given]),
            ("ENTPersonDateNaissance", &["04/07/2013"]),
            ("ENTPersonStructRattach", &[structure]),
            ("ENTEleveClasses", &[&class]),
            ("ENTEleveMEF", &["10010012110"]),
            ("ENTEleveBoursier", &["N"]),
            ("ENTElevePersRelEleve", links),
        ],
    )
}

fn parent(id: &str, family: &str, given: &str, pupils: &[&str]) -> String {
    add(
        "PersRelEleve",
        id,
        &[("ENTPersonNomPatro", &[family]), ("givenName", &[given]), ("ENTAuxPersRelEleveEleve", pupils)],
    )
}

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
    let codes: Vec<String> = issues(db, sum.import_id).await.into_iter().map(|i| i.1).collect();
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
    assert!("xls".parse::<RosterFormat>().is_err());
}

pub(crate) const CSV: &str = "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;echelon;\
resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;date_sortie\r\n\
0921778H;070832327JA;501;LEFÈVRE;Chloé;02/03/2013;10010012110;6 A;O;2;9001;1;10;LEFÈVRE;Hélène;h@example.org;0600000001;1;1;\r\n\
0921778H;070832327JA;501;LEFÈVRE;Chloé;02/03/2013;10010012110;6 A;O;2;9002;2;20;MARTIN;Jérôme;;0600000002;0;0;\r\n\
0921779H;;502;CŒUR;Noé;04/05/2012;10110001110;5 B;N;;9003;1;10;CŒUR;Zoé;;;;;\r\n\
0921778H;070832327JA;501;LEFÈVRE;Chloé;02/03/2013;10010012110;6 A;O;2;9001;1;10;LEFÈVRE;Hélène;h@example.org;0600000001;1;1;\r\n";

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
    let codes: Vec<String> = issues(db, sum.import_id).await.into_iter().map(|i| i.1).collect();
    assert_eq!(codes, ["CSV_LATIN9", "UAI_CHECK_LETTER"]);
    assert_eq!(last_writes(db).await, before);
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
    let codes: Vec<String> = issues(db, sum.import_id).await.into_iter().map(|i| i.1).collect();
    assert_eq!(codes, ["MISSING_NAME", "PUPIL_REJECTED"]);
    let p2 = pupil(db, "aaf:2").await;
    assert_eq!(s(&p2, "given_name").as_deref(), Some("Léo"));
    assert_eq!(p2.try_get::<Option<NaiveDate>>("", "left_at").unwrap(), None);
}

/// The import's future can run on a multi-threaded runtime (axum, tokio::spawn).
#[allow(dead_code)]
fn import_future_is_send(db: &DatabaseConnection) {
    fn assert_send<T: Send>(_: T) {}
    let progress = |_: &Progress| {};
    assert_send(import_roster(db, Uuid::nil(), RosterFormat::Aaf, &[], &ImportOptions::default(), &progress));
}
