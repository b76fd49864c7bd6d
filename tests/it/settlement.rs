//! Settlement on the real database (SQLite, or PostgreSQL with `TEST_DATABASE_URL`):
//! redemptions and refunds of several partners → a batch whose SEPA file validates against the
//! ISO schema, whose control sum is what was redeemed minus what was refunded; a second batch
//! takes none of it; concurrent batches never share an item; approval moves the money once and
//! leaves a clean audit; the CLI's use case writes valid files.

use std::sync::Arc;

use futures_util::future::join_all;
use passerelle_domain::auth::Actor;
use passerelle_domain::db::stmt;
use passerelle_domain::ledger::{AccountKind, Wallet, audit};
use passerelle_domain::partner::{approve_partner, create_partner, set_partner_bank_details};
use passerelle_domain::settlement::{
    self, BatchStatus, CreateBatch, approve_settlement_batch, batch_sepa_xml, create_settlement_batch,
};
use passerelle_domain::spending::{self, PayPartner, RefundRedemption};
use passerelle_domain::{Cents, Error};
use passerelle_tests::settlement::{
    assert_valid_sepa, assert_valid_sepa_file, bank_input, bank_ready, cents_of, today, treasury, xml_texts,
};
use passerelle_tests::spending::{Family, family};
use passerelle_tests::{count, fresh_db};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use uuid::Uuid;

fn staff() -> Actor {
    Actor::tool("finance")
}

async fn pay(
    db: &DatabaseConnection,
    f: &Family,
    pass: usize,
    wallet: Wallet,
    partner: Uuid,
    cents: i64,
    key: &str,
) -> Uuid {
    let input = PayPartner {
        pass_id: f.passes[pass].id,
        wallet,
        amount: Cents(cents),
        partner_id: partner,
        activity_id: None,
        idempotency_key: key.into(),
    };
    spending::pay_partner(db, f.parent, &input).await.expect("pay").0.id
}

async fn refund(db: &DatabaseConnection, partner: Uuid, redemption: Uuid, cents: i64, key: &str) {
    let input =
        RefundRedemption { redemption_id: redemption, amount: Cents(cents), reason: None, idempotency_key: key.into() };
    spending::refund_redemption(db, partner, &input).await.expect("refund");
}

#[derive(FromQueryResult)]
struct N {
    n: i64,
}

/// One number from a bound statement.
async fn scalar(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    let found = N::find_by_statement(stmt(db.get_database_backend(), sql, values)).one(db).await;
    found.unwrap_or_else(|e| panic!("{sql}: {e}")).map_or(0, |r| r.n)
}

/// The balance (credits − debits, posted) of a partner's book of `kind`.
async fn book(db: &DatabaseConnection, partner: Uuid, kind: AccountKind) -> i64 {
    let sql = "SELECT CAST(COALESCE(SUM(credits_posted - debits_posted), 0) AS BIGINT) AS n FROM ledger_account_balance \
               WHERE owner_id = $1 AND kind = $2";
    scalar(db, sql, vec![partner.into(), kind.into()]).await
}

async fn items_of(db: &DatabaseConnection, batch: Uuid) -> Vec<Uuid> {
    #[derive(FromQueryResult)]
    struct Source {
        source_id: Uuid,
    }
    let sql =
        stmt(db.get_database_backend(), "SELECT source_id FROM settlement_item WHERE batch_id = $1", [batch.into()]);
    Source::find_by_statement(sql).all(db).await.unwrap().into_iter().map(|s| s.source_id).collect()
}

/// A batch of everything owed by `funder` up to now.
async fn batch_now(db: &DatabaseConnection, funder: Uuid) -> passerelle_domain::Result<settlement::SettlementBatch> {
    create_settlement_batch(db, &CreateBatch { funder_id: funder, cutoff: today() }, &staff(), &|_, _| {}).await
}

