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
//!   when a guardian's record of the import states such a link, it is reported
//!   (`LINK_ONE_SIDED`).
//!
//! When a side's list *replaces* the stored one (a full AAF snapshot, or a `modifyRequest`
//! replacing the attribute), links that side no longer states lose its voice: `both` drops to
//! the other side (to `guardian` with legal level 0), and a link nobody states any more is
//! *ended*, that is deleted. Links are facts of the current roster, not money history, so
//! deleting is fine; and a deleted link cannot send a family-link code to a former guardian.
//! SIECLE and CSV links come from the pupil side only (`RESPONSABLE_ELEVE`, CSV rows): a full
//! snapshot replaces the lists of the pupils it covers (`snapshot::scope_links`), so a
//! responsibility it no longer lists ends as in AAF; a partial import only upserts.
//!
//! A link to a guardian who left (snapshot leaver, AAF `deleteRequest`) is not current either:
//! it ends whatever the sides say, and none is created to them. A guardian who comes back gets
//! the links their pupils state again.
//!
//! Both sides are *staged* as the records come, whatever the file order: `imp_link_p` holds
//! the pupil side's links with their fields, `imp_link_g` the guardian side's pairs. Each row
//! carries the *token* of the record that stated it; a record whose list replaces the stored
//! one (`links_replace` on its staged row) disowns the rows of its earlier stagings, whose
//! token differs. Everything is merged once, at the end of the import, with set-based
//! statements: each link is written at most once, and a re-import writes none.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

use super::issues::{Issue, IssueSink};
use super::rows::raw_key;
use super::sql::{count, exec, insert_rows, query};
use super::stage::Ctx;
use super::staging::{analyze, set_excluded};
use super::types::LinkCounts;
use crate::school::parse::Link;

const PUPIL_COLS: [&str; 10] = [
    "pupil_key",
    "guardian_key",
    "new_id",
    "token",
    "legal_level",
    "relation_code",
    "financial",
    "contact",
    "receives_aid",
    "houses_pupil",
];

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
}

/// The links one pupil's record states (guardian keys are stored keys). `token` is the
/// record's link statement (see the module doc); `None` for SIECLE/CSV link records, which only
/// add to what the pupil's links are.
pub(super) struct PupilSide {
    pub pupil_key: String,
    pub token: Option<Uuid>,
    pub links: Vec<(String, LinkFields)>,
}

/// The pupils one guardian's record states (stored keys).
pub(super) struct GuardianSide {
    pub guardian_key: String,
    pub token: Uuid,
    pub pupil_keys: Vec<String>,
}

/// Stages what a batch of pupils states (pupil keys unique in the batch).
pub(super) async fn stage_pupil_side<C: ConnectionTrait>(db: &C, items: &[PupilSide]) -> Result<(), DbErr> {
    let mut rows = Vec::new();
    for item in items {
        let mut seen: HashSet<&str> = HashSet::new();
        for (guardian, f) in item.links.iter().filter(|(g, _)| seen.insert(g)) {
            rows.push(vec![
                item.pupil_key.clone().into(),
                guardian.clone().into(),
                Uuid::now_v7().into(),
                item.token.into(),
                f.legal_level.into(),
                f.relation_code.clone().into(),
                f.financial.into(),
                f.contact.into(),
                f.receives_aid.into(),
                f.houses_pupil.into(),
            ]);
        }
    }
    let mut set: Vec<&str> = PUPIL_COLS[4..].to_vec();
    set.push("token");
    let suffix = format!(" ON CONFLICT (pupil_key, guardian_key) DO UPDATE SET {}", set_excluded(&set));
    insert_rows(db, "imp_link_p", &PUPIL_COLS, rows, &suffix).await
}

/// Stages what a batch of guardians states (guardian keys unique in the batch).
pub(super) async fn stage_guardian_side<C: ConnectionTrait>(db: &C, items: &[GuardianSide]) -> Result<(), DbErr> {
    let mut rows = Vec::new();
    for item in items {
        let mut seen: HashSet<&str> = HashSet::new();
        for pupil in item.pupil_keys.iter().filter(|p| seen.insert(p)) {
            rows.push(vec![
                item.guardian_key.clone().into(),
                pupil.clone().into(),
                Uuid::now_v7().into(),
                item.token.into(),
            ]);
        }
    }
    let cols = ["guardian_key", "pupil_key", "new_id", "token"];
    let suffix = " ON CONFLICT (guardian_key, pupil_key) DO UPDATE SET token = excluded.token";
    insert_rows(db, "imp_link_g", &cols, rows, suffix).await
}

