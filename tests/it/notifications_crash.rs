//! The dispatcher under failure and contention: a worker process killed with SIGKILL in the
//! middle of a batch loses nothing (its claims lapse, another worker sends them; a duplicate
//! carries the same event id), and dispatchers running at once send each (event, device) once.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use passerelle_domain::db::stmt;
use passerelle_domain::notify::{DispatchOptions, register_push_token};
use passerelle_tests::fake_fcm::FakeFcm;
use passerelle_tests::spending::{Family, family};
use passerelle_tests::{TestDb, count, fresh_db};
use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

const DEVICES: [&str; 2] = ["crash-android", "crash-ios"];

/// `passerelle worker` in a process of its own, killed (SIGKILL) when dropped.
struct Worker(Child);

impl Worker {
    fn start(test_db: &TestDb, fcm: &FakeFcm, data_dir: &std::path::Path) -> Worker {
        let mut command = Command::new(env!("CARGO_BIN_EXE_worker-under-test"));
        command
            .env_clear()
            .envs(fcm.settings())
            .env("PASSERELLE_ENV", "test")
            .env("PASSERELLE_DEMO", "false")
            .env("DATABASE_URL", &test_db.url)
            .env("PASSERELLE_DATA_DIR", data_dir)
            .env("PASSERELLE_SCHEDULER_SECS", "3600")
            .env("PASSERELLE_DISPATCH_MS", "20")
            // The dead worker's claims lapse after a second (60 s in production).
            .env("PASSERELLE_DISPATCH_LEASE_MS", "1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Worker(command.spawn().expect("start worker-under-test"))
    }

    /// SIGKILL: no graceful stop, no chance to settle what is in flight.
    fn kill(mut self) {
        self.0.kill().expect("SIGKILL the worker");
        self.0.wait().expect("reap the worker");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(FromQueryResult)]
struct Row {
    id: Uuid,
    attempts: i32,
}

async fn outbox(test_db: &TestDb) -> HashMap<Uuid, i32> {
    let sql = "SELECT id, attempts FROM outbox";
    let rows = Row::find_by_statement(stmt(test_db.db.get_database_backend(), sql, [])).all(&test_db.db).await;
    rows.expect("outbox").into_iter().map(|r| (r.id, r.attempts)).collect()
}

/// (event id, device token) of every push the fake accepted, with how many times.
fn pushes(fcm: &FakeFcm) -> HashMap<(Uuid, String), usize> {
    let mut seen = HashMap::new();
    for m in fcm.accepted() {
        let event = m["data"]["event_id"].as_str().and_then(|e| Uuid::parse_str(e).ok()).expect("event_id");
        *seen.entry((event, m["token"].as_str().expect("token").to_owned())).or_default() += 1;
    }
    seen
}

/// A family (one parent, two devices) and `events` committed outbox events (tickets issued).
async fn family_with_events(test_db: &TestDb, events: usize) -> Family {
    let f = family(&test_db.db, 3, false).await;
    // The grant's own events (`credit_granted`, one per pass) are not this test's: it counts
    // the tickets' events only.
    let db = &test_db.db;
    db.execute_raw(stmt(db.get_database_backend(), "DELETE FROM outbox", [])).await.expect("clear the outbox");
    for (token, platform) in DEVICES.iter().zip(["ANDROID", "IOS"]) {
        register_push_token(&test_db.db, f.parent, token, platform).await.expect("device");
    }
    for i in 0..events {
        f.ticket(&test_db.db, i % 3, 10, None, &format!("before-{i}")).await;
    }
    f
}

/// Every committed event reached every device; nothing reached a device but committed events.
fn every_event_on_every_device(fcm: &FakeFcm, events: &HashMap<Uuid, i32>) -> bool {
    let seen = pushes(fcm);
    events.keys().all(|e| DEVICES.iter().all(|d| seen.contains_key(&(*e, (*d).to_owned()))))
}

#[tokio::test]
async fn a_worker_killed_mid_batch_loses_no_event_and_a_new_worker_sends_them_all() {
    let test_db = fresh_db().await;
    let fcm = FakeFcm::start().await;
    let data_dir = std::env::temp_dir().join(format!("passerelle-crash-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let f = family_with_events(&test_db, 40).await;
    let before = outbox(&test_db).await;
    assert_eq!(before.len(), 40);

    // The first worker gets 6 answers, then FCM hangs: it is mid-batch, 80 pushes claimed.
    fcm.hold_after(6);
    let first = Worker::start(&test_db, &fcm, &data_dir);
    fcm.wait_until("16 pushes at FCM", |fcm| fcm.arrived() >= 16).await;
    first.kill();
    assert_eq!(fcm.accepted().len(), 6, "the answered ones only");
    let claimed = count(&test_db.db, "SELECT COUNT(*) AS n FROM outbox WHERE claimed_until_us IS NOT NULL").await;
    assert_eq!(claimed, 40, "the dead worker's claims are still there");
    assert_eq!(count(&test_db.db, "SELECT COUNT(*) AS n FROM outbox WHERE dispatched_at_us IS NOT NULL").await, 0);

    // Events committed while no worker runs, then FCM answers again and a new worker starts.
    for i in 0..10 {
        f.ticket(&test_db.db, i % 3, 10, None, &format!("after-{i}")).await;
    }
    let committed = outbox(&test_db).await;
    fcm.release();
    let second = Worker::start(&test_db, &fcm, &data_dir);
    fcm.wait_until("every event on every device", |fcm| every_event_on_every_device(fcm, &committed)).await;
    let settled = "SELECT COUNT(*) AS n FROM outbox WHERE dispatched_at_us IS NOT NULL AND claimed_until_us IS NULL";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(&test_db.db, settled).await < 50 {
        assert!(tokio::time::Instant::now() < deadline, "rows left unsettled");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    second.kill();

    let seen = pushes(&fcm);
    assert!(seen.keys().all(|(e, _)| committed.contains_key(e)), "only committed events, by their own id");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert!(duplicates >= 6, "the 6 answered before the kill went out again (same event id): {duplicates}");
    let after = outbox(&test_db).await;
    // The dead worker's rows were claimed twice (the lease lapsed); the later ones once.
    for (id, attempts) in &after {
        assert_eq!(*attempts, if before.contains_key(id) { 2 } else { 1 }, "attempts of {id}");
    }
    assert_eq!(count(&test_db.db, "SELECT COUNT(*) AS n FROM outbox WHERE failed_at_us IS NOT NULL").await, 0);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn dispatchers_running_at_once_push_each_event_to_each_device_exactly_once() {
    let test_db = fresh_db().await;
    let fcm = FakeFcm::start().await;
    family_with_events(&test_db, 120).await;
    let push = fcm.sender();
    // Four dispatchers with pools of their own (as four processes), claiming small batches so
    // that their claims interleave.
    let options = DispatchOptions { limit: 8, ..DispatchOptions::default() };
    let runs = (0..4).map(|_| {
        let (url, push) = (test_db.url.clone(), push.clone());
        tokio::spawn(async move {
            let db = passerelle_domain::db::connect(&url, 3).await.expect("dispatcher's pool");
            passerelle_api::notifications::tick_with(&db, Some(&push), None, &options).await.expect("dispatch")
        })
    });
    let reports = futures_util::future::join_all(runs).await;
    let seen = pushes(&fcm);
    assert_eq!(seen.len(), 240, "every (event, device)");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let claimed: u64 = reports.into_iter().map(|r| r.expect("dispatcher").events).sum();
    assert_eq!(claimed, 120, "each row claimed by one dispatcher");
    let dispatched = count(&test_db.db, "SELECT COUNT(*) AS n FROM outbox WHERE dispatched_at_us IS NOT NULL").await;
    assert_eq!(dispatched, 120);
}

#[tokio::test]
async fn the_dispatcher_loop_sends_what_was_committed_after_its_first_pass() {
    let test_db = fresh_db().await;
    let fcm = FakeFcm::start().await;
    let f = family_with_events(&test_db, 1).await;
    let push = fcm.sender();
    let mail: Arc<dyn passerelle_domain::mail::Mailer> = Arc::new(passerelle_domain::mail::LogMailer);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The service's loop (nothing wakes it: PostgreSQL's NOTIFY was dropped, m0022): its
    // later passes find the event committed after the first one.
    let every = std::time::Duration::from_millis(20);
    let options = DispatchOptions::default();
    passerelle_api::notifications::spawn(test_db.db.clone(), every, options, Some(push), mail, stop.clone());
    fcm.wait_until("the first pass", |fcm| fcm.accepted().len() == 2).await;
    f.ticket(&test_db.db, 0, 10, None, "later").await;
    fcm.wait_until("the pushes of an event committed after the first pass", |fcm| fcm.accepted().len() == 4).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
}
