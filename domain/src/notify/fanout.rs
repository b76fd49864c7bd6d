//! One claimed outbox row to the people it concerns: per recipient an inbox entry, a push on
//! each device and an e-mail, as their preferences say. Each channel is recorded in
//! `delivery` once sent, so a retry after a partial failure sends only the rest.

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use uuid::Uuid;

use super::dispatch::{DispatchReport, Undelivered, delivered, record, retry};
use super::email::{EventMail, request_mail, send_queued};
use super::topics::{PASS_TOPIC, PassPayload, REQUEST_TOPIC, RequestPayload, parse};
use super::{NotificationKind, Push, PushError, PushSender, preferences};
use crate::db::{now_us_sql, stmt};
use crate::mail::{MAIL_TOPIC, Mailer};

/// Who hears of an event.
#[derive(FromQueryResult)]
struct Recipient {
    account_id: Uuid,
    email: String,
    /// The child the pass belongs to (pass events): the e-mail's one personal detail.
    given_name: Option<String>,
}

#[derive(FromQueryResult)]
struct Device {
    id: Uuid,
    token: String,
    platform: String,
}

/// The channels a claimed row goes out on.
pub(super) struct Channels<'a> {
    pub push: Option<&'a Arc<dyn PushSender>>,
    pub mail: Option<&'a Arc<dyn Mailer>>,
}

