//! Stored eligibility decisions: recomputed from the roster, overridden by staff.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use serde::Serialize;
use uuid::Uuid;

use super::rules::{Computed, PupilFacts, evaluate};
use crate::campaign::get_campaign;
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
        let rows = db.query_all_raw(stmt(backend, &sql, [campaign.funder_id.into(), after.into()])).await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("", "id")?;
        let mut pupils = Vec::with_capacity(rows.len());
        for r in &rows {
            let grade: Option<String> = r.try_get("", "grade")?;
            let facts = PupilFacts {
                grade: grade.and_then(|g| g.parse::<GradeLevel>().ok()),
                birth_date: r.try_get::<Option<NaiveDate>>("", "birth_date")?,
                school_uai: r.try_get("", "uai")?,
                guardian_postal_codes: vec![],
                left_at: r.try_get::<Option<NaiveDate>>("", "left_at")?,
            };
            pupils.push((r.try_get::<Uuid>("", "id")?, r.try_get::<String>("", "source_key")?, facts));
        }
        let codes = postal_codes(db, campaign.funder_id, &pupils).await?;
        for (_, key, facts) in pupils.iter_mut() {
            facts.guardian_postal_codes = codes.get(key.as_str()).cloned().unwrap_or_default();
        }
        store_page(db, campaign_id, &campaign.policy, &pupils, &mut summary).await?;
    }
    Ok(summary)
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
    for r in db.query_all_raw(stmt(db.get_database_backend(), sql, values)).await? {
        out.entry(r.try_get("", "source_key")?).or_default().push(r.try_get("", "postal_code")?);
    }
    Ok(out)
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
    let mut existing: HashMap<Uuid, (String, String, Option<bool>)> = HashMap::new();
    for r in txn.query_all_raw(stmt(backend, sql, values)).await? {
        existing.insert(
            r.try_get("", "pupil_id")?,
            (r.try_get("", "computed")?, r.try_get("", "reasons")?, r.try_get("", "override_eligible")?),
        );
    }
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
        let computed = decision.computed.as_str();
        match existing.get(pupil_id) {
            Some((c, r, over)) => {
                if over.is_some() {
                    summary.overridden += 1;
                }
                if c != computed || r != &reasons {
                    summary.changed += 1;
                    let eligible = over.unwrap_or(decision.computed == Computed::Eligible);
                    let sql = format!(
                        "UPDATE eligibility SET computed = $3, reasons = $4, eligible = $5, computed_at_us = {now} \
                         WHERE campaign_id = $1 AND pupil_id = $2"
                    );
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
            "INSERT INTO eligibility (id, pupil_id, campaign_id, computed, reasons, eligible, computed_at_us) VALUES {}",
            tuples.join(", ")
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
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(Error::bad_input("reason", "a reason of 1 to 1000 characters is required"));
    }
    let campaign = get_campaign(db, campaign_id).await?;
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
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
    let sql = format!(
        "UPDATE eligibility SET override_eligible = $3, override_reason = $4, override_author = $5, override_at_us = {now}, \
         eligible = $3 WHERE campaign_id = $1 AND pupil_id = $2"
    );
    let v: [Value; 5] = [campaign_id.into(), pupil_id.into(), eligible.into(), reason.into(), author.into()];
    if txn.execute_raw(stmt(backend, &sql, v)).await?.rows_affected() == 0 {
        let sql = format!(
            "INSERT INTO eligibility (id, pupil_id, campaign_id, computed, reasons, override_eligible, override_reason, \
             override_author, override_at_us, eligible, computed_at_us) VALUES ($1, $2, $3, 'review', '[]', $4, $5, $6, {now}, $4, {now})"
        );
        let v: [Value; 6] =
            [Uuid::now_v7().into(), pupil_id.into(), campaign_id.into(), eligible.into(), reason.into(), author.into()];
        txn.execute_raw(stmt(backend, &sql, v)).await?;
    }
    let row = get_eligibility(&txn, pupil_id, campaign_id).await?.ok_or(Error::NotFound("eligibility"))?;
    txn.commit().await?;
    Ok(row)
}

pub async fn get_eligibility<C: ConnectionTrait>(
    db: &C,
    pupil_id: Uuid,
    campaign_id: Uuid,
) -> Result<Option<EligibilityRow>> {
    let sql = "SELECT pupil_id, campaign_id, computed, reasons, eligible, override_eligible, override_reason, override_author \
               FROM eligibility WHERE pupil_id = $1 AND campaign_id = $2";
    let Some(r) = db.query_one_raw(stmt(db.get_database_backend(), sql, [pupil_id.into(), campaign_id.into()])).await?
    else {
        return Ok(None);
    };
    let computed: String = r.try_get("", "computed")?;
    let reasons: String = r.try_get("", "reasons")?;
    Ok(Some(EligibilityRow {
        pupil_id: r.try_get("", "pupil_id")?,
        campaign_id: r.try_get("", "campaign_id")?,
        computed: Computed::parse(&computed),
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        eligible: r.try_get("", "eligible")?,
        override_eligible: r.try_get("", "override_eligible")?,
        override_reason: r.try_get("", "override_reason")?,
        override_author: r.try_get("", "override_author")?,
    }))
}
