//! Stored eligibility decisions: recomputed from the roster, overridden by staff.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::rules::{Computed, PupilFacts, evaluate};
use crate::campaign::{Campaign, get_campaign};
use crate::db::{begin_write, now_us_sql, rows_per_statement, stmt};
use crate::error::{Error, Result};
use crate::ids::GradeLevel;

/// Counts of a recomputation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecomputeSummary {
    pub eligible: u64,
    pub ineligible: u64,
    pub review: u64,
    /// Decisions whose computed value changed (or that are new).
    pub changed: u64,
    /// Pupils whose staff override decides, whatever the rules say.
    pub overridden: u64,
}

const PAGE: u64 = 1000;
/// Bound bytes of one stored decision (three ids, the outcome, its reasons as JSON).
const DECISION_ROW_BYTES: usize = 160;

/// Recomputes every decision of `campaign_id` from the current roster. Overrides are kept.
pub async fn recompute(db: &DatabaseConnection, campaign_id: Uuid) -> Result<RecomputeSummary> {
    let campaign = get_campaign(db, campaign_id).await?;
    let backend = db.get_database_backend();
    let mut summary = RecomputeSummary::default();
    let mut after = Uuid::nil();
    loop {
        let sql = format!(
            "SELECT id, source_key, grade, birth_date, uai, left_at FROM pupil WHERE funder_id = $1 AND id > $2 \
             ORDER BY id LIMIT {PAGE}"
        );
        let rows =
            FactsRow::find_by_statement(stmt(backend, &sql, [campaign.funder_id.into(), after.into()])).all(db).await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        let mut pupils: Vec<(Uuid, String, PupilFacts)> = rows.into_iter().map(FactsRow::into_facts).collect();
        let codes = postal_codes(db, campaign.funder_id, &pupils).await?;
        for (_, key, facts) in pupils.iter_mut() {
            facts.guardian_postal_codes = codes.get(key.as_str()).cloned().unwrap_or_default();
        }
        store_page(db, campaign_id, &campaign.policy, &pupils, &mut summary).await?;
    }
    Ok(summary)
}

/// A pupil as the rules read it (`grade` is a stored code: an unknown one is a read error).
#[derive(FromQueryResult)]
struct FactsRow {
    id: Uuid,
    source_key: String,
    grade: Option<GradeLevel>,
    birth_date: Option<NaiveDate>,
    uai: Option<String>,
    left_at: Option<NaiveDate>,
}

impl FactsRow {
    /// The pupil's id, source key and facts; the postal codes come from [`postal_codes`].
    fn into_facts(self) -> (Uuid, String, PupilFacts) {
        let facts = PupilFacts {
            grade: self.grade,
            birth_date: self.birth_date,
            school_uai: self.uai,
            guardian_postal_codes: vec![],
            left_at: self.left_at,
        };
        (self.id, self.source_key, facts)
    }
}

#[derive(FromQueryResult)]
struct PostalCodeRow {
    source_key: String,
    postal_code: String,
}

/// Postal codes of the legal guardians of a page of pupils, by pupil source key. The page is
/// found by its id range (the pupils are read in id order): a short statement whatever the
/// page size.
async fn postal_codes<C: ConnectionTrait>(
    db: &C,
    funder_id: Uuid,
    pupils: &[(Uuid, String, PupilFacts)],
) -> Result<HashMap<String, Vec<String>>> {
    let (Some((first, _, _)), Some((last, _, _))) = (pupils.first(), pupils.last()) else { return Ok(HashMap::new()) };
    let sql = "SELECT p.source_key, g.postal_code FROM pupil p \
               JOIN guardianship gs ON gs.funder_id = p.funder_id AND gs.pupil_key = p.source_key \
               JOIN guardian g ON g.funder_id = gs.funder_id AND g.source_key = gs.guardian_key \
               WHERE p.funder_id = $1 AND p.id >= $2 AND p.id <= $3 AND gs.legal_level IN (1, 2) \
               AND g.postal_code IS NOT NULL";
    let values: [Value; 3] = [funder_id.into(), (*first).into(), (*last).into()];
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in PostalCodeRow::find_by_statement(stmt(db.get_database_backend(), sql, values)).all(db).await? {
        out.entry(r.source_key).or_default().push(r.postal_code);
    }
    Ok(out)
}

