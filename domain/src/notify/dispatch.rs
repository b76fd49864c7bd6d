//! The outbox dispatcher. Several may run at once (every `serve` and `worker`): rows are
//! claimed with a lease by one conditional update (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! claimers skip each other's rows; on SQLite the write lock serialises claimers), and a
//! channel already recorded in `delivery` is never sent again for the same event.
//!
//! A pass works on the whole claim at once, because one event at a time cost about ten
//! statements and two FCM round trips in series per event: the recipients, their choices and
//! devices are read for every claimed row together ([`known`]), [`deliver`] turns each row into
//! what it asks for (per topic, read by [`topics::read`]), the inbox entries are written together, then the
//! pushes and e-mails go out `concurrency` at a time, and one transaction records what went
//! out and settles every row ([`writes`]).

mod known;
mod writes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult};
use serde::Serialize;
use uuid::Uuid;

use super::topics::{self, Event};
use super::{Push, PushError, PushSender};
use crate::db::{begin_write, now_us, stmt};
use crate::error::Result;
use crate::mail::{Mail, Mailer, Message as MailMessage};
use known::Known;
use writes::{Inbox, Outcome};

pub use writes::prune_push_tokens;

/// Attempts before a row is marked failed (about a day of backoff).
pub const MAX_ATTEMPTS: i32 = 12;

/// How a pass of the dispatcher runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchOptions {
    /// Rows claimed at once (their recipients, choices and devices are read together).
    pub limit: u64,
    /// How long a claim holds a row: a dispatcher that dies releases its rows after this. It
    /// must stay well above the time a pass takes, or another dispatcher sends the rows again.
    pub lease: Duration,
    /// Pushes and e-mails in flight at once.
    pub concurrency: usize,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions { limit: 500, lease: Duration::from_secs(60), concurrency: 64 }
    }
}

/// What one pass of the dispatcher did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    pub events: u64,
    pub inbox: u64,
    pub pushes: u64,
    pub emails: u64,
    pub tokens_removed: u64,
    pub retried: u64,
    pub failed: u64,
}

impl std::ops::AddAssign for DispatchReport {
    fn add_assign(&mut self, r: DispatchReport) {
        self.events += r.events;
        self.inbox += r.inbox;
        self.pushes += r.pushes;
        self.emails += r.emails;
        self.tokens_removed += r.tokens_removed;
        self.retried += r.retried;
        self.failed += r.failed;
    }
}

#[derive(FromQueryResult)]
struct Claimed {
    id: Uuid,
    topic: String,
    payload: String,
    attempts: i32,
}

/// Claims up to `options.limit` due rows and delivers them.
pub async fn dispatch(
    db: &DatabaseConnection,
    push: Option<&Arc<dyn PushSender>>,
    mail: Option<&Arc<dyn Mailer>>,
    options: &DispatchOptions,
) -> Result<DispatchReport> {
    let rows = claim(db, options).await?;
    let mut report = DispatchReport { events: rows.len() as u64, ..DispatchReport::default() };
    if rows.is_empty() {
        return Ok(report);
    }
    let events: Vec<_> = rows.iter().map(|r| topics::read(r.id, &r.topic, &r.payload)).collect();
    let outcomes = match Known::load(db, &rows, &events).await {
        Ok(known) => send(db, Senders { push, mail }, &known, &rows, &events, options, &mut report).await,
        Err(e) => rows.iter().map(|_| Outcome::retry(format!("reading recipients: {e}"))).collect(),
    };
    writes::settle(db, &rows, outcomes, &mut report).await?;
    Ok(report)
}