async fn assert_clean(db: &DatabaseConnection) {
    let report = audit(db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

/// Three partners: the club and the theatre with validated bank details, a third (a pool)
/// whose details are entered but not validated.
async fn setup(db: &DatabaseConnection) -> (Family, Uuid) {
    let f = family(db, 3, false).await;
    treasury(db, f.funder).await;
    bank_ready(db, f.sport, "Club de judo de Bagneux", 1, Some("AGRIFRPP882")).await;
    bank_ready(db, f.culture, "Théâtre de l’Œuvre & Cie", 2, None).await;
    let pool = create_partner(db, "Piscine").await.unwrap().id;
    approve_partner(db, pool, f.funder, &[Wallet::Sport], None).await.unwrap();
    set_partner_bank_details(db, pool, &bank_input("Piscine", 3, None), &Actor::tool("agent-a")).await.unwrap();
    (f, pool)
}

/// [`setup`], and the club paid 10.00.
async fn paid_club() -> (passerelle_tests::TestDb, Family) {
    let t = fresh_db().await;
    let (f, _) = setup(&t.db).await;
    pay(&t.db, &f, 0, Wallet::Sport, f.sport, 1000, "p1").await;
    (t, f)
}

#[tokio::test]
async fn a_batch_pays_each_partner_its_net_once_in_a_valid_sepa_file() {
    let t = fresh_db().await;
    let db = &t.db;
    let (f, pool) = setup(db).await;
    let judo = pay(db, &f, 0, Wallet::Sport, f.sport, 1000, "p1").await;
    let judo2 = pay(db, &f, 1, Wallet::Sport, f.sport, 500, "p2").await;
    pay(db, &f, 2, Wallet::Sport, f.sport, 300, "p3").await;
    pay(db, &f, 0, Wallet::Culture, f.culture, 800, "p4").await;
    pay(db, &f, 1, Wallet::Sport, pool, 700, "p5").await;
    refund(db, f.sport, judo2, 200, "r1").await;

    let batch = batch_now(db, f.funder).await.unwrap();
    // The club: 10 + 5 + 3 − 2; the theatre: 8; the pool is carried (details not validated).
    assert_eq!((batch.partners, batch.items, batch.carried_partners), (2, 5, 1));
    assert_eq!(batch.total, Cents(2400));
    let redeemed =
        scalar(db, "SELECT CAST(SUM(amount) AS BIGINT) AS n FROM redemption WHERE partner_id <> $1", vec![pool.into()])
            .await;
    let refunded = scalar(db, "SELECT CAST(SUM(amount) AS BIGINT) AS n FROM redemption_refund", vec![]).await;
    assert_eq!(batch.total.0, redeemed - refunded);

    let xml = batch_sepa_xml(db, batch.id).await.unwrap();
    assert_valid_sepa(&xml);
    let sums = xml_texts(&xml, "CtrlSum");
    assert_eq!(sums, vec!["24.00", "24.00"]);
    assert_eq!(cents_of(&xml_texts(&xml, "InstdAmt")), 2400);
    assert_eq!(xml_texts(&xml, "NbOfTxs"), vec!["2", "2"]);
    assert!(xml.contains("<Nm>Theatre de l'OEuvre + Cie</Nm>"), "{xml}");
    assert!(xml.contains("<Cd>SEPA</Cd>") && xml.contains("Ccy=\"EUR\""));
    let ids = xml_texts(&xml, "EndToEndId");
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|i| i.len() <= 35) && ids[0] != ids[1]);
    assert_eq!(xml_texts(&xml, "ReqdExctnDt"), vec![batch.execution_date.to_string()]);

    // Later: a new payment and a refund of an already settled redemption.
    pay(db, &f, 2, Wallet::Sport, f.sport, 400, "p6").await;
    refund(db, f.sport, judo, 100, "r2").await;
    let second = batch_now(db, f.funder).await.unwrap();
    assert_eq!((second.partners, second.items, second.total), (1, 2, Cents(300)));
    let (a, b) = (items_of(db, batch.id).await, items_of(db, second.id).await);
    assert!(a.iter().all(|i| !b.contains(i)), "the second batch repeats an item");
    assert_valid_sepa(&batch_sepa_xml(db, second.id).await.unwrap());
    let third = batch_now(db, f.funder).await;
    assert!(matches!(third, Err(Error::Conflict(_))), "{third:?}");

    // Approval moves each net from payable to settled, once.
    let approved = approve_settlement_batch(db, batch.id, &staff()).await.unwrap();
    assert_eq!(approved.status, BatchStatus::Approved);
    let again = approve_settlement_batch(db, batch.id, &staff()).await.unwrap();
    assert_eq!(again.approved_at_us, approved.approved_at_us);
    approve_settlement_batch(db, second.id, &staff()).await.unwrap();
    assert_eq!(book(db, f.sport, AccountKind::PartnerSettled).await, 1600 + 300);
    assert_eq!(book(db, f.sport, AccountKind::PartnerPayable).await, 0);
    assert_eq!(book(db, f.culture, AccountKind::PartnerSettled).await, 800);
    assert_eq!(book(db, pool, AccountKind::PartnerPayable).await, 700);
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM ledger_transfer WHERE kind = 'settlement'").await, 3);
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM outbox WHERE topic = 'partner_settled'").await, 3);
    let sql = "SELECT COUNT(*) AS n FROM outbox WHERE topic = 'partner_settled' AND payload LIKE $1";
    let theatre = format!("%\"partner_id\":\"{}\"%", f.culture);
    assert_eq!(scalar(db, sql, vec![theatre.into()]).await, 1);
    let sql = "SELECT COUNT(*) AS n FROM outbox WHERE topic = 'partner_settled' AND payload LIKE '%\"reason\":\"settlement_paid\"%'";
    assert_eq!(scalar(db, sql, vec![]).await, 3);
    assert_clean(db).await;
}

