//! What a pass reads once for every claimed row: who hears of each event (the linked parents
//! of a pass, the requester's account, a partner's members), their choices and devices, and
//! what was already sent for rows tried before. A statement per kind of audience present, then
//! three (chunked IN lists), instead of about eight per event.

use std::collections::{HashMap, HashSet};

use sea_orm::{DatabaseConnection, FromQueryResult, Value};
use uuid::Uuid;

use super::Claimed;
use crate::db::{params, rows_per_statement, stmt};
use crate::error::Result;
use crate::notify::topics::{Audience, Event};
use crate::notify::{NotificationKind, Preference};

/// Who each audience is, one statement (chunked) per kind of audience.
const PASS_FAMILIES: &str = "SELECT DISTINCT p.id AS audience_id, l.account_id, a.email, pu.given_name FROM family_link l \
    JOIN pass p ON p.pupil_id = l.pupil_id JOIN pupil pu ON pu.id = p.pupil_id JOIN account a ON a.id = l.account_id \
    WHERE p.id IN ({ids}) AND l.revoked_at_us IS NULL";
const ACCOUNTS: &str = "SELECT id AS audience_id, id AS account_id, email, CAST(NULL AS TEXT) AS given_name FROM account WHERE id IN ({ids})";
const PARTNER_MEMBERS: &str = "SELECT m.partner_id AS audience_id, m.account_id, a.email, CAST(NULL AS TEXT) AS given_name \
    FROM partner_member m JOIN account a ON a.id = m.account_id WHERE m.partner_id IN ({ids})";

/// An audience of one kind, by its id.
type AudienceOf = fn(Uuid) -> Audience;

/// Each kind of audience with the statement reading it.
const AUDIENCES: [(&str, AudienceOf); 3] =
    [(PASS_FAMILIES, Audience::Pass), (ACCOUNTS, Audience::Account), (PARTNER_MEMBERS, Audience::Partner)];

#[derive(FromQueryResult)]
pub(super) struct Recipient {
    /// The pass, account or partner the row was found for (see [`Audience`]).
    audience_id: Uuid,
    pub(super) account_id: Uuid,
    pub(super) email: String,
    /// The child a pass belongs to (pass events): the e-mail's one personal detail.
    pub(super) given_name: Option<String>,
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
    recipients: HashMap<Audience, Vec<Recipient>>,
    choices: HashMap<(Uuid, NotificationKind), Preference>,
    devices: HashMap<Uuid, Vec<Device>>,
    delivered: HashSet<(Uuid, String)>,
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
    pub(super) async fn load(
        db: &DatabaseConnection,
        rows: &[Claimed],
        events: &[std::result::Result<Event, String>],
    ) -> Result<Known> {
        let mut known = Known::default();
        let audiences: Vec<Audience> = events
            .iter()
            .filter_map(|e| match e {
                Ok(Event::Notice(n)) => Some(n.audience),
                _ => None,
            })
            .collect();
        for (sql, audience) in AUDIENCES {
            let ids = distinct(audiences.iter().filter(|a| audience(a.id()) == **a).map(|a| a.id()));
            for r in by_ids::<Recipient>(db, sql, &ids).await? {
                known.recipients.entry(audience(r.audience_id)).or_default().push(r);
            }
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

    pub(super) fn recipients(&self, audience: Audience) -> &[Recipient] {
        self.recipients.get(&audience).map_or(&[], Vec::as_slice)
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
