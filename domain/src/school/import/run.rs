//! The importer of one running import: takes parse items one by one, keeps a batch of them in
//! memory (`stage`), stages full batches into the temporary tables (`staging`), merges them
//! into the real tables at the end of each file (`merge`), and closes the import (UAIs, links,
//! snapshot leavers).

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::issues::{Issue, IssueSink};
use super::links::{LinkFields, PupilSide, stage_pupil_side};
use super::mefs::MefLabels;
use super::pupils::Tally;
use super::rows::{SchoolRow, person_key};
use super::sql::{batch_size, query};
use super::stage::{Ctx, LeftAt, LinkMode, Op, Stage, StagedGuardian, StagedPupil};
use super::types::{Counts, ImportSummary, LinkCounts, RosterFormat};
use super::{guardians, links, merge, pupils, schools, snapshot, staging};
use crate::school::parse::{Category, Link, ParseItem, Record, apply_structure_patch};

/// Records a SIECLE file may keep pending (see `stage`): far above the largest collège, low
/// enough to bound memory should a file be something else.
const SIECLE_HOLD: usize = 50_000;

pub(super) struct Importer<'t, C: ConnectionTrait> {
    db: &'t C,
    ctx: Ctx,
    /// Records per batch for this database.
    batch: usize,
    /// Flush a stage when this many records are pending.
    hold: usize,
    file: String,
    pupils: Stage<StagedPupil>,
    guardians: Stage<StagedGuardian>,
    schools: Stage<SchoolRow>,
    /// SIECLE/CSV links, one per (pupil, guardian), last one wins.
    links: Stage<Link>,
    sink: IssueSink,
    pupil_counts: Counts,
    guardian_counts: Counts,
    school_counts: Counts,
    link_counts: LinkCounts,
    /// Schools already counted by this import (a SIECLE school comes once per file).
    schools_counted: HashSet<String>,
    /// UAIs of the SIECLE/CSV pupils read: the scope of a full snapshot of those formats.
    uais: HashSet<String>,
    /// Pupil and guardian records read: a "full snapshot" without any marks nobody as left.
    pupils_read: u64,
    guardians_read: u64,
    /// MEF code → label (see `mefs`).
    labels: MefLabels,
    /// AAF structure key → UAI, for the pupils (bounded by the académie's structures).
    school_uais: HashMap<String, Option<String>>,
    /// Merge rounds of the staged pupils and guardians (see `merge`), and whether the current
    /// round has anything to merge.
    rounds: [Round; 2],
}

/// The current merge round of one staging table.
#[derive(Debug, Clone, Copy)]
struct Round {
    no: i64,
    staged: bool,
}

const PUPILS: usize = 0;
const GUARDIANS: usize = 1;

impl<'t, C: ConnectionTrait> Importer<'t, C> {
    pub fn new(db: &'t C, ctx: Ctx) -> Self {
        let batch = batch_size(db.get_database_backend());
        let hold = if ctx.format == RosterFormat::Siecle { SIECLE_HOLD } else { batch };
        Importer {
            db,
            batch,
            hold,
            file: String::new(),
            pupils: Stage::default(),
            guardians: Stage::default(),
            schools: Stage::default(),
            links: Stage::default(),
            sink: IssueSink::new(ctx.import_id),
            pupil_counts: Counts::default(),
            guardian_counts: Counts::default(),
            school_counts: Counts::default(),
            link_counts: LinkCounts::default(),
            schools_counted: HashSet::new(),
            uais: HashSet::new(),
            pupils_read: 0,
            guardians_read: 0,
            labels: MefLabels::default(),
            school_uais: HashMap::new(),
            rounds: [Round { no: 1, staged: false }; 2],
            ctx,
        }
    }

