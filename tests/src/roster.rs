//! Roster imports for tests: the committed ENT fixtures, an import that checks its progress
//! reports, and readers of what an import wrote (pupils, guardians, links, issues). The file
//! builders (AAF requests, SIECLE and CSV files) are in [`files`].

pub mod files;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use passerelle_domain::db::stmt;
use passerelle_domain::school::import::{
    ImportFile, ImportOptions, ImportSummary, Progress, RosterFormat, ensure_funder, import_issues, import_roster,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, QueryResult, Value};
use uuid::Uuid;

use crate::db::count;

/// The committed ENT fixtures (`shared/fixtures/ent/`).
pub const ENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ent/");
pub const AAF_ELEVE: &str = "EXCERPT_FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml";
pub const AAF_ETAB: &str = "FULL_ENTTSSERVICES_Complet_20130117_EtabEducNat_0000.xml";
pub const AAF_PERSREL: &str = "clean-FULL_ENTTSSERVICES_Complet_20130117_PersRelEleve_0000.xml";
pub const SIECLE_ELEVES: &str = "dossiersco_eleves_avec_adresse_avec_double_structure.xml";
pub const SIECLE_RESP: &str = "dossiersco_responsables_avec_adresses_simple.xml";
pub const SIECLE_NOMENCLATURE: &str = "dossiersco_nomenclature_simple.xml";

/// The path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!("{ENT}{name}"))
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let d = std::env::temp_dir().join(format!("passerelle-import-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }

    /// Writes `name` in the directory; its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Hauts-de-Seine funder (created once: a second call finds the same one).
pub async fn funder(db: &DatabaseConnection) -> Uuid {
    let id = ensure_funder(db, "92", "Hauts-de-Seine", "92").await.expect("ensure funder");
    assert_eq!(ensure_funder(db, "92", "Hauts-de-Seine", "92").await.expect("ensure funder"), id, "idempotent");
    id
}

/// Imports `paths` (a full snapshot if `full`); checks that progress was reported and stayed
/// within the files' size.
pub async fn import(
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
    let s = import_roster(db, funder, format, &files, &options, &progress).await.expect("import");
    assert!(calls.load(Ordering::Relaxed) >= 1, "progress is reported");
    s
}

/// The pupil and guardian counts of a summary: (created, updated, unchanged, left, rejected).
pub fn assert_counts(s: &ImportSummary, created: u64, updated: u64, unchanged: u64, left: u64, rejected: u64) {
    assert_eq!(
        (s.created, s.updated, s.unchanged, s.left, s.rejected),
        (created, updated, unchanged, left, rejected),
        "{s:#?}"
    );
}

/// Every row of a query, for assertions that pick columns by name with [`s`].
pub async fn rows(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Vec<QueryResult> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values)).await.expect("query")
}

/// The whole stored row of a pupil, by source key.
pub async fn pupil(db: &DatabaseConnection, key: &str) -> QueryResult {
    let sql = "SELECT * FROM pupil WHERE source_key = $1";
    rows(db, sql, vec![key.into()]).await.into_iter().next().unwrap_or_else(|| panic!("no pupil {key}"))
}

/// The whole stored row of a guardian, by source key.
pub async fn guardian(db: &DatabaseConnection, key: &str) -> QueryResult {
    let sql = "SELECT * FROM guardian WHERE source_key = $1";
    rows(db, sql, vec![key.into()]).await.into_iter().next().unwrap_or_else(|| panic!("no guardian {key}"))
}

/// A nullable text column of a row.
pub fn s(r: &QueryResult, col: &str) -> Option<String> {
    // By name: each assertion picks its column of a `SELECT *`, which no derive describes.
    r.try_get("", col).unwrap_or_else(|e| panic!("column {col}: {e}"))
}

#[derive(FromQueryResult)]
struct Link {
    guardian_key: String,
    legal_level: i16,
    relation_code: String,
    stated_by: String,
}

/// (guardian key, legal level, relation code, stated_by) of a pupil's links, by guardian key.
pub async fn links_of(db: &DatabaseConnection, pupil_key: &str) -> Vec<(String, i16, String, String)> {
    let sql = "SELECT guardian_key, legal_level, relation_code, stated_by FROM guardianship \
               WHERE pupil_key = $1 ORDER BY guardian_key";
    let links = Link::find_by_statement(stmt(db.get_database_backend(), sql, [pupil_key.into()])).all(db).await;
    links.expect("links").into_iter().map(|l| (l.guardian_key, l.legal_level, l.relation_code, l.stated_by)).collect()
}

/// (file, code, record key) of an import's stored issues.
pub async fn issues(db: &DatabaseConnection, import_id: Uuid) -> Vec<(String, String, Option<String>)> {
    let stored = import_issues(db, import_id, 1000).await.expect("issues");
    stored.into_iter().map(|i| (i.file, i.code, i.record_key)).collect()
}

/// The codes of an import's stored issues, in order.
pub async fn issue_codes(db: &DatabaseConnection, import_id: Uuid) -> Vec<String> {
    issues(db, import_id).await.into_iter().map(|i| i.1).collect()
}

/// The latest write time and row count of every imported table: a no-op re-import moves neither.
pub async fn last_writes(db: &DatabaseConnection) -> Vec<i64> {
    let mut out = Vec::new();
    for t in ["pupil", "guardian", "guardianship", "school", "mef"] {
        out.push(count(db, &format!("SELECT COALESCE(MAX(updated_at_us), 0) AS n FROM {t}")).await);
        out.push(count(db, &format!("SELECT COUNT(*) AS n FROM {t}")).await);
    }
    out
}
