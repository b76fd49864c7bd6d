//! Pupils: staged a batch at a time (see `merge`), and rebuilt from their rows for the
//! `modifyRequest`s and `deleteRequest`s that name stored pupils.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::issues::{Issue, IssueSink};
use super::links::{LinkFields, PupilSide, stage_pupil_side};
use super::mefs::MefLabels;
use super::merge::{PUPIL, stage as stage_rows};
use super::rows::{PupilRow, person_key};
use super::sql::select_by_keys;
use super::stage::{Ctx, LeftAt, LinkMode, Op, StagedPupil};
use super::types::{Counts, RosterFormat};

const SELECT_FULL: &str = "SELECT source_key, ine, siecle_id, family_name, usage_name, given_name, birth_date, \
                           school_key, uai, class_name, mef, grade, boursier, echelon, left_at FROM pupil";

/// Counters and issues shared by the staging of one batch.
pub(super) struct Tally<'a> {
    pub counts: &'a mut Counts,
    pub sink: &'a mut IssueSink,
    /// The file being read, for issues.
    pub file: &'a str,
}

/// Stages a batch of pupils (and the links they state). `school_uais` gives the UAI of the AAF
/// structures known so far (stored ones and those of this import), so an AAF pupil is written
/// with its UAI at once instead of being rewritten by the end-of-import resolution; `labels`
/// does the same for MEF labels (and learns those the records give). A pupil without a family
/// or given name is refused here (counted, reported) but still staged as seen.
pub(super) async fn stage<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    round_no: i64,
    batch: Vec<StagedPupil>,
    school_uais: &HashMap<String, Option<String>>,
    labels: &mut MefLabels,
    t: &mut Tally<'_>,
) -> Result<(), DbErr> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut sides = Vec::new();
    for s in batch {
        labels.learn(s.pupil.mef.as_deref(), s.pupil.mef_label.as_deref());
        let mut row = PupilRow::from_record(ctx.format, &s.pupil);
        let refused = !row.is_complete();
        let mut statement = None;
        if refused {
            t.counts.rejected += 1;
            let msg = "pupil refused: a family name and a given name are required";
            t.sink.push(Issue::about(t.file, Some(&s.pupil.key), "PUPIL_REJECTED", msg));
        } else if s.links != LinkMode::Ignore {
            let links =
                s.pupil.links.iter().map(|l| (person_key(ctx.format, &l.guardian_key), LinkFields::of(l))).collect();
            let token = Uuid::now_v7();
            statement = Some((token, s.links == LinkMode::Replace));
            sides.push(PupilSide { pupil_key: row.source_key.clone(), token: Some(token), links });
        }
        let left = s.left_at(ctx.today);
        let fp = row.fingerprint();
        if ctx.format == RosterFormat::Aaf {
            // Not part of the fingerprint: derived from the structure, not read from the pupil.
            row.uai = row.school_key.as_ref().and_then(|k| school_uais.get(k).cloned().flatten());
        }
        let label = labels.label(row.mef.as_deref());
        rows.push(values(row, label, left, fp, refused, statement));
    }
    stage_rows(db, &PUPIL, round_no, rows).await?;
    t.sink.flush_if_full(db).await?;
    stage_pupil_side(db, &sides).await
}

/// `source_key, new_id, token, links_replace`, the data columns of `merge::PUPIL` in order,
/// `refused`. `links` is the record's link statement: its token and whether it replaces.
fn values(
    r: PupilRow,
    mef_label: Option<String>,
    left: Option<NaiveDate>,
    fp: String,
    refused: bool,
    links: Option<(Uuid, bool)>,
) -> Vec<Value> {
    vec![
        r.source_key.into(),
        Uuid::now_v7().into(),
        links.map(|(token, _)| token).into(),
        links.map(|(_, replace)| replace).into(),
        r.ine.into(),
        r.siecle_id.into(),
        r.family_name.into(),
        r.usage_name.into(),
        r.given_name.into(),
        r.birth_date.into(),
        r.school_key.into(),
        r.uai.into(),
        r.class_name.into(),
        r.mef.into(),
        mef_label.into(),
        r.grade.map(<&'static str>::from).into(),
        r.boursier.into(),
        r.echelon.into(),
        left.into(),
        fp.into(),
        refused.into(),
    ]
}

/// A stored pupil as [`SELECT_FULL`] reads it (an unknown stored grade is a read error).
#[derive(FromQueryResult)]
struct StoredPupil {
    #[sea_orm(nested)]
    row: PupilRow,
    left_at: Option<NaiveDate>,
}

/// Turns queued `modifyRequest`s and `deleteRequest`s into staged pupils: each stored pupil is
/// rebuilt from its row, then its ops are applied in order. Ops on unknown pupils are reported
/// (`UNKNOWN_RECORD`); a patch for one is a refused record.
/// The staging must have been merged first, so that the rows are current.
pub(super) async fn load_ops<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    ops: Vec<(String, Op)>,
    t: &mut Tally<'_>,
) -> Result<Vec<StagedPupil>, DbErr> {
    let mut keys: Vec<String> = ops.iter().map(|(k, _)| person_key(ctx.format, k)).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rebuilt: HashMap<String, StagedPupil> = HashMap::with_capacity(keys.len());
    for StoredPupil { row, left_at } in select_by_keys(db, SELECT_FULL, "source_key", ctx.funder_id, &keys).await? {
        let staged = StagedPupil {
            pupil: row.to_record(left_at),
            left: LeftAt::Keep(left_at),
            deleted: false,
            links: LinkMode::Ignore,
        };
        rebuilt.insert(staged.pupil.key.clone(), staged);
    }
    let mut order: Vec<String> = Vec::new();
    let mut ordered: HashSet<String> = HashSet::new();
    for (key, op) in ops {
        let Some(s) = rebuilt.get_mut(&key) else {
            let (what, refused) = match op {
                Op::Modify(_) => ("modification", true),
                Op::Delete => ("deletion", false),
            };
            t.counts.rejected += u64::from(refused);
            let msg = format!("{what} of pupil {key} ignored: no such pupil");
            t.sink.push(Issue::about(t.file, Some(&key), "UNKNOWN_RECORD", msg));
            continue;
        };
        match op {
            Op::Modify(patch) => s.patch(&patch),
            Op::Delete => s.deleted = true,
        }
        if ordered.insert(key.clone()) {
            order.push(key);
        }
    }
    Ok(order.into_iter().filter_map(|k| rebuilt.remove(&k)).collect())
}
