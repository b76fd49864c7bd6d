//! Settlement benchmark: `BENCH_PARTNERS` partners (default 3,000) with validated bank details,
//! `BENCH_REDEMPTIONS` redemptions (default 100,000) and one refund for every 20th, spread
//! over them; then the batch (grouping and writing every item), its SEPA file (checked with
//! xmllint, untimed), every statement, and the approval through the ledger (one operation per
//! partner in one transaction), then the audit. One JSON line per phase.
//!
//! The redemptions are seeded as rows (with one ledger credit per partner for their net), not
//! through 100,000 payments: the benchmark measures settlement, not spending.
//!
//! ```text
//! cargo run --release -p passerelle-tests --bin settle-bench                      # SQLite
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p passerelle-tests --bin settle-bench                    # PostgreSQL
//! ```

use std::time::Instant;

use anyhow::{Context as _, ensure};
use passerelle_domain::auth::Actor;
use passerelle_domain::db::{insert_rows, now_us};
use passerelle_domain::ledger::{
    AccountKind, AccountSpec, Leg, Operation, Scope, TransferKind, audit, ensure_account, ensure_accounts,
    execute_batch,
};
use passerelle_domain::settlement::{
    CreateBatch, approve_settlement_batch, batch_sepa_xml, create_settlement_batch, statement_csv, statement_rows,
};
use passerelle_tests::school::funder;
use passerelle_tests::settlement::{SIRET, assert_valid_sepa, iban, today, treasury};
use passerelle_tests::{Backend, fresh_db_with_pool};
use sea_orm::{DatabaseConnection, Value};
use serde_json::json;
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    std::env::var(name).unwrap_or_else(|_| default.to_string()).parse().with_context(|| name.to_owned())
}

async fn insert(db: &DatabaseConnection, table: &str, cols: &str, rows: Vec<Vec<Value>>) -> anyhow::Result<()> {
    Ok(insert_rows(db, table, cols, &rows, 150, &|_, _| {}).await?)
}

/// Partners with validated bank details, their redemptions and refunds, and the ledger credits
/// of their payables (so that approval leaves every book where the story says).
async fn seed(db: &DatabaseConnection, f: Uuid, partners: usize, redemptions: usize) -> anyhow::Result<i64> {
    let now = now_us(db).await?;
    let ids: Vec<Uuid> = (0..partners).map(|_| Uuid::now_v7()).collect();
    let rows = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let name = format!("Association sportive n°{i} de l'Été");
            vec![
                (*id).into(),
                name.clone().into(),
                now.into(),
                f.into(),
                "sport".into(),
                "approved".into(),
                name.clone().into(),
                SIRET.into(),
                iban(i as u64 + 1).into(),
                name.into(),
                "bench-a".into(),
                now.into(),
                "bench-b".into(),
                now.into(),
            ]
        })
        .collect();
    let cols = "id, name, created_at_us, funder_id, categories, status, legal_name, siret, iban, account_holder, \
                bank_set_by, bank_set_at_us, bank_validated_by, bank_validated_at_us";
    insert(db, "partner", cols, rows).await?;
    let mut net = vec![0i64; partners];
    let (mut redemption_rows, mut refund_rows) = (vec![], vec![]);
    for r in 0..redemptions {
        let (p, amount, id) = (r % partners, 500 + (r % 40) as i64 * 25, Uuid::now_v7());
        net[p] += amount;
        redemption_rows.push(vec![
            id.into(),
            ids[p].into(),
            f.into(),
            Uuid::now_v7().into(),
            "sport".into(),
            "payment".into(),
            amount.into(),
            0i64.into(),
            Uuid::now_v7().into(),
            (now - 1_000_000).into(),
        ]);
        if r % 20 == 0 {
            net[p] -= 100;
            let values = vec![Uuid::now_v7(), id, ids[p], f, Uuid::now_v7()];
            let mut row: Vec<Value> = values.into_iter().map(Into::into).collect();
            row.insert(4, 100i64.into());
            row.push((now - 500_000).into());
            refund_rows.push(row);
        }
    }
    let cols = "id, partner_id, funder_id, pass_id, wallet, source, amount, refunded_amount, op_id, created_at_us";
    insert(db, "redemption", cols, redemption_rows).await?;
    let cols = "id, redemption_id, partner_id, funder_id, amount, op_id, created_at_us";
    insert(db, "redemption_refund", cols, refund_rows).await?;
    // The payables' credits, from a budget of the funder (one operation per partner).
    let campaign = Uuid::now_v7();
    let budget =
        ensure_account(db, AccountSpec::of(AccountKind::FunderBudget, campaign, Scope::campaign(f, campaign))).await?;
    let specs: Vec<AccountSpec> =
        ids.iter().map(|p| AccountSpec::of(AccountKind::PartnerPayable, *p, Scope::funder(f))).collect();
    let payables = ensure_accounts(db, &specs).await?;
    let ops: Vec<Operation> = payables
        .iter()
        .zip(&net)
        .enumerate()
        .map(|(i, (payable, amount))| {
            let leg = Leg::Transfer {
                kind: TransferKind::Payment,
                debit: budget,
                credit: *payable,
                amount: passerelle_domain::Cents(*amount),
            };
            Operation::new("system:bench", format!("seed-{i}"), vec![leg])
        })
        .collect();
    execute_batch(db, &ops).await?;
    Ok(net.iter().sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let partners = env_usize("BENCH_PARTNERS", 3000)?;
    let redemptions = env_usize("BENCH_REDEMPTIONS", 100_000)?;
    let backend = Backend::selected();
    let tdb = fresh_db_with_pool(4).await;
    let db = &tdb.db;
    let f = funder(db, "92").await;
    treasury(db, f).await;
    let started = Instant::now();
    let owed = seed(db, f, partners, redemptions).await?;
    let line = |phase: &str, seconds: f64, extra: serde_json::Value| {
        let mut v = json!({ "bench": "settle", "phase": phase, "backend": backend.name(), "partners": partners,
            "redemptions": redemptions, "seconds": (seconds * 1000.0).round() / 1000.0 });
        if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        println!("{v}");
    };
    line("seed", started.elapsed().as_secs_f64(), json!({}));

    let actor = Actor::tool("bench");
    let t = Instant::now();
    let batch = create_settlement_batch(db, &CreateBatch { funder_id: f, cutoff: today() }, &actor, &|_, _| {}).await?;
    let create = t.elapsed().as_secs_f64();
    ensure!(batch.total.0 == owed, "batch total {} != owed {owed}", batch.total.0);
    ensure!(batch.partners as usize == partners, "partners {}", batch.partners);
    line("create_batch", create, json!({ "items": batch.items, "items_per_s": (batch.items as f64 / create).round() }));

    let t = Instant::now();
    let xml = batch_sepa_xml(db, batch.id).await?;
    line("sepa_xml", t.elapsed().as_secs_f64(), json!({ "bytes": xml.len() }));
    assert_valid_sepa(&xml);

    let t = Instant::now();
    let rows = statement_rows(db, batch.id, None).await?;
    let csv = statement_csv(&rows)?;
    line("statements_csv", t.elapsed().as_secs_f64(), json!({ "rows": rows.len(), "bytes": csv.len() }));

    let t = Instant::now();
    approve_settlement_batch(db, batch.id, &actor).await?;
    line("approve", t.elapsed().as_secs_f64(), json!({ "ledger_operations": batch.partners }));

    let t = Instant::now();
    let report = audit(db).await?;
    ensure!(report.is_clean(), "audit: {:?}", report.violations);
    line("audit", t.elapsed().as_secs_f64(), json!({ "clean": true }));
    Ok(())
}