    /// Creates the staging tables and loads what the importer keeps from the start: the UAIs
    /// of the funder's AAF structures and the MEF labels.
    pub async fn prepare(&mut self) -> Result<(), DbErr> {
        staging::create(self.db).await?;
        self.labels = MefLabels::load(self.db, self.ctx.funder_id).await?;
        if self.ctx.format == RosterFormat::Aaf {
            let sql = "SELECT source_key, uai FROM school WHERE funder_id = $1 AND source_key LIKE 'aaf:%'";
            #[derive(FromQueryResult)]
            struct Structure {
                source_key: String,
                uai: Option<String>,
            }
            let rows: Vec<Structure> = query(self.db, sql, vec![self.ctx.funder_id.into()]).await?;
            self.school_uais.extend(rows.into_iter().map(|s| (s.source_key, s.uai)));
        }
        Ok(())
    }

    pub fn start_file(&mut self, name: &str) {
        self.file = name.to_owned();
    }

    pub async fn handle(&mut self, item: ParseItem) -> Result<(), DbErr> {
        match item {
            ParseItem::Warning(w) => {
                self.sink.push(Issue::from_warning(&self.file, w));
                self.sink.flush_if_full(self.db).await
            }
            ParseItem::Record(r) => self.record(r).await,
        }
    }

    async fn record(&mut self, r: Record) -> Result<(), DbErr> {
        let format = self.ctx.format;
        match r {
            Record::Structure(s) => {
                if self.schools.has_op(&s.key) {
                    self.flush_schools().await?;
                }
                let row = SchoolRow::from_record(format, &s);
                self.schools.add(s.key, row, |old, new| *old = new);
            }
            Record::Pupil(p) => {
                self.pupils_read += 1;
                if let Some(uai) = p.uai.as_ref().filter(|_| format != RosterFormat::Aaf)
                    && self.uais.insert(uai.clone())
                    && format == RosterFormat::Csv
                {
                    // The CSV names schools only by UAI: make sure each has a row.
                    self.schools.add(uai.clone(), SchoolRow::from_uai(uai), |_, _| {});
                }
                if self.pupils.has_op(&p.key) {
                    self.flush_pupils().await?;
                }
                let links = match (format, self.ctx.full_snapshot) {
                    (RosterFormat::Aaf, true) => LinkMode::Replace,
                    (RosterFormat::Aaf, false) => LinkMode::Merge,
                    _ => LinkMode::Ignore,
                };
                let staged = StagedPupil { pupil: p, left: LeftAt::FromRecord, deleted: false, links };
                self.pupils.add(staged.pupil.key.clone(), staged, |old, new| *old = new);
            }
            Record::Guardian(g) => {
                self.guardians_read += 1;
                if self.guardians.has_op(&g.key) {
                    self.flush_guardians().await?;
                }
                let links = if self.ctx.full_snapshot { LinkMode::Replace } else { LinkMode::Merge };
                let staged = StagedGuardian { guardian: g, keep_left: None, deleted: false, links };
                self.guardians.add(staged.guardian.key.clone(), staged, |old, new| *old = new);
            }
            Record::Link(l) => {
                let key = format!("{}\u{1f}{}", l.pupil_key, l.guardian_key);
                self.links.add(key, l, |old, new| *old = new);
            }
            Record::Delete { category, key } => self.op(category, key, Op::Delete).await?,
            Record::Modify { category, key, patch } => self.op(category, key, Op::Modify(patch)).await?,
            // SIECLE nomenclature: the label of a code (the grade comes from the MEF prefix).
            Record::Mef { code, label, .. } => self.labels.learn(Some(&code), Some(&label)),
        }
        self.flush_full().await
    }

    async fn op(&mut self, category: Category, key: String, op: Op) -> Result<(), DbErr> {
        match category {
            Category::Eleve => match (self.pupils.pending_mut(&key), op) {
                (Some(s), Op::Modify(patch)) => s.patch(&patch),
                (Some(s), Op::Delete) => s.deleted = true,
                (None, op) => self.pupils.queue(key, op),
            },
            Category::PersRelEleve => match (self.guardians.pending_mut(&key), op) {
                (Some(s), Op::Modify(patch)) => s.patch(&patch),
                (Some(s), Op::Delete) => s.deleted = true,
                (None, op) => self.guardians.queue(key, op),
            },
            Category::EtabEducNat => match (self.schools.pending_mut(&key), op) {
                (_, Op::Delete) => {
                    let msg = format!("deletion of structure {key} ignored: schools are kept (pupils point at them)");
                    self.sink.push(Issue::about(&self.file, Some(&key), "DELETE_IGNORED", msg));
                }
                (Some(row), Op::Modify(patch)) => {
                    let mut s = row.to_record();
                    let _ = apply_structure_patch(&mut s, &patch);
                    *row = SchoolRow::from_record(self.ctx.format, &s);
                }
                (None, op) => self.schools.queue(key, op),
            },
        }
        Ok(())
    }