/// One event as its recipients see it.
struct Event {
    id: Uuid,
    kind: NotificationKind,
    /// What it is about, `("pass_id", …)` or `("request_id", …)`: the inbox entry's payload
    /// and the push's data carry it, and nothing else.
    about: (&'static str, Uuid),
}

/// Delivers one claimed row of any known topic.
pub(super) async fn deliver_row(
    db: &DatabaseConnection,
    channels: &Channels<'_>,
    event_id: Uuid,
    topic: &str,
    payload: &str,
    report: &mut DispatchReport,
) -> Result<(), Undelivered> {
    let backend = db.get_database_backend();
    let (event, targets): (Event, Vec<(Recipient, EventMail)>) = match topic {
        PASS_TOPIC => {
            let p: PassPayload = parse(topic, payload).map_err(Undelivered::Fail)?;
            about_matches(p.reason, "pass_id")?;
            let sql = "SELECT DISTINCT l.account_id, a.email, pu.given_name FROM family_link l \
                       JOIN pass p ON p.pupil_id = l.pupil_id JOIN pupil pu ON pu.id = p.pupil_id \
                       JOIN account a ON a.id = l.account_id WHERE p.id = $1 AND l.revoked_at_us IS NULL";
            let recipients =
                Recipient::find_by_statement(stmt(backend, sql, [p.pass_id.into()])).all(db).await.map_err(retry)?;
            let mail = |r: &Recipient| EventMail::Pass { kind: p.reason, event_id, child: r.given_name.clone() };
            let targets = recipients
                .into_iter()
                .map(|r| {
                    let m = mail(&r);
                    (r, m)
                })
                .collect();
            (Event { id: event_id, kind: p.reason, about: ("pass_id", p.pass_id) }, targets)
        }
        REQUEST_TOPIC => {
            let p: RequestPayload = parse(topic, payload).map_err(Undelivered::Fail)?;
            about_matches(p.reason, "request_id")?;
            let sql = "SELECT id AS account_id, email, CAST(NULL AS TEXT) AS given_name FROM account WHERE id = $1";
            let recipients =
                Recipient::find_by_statement(stmt(backend, sql, [p.account_id.into()])).all(db).await.map_err(retry)?;
            let targets = recipients.into_iter().map(|r| (r, request_mail(&p))).collect();
            (Event { id: event_id, kind: p.reason, about: ("request_id", p.request_id) }, targets)
        }
        MAIL_TOPIC => return send_queued(db, channels.mail, event_id, payload, report).await,
        other => return Err(Undelivered::Fail(format!("unknown topic {other:?}"))),
    };
    let mut pending = None;
    for (r, mail) in &targets {
        to_recipient(db, channels, &event, r, mail, &mut pending, report).await?;
    }
    pending.map_or(Ok(()), Err)
}

/// A kind written under the wrong topic (a request kind on a pass) is given up: its push would
/// carry the wrong id.
fn about_matches(kind: NotificationKind, about: &str) -> Result<(), Undelivered> {
    if kind.about() == about { Ok(()) } else { Err(Undelivered::Fail(format!("{kind} is not about a {about}"))) }
}

/// Inbox, pushes and e-mail for one recipient. A database error stops the row (retried); a
/// channel that should be tried again later is left in `pending` and the others go on.
async fn to_recipient(
    db: &DatabaseConnection,
    channels: &Channels<'_>,
    event: &Event,
    r: &Recipient,
    mail: &EventMail,
    pending: &mut Option<Undelivered>,
    report: &mut DispatchReport,
) -> Result<(), Undelivered> {
    let backend = db.get_database_backend();
    let (about, about_id) = event.about;
    let ids = serde_json::json!({ about: about_id }).to_string();
    // Stamped when written: subscribers (`notificationAdded`) follow the inbox by this time.
    let sql = format!(
        "INSERT INTO notification (id, account_id, event_id, kind, payload, created_at_us, read_at_us) \
         VALUES ($1, $2, $3, $4, $5, {}, NULL) ON CONFLICT (account_id, event_id) DO NOTHING",
        now_us_sql(backend)
    );
    let values: [Value; 5] =
        [Uuid::now_v7().into(), r.account_id.into(), event.id.into(), event.kind.into(), ids.into()];
    report.inbox += db.execute_raw(stmt(backend, &sql, values)).await.map_err(retry)?.rows_affected();
    let choice = preferences(db, r.account_id).await.map_err(retry)?;
    let choice = choice.into_iter().find(|p| p.kind == event.kind);
    if let (Some(sender), true) = (channels.push, choice.is_none_or(|c| c.push)) {
        let sql = "SELECT id, token, platform FROM push_token WHERE account_id = $1 ORDER BY created_at_us";
        let devices =
            Device::find_by_statement(stmt(backend, sql, [r.account_id.into()])).all(db).await.map_err(retry)?;
        for d in devices {
            let channel = format!("push:{}", d.id);
            if delivered(db, event.id, &channel).await.map_err(retry)? {
                continue;
            }
            let data = BTreeMap::from([
                ("kind".to_owned(), event.kind.to_string()),
                ("event_id".to_owned(), event.id.to_string()),
                (about.to_owned(), about_id.to_string()),
            ]);
            let title = event.kind.title().into();
            let message = Push { token: d.token, platform: d.platform, title, body: event.kind.body().into(), data };
            match sender.send(message).await {
                Ok(()) => {
                    record(db, event.id, &channel).await.map_err(retry)?;
                    report.pushes += 1;
                }
                Err(PushError::InvalidToken) => {
                    let sql = "DELETE FROM push_token WHERE id = $1";
                    db.execute_raw(stmt(backend, sql, [d.id.into()])).await.map_err(retry)?;
                    report.tokens_removed += 1;
                }
                Err(PushError::Retry { retry_after_secs, reason }) => {
                    *pending = Some(Undelivered::Retry { after_secs: retry_after_secs, reason });
                }
                Err(PushError::Config(reason)) => {
                    tracing::error!(%reason, "push configuration error: push not sent");
                }
            }
        }
    }
    if let (Some(mailer), true) = (channels.mail, choice.map_or(event.kind.email_by_default(), |c| c.email)) {
        let channel = format!("email:{}", r.account_id);
        if !delivered(db, event.id, &channel).await.map_err(retry)? {
            let rendered = mail.render(&r.email).map_err(|e| Undelivered::Fail(format!("render: {e}")))?;
            match mailer.send(rendered).await {
                Ok(()) => {
                    record(db, event.id, &channel).await.map_err(retry)?;
                    report.emails += 1;
                }
                Err(e) => *pending = Some(Undelivered::Retry { after_secs: None, reason: format!("mail: {e}") }),
            }
        }
    }
    Ok(())
}
