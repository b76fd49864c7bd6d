//! Pupil–guardian links (`guardianship`), reconciled from both sides.
//!
//! AAF states a link twice: in the pupil's record (`ENTElevePersRelEleve`, with the legal level,
//! relation code and flags) and in the guardian's (`ENTAuxPersRelEleveEleve`, just the pupil's
//! id). ent-formats.md §1.3 says to reconcile the two and never trust one side alone, so each
//! link records who stated it (`stated_by` = `pupil`, `guardian` or `both`):
//! - the pupil side writes the link's fields and sets `pupil` (or `both` if the guardian side
//!   already stated it);
//! - the guardian side only adds its voice (`pupil` → `both`), or creates a `guardian` link
//!   with legal level 0: a person naming a pupil gets no parental authority from that alone;
//!   such links are reported as `LINK_ONE_SIDED` at the end of the import.
//!
//! When a side's list *replaces* the stored one (a full AAF snapshot, or a `modifyRequest`
//! replacing the attribute), links that side no longer states lose its voice: `both` drops to
//! the other side (to `guardian` with legal level 0), and a link nobody states any more is
//! deleted. Links are facts of the current roster, not money history, so deleting is fine.
//! SIECLE and CSV links come from one side (`RESPONSABLE_ELEVE`, CSV rows) and are only upserted.
//!
//! Each batch reads the stored links of its pupils (or guardians) with one query, works out the
//! difference in memory and writes only what changed: a re-import changes no row.

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use uuid::Uuid;

use super::issues::{Issue, IssueSink};
use super::rows::raw_key;
use super::sql::{by_ids, exec, insert_rows, query, select_by_keys};
use super::stage::Ctx;
use super::types::LinkCounts;
use crate::school::parse::Link;

const SELECT: &str = "SELECT id, pupil_key, guardian_key, legal_level, relation_code, financial, contact, \
                      receives_aid, houses_pupil, stated_by FROM guardianship";
const COLS: [&str; 12] = [
    "id",
    "funder_id",
    "pupil_key",
    "guardian_key",
    "legal_level",
    "relation_code",
    "financial",
    "contact",
    "receives_aid",
    "houses_pupil",
    "stated_by",
    "updated_at_us",
];
const PUPIL: &str = "pupil";
const GUARDIAN: &str = "guardian";
const BOTH: &str = "both";

/// The fields of a link, as the pupil side states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LinkFields {
    pub legal_level: i16,
    pub relation_code: String,
    pub financial: bool,
    pub contact: bool,
    pub receives_aid: Option<bool>,
    pub houses_pupil: Option<bool>,
}

impl LinkFields {
    pub fn of(l: &Link) -> LinkFields {
        LinkFields {
            legal_level: i16::from(l.legal_level),
            relation_code: l.relation_code.clone(),
            financial: l.financial,
            contact: l.contact,
            receives_aid: l.receives_aid,
            houses_pupil: l.houses_pupil,
        }
    }

    /// What a link stated only by the guardian side carries: no authority, nothing known.
    fn guardian_only() -> LinkFields {
        LinkFields {
            legal_level: 0,
            relation_code: String::new(),
            financial: false,
            contact: false,
            receives_aid: None,
            houses_pupil: None,
        }
    }
}

/// The links one pupil states (guardian keys are stored keys).
pub(super) struct PupilSide {
    pub pupil_key: String,
    pub links: Vec<(String, LinkFields)>,
    pub replace: bool,
}

/// The pupils one guardian states (stored keys).
pub(super) struct GuardianSide {
    pub guardian_key: String,
    pub pupil_keys: Vec<String>,
    pub replace: bool,
}

struct Stored {
    id: Uuid,
    pupil_key: String,
    guardian_key: String,
    fields: LinkFields,
    stated_by: String,
}

