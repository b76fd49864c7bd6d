//! The grant and eligibility findings of the money-path review: a boursier top-up completes
//! what the base grant actually credited, and a staff override committed while a recompute
//! runs is never overwritten by it.

use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::db::stmt;
use passerelle_domain::eligibility::{get_eligibility, recompute, set_eligibility};
use passerelle_domain::grant::run_grant;
use passerelle_domain::ledger::{AccountSpec, Wallet, audit, ensure_account, get_account};
use passerelle_tests::fresh_db;
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, TransactionTrait};
use uuid::Uuid;

async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) {
    db.execute_raw(stmt(db.get_database_backend(), sql, values)).await.unwrap();
}

/// The pupil's (sport, culture) balances in the campaign.
async fn balances(db: &DatabaseConnection, funder: Uuid, campaign: Uuid, pupil: Uuid) -> (i64, i64) {
    #[derive(FromQueryResult)]
    struct Pass {
        id: Uuid,
    }
    let sql = "SELECT id FROM pass WHERE campaign_id = $1 AND pupil_id = $2";
    let pass = Pass::find_by_statement(stmt(db.get_database_backend(), sql, [campaign.into(), pupil.into()]))
        .one(db)
        .await
        .unwrap()
        .expect("a pass")
        .id;
    let mut out = [0; 2];
    for (i, w) in [Wallet::Sport, Wallet::Culture].into_iter().enumerate() {
        let acc = ensure_account(db, AccountSpec::pass_wallet(funder, campaign, pass, w)).await.unwrap();
        out[i] = get_account(db, acc.id).await.unwrap().unwrap().counters.available();
    }
    (out[0], out[1])
}

#[tokio::test]
async fn a_late_boursier_is_topped_up_to_the_boursier_total_whatever_the_base_became() {
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let v1 = Policy::pass_plus("92", 2026); // base 40 + 40, boursier 50 + 50
    let c = upsert_campaign(&t.db, f, 2026, "Pass+", &v1, "staff").await.unwrap();
    let seeds = [
        PupilSeed { key: "aaf:1", grade: "6E", uai: "0921778H", boursier: false },
        PupilSeed { key: "aaf:2", grade: "5E", uai: "0921778H", boursier: false },
    ];
    let ids = insert_pupils(&t.db, f, &seeds).await;
    recompute(&t.db, c.id).await.unwrap();
    run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!(balances(&t.db, f, c.id, ids[0]).await, (4000, 4000));

    // v2 lowers the base to 30 € per wallet; the boursier total stays 50 €.
    let mut v2 = v1.clone();
    for w in &mut v2.wallets {
        w.base.0 = 3000;
    }
    upsert_campaign(&t.db, f, 2026, "Pass+", &v2, "staff").await.unwrap();
    // v3 raises it to 45 €: the other pupil's late top-up must not come short either.
    exec(&t.db, "UPDATE pupil SET boursier = TRUE WHERE id = $1", vec![ids[0].into()]).await;
    run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!(balances(&t.db, f, c.id, ids[0]).await, (5000, 5000), "exactly the boursier total, not 40 + 20");

    let mut v3 = v1.clone();
    for w in &mut v3.wallets {
        w.base.0 = 4500;
    }
    upsert_campaign(&t.db, f, 2026, "Pass+", &v3, "staff").await.unwrap();
    exec(&t.db, "UPDATE pupil SET boursier = TRUE WHERE id = $1", vec![ids[1].into()]).await;
    run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!(balances(&t.db, f, c.id, ids[1]).await, (5000, 5000), "exactly the boursier total, not 40 + 5");
    // Runs again: nothing more for anyone.
    run_grant(&t.db, c.id, &|_, _| {}).await.unwrap();
    assert_eq!(balances(&t.db, f, c.id, ids[0]).await, (5000, 5000));
    assert_eq!(balances(&t.db, f, c.id, ids[1]).await, (5000, 5000));
    let report = audit(&t.db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

/// Waits until some session of this database waits for a row lock (PostgreSQL): the recompute
/// has read its page and stands before its first write. Bounded: fails after 30 s.
async fn until_a_session_waits_for_a_lock(db: &DatabaseConnection) {
    #[derive(FromQueryResult)]
    struct Waiting {
        n: i64,
    }
    let sql = "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
               WHERE NOT l.granted AND a.datname = current_database()";
    for _ in 0..3000 {
        let w = Waiting::find_by_statement(stmt(DbBackend::Postgres, sql, [])).one(db).await.unwrap();
        if w.is_some_and(|w| w.n > 0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the recompute never waited for the locked row");
}

#[tokio::test]
async fn an_override_committed_during_a_recompute_is_kept() {
    let t = fresh_db().await;
    let f = funder(&t.db, "92").await;
    let c = upsert_campaign(&t.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "staff").await.unwrap();
    let seeds = [
        PupilSeed { key: "aaf:1", grade: "6E", uai: "0921778H", boursier: false },
        PupilSeed { key: "aaf:2", grade: "6E", uai: "0921778H", boursier: false },
    ];
    let mut ids = insert_pupils(&t.db, f, &seeds).await;
    ids.sort();
    let (first, second) = (ids[0], ids[1]);
    recompute(&t.db, c.id).await.unwrap();
    // Both move to a Paris school: the next recompute rewrites both decisions (ineligible).
    exec(&t.db, "UPDATE pupil SET uai = '0752387M', school_key = 'uai:0752387M'", vec![]).await;

    if t.db.get_database_backend() == DbBackend::Postgres {
        // The test holds the first pupil's decision: the recompute reads its whole page (the
        // second pupil without override), then waits to write the first.
        let blocker = t.db.begin().await.unwrap();
        let sql = "SELECT id FROM eligibility WHERE pupil_id = $1 FOR UPDATE";
        blocker.execute_raw(stmt(DbBackend::Postgres, sql, [first.into()])).await.unwrap();
        let db = t.db.clone();
        let running = tokio::spawn(async move { recompute(&db, c.id).await });
        until_a_session_waits_for_a_lock(&t.db).await;
        // Meanwhile staff decide the second pupil is eligible; it commits at once.
        set_eligibility(&t.db, second, c.id, true, "attestation de résidence", "staff").await.unwrap();
        blocker.rollback().await.unwrap();
        running.await.unwrap().unwrap();
    } else {
        // SQLite runs write transactions one at a time: the same decision, then a recompute.
        set_eligibility(&t.db, second, c.id, true, "attestation de résidence", "staff").await.unwrap();
        recompute(&t.db, c.id).await.unwrap();
    }
    let kept = get_eligibility(&t.db, second, c.id).await.unwrap().unwrap();
    assert_eq!((kept.override_eligible, kept.eligible), (Some(true), true), "the staff decision wins");
    let other = get_eligibility(&t.db, first, c.id).await.unwrap().unwrap();
    assert!(!other.eligible, "the recompute itself went through");
    // And a later recompute keeps it too.
    recompute(&t.db, c.id).await.unwrap();
    assert!(get_eligibility(&t.db, second, c.id).await.unwrap().unwrap().eligible);
}