#[tokio::test]
async fn the_database_refuses_to_settle_an_item_twice() {
    let (t, f) = paid_club().await;
    let db = &t.db;
    let batch = batch_now(db, f.funder).await.unwrap();
    let source = items_of(db, batch.id).await[0];
    let sql = "INSERT INTO settlement_item (id, batch_id, line_id, kind, source_id, amount) \
               VALUES ($1, $2, $3, 'redemption', $4, 1000)";
    let values = [Uuid::now_v7().into(), Uuid::now_v7().into(), Uuid::now_v7().into(), source.into()];
    let err = db.execute_raw(stmt(db.get_database_backend(), sql, values)).await.expect_err("settled twice");
    assert!(passerelle_domain::db::is_unique_violation(&err), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_never_share_an_item() {
    let t = passerelle_tests::fresh_db_with_pool(8).await;
    let db = t.db.clone();
    let (f, _) = setup(&db).await;
    let f = Arc::new(f);
    let mut settled = 0;
    for round in 0..4 {
        for i in 0..3 {
            pay(&db, &f, i, Wallet::Sport, f.sport, 100 + i as i64, &format!("r{round}-{i}")).await;
        }
        let tasks = (0..4).map(|_| {
            let (db, funder) = (db.clone(), f.funder);
            tokio::spawn(async move { batch_now(&db, funder).await })
        });
        let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
        let made: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let nothing = results.iter().filter(|r| matches!(r, Err(Error::Conflict(_)))).count();
        assert_eq!((made.len(), nothing), (1, 3), "{results:?}");
        assert_eq!(made[0].items, 3);
        settled += 3;
        let distinct = count(&db, "SELECT COUNT(DISTINCT source_id) AS n FROM settlement_item").await;
        let all = count(&db, "SELECT COUNT(*) AS n FROM settlement_item").await;
        assert_eq!((distinct, all), (settled, settled));
    }
    assert_clean(&db).await;
}

#[tokio::test]
async fn a_new_iban_is_carried_over_until_validated_by_someone_else() {
    let (t, f) = paid_club().await;
    let db = &t.db;
    let changed = bank_input("Club de judo de Bagneux", 77, None);
    let details = set_partner_bank_details(db, f.sport, &changed, &Actor::tool("agent-c")).await.unwrap();
    assert!(!details.is_validated());
    let none = batch_now(db, f.funder).await;
    assert!(matches!(none, Err(Error::Conflict(_))), "{none:?}");
    let own = passerelle_domain::partner::validate_partner_bank_details(
        db,
        f.sport,
        details.iban.as_str(),
        &Actor::tool("agent-c"),
    )
    .await;
    assert!(matches!(own, Err(Error::Conflict(_))), "{own:?}");
    let stale = passerelle_domain::partner::validate_partner_bank_details(
        db,
        f.sport,
        &passerelle_tests::settlement::iban(1),
        &Actor::tool("agent-d"),
    )
    .await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    passerelle_domain::partner::validate_partner_bank_details(
        db,
        f.sport,
        details.iban.as_str(),
        &Actor::tool("agent-d"),
    )
    .await
    .unwrap();
    let batch = batch_now(db, f.funder).await.unwrap();
    let lines = settlement::batch_lines(db, batch.id).await.unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].iban, details.iban.as_str());
    // A correction of the legal name alone keeps the validation.
    let mut renamed = changed.clone();
    renamed.legal_name = "Judo Club Bagneux".into();
    assert!(set_partner_bank_details(db, f.sport, &renamed, &Actor::tool("agent-e")).await.unwrap().is_validated());
}