fn stored(r: &QueryResult) -> Result<Stored, DbErr> {
    Ok(Stored {
        id: r.try_get("", "id")?,
        pupil_key: r.try_get("", "pupil_key")?,
        guardian_key: r.try_get("", "guardian_key")?,
        fields: LinkFields {
            legal_level: r.try_get("", "legal_level")?,
            relation_code: r.try_get("", "relation_code")?,
            financial: r.try_get("", "financial")?,
            contact: r.try_get("", "contact")?,
            receives_aid: r.try_get("", "receives_aid")?,
            houses_pupil: r.try_get("", "houses_pupil")?,
        },
        stated_by: r.try_get("", "stated_by")?,
    })
}

/// Writes accumulated by one batch.
#[derive(Default)]
struct Changes {
    inserts: Vec<Vec<Value>>,
    /// Field changes (and the side that now states the link), one statement each.
    updates: Vec<(Uuid, LinkFields, &'static str)>,
    to_both: Vec<Uuid>,
    to_pupil: Vec<Uuid>,
    deletes: Vec<Uuid>,
}

impl Changes {
    fn insert(&mut self, ctx: &Ctx, pupil: &str, guardian: &str, f: &LinkFields, by: &str) {
        self.inserts.push(vec![
            Uuid::now_v7().into(),
            ctx.funder_id.into(),
            pupil.to_owned().into(),
            guardian.to_owned().into(),
            f.legal_level.into(),
            f.relation_code.clone().into(),
            f.financial.into(),
            f.contact.into(),
            f.receives_aid.into(),
            f.houses_pupil.into(),
            by.to_owned().into(),
            ctx.now_us.into(),
        ]);
    }

    async fn write<C: ConnectionTrait>(self, db: &C, ctx: &Ctx, counts: &mut LinkCounts) -> Result<(), DbErr> {
        counts.created += self.inserts.len() as u64;
        insert_rows(db, "guardianship", &COLS, self.inserts).await?;
        for (id, f, by) in self.updates {
            let sql = "UPDATE guardianship SET legal_level = $1, relation_code = $2, financial = $3, contact = $4, \
                       receives_aid = $5, houses_pupil = $6, stated_by = $7, updated_at_us = $8 WHERE id = $9";
            let values = vec![
                f.legal_level.into(),
                f.relation_code.into(),
                f.financial.into(),
                f.contact.into(),
                f.receives_aid.into(),
                f.houses_pupil.into(),
                by.into(),
                ctx.now_us.into(),
                id.into(),
            ];
            counts.updated += exec(db, sql, values).await?;
        }
        let head = "UPDATE guardianship SET stated_by = $1, updated_at_us = $2 WHERE id IN";
        for (by, ids) in [(BOTH, &self.to_both), (PUPIL, &self.to_pupil)] {
            counts.updated += by_ids(db, head, vec![by.into(), ctx.now_us.into()], ids).await?;
        }
        counts.removed += by_ids(db, "DELETE FROM guardianship WHERE id IN", vec![], &self.deletes).await?;
        Ok(())
    }
}

/// Groups stored links by one of their keys.
fn group(rows: Vec<QueryResult>, by_pupil: bool) -> Result<HashMap<String, Vec<Stored>>, DbErr> {
    let mut map: HashMap<String, Vec<Stored>> = HashMap::new();
    for r in &rows {
        let s = stored(r)?;
        let k = if by_pupil { s.pupil_key.clone() } else { s.guardian_key.clone() };
        map.entry(k).or_default().push(s);
    }
    Ok(map)
}

/// Writes what a batch of pupils states.
pub(super) async fn write_pupil_side<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    items: &[PupilSide],
    counts: &mut LinkCounts,
) -> Result<(), DbErr> {
    if items.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = items.iter().map(|i| i.pupil_key.clone()).collect();
    let mut existing = group(select_by_keys(db, SELECT, "pupil_key", ctx.funder_id.into(), &keys).await?, true)?;
    let mut ch = Changes::default();
    for item in items {
        let stored = existing.remove(&item.pupil_key).unwrap_or_default();
        let mut stated: HashSet<&str> = HashSet::new();
        for (guardian, f) in &item.links {
            if !stated.insert(guardian) {
                continue;
            }
            match stored.iter().find(|s| s.guardian_key == *guardian) {
                None => ch.insert(ctx, &item.pupil_key, guardian, f, PUPIL),
                Some(s) => {
                    let by = if s.stated_by == PUPIL { PUPIL } else { BOTH };
                    if s.fields != *f {
                        ch.updates.push((s.id, f.clone(), by));
                    } else if s.stated_by != by {
                        ch.to_both.push(s.id);
                    }
                }
            }
        }
        if item.replace {
            for s in stored.iter().filter(|s| !stated.contains(s.guardian_key.as_str())) {
                match s.stated_by.as_str() {
                    PUPIL => ch.deletes.push(s.id),
                    BOTH => ch.updates.push((s.id, LinkFields { legal_level: 0, ..s.fields.clone() }, GUARDIAN)),
                    _ => {}
                }
            }
        }
    }
    ch.write(db, ctx, counts).await
}

