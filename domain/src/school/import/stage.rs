//! Staging: records wait here, a batch at a time, before they are written.
//!
//! A [`Stage`] holds *pending* records (adds, keyed by source key, last one wins) and *ops*
//! (`modifyRequest` / `deleteRequest` for keys that are not pending). The two never share a
//! key: a patch for a pending record is applied to it in memory, and a record arriving for a key
//! with a queued op first flushes the stage, so arrival order is kept where it matters.
//!
//! Applying patches in memory matters for SIECLE, whose pupil (and guardian) arrives first and
//! is completed later in the same file by patches (classes, bourse, address). Writing the bare
//! pupil and then patching it would rewrite an unchanged pupil twice on every re-import; so the
//! importer keeps a SIECLE file's records pending until the end of the file (a SIECLE file is
//! one collège: at most a few thousand records) and writes each pupil once, complete.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use uuid::Uuid;

use super::types::RosterFormat;
use crate::school::parse::mapping::attr;
use crate::school::parse::{Guardian, Patch, Pupil, apply_guardian_patch, apply_pupil_patch};

/// What every writer needs to know about the running import.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    pub funder_id: Uuid,
    pub import_id: Uuid,
    pub format: RosterFormat,
    pub full_snapshot: bool,
    /// The database clock at the start of the import: every row it writes carries this time.
    pub now_us: i64,
    /// The date in Europe/Paris at the start of the import: `left_at` of leavers.
    pub today: NaiveDate,
}

/// A `modifyRequest` or `deleteRequest` waiting for its stored record.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Modify(Patch),
    Delete,
}

/// How the links a record states are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkMode {
    /// The record says nothing about links (SIECLE/CSV pupils, a patch of other fields).
    Ignore,
    /// Upsert the stated links, keep the others.
    Merge,
    /// The stated links are all of this side's links (full snapshot, `replace` of the list).
    Replace,
}

/// Where a record's `left_at` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeftAt {
    /// The record's leaving date if it is past; none otherwise (present again).
    FromRecord,
    /// The stored value (a record rebuilt from its row for a patch).
    Keep(Option<NaiveDate>),
}

/// A pupil waiting to be written.
#[derive(Debug, Clone)]
pub(super) struct StagedPupil {
    pub pupil: Pupil,
    pub left: LeftAt,
    /// A `deleteRequest` was seen: the pupil left today unless already gone.
    pub deleted: bool,
    pub links: LinkMode,
}

impl StagedPupil {
    /// Applies a patch. Its value problems were reported by the parser with their position.
    pub fn patch(&mut self, patch: &Patch) {
        let _ = apply_pupil_patch(&mut self.pupil, patch);
        if patch.iter().any(|(name, _)| name == attr::LEFT_AT) {
            self.left = LeftAt::FromRecord;
        }
        if patch.iter().any(|(name, _)| name == attr::LINKS) {
            self.links = LinkMode::Replace;
        }
    }

    /// The `left_at` to store. A leaving date in the future is not stored yet: the pupil is
    /// still there, and the import after that date will mark it.
    pub fn left_at(&self, today: NaiveDate) -> Option<NaiveDate> {
        let from = match self.left {
            LeftAt::FromRecord => self.pupil.left_at.filter(|d| *d <= today),
            LeftAt::Keep(v) => v,
        };
        if self.deleted { from.or(Some(today)) } else { from }
    }
}

/// A guardian waiting to be written.
#[derive(Debug, Clone)]
pub(super) struct StagedGuardian {
    pub guardian: Guardian,
    /// `None`: a record of this import (present, so not left); `Some`: the stored value.
    pub keep_left: Option<Option<NaiveDate>>,
    pub deleted: bool,
    /// AAF reverse links (`pupil_keys`); ignored for SIECLE/CSV, whose links come as records.
    pub links: LinkMode,
}

impl StagedGuardian {
    pub fn patch(&mut self, patch: &Patch) {
        let _ = apply_guardian_patch(&mut self.guardian, patch);
        if patch.iter().any(|(name, _)| name == attr::PUPILS) {
            self.links = LinkMode::Replace;
        }
    }

    pub fn left_at(&self, today: NaiveDate) -> Option<NaiveDate> {
        let from = self.keep_left.flatten();
        if self.deleted { from.or(Some(today)) } else { from }
    }
}

/// Pending records and queued ops of one kind.
#[derive(Debug)]
pub(super) struct Stage<T> {
    pending: Vec<T>,
    index: HashMap<String, usize>,
    ops: Vec<(String, Op)>,
    op_keys: HashSet<String>,
}

impl<T> Default for Stage<T> {
    fn default() -> Self {
        Stage { pending: Vec::new(), index: HashMap::new(), ops: Vec::new(), op_keys: HashSet::new() }
    }
}

impl<T> Stage<T> {
    /// Whether a record for `key` must wait for a flush (an op on that key is queued).
    pub fn has_op(&self, key: &str) -> bool {
        self.op_keys.contains(key)
    }

    /// Adds a record; a pending one with the same key is replaced (or merged by `merge`).
    pub fn add(&mut self, key: String, item: T, merge: impl FnOnce(&mut T, T)) {
        match self.index.get(&key) {
            Some(&i) => merge(&mut self.pending[i], item),
            None => {
                self.index.insert(key, self.pending.len());
                self.pending.push(item);
            }
        }
    }

    pub fn pending_mut(&mut self, key: &str) -> Option<&mut T> {
        let i = *self.index.get(key)?;
        self.pending.get_mut(i)
    }

    pub fn queue(&mut self, key: String, op: Op) {
        self.op_keys.insert(key.clone());
        self.ops.push((key, op));
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn ops_len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.ops.is_empty()
    }

    /// Empties the stage: pending records then queued ops (disjoint keys, so either order is
    /// right; records first keeps a delta's patches after the adds of the same file).
    pub fn take(&mut self) -> (Vec<T>, Vec<(String, Op)>) {
        self.index.clear();
        self.op_keys.clear();
        (std::mem::take(&mut self.pending), std::mem::take(&mut self.ops))
    }
}