    /// Flushes the stages that reached their size.
    async fn flush_full(&mut self) -> Result<(), DbErr> {
        if self.schools.pending_len() >= self.hold || self.schools.ops_len() >= self.batch {
            self.flush_schools().await?;
        }
        if self.pupils.pending_len() >= self.hold || self.pupils.ops_len() >= self.batch {
            self.flush_pupils().await?;
        }
        if self.guardians.pending_len() >= self.hold || self.guardians.ops_len() >= self.batch {
            self.flush_guardians().await?;
        }
        if self.links.pending_len() >= self.batch {
            self.flush_links().await?;
        }
        Ok(())
    }

    async fn flush_schools(&mut self) -> Result<(), DbErr> {
        let (pending, ops) = self.schools.take();
        if self.ctx.format == RosterFormat::Aaf {
            for row in &pending {
                self.school_uais.insert(row.source_key.clone(), row.uai.clone());
            }
        }
        for chunk in chunks(pending, self.batch) {
            schools::write(self.db, &self.ctx, chunk, &mut self.school_counts, &mut self.schools_counted).await?;
        }
        for chunk in chunks(ops, self.batch) {
            let rows = schools::load_ops(self.db, &self.ctx, chunk, &mut self.sink, &self.file).await?;
            if self.ctx.format == RosterFormat::Aaf {
                for row in &rows {
                    self.school_uais.insert(row.source_key.clone(), row.uai.clone());
                }
            }
            schools::write(self.db, &self.ctx, rows, &mut self.school_counts, &mut self.schools_counted).await?;
        }
        Ok(())
    }

    /// Stages the pending pupils; for queued ops, merges first (the ops rebuild stored rows),
    /// then stages the patched pupils.
    async fn flush_pupils(&mut self) -> Result<(), DbErr> {
        let (pending, ops) = self.pupils.take();
        for chunk in chunks(pending, self.batch) {
            let mut t = Tally { counts: &mut self.pupil_counts, sink: &mut self.sink, file: &self.file };
            let round_no = self.rounds[PUPILS].no;
            pupils::stage(self.db, &self.ctx, round_no, chunk, &self.school_uais, &mut self.labels, &mut t).await?;
            self.rounds[PUPILS].staged = true;
        }
        if !ops.is_empty() {
            self.merge(PUPILS).await?;
            for chunk in chunks(ops, self.batch) {
                let mut t = Tally { counts: &mut self.pupil_counts, sink: &mut self.sink, file: &self.file };
                let staged = pupils::load_ops(self.db, &self.ctx, chunk, &mut t).await?;
                let round_no = self.rounds[PUPILS].no;
                pupils::stage(self.db, &self.ctx, round_no, staged, &self.school_uais, &mut self.labels, &mut t)
                    .await?;
                self.rounds[PUPILS].staged = true;
            }
        }
        Ok(())
    }

    async fn flush_guardians(&mut self) -> Result<(), DbErr> {
        let (pending, ops) = self.guardians.take();
        for chunk in chunks(pending, self.batch) {
            let mut t = Tally { counts: &mut self.guardian_counts, sink: &mut self.sink, file: &self.file };
            guardians::stage(self.db, &self.ctx, self.rounds[GUARDIANS].no, chunk, &mut t).await?;
            self.rounds[GUARDIANS].staged = true;
        }
        if !ops.is_empty() {
            self.merge(GUARDIANS).await?;
            for chunk in chunks(ops, self.batch) {
                let mut t = Tally { counts: &mut self.guardian_counts, sink: &mut self.sink, file: &self.file };
                let staged = guardians::load_ops(self.db, &self.ctx, chunk, &mut t).await?;
                guardians::stage(self.db, &self.ctx, self.rounds[GUARDIANS].no, staged, &mut t).await?;
                self.rounds[GUARDIANS].staged = true;
            }
        }
        Ok(())
    }