/// A decision as [`store_page`] compares it with the rules' new one.
#[derive(FromQueryResult)]
struct StoredDecision {
    pupil_id: Uuid,
    computed: Computed,
    /// The JSON text of the reasons.
    reasons: String,
    override_eligible: Option<bool>,
}

async fn store_page(
    db: &DatabaseConnection,
    campaign_id: Uuid,
    policy: &crate::campaign::Policy,
    pupils: &[(Uuid, String, PupilFacts)],
    summary: &mut RecomputeSummary,
) -> Result<()> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let (Some((first, _, _)), Some((last, _, _))) = (pupils.first(), pupils.last()) else { return Ok(()) };
    let sql = "SELECT pupil_id, computed, reasons, override_eligible FROM eligibility \
               WHERE campaign_id = $1 AND pupil_id >= $2 AND pupil_id <= $3";
    let values: [Value; 3] = [campaign_id.into(), (*first).into(), (*last).into()];
    let existing: HashMap<Uuid, StoredDecision> = StoredDecision::find_by_statement(stmt(backend, sql, values))
        .all(&txn)
        .await?
        .into_iter()
        .map(|d| (d.pupil_id, d))
        .collect();
    let now = now_us_sql(backend);
    let mut inserts: Vec<Value> = vec![];
    for (pupil_id, _, facts) in pupils {
        let decision = evaluate(facts, policy);
        match decision.computed {
            Computed::Eligible => summary.eligible += 1,
            Computed::Ineligible => summary.ineligible += 1,
            Computed::Review => summary.review += 1,
        }
        let reasons = serde_json::to_string(&decision.reasons).map_err(Error::internal)?;
        let computed = decision.computed;
        match existing.get(pupil_id) {
            Some(stored) => {
                if stored.override_eligible.is_some() {
                    summary.overridden += 1;
                }
                // The reasons are compared as the stored text: the same list always serializes the same.
                if stored.computed != computed || stored.reasons != reasons {
                    summary.changed += 1;
                    // The override is read by the statement itself, not from the page's read:
                    // a staff decision committed since then must still win (on PostgreSQL the
                    // UPDATE re-reads the row's latest version).
                    let sql = format!(
                        "UPDATE eligibility SET computed = $3, reasons = $4, eligible = COALESCE(override_eligible, $5), \
                         computed_at_us = {now} WHERE campaign_id = $1 AND pupil_id = $2"
                    );
                    let eligible = computed == Computed::Eligible;
                    let v = [campaign_id.into(), (*pupil_id).into(), computed.into(), reasons.into(), eligible.into()];
                    txn.execute_raw(stmt(backend, &sql, v)).await?;
                }
            }
            None => {
                summary.changed += 1;
                inserts.extend([
                    Uuid::now_v7().into(),
                    (*pupil_id).into(),
                    campaign_id.into(),
                    computed.into(),
                    reasons.into(),
                    (decision.computed == Computed::Eligible).into(),
                ]);
            }
        }
    }
    for chunk in inserts.chunks(6 * rows_per_statement(backend, DECISION_ROW_BYTES, PAGE as usize)) {
        let tuples: Vec<String> = (0..chunk.len() / 6)
            .map(|i| {
                let b = i * 6;
                format!("(${}, ${}, ${}, ${}, ${}, ${}, {now})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6)
            })
            .collect();
        let sql = format!(
            "INSERT INTO eligibility (id, pupil_id, campaign_id, computed, reasons, eligible, computed_at_us) VALUES {} \
             ON CONFLICT (campaign_id, pupil_id) DO NOTHING",
            tuples.join(", ") // (A staff decision inserted the pupil's row meanwhile: it stands, and the next
                              // recompute stores the computed outcome beside it.)
        );
        txn.execute_raw(stmt(backend, &sql, chunk.to_vec())).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// A stored decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EligibilityRow {
    pub pupil_id: Uuid,
    pub campaign_id: Uuid,
    pub computed: Computed,
    pub reasons: Vec<String>,
    pub eligible: bool,
    pub override_eligible: Option<bool>,
    pub override_reason: Option<String>,
    pub override_author: Option<String>,
}

/// A staff decision: wins over the rules until changed again, survives re-imports.
pub async fn set_eligibility(
    db: &DatabaseConnection,
    pupil_id: Uuid,
    campaign_id: Uuid,
    eligible: bool,
    reason: &str,
    author: &str,
) -> Result<EligibilityRow> {
    let campaign = get_campaign(db, campaign_id).await?;
    let txn = begin_write(db).await?;
    let row = set_eligibility_in(&txn, &campaign, pupil_id, eligible, reason, author).await?;
    txn.commit().await?;
    Ok(row)
}

/// [`set_eligibility`] inside the caller's transaction: a request's decision overrides
/// eligibility in the same commit as the decision itself.
pub async fn set_eligibility_in(
    txn: &DatabaseTransaction,
    campaign: &Campaign,
    pupil_id: Uuid,
    eligible: bool,
    reason: &str,
    author: &str,
) -> Result<EligibilityRow> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(Error::bad_input("reason", "a reason of 1 to 1000 characters is required"));
    }
    let backend = txn.get_database_backend();
    let pupil = txn
        .query_one_raw(stmt(
            backend,
            "SELECT id FROM pupil WHERE id = $1 AND funder_id = $2",
            [pupil_id.into(), campaign.funder_id.into()],
        ))
        .await?;
    if pupil.is_none() {
        return Err(Error::NotFound("pupil"));
    }
    let now = now_us_sql(backend);
    // One upsert: a recompute inserting the same pupil's first decision at the same moment
    // cannot make this fail on the unique key, and the override wins either way.
    let sql = format!(
        "INSERT INTO eligibility (id, pupil_id, campaign_id, computed, reasons, override_eligible, override_reason, \
         override_author, override_at_us, eligible, computed_at_us) VALUES ($1, $2, $3, 'review', '[]', $4, $5, $6, {now}, $7, {now}) \
         ON CONFLICT (campaign_id, pupil_id) DO UPDATE SET override_eligible = excluded.override_eligible, \
         override_reason = excluded.override_reason, override_author = excluded.override_author, \
         override_at_us = excluded.override_at_us, eligible = excluded.eligible"
    );
    let v: [Value; 7] = [
        Uuid::now_v7().into(),
        pupil_id.into(),
        campaign.id.into(),
        eligible.into(),
        reason.into(),
        author.into(),
        eligible.into(),
    ];
    txn.execute_raw(stmt(backend, &sql, v)).await?;
    get_eligibility(txn, pupil_id, campaign.id).await?.ok_or(Error::NotFound("eligibility"))
}

