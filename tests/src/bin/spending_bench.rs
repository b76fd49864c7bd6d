//! Spending benchmark over real HTTP against the real server (`TestApp`): club software
//! (client-credentials tokens of eight API clients, shared round-robin) redeeming distinct tickets with
//! fresh idempotency keys, at 8 and 32 clients; then the parent app's home query (children →
//! school → pass → wallets → last 10 transactions → open tickets) at 32 clients. One JSON line
//! per run: throughput and latency percentiles (p50, p90, p99, p99.9, max).
//!
//! ```text
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p passerelle-tests --bin spending-bench
//! ```
//! `BENCH_REDEMPTIONS` (per redemption phase, shared by its clients, default 12,800),
//! `BENCH_HOME_QUERIES` (per client, default 400), `BENCH_PUPILS` (default 2000),
//! `BENCH_DB_CONNECTIONS` (the server's pool, default 40). The defaults make each phase last
//! about 5 to 8 s on 2 cores. With 150 and 100 per client, phases of 1–5 s moved by 20 % from
//! one run to the next; with 400 per client the 8-client phase lasted under 2 s.
//! `BENCH_SUBSCRIBERS` (default 0): parents' apps holding a `passUpdated` subscription open
//! through the run. In production some app is always open, and the server's live feed then
//! follows the outbox while the money moves; with none, the feed reads nothing.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use passerelle_domain::auth::{AccountKind, Actor, create_account, create_api_client};
use passerelle_domain::ledger::{Wallet, audit};
use passerelle_domain::partner::{approve_partner, create_partner};
use passerelle_domain::spending::{self, TicketKeys};
use passerelle_tests::TestApp;
use passerelle_tests::accounts::PASSWORD;
use passerelle_tests::spending::{family, link};
use serde_json::{Value, json};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

const REDEEM: &str = "mutation($i: RedeemTicketInput!) { redeemTicket(input: $i) { redemption { id } } }";
const HOME: &str = "query { children { id givenName school { uai name commune } pass { id number status \
    wallets { wallet granted available held spent expired } \
    transactions(first: 10) { edges { node { id kind amount status createdAt partner { name } } } } \
    tickets(first: 10, status: ISSUED) { edges { node { id code amount validUntil } } } } } }";

/// What the home phase checks of each answer, read without building the whole tree: no
/// `errors`, and the parent's two children.
#[derive(serde::Deserialize)]
struct HomeAnswer {
    data: Option<HomeData>,
    errors: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct HomeData {
    children: Vec<serde::de::IgnoredAny>,
}

fn home_ok(body: &[u8]) -> bool {
    serde_json::from_slice::<HomeAnswer>(body)
        .is_ok_and(|a| a.errors.is_none() && a.data.is_some_and(|d| d.children.len() == 2))
}

fn redeemed(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|b| b["data"]["redeemTicket"]["redemption"]["id"].is_string())
}

/// Runs `clients` closed-loop clients, each sending its `work` requests; returns a JSON line.
/// Bodies are serialised before the clock starts, and answers are checked without building a
/// JSON tree, so the load generator takes as little as it can of the two cores it shares with
/// the server and PostgreSQL (pgbench, beside it, is a lean C client).
async fn run(
    app: Arc<TestApp>,
    name: &str,
    work: Vec<(String, Vec<(String, Value)>)>,
    check: fn(&[u8]) -> bool,
) -> anyhow::Result<Value> {
    let clients = work.len();
    let url = app.url("/graphql");
    let mut prepared = vec![];
    for (token, requests) in work {
        let bodies: Vec<Vec<u8>> = requests
            .into_iter()
            .map(|(query, variables)| serde_json::to_vec(&json!({ "query": query, "variables": variables })))
            .collect::<Result<_, _>>()?;
        prepared.push((format!("Bearer {token}"), bodies));
    }
    // A mark for profilers started beside the run (`perf record` over this phase only).
    eprintln!("running {name} at {clients} clients");
    let started = Instant::now();
    let tasks = prepared.into_iter().map(|(bearer, bodies)| {
        let (client, url) = (app.client.clone(), url.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(bodies.len());
            let mut failures = 0u64;
            for body in bodies {
                let t = Instant::now();
                let sent = client
                    .post(&url)
                    .header("authorization", &bearer)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let answer = match sent {
                    Ok(response) => response.bytes().await.ok(),
                    Err(_) => None,
                };
                latencies.push(t.elapsed().as_micros() as u64);
                if !answer.as_deref().is_some_and(check) {
                    failures += 1;
                    if failures == 1 {
                        eprintln!("failed: {}", String::from_utf8_lossy(answer.as_deref().unwrap_or_default()));
                    }
                }
            }
            (latencies, failures)
        })
    });
    let mut all = vec![];
    let mut failures = 0;
    for t in futures_util::future::join_all(tasks).await {
        let (l, f) = t?;
        all.extend(l);
        failures += f;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("finished {name} at {clients} clients");
    all.sort_unstable();
    Ok(json!({ "bench": "spending", "run": name, "clients": clients, "requests": all.len(), "failures": failures,
        "seconds": (secs * 1000.0).round() / 1000.0, "per_s": (all.len() as f64 / secs).round(),
        "p50_ms": percentile(&all, 0.50), "p99_ms": percentile(&all, 0.99),
        "p90_ms": percentile(&all, 0.90), "p999_ms": percentile(&all, 0.999), "max_ms": percentile(&all, 1.0) }))
}