async fn claim(db: &DatabaseConnection, options: &DispatchOptions) -> Result<Vec<Claimed>> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let lease_us = i64::try_from(options.lease.as_micros()).unwrap_or(i64::MAX / 2);
    let txn = begin_write(db).await?;
    let now = now_us(&txn).await?;
    let sql = format!(
        "UPDATE outbox SET claimed_until_us = $1 + {lease_us}, attempts = attempts + 1 WHERE id IN \
         (SELECT id FROM outbox WHERE dispatched_at_us IS NULL AND failed_at_us IS NULL AND next_attempt_at_us <= $1 \
         AND (claimed_until_us IS NULL OR claimed_until_us <= $1) ORDER BY next_attempt_at_us, id LIMIT $2 {lock}) \
         RETURNING id, topic, payload, attempts"
    );
    let limit = i64::try_from(options.limit).unwrap_or(i64::MAX);
    let rows = Claimed::find_by_statement(stmt(backend, &sql, [now.into(), limit.into()])).all(&txn).await?;
    txn.commit().await?;
    Ok(rows)
}

/// Why a row must be tried again, or given up.
enum Undelivered {
    Retry { after_secs: Option<u64>, reason: String },
    Fail(String),
}

/// The `delivery` channel of an account mail (one address per row).
const MAIL_CHANNEL: &str = "email";

/// One message of an event, and the `delivery` channel that remembers it went out.
struct Outgoing {
    channel: String,
    message: Message,
    /// An account mail: the row's payload once sent. It must go out: without a mailer the row
    /// waits (retried) instead of being settled unsent.
    then_erase: Option<String>,
}

impl Outgoing {
    fn new(channel: String, message: Message) -> Outgoing {
        Outgoing { channel, message, then_erase: None }
    }
}

enum Message {
    /// To the device `device` (its token is dropped when FCM says it is gone).
    Push {
        device: Uuid,
        push: Push,
    },
    Mail(Mail),
}

/// What one event asks for: inbox entries, then the messages not sent yet.
#[derive(Default)]
struct Plan {
    inbox: Vec<Inbox>,
    messages: Vec<Outgoing>,
    /// The row's new payload (an account mail sent by an earlier claim, secret still there).
    erase: Option<String>,
}

/// The per-topic part: what the row `row` (read as `event`) asks for, given what was read for
/// the claim.
fn deliver(known: &Known, row: &Claimed, event: &Event) -> Result<Plan, Undelivered> {
    let notice = match event {
        Event::Notice(notice) => notice,
        Event::Mail(message) => return account_mail(known, row, message),
    };
    let kind = notice.kind;
    let about = kind.about();
    let ids = serde_json::json!({ about: notice.about }).to_string();
    let mut plan = Plan::default();
    for r in known.recipients(notice.audience) {
        plan.inbox.push(Inbox { account: r.account_id, event: row.id, kind, payload: ids.clone() });
        let choice = known.choice(r.account_id, kind);
        if choice.push {
            for d in known.devices(r.account_id) {
                let channel = format!("push:{}", d.id);
                if known.delivered(row.id, &channel) {
                    continue;
                }
                let data = BTreeMap::from([
                    ("kind".to_owned(), kind.to_string()),
                    ("event_id".to_owned(), row.id.to_string()),
                    (about.to_owned(), notice.about.to_string()),
                ]);
                let push = Push {
                    token: d.token.clone(),
                    platform: d.platform.clone(),
                    title: kind.title().into(),
                    body: kind.body().into(),
                    data,
                };
                plan.messages.push(Outgoing::new(channel, Message::Push { device: d.id, push }));
            }
        }
        if choice.email {
            let channel = format!("email:{}", r.account_id);
            if !known.delivered(row.id, &channel) {
                let mail = notice.mail.for_child(r.given_name.as_deref());
                let m = mail.render(&r.email).map_err(|e| Undelivered::Fail(format!("render: {e}")))?;
                plan.messages.push(Outgoing::new(channel, Message::Mail(m)));
            }
        }
    }
    Ok(plan)
}

/// An account mail (topic `mail`): sent once to its address, then its secret erased from the
/// row in the settling transaction (the secret lives in the outbox only until it is sent).
fn account_mail(known: &Known, row: &Claimed, message: &MailMessage) -> Result<Plan, Undelivered> {
    let erased = topics::erased(message).map_err(|e| Undelivered::Fail(e.to_string()))?;
    if known.delivered(row.id, MAIL_CHANNEL) {
        return Ok(Plan { erase: message.has_secret().then_some(erased), ..Plan::default() });
    }
    if !message.has_secret() {
        return Err(Undelivered::Fail("the message's secret was erased before it was sent".into()));
    }
    let mail = message.render().map_err(|e| Undelivered::Fail(format!("render: {e}")))?;
    let out = Outgoing { channel: MAIL_CHANNEL.into(), message: Message::Mail(mail), then_erase: Some(erased) };
    Ok(Plan { messages: vec![out], ..Plan::default() })
}

