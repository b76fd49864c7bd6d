//! Directory benchmark: `BENCH_PARTNERS` approved partners (default 3,000) spread over the
//! Hauts-de-Seine, two activities each, then `BENCH_QUERIES` searches (default 300) of each
//! shape a parent sends — nearest within 3 km, words with accents folded, a commune, the first
//! page by name — through the domain function the resolver calls. One JSON line per shape
//! with p50 and p99 in milliseconds.
//!
//! ```text
//! cargo run --release -p passerelle-tests --bin directory-bench                    # SQLite
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p passerelle-tests --bin directory-bench                  # PostgreSQL
//! ```

use std::time::Instant;

use anyhow::Context as _;
use passerelle_domain::db::{insert_rows, now_us};
use passerelle_domain::ledger::Wallet;
use passerelle_domain::partner::{DirectoryQuery, Near, fold, search};
use passerelle_tests::fresh_db;
use passerelle_tests::school::funder;
use sea_orm::Value;
use serde_json::json;
use uuid::Uuid;

const COMMUNES: [(&str, &str, f64, f64); 6] = [
    ("Clamart", "92023", 48.8006, 2.2664),
    ("Nanterre", "92050", 48.8924, 2.2071),
    ("Sèvres", "92072", 48.8239, 2.2117),
    ("Bagneux", "92007", 48.7959, 2.3086),
    ("Antony", "92002", 48.7539, 2.2975),
    ("Courbevoie", "92026", 48.8973, 2.2531),
];
const WORDS: [&str; 6] = ["Judo", "Théâtre", "Escalade", "Musique", "Danse", "Natation"];

/// A deterministic spread in [-1, 1): the same places on every run (splitmix64).
fn spread(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// A query shape: its name, and the query of the i-th run.
type Shape = (&'static str, Box<dyn Fn(usize) -> DirectoryQuery>);

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    std::env::var(name).unwrap_or_else(|_| default.to_string()).parse().with_context(|| name.to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (partners, queries) = (env_usize("BENCH_PARTNERS", 3000)?, env_usize("BENCH_QUERIES", 300)?);
    let test_db = fresh_db().await;
    let db = &test_db.db;
    let funder = funder(db, "92").await;
    let now = now_us(db).await?;
    let mut rng = 92u64;
    let (mut rows, mut activities) = (vec![], vec![]);
    for i in 0..partners {
        let (commune, insee, lat, lon) = COMMUNES[i % COMMUNES.len()];
        let word = WORDS[i % WORDS.len()];
        let wallet = if matches!(word, "Théâtre" | "Musique") { Wallet::Culture } else { Wallet::Sport };
        let name = format!("{word} club {i} de {commune}");
        let id = Uuid::now_v7();
        let (plat, plon) = (lat + 0.03 * spread(&mut rng), lon + 0.04 * spread(&mut rng));
        rows.push(vec![
            id.into(),
            name.clone().into(),
            funder.into(),
            <&str>::from(wallet).into(),
            "approved".into(),
            commune.into(),
            insee.into(),
            plat.into(),
            plon.into(),
            fold(&format!("{name} {commune}")).into(),
            now.into(),
        ]);
        for k in 0..2 {
            let title = format!("{word} niveau {k}");
            let v: Vec<Value> = vec![
                Uuid::now_v7().into(),
                id.into(),
                title.clone().into(),
                fold(&format!("{title}  {commune}")).into(),
                <&str>::from(wallet).into(),
                commune.into(),
                insee.into(),
                (plat + 0.01 * spread(&mut rng)).into(),
                (plon + 0.01 * spread(&mut rng)).into(),
                now.into(),
                now.into(),
            ];
            activities.push(v);
        }
    }
    let cols = "id, name, funder_id, categories, status, commune, commune_insee, lat, lon, search_text, created_at_us";
    insert_rows(db, "partner", cols, &rows, 200, &|_, _| {}).await?;
    let cols =
        "id, partner_id, title, search_text, category, commune, commune_insee, lat, lon, created_at_us, updated_at_us";
    insert_rows(db, "activity", cols, &activities, 200, &|_, _| {}).await?;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        use sea_orm::ConnectionTrait as _;
        db.execute_unprepared("ANALYZE partner, activity").await?;
    }
    let funders = [funder];
    let shapes: [Shape; 4] = [
        (
            "near_3km",
            Box::new(|i| {
                let (_, _, lat, lon) = COMMUNES[i % COMMUNES.len()];
                DirectoryQuery { near: Near::new(lat, lon, 3.0).ok(), ..Default::default() }
            }),
        ),
        (
            "text_folded",
            Box::new(|i| DirectoryQuery {
                text: Some(["THEATRE", "escalade", "natation"][i % 3].into()),
                ..Default::default()
            }),
        ),
        (
            "commune",
            Box::new(|i| DirectoryQuery { commune: Some(COMMUNES[i % COMMUNES.len()].1.into()), ..Default::default() }),
        ),
        ("by_name", Box::new(|_| DirectoryQuery::default())),
    ];
    for (shape, query) in &shapes {
        let mut times = Vec::with_capacity(queries);
        let mut found = 0;
        for i in 0..queries {
            let q = query(i);
            let t = Instant::now();
            found += search(db, &funders, &q, 21, None).await?.len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
        let line = json!({ "shape": shape, "partners": partners, "backend": format!("{:?}", db.get_database_backend()),
                           "queries": queries, "found_per_query": found as f64 / queries as f64,
                           "p50_ms": pct(0.5), "p99_ms": pct(0.99) });
        println!("{line}");
    }
    Ok(())
}
