//! What a partner offers: activities families find in the directory and clubs name when they
//! redeem (`activityId`). A partner publishes only in the wallets it was approved for.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::directory::{check_point, fold};
use super::partner_profile;
use crate::db::{now_us, params, stmt};
use crate::error::{Error, Result};
use crate::ledger::Wallet;
use crate::money::Cents;

/// A published activity.
#[derive(Clone, Debug, PartialEq, Serialize, FromQueryResult)]
pub struct Activity {
    pub id: Uuid,
    pub partner_id: Uuid,
    pub title: String,
    pub category: Wallet,
    pub price_cents: Option<i64>,
    pub age_min: Option<i32>,
    pub age_max: Option<i32>,
    pub season: Option<String>,
    pub commune: Option<String>,
    pub commune_insee: Option<String>,
    pub location: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub updated_at_us: i64,
}

const COLUMNS: &str = "id, partner_id, title, category, price_cents, age_min, age_max, season, commune, \
    commune_insee, location, lat, lon, updated_at_us";

/// What a partner sends; `id` changes one of its activities, none publishes a new one.
#[derive(Clone, Debug, Default)]
pub struct ActivityInput {
    pub id: Option<Uuid>,
    pub title: String,
    pub category: Option<Wallet>,
    pub price: Option<Cents>,
    pub age_min: Option<i32>,
    pub age_max: Option<i32>,
    /// "2026-2027".
    pub season: Option<String>,
    pub commune: Option<String>,
    pub commune_insee: Option<String>,
    pub location: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// A commune's INSEE code: five characters, digits, or 2A/2B then three digits (Corsica).
pub fn check_insee(code: &str) -> Result<String> {
    let c = code.trim().to_uppercase();
    let ok = c.len() == 5
        && (c.chars().all(|ch| ch.is_ascii_digit())
            || ((c.starts_with("2A") || c.starts_with("2B")) && c[2..].chars().all(|ch| ch.is_ascii_digit())));
    if ok { Ok(c) } else { Err(Error::bad_input("communeInsee", "a five-character INSEE code such as 92007 or 2A004")) }
}

fn text(field: &str, v: &Option<String>, max: usize) -> Result<Option<String>> {
    match v.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > max => Err(Error::bad_input(field, format!("at most {max} characters"))),
        t => Ok(t.map(str::to_owned)),
    }
}

fn validate(input: &ActivityInput, accepted: &[Wallet]) -> Result<Wallet> {
    let title = input.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(Error::bad_input("title", "1 to 200 characters"));
    }
    let category = input.category.ok_or_else(|| Error::bad_input("category", "required"))?;
    if !accepted.contains(&category) {
        return Err(Error::bad_input("category", "a wallet this partner was approved for"));
    }
    if input.price.is_some_and(|p| p.0 < 0 || p.0 > 1_000_000) {
        return Err(Error::bad_input("price", "between 0 and 10,000 €"));
    }
    for (field, age) in [("ageMin", input.age_min), ("ageMax", input.age_max)] {
        if age.is_some_and(|a| !(0..=25).contains(&a)) {
            return Err(Error::bad_input(field, "between 0 and 25"));
        }
    }
    if let (Some(min), Some(max)) = (input.age_min, input.age_max)
        && min > max
    {
        return Err(Error::bad_input("ageMax", "not below ageMin"));
    }
    match (input.lat, input.lon) {
        (Some(lat), Some(lon)) => check_point("lat", "lon", lat, lon)?,
        (None, None) => {}
        (None, Some(_)) => return Err(Error::bad_input("lat", "give both coordinates or neither")),
        (Some(_), None) => return Err(Error::bad_input("lon", "give both coordinates or neither")),
    }
    Ok(category)
}

/// Publishes or changes an activity of `partner` (an approved one, in its wallets).
pub async fn upsert_activity(db: &DatabaseConnection, partner: Uuid, input: &ActivityInput) -> Result<Activity> {
    let profile = partner_profile(db, partner).await?;
    if profile.status == super::PartnerStatus::Suspended {
        return Err(Error::Conflict("a suspended partner publishes nothing".into()));
    }
    let category = validate(input, &profile.categories)?;
    let season = text("season", &input.season, 20)?;
    let commune = text("commune", &input.commune, 100)?;
    let location = text("location", &input.location, 300)?;
    let insee = input.commune_insee.as_deref().map(check_insee).transpose()?;
    let title = input.title.trim().to_owned();
    // Ends with the commune: the directory's commune filter reads it there.
    let search = fold(&format!("{title} {} {}", location.as_deref().unwrap_or(""), commune.as_deref().unwrap_or("")));
    let now = now_us(db).await?;
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let values: Vec<Value> = vec![
        id.into(),
        partner.into(),
        title.into(),
        search.into(),
        category.into(),
        input.price.map(|p| p.0).into(),
        input.age_min.into(),
        input.age_max.into(),
        season.into(),
        commune.into(),
        insee.into(),
        location.into(),
        input.lat.into(),
        input.lon.into(),
        now.into(),
    ];
    let backend = db.get_database_backend();
    let written = if input.id.is_some() {
        // Only the partner's own activity changes; another partner's id is NOT_FOUND.
        let sql = "UPDATE activity SET title = $3, search_text = $4, category = $5, price_cents = $6, age_min = $7, \
                   age_max = $8, season = $9, commune = $10, commune_insee = $11, location = $12, lat = $13, lon = $14, \
                   updated_at_us = $15 WHERE id = $1 AND partner_id = $2";
        db.execute_raw(stmt(backend, sql, values)).await?.rows_affected()
    } else {
        let sql = format!(
            "INSERT INTO activity (id, partner_id, title, search_text, category, price_cents, age_min, age_max, season, \
             commune, commune_insee, location, lat, lon, updated_at_us, created_at_us) VALUES ({}, $15)",
            params(1, 15)
        );
        db.execute_raw(stmt(backend, &sql, values)).await?.rows_affected()
    };
    if written != 1 {
        return Err(Error::NotFound("activity"));
    }
    let sql = format!("SELECT {COLUMNS} FROM activity WHERE id = $1");
    let row = Activity::find_by_statement(stmt(backend, &sql, [id.into()])).one(db).await?;
    row.ok_or(Error::NotFound("activity"))
}

/// The activities of these partners, by title (one statement for a page of the directory).
pub async fn activities_of<C: ConnectionTrait>(db: &C, partners: &[Uuid]) -> Result<Vec<Activity>> {
    if partners.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM activity WHERE partner_id IN ({}) ORDER BY partner_id, title, id",
        params(1, partners.len())
    );
    let values: Vec<Value> = partners.iter().map(|p| Value::from(*p)).collect();
    Ok(Activity::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await?)
}