/// Plans every row, writes their inbox entries, then sends their messages concurrently.
/// The configured senders (either may be absent: that channel is not sent).
struct Senders<'a> {
    push: Option<&'a Arc<dyn PushSender>>,
    mail: Option<&'a Arc<dyn Mailer>>,
}

async fn send(
    db: &DatabaseConnection,
    Senders { push, mail }: Senders<'_>,
    known: &Known,
    rows: &[Claimed],
    events: &[std::result::Result<Event, String>],
    options: &DispatchOptions,
    report: &mut DispatchReport,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(rows.len());
    let mut inbox = vec![];
    let mut jobs = vec![];
    for (i, (row, event)) in rows.iter().zip(events).enumerate() {
        let planned = match event {
            Ok(event) => deliver(known, row, event),
            Err(reason) => Err(Undelivered::Fail(reason.clone())),
        };
        match planned {
            Ok(plan) => {
                inbox.extend(plan.inbox);
                jobs.extend(plan.messages.into_iter().map(|m| (i, m)));
                outcomes.push(Outcome { erase: plan.erase, ..Outcome::default() });
            }
            Err(e) => outcomes.push(Outcome { result: Err(e), ..Outcome::default() }),
        }
    }
    // The inbox first: a push that arrives before its inbox entry opens an empty screen.
    match writes::write_inbox(db, &inbox).await {
        Ok(n) => report.inbox += n,
        Err(e) => {
            let reason = format!("inbox: {e}");
            return outcomes
                .into_iter()
                .map(|o| if o.result.is_ok() { Outcome::retry(reason.clone()) } else { o })
                .collect();
        }
    }
    let sent = futures_util::stream::iter(jobs)
        .map(|(i, out)| async move {
            let result = match out.message {
                Message::Push { device, push: message } => match push {
                    Some(sender) => Sent::Push(device, sender.send(message).await),
                    None => Sent::Skipped,
                },
                Message::Mail(m) => match mail {
                    Some(mailer) => Sent::Mail(mailer.send(m).await.map_err(|e| e.to_string())),
                    None => Sent::Skipped,
                },
            };
            (i, out.channel, out.then_erase, result)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    for (i, channel, then_erase, result) in sent {
        let outcome = &mut outcomes[i];
        if then_erase.is_some() && matches!(result, Sent::Skipped) {
            outcome.result = Err(Undelivered::Retry { after_secs: None, reason: "no mailer for account mail".into() });
        }
        match result {
            Sent::Push(_, Ok(())) => {
                outcome.sent.push(channel);
                report.pushes += 1;
            }
            Sent::Mail(Ok(())) => {
                outcome.sent.push(channel);
                outcome.erase = then_erase.or(outcome.erase.take());
                report.emails += 1;
            }
            Sent::Push(device, Err(PushError::InvalidToken)) => {
                outcome.gone.push(device);
                report.tokens_removed += 1;
            }
            Sent::Push(_, Err(PushError::Retry { retry_after_secs, reason })) => {
                outcome.result = Err(Undelivered::Retry { after_secs: retry_after_secs, reason });
            }
            Sent::Push(_, Err(PushError::Config(reason))) => {
                tracing::error!(%reason, "push configuration error: push not sent");
            }
            Sent::Mail(Err(e)) => {
                outcome.result = Err(Undelivered::Retry { after_secs: None, reason: format!("mail: {e}") });
            }
            Sent::Skipped => {}
        }
    }
    outcomes
}

/// How one message went.
enum Sent {
    Push(Uuid, std::result::Result<(), PushError>),
    Mail(std::result::Result<(), String>),
    /// No sender for this channel is configured.
    Skipped,
}