/// The setup wrote thousands of rows in seconds: the tables as autovacuum keeps them in a
/// running database, before a phase rather than in the middle of it. Fresh planner statistics
/// (without them PostgreSQL plans the first minutes with those of nearly empty tables:
/// sequential scans) and, on PostgreSQL, the tables vacuumed, as `pgbench -i` leaves its own.
/// SQLite: its planner's statistics.
async fn analyze(db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "VACUUM ANALYZE",
        _ => "ANALYZE",
    };
    db.execute_unprepared(sql).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let per_phase: usize = env_or("BENCH_REDEMPTIONS", "12800").parse().context("BENCH_REDEMPTIONS")?;
    let home_queries: usize = env_or("BENCH_HOME_QUERIES", "400").parse().context("BENCH_HOME_QUERIES")?;
    let pupils: usize = env_or("BENCH_PUPILS", "2000").parse().context("BENCH_PUPILS")?;
    let pool = env_or("BENCH_DB_CONNECTIONS", "40");
    let subscribers: usize = env_or("BENCH_SUBSCRIBERS", "0").parse().context("BENCH_SUBSCRIBERS")?;
    let app = Arc::new(TestApp::spawn_with(&[("PASSERELLE_DB_MAX_CONNECTIONS", &pool)]).await);
    let db = &app.db;
    let f = family(db, pupils, false).await;
    let keys = TicketKeys::new("http://bench");
    if subscribers > 0 {
        let token = passerelle_tests::accounts::sign_in(&app, &f.parent_email, None).await;
        for pass in f.passes.iter().take(subscribers) {
            let variables = json!({ "p": pass.id.to_string() });
            let mut socket =
                passerelle_tests::ws::subscribe(app.addr, &token, passerelle_tests::ws::PASS_UPDATED, variables).await;
            // The app reads what comes, as a phone does.
            tokio::spawn(async move { while futures_util::StreamExt::next(&mut socket).await.is_some() {} });
        }
    }
    let backend = passerelle_tests::Backend::selected().name();

    // Partner software: eight API clients (a partner may have 20), their tokens shared
    // round-robin by the load clients (a club's desks).
    let mut tokens = vec![];
    for i in 0..8 {
        let issued = create_api_client(db, &Actor::tool("bench"), f.sport, &format!("caisse {i}")).await?;
        let (_, _, body) =
            app.oauth_token(Some((&issued.client.client_id, &issued.secret)), "grant_type=client_credentials").await;
        tokens.push(body["access_token"].as_str().context("client token")?.to_owned());
    }

    for clients in [8usize, 32] {
        // Distinct tickets on distinct cards, issued beforehand (the parent app's part).
        let mut work = vec![];
        let mut n = 0usize;
        for token in tokens.iter().cycle().take(clients) {
            let mut requests = vec![];
            for _ in 0..per_phase / clients {
                let pass = n % f.passes.len();
                let input = spending::IssueTicket {
                    pass_id: f.passes[pass].id,
                    wallet: Wallet::Sport,
                    amount: passerelle_domain::Cents(10),
                    partner_id: None,
                    idempotency_key: format!("bench-{clients}-{n}"),
                };
                let (ticket, _) = spending::issue_ticket(db, &keys, &f.data_key, f.parent, &input).await?;
                let vars = json!({ "i": { "code": ticket.code, "idempotencyKey": uuid::Uuid::new_v4().to_string() } });
                requests.push((REDEEM.to_owned(), vars));
                n += 1;
            }
            work.push((token.clone(), requests));
        }
        analyze(db).await?;
        let mut line = run(app.clone(), "redeem", work, redeemed).await?;
        line["backend"] = json!(backend);
        println!("{line}");
    }

    // The home query: 32 parents with two children each. The setup's one parent of every pupil
    // (it issued the tickets above) goes first: a real `family_link` holds one to six children
    // per account, and PostgreSQL's cached generic plan for "the children of $1" is built from
    // that average; a parent of 2,000 children made it hash-join the whole pupil table.
    {
        use sea_orm::ConnectionTrait as _;
        let backend = db.get_database_backend();
        let sql = "DELETE FROM family_link WHERE account_id = $1";
        db.execute_raw(passerelle_domain::db::stmt(backend, sql, [f.parent.into()])).await?;
    }
    let theatre = create_partner(db, "Théâtre").await?.id;
    approve_partner(db, theatre, f.funder, &[Wallet::Culture], None).await?;
    let mut work = vec![];
    for i in 0..32 {
        let email = format!("home-{i}@example.org");
        let parent = create_account(db, AccountKind::Parent, &email, PASSWORD, "P", true, &[]).await?.0.id;
        for child in [2 * i, 2 * i + 1] {
            link(db, parent, f.passes[child % f.passes.len()].pupil_id).await;
        }
        let token = passerelle_tests::accounts::sign_in(&app, &email, None).await;
        work.push((token, (0..home_queries).map(|_| (HOME.to_owned(), json!({}))).collect()));
    }
    analyze(db).await?;
    let mut line = run(app.clone(), "home", work, home_ok).await?;
    line["backend"] = json!(backend);
    println!("{line}");
    let report = audit(db).await?;
    anyhow::ensure!(report.is_clean(), "audit: {:?}", report.violations);
    Ok(())
}