    /// Merges the current round of pupils or guardians, if anything was staged, and opens the
    /// next round.
    async fn merge(&mut self, which: usize) -> Result<(), DbErr> {
        let round = self.rounds[which];
        if !round.staged {
            return Ok(());
        }
        let (entity, counts) = match which {
            PUPILS => (&merge::PUPIL, &mut self.pupil_counts),
            _ => (&merge::GUARDIAN, &mut self.guardian_counts),
        };
        *counts += merge::merge(self.db, &self.ctx, entity, round.no).await?;
        self.rounds[which] = Round { no: round.no + 1, staged: false };
        Ok(())
    }

    /// SIECLE/CSV link records, grouped by pupil, staged from the pupil side.
    async fn flush_links(&mut self) -> Result<(), DbErr> {
        let (pending, _) = self.links.take();
        let mut sides: Vec<PupilSide> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for l in pending {
            let pupil_key = person_key(self.ctx.format, &l.pupil_key);
            let link = (person_key(self.ctx.format, &l.guardian_key), LinkFields::of(&l));
            match index.get(&pupil_key) {
                Some(&i) => sides[i].links.push(link),
                None => {
                    index.insert(pupil_key.clone(), sides.len());
                    sides.push(PupilSide { pupil_key, token: None, links: vec![link] });
                }
            }
        }
        stage_pupil_side(self.db, &sides).await
    }

    /// Stages everything pending and merges pupils and guardians (end of a file). Links are
    /// merged once, at the end of the import, when both sides are known.
    pub async fn end_file(&mut self) -> Result<(), DbErr> {
        if !self.schools.is_empty() {
            self.flush_schools().await?;
        }
        if !self.pupils.is_empty() {
            self.flush_pupils().await?;
        }
        if !self.guardians.is_empty() {
            self.flush_guardians().await?;
        }
        if !self.links.is_empty() {
            self.flush_links().await?;
        }
        self.merge(PUPILS).await?;
        self.merge(GUARDIANS).await?;
        self.sink.flush(self.db).await
    }

    /// Closes the import: UAIs of AAF pupils, what a full snapshot says by omission (leavers,
    /// the links it covers), links, MEF labels; drops the staging; then writes the totals into
    /// `summary`.
    pub async fn finish(mut self, summary: &mut ImportSummary) -> Result<(), DbErr> {
        self.file.clear();
        self.end_file().await?;
        let (db, ctx) = (self.db, &self.ctx);
        if ctx.format == RosterFormat::Aaf {
            schools::resolve_uais(db, ctx).await?;
        }
        links::prune(db).await?;
        if ctx.full_snapshot {
            if self.pupils_read > 0 {
                self.pupil_counts.left += snapshot::mark_pupil_leavers(db, ctx, &self.uais).await?;
            }
            if ctx.format != RosterFormat::Aaf {
                snapshot::scope_links(db).await?;
            }
            if self.guardians_read > 0 {
                self.guardian_counts.left += snapshot::mark_guardian_leavers(db, ctx).await?;
            }
        }
        self.link_counts = links::merge(db, ctx, &mut self.sink).await?;
        std::mem::take(&mut self.labels).save(db, ctx).await?;
        staging::drop_all(db).await?;
        self.sink.flush(db).await?;
        let p = self.pupil_counts;
        (summary.created, summary.updated, summary.unchanged) = (p.created, p.updated, p.unchanged);
        (summary.left, summary.rejected) = (p.left, p.rejected);
        summary.warnings = self.sink.total;
        summary.guardians = self.guardian_counts;
        summary.schools = self.school_counts;
        summary.links = self.link_counts;
        Ok(())
    }
}

/// Owned chunks of at most `size` items.
fn chunks<T>(items: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut it = items.into_iter().peekable();
    std::iter::from_fn(move || {
        it.peek()?;
        Some(it.by_ref().take(size).collect())
    })
}