pub async fn get_eligibility<C: ConnectionTrait>(
    db: &C,
    pupil_id: Uuid,
    campaign_id: Uuid,
) -> Result<Option<EligibilityRow>> {
    let sql = "SELECT pupil_id, campaign_id, computed, reasons, eligible, override_eligible, override_reason, override_author \
               FROM eligibility WHERE pupil_id = $1 AND campaign_id = $2";
    let row =
        DecisionRow::find_by_statement(stmt(db.get_database_backend(), sql, [pupil_id.into(), campaign_id.into()]))
            .one(db)
            .await?;
    Ok(row.map(EligibilityRow::try_from).transpose()?)
}

/// `eligibility` as [`get_eligibility`] selects it; `reasons` is a JSON list.
#[derive(FromQueryResult)]
struct DecisionRow {
    pupil_id: Uuid,
    campaign_id: Uuid,
    computed: Computed,
    reasons: String,
    eligible: bool,
    override_eligible: Option<bool>,
    override_reason: Option<String>,
    override_author: Option<String>,
}

impl TryFrom<DecisionRow> for EligibilityRow {
    type Error = DbErr;

    fn try_from(r: DecisionRow) -> Result<EligibilityRow, DbErr> {
        let reasons = serde_json::from_str(&r.reasons)
            .map_err(|e| DbErr::Type(format!("eligibility reasons {:?}: {e}", r.reasons)))?;
        Ok(EligibilityRow {
            pupil_id: r.pupil_id,
            campaign_id: r.campaign_id,
            computed: r.computed,
            reasons,
            eligible: r.eligible,
            override_eligible: r.override_eligible,
            override_reason: r.override_reason,
            override_author: r.override_author,
        })
    }
}