/// The stored link changes (`c` is the pair; `n_stated` not null).
const CHANGED: &str = "(c.e_level <> c.n_level OR c.e_relation <> c.n_relation OR c.e_financial <> c.n_financial \
                       OR c.e_contact <> c.n_contact OR c.e_aid IS DISTINCT FROM c.n_aid \
                       OR c.e_houses IS DISTINCT FROM c.n_houses OR c.e_stated <> c.n_stated)";

/// Drops the staged statements their record disowned (replaced by a later staging of it), so
/// that what is staged is what the records of this import say (the snapshot steps read it).
pub(super) async fn prune<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    for (links, key, records) in
        [("imp_link_p", "pupil_key", "imp_pupil"), ("imp_link_g", "guardian_key", "imp_guardian")]
    {
        let sql = format!(
            "DELETE FROM {links} WHERE EXISTS (SELECT 1 FROM {records} s WHERE s.source_key = {links}.{key} \
             AND s.links_replace AND s.token <> {links}.token)"
        );
        exec(db, &sql, vec![]).await?;
    }
    analyze(db, &["imp_link_p", "imp_link_g"]).await
}

/// Merges both staged sides into `guardianship` (end of the import, after [`prune`]), then
/// reports the links only a guardian's record of this import states:
/// 1. compute every pair in one statement into `imp_pair`: the pairs either side states, plus
///    the stored links of the pupils and guardians whose list replaces the stored one and of
///    the guardians who left in this import; with what is stored and each side's voice: a side
///    speaks if it states the link now, is silent if its list was replaced, else keeps what
///    was stored. The fields come from the pupil side when it states the link, else stay as
///    stored (legal level 0 once the pupil side is silent), else are those of a link only a
///    guardian states (level 0, nothing known). Nobody speaks for a guardian who left;
/// 2. insert the new pairs, update the changed ones, delete (end) the ones nobody states.
pub(super) async fn merge<C: ConnectionTrait>(db: &C, ctx: &Ctx, sink: &mut IssueSink) -> Result<LinkCounts, DbErr> {
    let p_voice = "(CASE WHEN p.pupil_key IS NOT NULL THEN true WHEN rp.source_key IS NOT NULL THEN false \
                   ELSE COALESCE(e.stated_by IN ('pupil', 'both'), false) END)";
    let g_voice = "(CASE WHEN g.pupil_key IS NOT NULL THEN true WHEN rg.source_key IS NOT NULL THEN false \
                   ELSE COALESCE(e.stated_by IN ('guardian', 'both'), false) END)";
    // The stored value while the pupil side is silent, `none` for a link only a guardian states.
    let keep = |col: &str, none: &str| {
        format!("CASE WHEN p.pupil_key IS NOT NULL THEN p.{col} WHEN e.id IS NOT NULL THEN e.{col} ELSE {none} END")
    };
    let pairs = format!(
        "INSERT INTO imp_pair (pupil_key, guardian_key, new_id, g_said, e_id, e_level, e_relation, e_financial, \
         e_contact, e_aid, e_houses, e_stated, n_level, n_relation, n_financial, n_contact, n_aid, n_houses, n_stated) \
         SELECT c.pupil_key, c.guardian_key, COALESCE(p.new_id, g.new_id), g.pupil_key IS NOT NULL, \
         e.id, e.legal_level, e.relation_code, e.financial, e.contact, e.receives_aid, e.houses_pupil, e.stated_by, \
         CASE WHEN p.pupil_key IS NOT NULL THEN p.legal_level WHEN e.id IS NOT NULL AND {p_voice} THEN e.legal_level \
         ELSE 0 END, {}, {}, {}, {}, {}, \
         CASE WHEN gr.left_at IS NOT NULL THEN NULL WHEN {p_voice} AND {g_voice} THEN 'both' \
         WHEN {p_voice} THEN 'pupil' WHEN {g_voice} THEN 'guardian' END \
         FROM (SELECT pupil_key, guardian_key FROM imp_link_p UNION SELECT pupil_key, guardian_key FROM imp_link_g \
         UNION SELECT x.pupil_key, x.guardian_key FROM guardianship x WHERE x.funder_id = $1 \
         AND (x.pupil_key IN (SELECT source_key FROM imp_pupil WHERE links_replace) \
         OR x.guardian_key IN (SELECT source_key FROM imp_guardian WHERE links_replace) \
         OR x.guardian_key IN (SELECT source_key FROM imp_gone) \
         OR x.guardian_key IN (SELECT source_key FROM imp_guardian WHERE left_at IS NOT NULL AND NOT refused))) c \
         LEFT JOIN guardianship e ON e.funder_id = $1 AND e.pupil_key = c.pupil_key AND e.guardian_key = c.guardian_key \
         LEFT JOIN guardian gr ON gr.funder_id = $1 AND gr.source_key = c.guardian_key \
         LEFT JOIN imp_link_p p ON p.pupil_key = c.pupil_key AND p.guardian_key = c.guardian_key \
         LEFT JOIN imp_link_g g ON g.pupil_key = c.pupil_key AND g.guardian_key = c.guardian_key \
         LEFT JOIN imp_pupil rp ON rp.source_key = c.pupil_key AND rp.links_replace \
         LEFT JOIN imp_guardian rg ON rg.source_key = c.guardian_key AND rg.links_replace",
        keep("relation_code", "''"),
        keep("financial", "false"),
        keep("contact", "false"),
        keep("receives_aid", "NULL"),
        keep("houses_pupil", "NULL"),
    );
    exec(db, &pairs, vec![ctx.funder_id.into()]).await?;

    let sum = |cond: &str| format!("COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0)");
    let counts_sql = format!(
        "SELECT {} AS created, {} AS updated, {} AS ended, {} AS one_sided FROM imp_pair c",
        sum("c.e_id IS NULL AND c.n_stated IS NOT NULL"),
        sum(&format!("c.e_id IS NOT NULL AND c.n_stated IS NOT NULL AND {CHANGED}")),
        sum("c.e_id IS NOT NULL AND c.n_stated IS NULL"),
        sum("c.n_stated = 'guardian' AND c.g_said"),
    );
    let mut counts = LinkCounts::default();
    let rows: Vec<PairCounts> = query(db, &counts_sql, vec![]).await?;
    if let Some(r) = rows.first() {
        (counts.created, counts.updated, counts.ended, counts.one_sided) =
            (count(r.created)?, count(r.updated)?, count(r.ended)?, count(r.one_sided)?);
    }

    let insert = "INSERT INTO guardianship (id, funder_id, pupil_key, guardian_key, legal_level, relation_code, \
                  financial, contact, receives_aid, houses_pupil, stated_by, updated_at_us) \
                  SELECT new_id, $1, pupil_key, guardian_key, n_level, n_relation, n_financial, n_contact, n_aid, \
                  n_houses, n_stated, $2 FROM imp_pair WHERE e_id IS NULL AND n_stated IS NOT NULL";
    exec(db, insert, vec![ctx.funder_id.into(), ctx.now_us.into()]).await?;
    let update = format!(
        "UPDATE guardianship SET legal_level = c.n_level, relation_code = c.n_relation, financial = c.n_financial, \
         contact = c.n_contact, receives_aid = c.n_aid, houses_pupil = c.n_houses, stated_by = c.n_stated, \
         updated_at_us = $1 FROM imp_pair c WHERE guardianship.id = c.e_id AND c.n_stated IS NOT NULL AND {CHANGED}"
    );
    exec(db, &update, vec![ctx.now_us.into()]).await?;
    let delete = "DELETE FROM guardianship WHERE id IN \
                  (SELECT e_id FROM imp_pair WHERE e_id IS NOT NULL AND n_stated IS NULL)";
    exec(db, delete, vec![]).await?;
    report_one_sided(db, counts.one_sided, sink).await?;
    Ok(counts)
}

