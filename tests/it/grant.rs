//! Campaigns, eligibility and the yearly grant through the real database.

use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::eligibility::{Computed, get_eligibility, recompute, set_eligibility};
use passerelle_domain::grant::run_grant;
use passerelle_domain::ledger::{AccountSpec, Wallet, audit, ensure_account, get_account};
use passerelle_tests::fresh_db;
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

async fn wallet_balances(db: &DatabaseConnection, campaign: Uuid, pupil: Uuid) -> Option<(i64, i64)> {
    let funder = passerelle_domain::campaign::get_campaign(db, campaign).await.unwrap().funder_id;
    let sql = "SELECT id FROM pass WHERE campaign_id = $1 AND pupil_id = $2";
    let row = db
        .query_one_raw(passerelle_domain::db::stmt(db.get_database_backend(), sql, [campaign.into(), pupil.into()]))
        .await
        .unwrap()?;
    let pass: Uuid = row.try_get("", "id").unwrap();
    let mut out = vec![];
    for w in Wallet::ALL {
        let acc = ensure_account(db, AccountSpec::pass_wallet(funder, campaign, pass, w)).await.unwrap();
        out.push(get_account(db, acc.id).await.unwrap().unwrap().counters.available());
    }
    Some((out[0], out[1]))
}

async fn assert_clean(db: &DatabaseConnection) {
    let report = audit(db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

#[tokio::test]
async fn a_changed_policy_is_a_new_version_and_an_identical_one_is_not() {
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let p = Policy::pass_plus("92", 2026);
    let c1 = upsert_campaign(&t.db, f, 2026, "Pass+ 2026-27", &p, "staff:a").await.unwrap();
    let c2 = upsert_campaign(&t.db, f, 2026, "Pass+ 2026-27", &p, "staff:a").await.unwrap();
    assert_eq!((c1.id, c1.policy_version, c2.policy_version), (c2.id, 1, 1));
    let mut p2 = p.clone();
    p2.wallets[0].base.0 = 4500;
    p2.wallets[0].boursier.0 = 5500;
    let c3 = upsert_campaign(&t.db, f, 2026, "Pass+ 2026-27", &p2, "staff:b").await.unwrap();
    assert_eq!((c3.policy_version, c3.policy.wallets[0].base.0), (2, 4500));
    let mut bad = p.clone();
    bad.eligible_grades.clear();
    let e = upsert_campaign(&t.db, f, 2026, "x", &bad, "staff:a").await.unwrap_err();
    assert_eq!(e.code(), "BAD_USER_INPUT");
    assert_eq!(upsert_campaign(&t.db, Uuid::new_v4(), 2026, "x", &p, "a").await.unwrap_err().code(), "NOT_FOUND");
}

#[tokio::test]
async fn grant_twice_credits_once_and_a_late_boursier_is_topped_up_once() {
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let c = upsert_campaign(&t.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "staff").await.unwrap();
    let ids = insert_pupils(
        &t.db,
        f,
        &[
            PupilSeed { key: "aaf:1", grade: "6E", uai: "0921778H", boursier: false },
            PupilSeed { key: "aaf:2", grade: "4E", uai: "0921778H", boursier: true },
            PupilSeed { key: "aaf:3", grade: "5E", uai: "0752387M", boursier: false },
            PupilSeed { key: "aaf:4", grade: "OTHER", uai: "0921778H", boursier: false },
        ],
    )
    .await;
    let r = recompute(&t.db, c.id).await.unwrap();
    assert_eq!((r.eligible, r.ineligible, r.review), (2, 2, 0));
    let first = run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!((first.passes, first.passes_created, first.credits, first.credited_cents), (2, 2, 3, 18_000));
    assert_eq!(wallet_balances(&t.db, c.id, ids[0]).await, Some((4000, 4000)));
    assert_eq!(wallet_balances(&t.db, c.id, ids[1]).await, Some((5000, 5000)));
    assert_eq!(wallet_balances(&t.db, c.id, ids[2]).await, None, "a Paris school gets no pass");

    let second = run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!((second.passes_created, second.credits, second.already_done, second.credited_cents), (0, 0, 3, 0));

    // The first pupil turns out to be boursier: one top-up, once.
    let sql = "UPDATE pupil SET boursier = TRUE WHERE id = $1";
    t.db.execute_raw(passerelle_domain::db::stmt(t.db.get_database_backend(), sql, [ids[0].into()])).await.unwrap();
    let third = run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!((third.credits, third.credited_cents), (1, 2000));
    let fourth = run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!(fourth.credits, 0);
    assert_eq!(wallet_balances(&t.db, c.id, ids[0]).await, Some((5000, 5000)));
    assert_clean(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_dies_half_way_and_runs_again_credits_everyone_once() {
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let c = upsert_campaign(&t.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "staff").await.unwrap();
    let keys: Vec<String> = (0..1200).map(|i| format!("aaf:{i}")).collect();
    let seeds: Vec<PupilSeed<'_>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| PupilSeed { key: k, grade: "3E", uai: "0921778H", boursier: i % 10 == 0 })
        .collect();
    insert_pupils(&t.db, f, &seeds).await;
    recompute(&t.db, c.id).await.unwrap();
    // The process "dies" after the first page of 500 pupils has been committed.
    let db = t.db.clone();
    let campaign = c.id;
    let crashed = tokio::spawn(async move {
        run_grant(&db, campaign, &|done, _| {
            if done >= 500 {
                panic!("simulated crash after {done} pupils");
            }
        })
        .await
    })
    .await;
    assert!(crashed.expect_err("the first run died").is_panic());
    let rerun = run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!(rerun.passes, 1200);
    assert_eq!(rerun.passes_created, 700, "the first page's passes were kept");
    assert_eq!(rerun.already_done, 500 + 50, "500 base grants and 50 top-ups of the first page");
    let scope = passerelle_domain::ledger::Scope::campaign(c.funder_id, c.id);
    let budget_spec = AccountSpec::of(passerelle_domain::ledger::AccountKind::FunderBudget, c.id, scope);
    let budget = ensure_account(&t.db, budget_spec).await.unwrap();
    let spent = get_account(&t.db, budget.id).await.unwrap().unwrap().counters.debits_posted;
    assert_eq!(spent, 1200 * 8000 + 120 * 2000, "every pupil credited exactly once");
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn a_staff_override_survives_recomputation() {
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let c = upsert_campaign(&t.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "staff").await.unwrap();
    let ids = insert_pupils(&t.db, f, &[PupilSeed { key: "k", grade: "5E", uai: "0752387M", boursier: false }]).await;
    recompute(&t.db, c.id).await.unwrap();
    assert!(!get_eligibility(&t.db, ids[0], c.id).await.unwrap().unwrap().eligible);
    assert_eq!(set_eligibility(&t.db, ids[0], c.id, true, "  ", "staff:x").await.unwrap_err().code(), "BAD_USER_INPUT");
    let row = set_eligibility(&t.db, ids[0], c.id, true, "lives in Clamart, school in Paris", "staff:x").await.unwrap();
    assert!(row.eligible);
    let again = recompute(&t.db, c.id).await.unwrap();
    assert_eq!(again.overridden, 1);
    let row = get_eligibility(&t.db, ids[0], c.id).await.unwrap().unwrap();
    assert_eq!(
        (row.eligible, row.computed, row.override_author.as_deref()),
        (true, Computed::Ineligible, Some("staff:x"))
    );
    let g = run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!(g.passes, 1);
    assert_eq!(set_eligibility(&t.db, Uuid::new_v4(), c.id, true, "r", "s").await.unwrap_err().code(), "NOT_FOUND");
}

/// The département CSV, with one pupil whose school is in Paris (ineligible by the rules).
fn roster_csv(class: &str) -> String {
    format!(
        "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;echelon;resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;date_sortie\n\
         0752387M;;700001;PETIT;Chloé;30/01/2013;10110001110;{class};N;;600001;1;10;PETIT;Anne;anne@example.org;;1;1;\n"
    )
}

#[tokio::test]
async fn a_staff_override_survives_a_re_import_that_changes_the_pupil() {
    use passerelle_domain::school::import::{ImportFile, ImportOptions, RosterFormat, import_roster};
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let c = upsert_campaign(&t.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "staff").await.unwrap();
    let dir = std::env::temp_dir().join(format!("passerelle-reimport-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let import = |class: &'static str| {
        let path = dir.join(format!("roster-{class}.csv"));
        std::fs::write(&path, roster_csv(class)).unwrap();
        let db = t.db.clone();
        async move {
            let files = [ImportFile { name: "roster.csv".into(), path }];
            let options = ImportOptions { full_snapshot: true, author: "test".into() };
            import_roster(&db, f, RosterFormat::Csv, &files, &options, &|_| {}).await.unwrap()
        }
    };
    assert_eq!(import("5A").await.created, 1);
    recompute(&t.db, c.id).await.unwrap();
    let sql = "SELECT id FROM pupil WHERE source_key = 'csv:700001'";
    let row =
        t.db.query_one_raw(passerelle_domain::db::stmt(t.db.get_database_backend(), sql, [])).await.unwrap().unwrap();
    let pupil: Uuid = row.try_get("", "id").unwrap();
    assert!(!get_eligibility(&t.db, pupil, c.id).await.unwrap().unwrap().eligible);
    set_eligibility(&t.db, pupil, c.id, true, "lives in Montrouge", "staff:y").await.unwrap();
    // The school sends an update (new class): the pupil changes, the staff decision stays.
    let second = import("5B").await;
    assert_eq!((second.created, second.updated), (0, 1));
    recompute(&t.db, c.id).await.unwrap();
    let row = get_eligibility(&t.db, pupil, c.id).await.unwrap().unwrap();
    assert_eq!(
        (row.eligible, row.computed, row.override_reason.as_deref()),
        (true, Computed::Ineligible, Some("lives in Montrouge"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stored codes that no version of the code writes are read errors, never a default: a grade
/// `7E` used to read as "unknown" (the pupil went to review) and a computed `maybe` as `review`.
#[tokio::test]
async fn unknown_stored_grades_and_outcomes_are_errors() {
    use passerelle_domain::school::query::{PupilFilter, list_pupils};
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let c = upsert_campaign(&t.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "staff").await.unwrap();
    let ids = insert_pupils(&t.db, f, &[PupilSeed { key: "k", grade: "5E", uai: "0921778H", boursier: false }]).await;
    recompute(&t.db, c.id).await.unwrap();
    assert_eq!(get_eligibility(&t.db, ids[0], c.id).await.unwrap().unwrap().computed, Computed::Eligible);
    let exec = |sql: &'static str| {
        let db = t.db.clone();
        async move { db.execute_raw(passerelle_domain::db::stmt(db.get_database_backend(), sql, [])).await.unwrap() }
    };

    exec("UPDATE eligibility SET computed = 'maybe'").await;
    assert_eq!(get_eligibility(&t.db, ids[0], c.id).await.unwrap_err().code(), "INTERNAL");
    assert_eq!(recompute(&t.db, c.id).await.unwrap_err().code(), "INTERNAL");
    exec("UPDATE eligibility SET computed = 'eligible'").await;

    exec("UPDATE pupil SET grade = '7E'").await;
    assert_eq!(recompute(&t.db, c.id).await.unwrap_err().code(), "INTERNAL");
    let filter = PupilFilter { funder_id: Some(f), ..PupilFilter::default() };
    assert_eq!(list_pupils(&t.db, &filter, None, 10).await.unwrap_err().code(), "INTERNAL");
    let row = get_eligibility(&t.db, ids[0], c.id).await.unwrap().unwrap();
    assert_eq!(row.computed, Computed::Eligible, "the failed recomputation changed nothing");
}
