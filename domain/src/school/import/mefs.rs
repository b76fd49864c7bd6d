//! MEF labels (`5EME`, `3EME BILANGUE…`), stored on each pupil as `mef_label`.
//!
//! A label belongs to a MEF *code*, and the formats give it differently: AAF with each pupil
//! (`ENTEleveLibelleMEF`), SIECLE once per code in its nomenclature file (`LIBELLE_LONG`), which
//! may come before the pupils, after them or in another import; the CSV gives none. So the
//! importer keeps one label per code and funder (table `mef`, loaded at the start: a few hundred
//! codes) and gives each pupil the label of its code when it is staged. The label is *derived*,
//! like an AAF pupil's UAI: it is not part of the pupil's fingerprint (a pupil staged before
//! its code's label was read must not look changed on the next import). When this import
//! taught a new or different label, one statement at the end copies it onto the pupils of that
//! code, touching only those whose label differs: a re-import writes nothing.
//!
//! One label per code: when sources disagree, the last one read wins.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

use super::sql::{exec, insert_rows, query};
use super::stage::Ctx;

/// The labels known to this import, by MEF code.
#[derive(Debug, Default)]
pub(super) struct MefLabels {
    /// As stored when the import started.
    stored: HashMap<String, String>,
    /// As known now (stored, then what this import read).
    current: HashMap<String, String>,
}

impl MefLabels {
    /// The funder's stored labels.
    pub async fn load<C: ConnectionTrait>(db: &C, funder_id: Uuid) -> Result<MefLabels, DbErr> {
        #[derive(FromQueryResult)]
        struct Mef {
            code: String,
            label: String,
        }
        let sql = "SELECT code, label FROM mef WHERE funder_id = $1";
        let stored: HashMap<String, String> =
            query::<Mef, _>(db, sql, vec![funder_id.into()]).await?.into_iter().map(|m| (m.code, m.label)).collect();
        Ok(MefLabels { current: stored.clone(), stored })
    }

    /// Learns the label of a code (blank labels say nothing).
    pub fn learn(&mut self, code: Option<&str>, label: Option<&str>) {
        let (Some(code), Some(label)) = (code.map(str::trim), label.map(str::trim)) else { return };
        if code.is_empty() || label.is_empty() || self.current.get(code).is_some_and(|l| l == label) {
            return;
        }
        self.current.insert(code.to_owned(), label.to_owned());
    }

    /// The label of a pupil's MEF, if known.
    pub fn label(&self, code: Option<&str>) -> Option<String> {
        code.and_then(|c| self.current.get(c.trim())).cloned()
    }

    /// Stores the labels this import changed, then gives the pupils of those codes their new
    /// label. Returns how many pupils were relabelled.
    pub async fn save<C: ConnectionTrait>(self, db: &C, ctx: &Ctx) -> Result<u64, DbErr> {
        let mut changed: Vec<(String, String)> =
            self.current.into_iter().filter(|(code, label)| self.stored.get(code) != Some(label)).collect();
        if changed.is_empty() {
            return Ok(0);
        }
        changed.sort_unstable();
        let rows = changed
            .into_iter()
            .map(|(code, label)| {
                vec![Uuid::now_v7().into(), ctx.funder_id.into(), code.into(), label.into(), ctx.now_us.into()]
            })
            .collect();
        let cols = ["id", "funder_id", "code", "label", "updated_at_us"];
        let upsert = " ON CONFLICT (funder_id, code) DO UPDATE SET label = excluded.label, \
                      updated_at_us = excluded.updated_at_us";
        insert_rows(db, "mef", &cols, rows, upsert).await?;
        // The pupils of the codes just written (their `updated_at_us` is this import's time)
        // whose label differs (`COALESCE`: a NULL label compares portably). A join, not a
        // subquery per pupil: the first import of a roster writes every code.
        let sql = "UPDATE pupil SET mef_label = m.label, updated_at_us = m.updated_at_us FROM mef m \
                   WHERE pupil.funder_id = $1 AND m.funder_id = pupil.funder_id AND m.code = pupil.mef \
                   AND m.updated_at_us = $2 AND COALESCE(pupil.mef_label, '') <> m.label";
        exec(db, sql, vec![ctx.funder_id.into(), ctx.now_us.into()]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_trimmed_labels_and_ignores_blanks() {
        let mut m = MefLabels::default();
        m.learn(Some("10010012110"), Some(" 6EME "));
        m.learn(Some("10010012110"), Some(""));
        m.learn(Some("10110001110"), None);
        m.learn(None, Some("5EME"));
        assert_eq!(m.label(Some("10010012110")).as_deref(), Some("6EME"));
        assert_eq!(m.label(Some("10110001110")), None);
        assert_eq!(m.label(None), None);
        m.learn(Some("10010012110"), Some("6EME BIS"));
        assert_eq!(m.label(Some("10010012110")).as_deref(), Some("6EME BIS"), "the last one read wins");
    }
}