/// What [`merge`] counts in `imp_pair` before it writes.
#[derive(FromQueryResult)]
struct PairCounts {
    created: i64,
    updated: i64,
    ended: i64,
    one_sided: i64,
}

#[derive(FromQueryResult)]
struct Pair {
    pupil_key: String,
    guardian_key: String,
}

/// `LINK_ONE_SIDED` issues for the links that only a guardian's record of this import states
/// (all counted, as many stored as the sink allows).
async fn report_one_sided<C: ConnectionTrait>(db: &C, n: u64, sink: &mut IssueSink) -> Result<(), DbErr> {
    let room = sink.room().min(n);
    if room > 0 {
        let sql = format!(
            "SELECT pupil_key, guardian_key FROM imp_pair WHERE n_stated = 'guardian' AND g_said \
             ORDER BY guardian_key, pupil_key LIMIT {room}"
        );
        for r in query::<Pair, _>(db, &sql, vec![]).await? {
            let (guardian, pupil) = (raw_key(&r.guardian_key), raw_key(&r.pupil_key));
            let msg = format!(
                "person {guardian} names pupil {pupil} but the pupil's record does not name them: \
                 stored without parental authority (legal level 0)"
            );
            sink.push(Issue::about("", Some(guardian), "LINK_ONE_SIDED", msg));
            sink.flush_if_full(db).await?;
        }
    }
    sink.total += n - room;
    Ok(())
}