#[tokio::test]
async fn bad_bank_details_name_their_field() {
    let t = fresh_db().await;
    let db = &t.db;
    let (f, _) = setup(db).await;
    for (field, change) in [
        (
            "iban",
            Box::new(|i: &mut passerelle_domain::partner::BankDetailsInput| {
                i.iban = "FR7630002000010000000000199".into()
            }) as Box<dyn Fn(&mut _)>,
        ),
        ("siret", Box::new(|i: &mut passerelle_domain::partner::BankDetailsInput| i.siret = "73282932000075".into())),
        ("bic", Box::new(|i: &mut passerelle_domain::partner::BankDetailsInput| i.bic = Some("AGRI-FR".into()))),
        (
            "accountHolder",
            Box::new(|i: &mut passerelle_domain::partner::BankDetailsInput| i.account_holder = " ".into()),
        ),
    ] {
        let mut input = bank_input("Club", 5, None);
        change(&mut input);
        let err = set_partner_bank_details(db, f.sport, &input, &Actor::tool("agent-a")).await.unwrap_err();
        assert!(matches!(&err, Error::BadInput { field: got, .. } if got == field), "{field}: {err:?}");
    }
    let kept = passerelle_domain::partner::partner_bank_details(db, f.sport).await.unwrap().unwrap();
    assert!(kept.is_validated(), "a refused change must write nothing");
}

#[tokio::test]
async fn the_cli_use_case_writes_a_valid_file_and_one_statement_per_partner() {
    let (t, f) = paid_club().await;
    let db = &t.db;
    pay(db, &f, 1, Wallet::Culture, f.culture, 250, "p2").await;
    let out = std::env::temp_dir().join(format!("settle-{}", Uuid::new_v4().simple()));
    let input = CreateBatch { funder_id: f.funder, cutoff: today() };
    let run = settlement::settle_to_files(db, &input, true, &out, &Actor::tool("cli"), &|_, _| {}).await.unwrap();
    assert_eq!((run.partners, run.lines, run.total_cents, run.approved), (2, 2, 1250, true));
    assert_eq!(run.files.len(), 3);
    assert_valid_sepa_file(&run.files[0]);
    let statements: Vec<String> = run.files[1..].iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let judo = |s: &&String| s.contains(";Club de judo;") && s.contains(";redemption;") && s.contains(";sport;10.00");
    assert!(statements.iter().any(|s| judo(&s)), "{statements:?}");
    let summary = serde_json::to_value(&run).unwrap();
    for key in ["batch_id", "partners", "lines", "total_cents", "files"] {
        assert!(summary.get(key).is_some(), "{key} missing from {summary}");
    }
    assert_clean(db).await;
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test]
async fn the_schedule_makes_the_batch_of_the_last_period_once() {
    let (t, _) = paid_club().await;
    let db = &t.db;
    // Paid today: the period is not over, the schedule waits.
    assert!(settlement::settle_due(db, &Actor::tool("schedule")).await.unwrap().is_empty());
    // Paid 40 days ago: in a period over, whose batch the schedule makes, once.
    let sql = "UPDATE redemption SET created_at_us = created_at_us - 3456000000000";
    db.execute_unprepared(sql).await.unwrap();
    let made = settlement::settle_due(db, &Actor::tool("schedule")).await.unwrap();
    assert_eq!(made.len(), 1);
    let due = settlement::Schedule::SemiMonthly.due_cutoff(today());
    assert_eq!((made[0].cutoff, made[0].total, made[0].status), (due, Cents(1000), BatchStatus::Draft));
    assert!(settlement::settle_due(db, &Actor::tool("schedule")).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_move_the_money_once() {
    let t = passerelle_tests::fresh_db_with_pool(8).await;
    let db = t.db.clone();
    let (f, _) = setup(&db).await;
    pay(&db, &f, 0, Wallet::Sport, f.sport, 1000, "p1").await;
    pay(&db, &f, 1, Wallet::Culture, f.culture, 600, "p2").await;
    let batch = batch_now(&db, f.funder).await.unwrap();
    let tasks = (0..4).map(|_| {
        let db = db.clone();
        tokio::spawn(async move { approve_settlement_batch(&db, batch.id, &staff()).await })
    });
    for result in join_all(tasks).await {
        assert_eq!(result.unwrap().unwrap().status, BatchStatus::Approved);
    }
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM ledger_transfer WHERE kind = 'settlement'").await, 2);
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM outbox WHERE topic = 'partner_settled'").await, 2);
    assert_eq!(book(&db, f.sport, AccountKind::PartnerSettled).await, 1000);
    assert_eq!(book(&db, f.culture, AccountKind::PartnerSettled).await, 600);
    assert_clean(&db).await;
}