/// Writes what a batch of guardians states (AAF reverse links).
pub(super) async fn write_guardian_side<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    items: &[GuardianSide],
    counts: &mut LinkCounts,
) -> Result<(), DbErr> {
    if items.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = items.iter().map(|i| i.guardian_key.clone()).collect();
    let mut existing = group(select_by_keys(db, SELECT, "guardian_key", ctx.funder_id.into(), &keys).await?, false)?;
    let mut ch = Changes::default();
    for item in items {
        let stored = existing.remove(&item.guardian_key).unwrap_or_default();
        let mut stated: HashSet<&str> = HashSet::new();
        for pupil in &item.pupil_keys {
            if !stated.insert(pupil) {
                continue;
            }
            match stored.iter().find(|s| s.pupil_key == *pupil) {
                None => ch.insert(ctx, pupil, &item.guardian_key, &LinkFields::guardian_only(), GUARDIAN),
                Some(s) if s.stated_by == PUPIL => ch.to_both.push(s.id),
                Some(_) => {}
            }
        }
        if item.replace {
            for s in stored.iter().filter(|s| !stated.contains(s.pupil_key.as_str())) {
                match s.stated_by.as_str() {
                    GUARDIAN => ch.deletes.push(s.id),
                    BOTH => ch.to_pupil.push(s.id),
                    _ => {}
                }
            }
        }
    }
    ch.write(db, ctx, counts).await
}

/// Reports the links that only the guardian side states, among the guardians of this import.
/// Returns how many there are (all counted, as many stored as the sink allows).
pub(super) async fn report_one_sided<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    sink: &mut IssueSink,
) -> Result<u64, DbErr> {
    let from = "FROM guardianship WHERE funder_id = $1 AND stated_by = 'guardian' AND guardian_key IN \
                (SELECT source_key FROM guardian WHERE funder_id = $1 AND last_import_id = $2)";
    let values = || vec![Value::from(ctx.funder_id), Value::from(ctx.import_id)];
    let rows = query(db, &format!("SELECT COUNT(*) AS n {from}"), values()).await?;
    let n: i64 = match rows.first() {
        Some(r) => r.try_get("", "n")?,
        None => 0,
    };
    let n = u64::try_from(n).unwrap_or(0);
    let room = sink.room().min(n);
    if room > 0 {
        let sql = format!("SELECT pupil_key, guardian_key {from} ORDER BY guardian_key, pupil_key LIMIT {room}");
        for r in query(db, &sql, values()).await? {
            let pupil: String = r.try_get("", "pupil_key")?;
            let guardian: String = r.try_get("", "guardian_key")?;
            let (guardian, pupil) = (raw_key(&guardian), raw_key(&pupil));
            let msg = format!(
                "person {guardian} names pupil {pupil} but the pupil's record does not name them: \
                 stored without parental authority (legal level 0)"
            );
            sink.push(Issue::about("", Some(guardian), "LINK_ONE_SIDED", msg));
            sink.flush_if_full(db).await?;
        }
    }
    // Count those beyond the cap too.
    sink.total += n - room;
    Ok(n)
}
