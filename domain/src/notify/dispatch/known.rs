//! What a pass reads once for every claimed row: the linked parents of each pass, their
//! choices and devices, and what was already sent for rows tried before. Four statements per
//! claim (chunked IN lists) instead of about eight per event.

use std::collections::{HashMap, HashSet};

use sea_orm::{DatabaseConnection, FromQueryResult, Value};
use uuid::Uuid;

use super::Claimed;
use crate::db::{params, rows_per_statement, stmt};
use crate::error::Result;
use crate::notify::{NotificationKind, Preference};

#[derive(FromQueryResult)]
pub(super) struct Recipient {
    pass_id: Uuid,
    pub(super) account_id: Uuid,
    pub(super) email: String,
}

#[derive(FromQueryResult)]
pub(super) struct Device {
    pub(super) id: Uuid,
    account_id: Uuid,
    pub(super) token: String,
    pub(super) platform: String,
}

#[derive(FromQueryResult)]
struct Choice {
    account_id: Uuid,
    kind: NotificationKind,
    push: bool,
    email: bool,
}

#[derive(FromQueryResult)]
struct Delivered {
    event_id: Uuid,
    channel: String,
}

#[derive(Default)]
pub(super) struct Known {
    recipients: HashMap<Uuid, Vec<Recipient>>,
    choices: HashMap<(Uuid, NotificationKind), Preference>,
    devices: HashMap<Uuid, Vec<Device>>,
    delivered: HashSet<(Uuid, String)>,
}

/// The kind and pass of a `pass_updated` payload, or why it is unusable.
pub(super) fn pass_event(payload: &str) -> Result<(NotificationKind, Uuid), String> {
    let payload: serde_json::Value = serde_json::from_str(payload).map_err(|e| format!("payload: {e}"))?;
    let kind: NotificationKind = payload["reason"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| format!("unknown reason in {payload}"))?;
    let pass = payload["pass_id"].as_str().and_then(|p| Uuid::parse_str(p).ok());
    Ok((kind, pass.ok_or("no pass_id")?))
}

/// Runs `sql` (with `{ids}` standing for the IN list) over `ids` in chunks.
async fn by_ids<T: FromQueryResult>(db: &DatabaseConnection, sql: &str, ids: &[Uuid]) -> Result<Vec<T>> {
    let backend = db.get_database_backend();
    let mut out = vec![];
    for chunk in ids.chunks(rows_per_statement(backend, 16, 2000)) {
        let sql = sql.replace("{ids}", &params(1, chunk.len()));
        let values = chunk.iter().map(|id| Value::from(*id));
        out.extend(T::find_by_statement(stmt(backend, &sql, values)).all(db).await?);
    }
    Ok(out)
}

fn distinct(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl Known {
    pub(super) async fn load(db: &DatabaseConnection, rows: &[Claimed]) -> Result<Known> {
        let mut known = Known::default();
        let passes = distinct(rows.iter().filter_map(|r| pass_event(&r.payload).ok()).map(|(_, pass)| pass));
        let sql = "SELECT DISTINCT p.id AS pass_id, l.account_id, a.email FROM family_link l \
                   JOIN pass p ON p.pupil_id = l.pupil_id JOIN account a ON a.id = l.account_id \
                   WHERE p.id IN ({ids}) AND l.revoked_at_us IS NULL";
        for r in by_ids::<Recipient>(db, sql, &passes).await? {
            known.recipients.entry(r.pass_id).or_default().push(r);
        }
        let accounts = distinct(known.recipients.values().flatten().map(|r| r.account_id));
        let sql = "SELECT account_id, kind, push, email FROM notification_preference WHERE account_id IN ({ids})";
        for c in by_ids::<Choice>(db, sql, &accounts).await? {
            known.choices.insert((c.account_id, c.kind), Preference { kind: c.kind, push: c.push, email: c.email });
        }
        let sql = "SELECT id, account_id, token, platform FROM push_token WHERE account_id IN ({ids}) \
                   ORDER BY created_at_us";
        for d in by_ids::<Device>(db, sql, &accounts).await? {
            known.devices.entry(d.account_id).or_default().push(d);
        }
        // A row claimed for the first time has sent nothing yet: the claim that sends is the
        // one that counts the attempt.
        let retried: Vec<Uuid> = rows.iter().filter(|r| r.attempts > 1).map(|r| r.id).collect();
        let sql = "SELECT event_id, channel FROM delivery WHERE event_id IN ({ids})";
        for d in by_ids::<Delivered>(db, sql, &retried).await? {
            known.delivered.insert((d.event_id, d.channel));
        }
        Ok(known)
    }

    pub(super) fn recipients(&self, pass: Uuid) -> &[Recipient] {
        self.recipients.get(&pass).map_or(&[], Vec::as_slice)
    }

    /// The account's choice for `kind`, or the default (push on; e-mail per kind).
    pub(super) fn choice(&self, account: Uuid, kind: NotificationKind) -> Preference {
        let default = Preference { kind, push: true, email: kind.email_by_default() };
        self.choices.get(&(account, kind)).copied().unwrap_or(default)
    }

    pub(super) fn devices(&self, account: Uuid) -> &[Device] {
        self.devices.get(&account).map_or(&[], Vec::as_slice)
    }

    pub(super) fn delivered(&self, event: Uuid, channel: &str) -> bool {
        self.delivered.contains(&(event, channel.to_owned()))
    }
}
