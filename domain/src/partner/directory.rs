//! The parents' directory: approved partners of the children's funders and their activities,
//! found by words (accent- and case-blind: "theatre" finds "Théâtre"), wallet, commune, or
//! distance from a point — nearest first.
//!
//! Accents are folded by the application (Unicode decomposition, accents dropped, lower case)
//! into `search_text` columns, so one `LIKE` gives the same results on SQLite and PostgreSQL.
//! A distance search reads the latitude band of the circle's bounding box through an index,
//! then measures the great-circle distance of the few candidates: no full scan per request.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use uuid::Uuid;

use super::{PartnerStatus, categories_from_text};
use crate::db::{params, stmt};
use crate::error::{Error, Result};
use crate::ledger::Wallet;

/// Lower case without accents, blanks collapsed: what `search_text` holds and what a query is
/// compared with.
pub fn fold(text: &str) -> String {
    let folded: String = text.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The great-circle distance in kilometres (haversine, mean Earth radius).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1, lat2, lon2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

/// A point and a radius; checked by [`Near::new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Near {
    pub lat: f64,
    pub lon: f64,
    pub radius_km: f64,
}

/// The largest radius searched: a département is about 50 km across.
pub const MAX_RADIUS_KM: f64 = 100.0;

impl Near {
    pub fn new(lat: f64, lon: f64, radius_km: f64) -> Result<Near> {
        check_point("near.lat", "near.lon", lat, lon)?;
        if !(radius_km > 0.0 && radius_km <= MAX_RADIUS_KM) {
            return Err(Error::bad_input("near.radiusKm", "between 0 and 100 km"));
        }
        Ok(Near { lat, lon, radius_km })
    }

    /// Latitude and longitude bounds of the circle (longitude degrees shrink with latitude).
    fn bounds(&self) -> (f64, f64, f64, f64) {
        let dlat = self.radius_km / 111.2;
        let dlon = self.radius_km / (111.2 * self.lat.to_radians().cos().max(0.01));
        (self.lat - dlat, self.lat + dlat, self.lon - dlon, self.lon + dlon)
    }
}

/// A latitude in [-90, 90] and a longitude in [-180, 180], finite.
pub fn check_point(lat_field: &str, lon_field: &str, lat: f64, lon: f64) -> Result<()> {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        return Err(Error::bad_input(lat_field, "a latitude between -90 and 90"));
    }
    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
        return Err(Error::bad_input(lon_field, "a longitude between -180 and 180"));
    }
    Ok(())
}

/// What a family looks for.
#[derive(Clone, Debug, Default)]
pub struct DirectoryQuery {
    pub text: Option<String>,
    pub category: Option<Wallet>,
    /// A commune's name (any case or accents) or its INSEE code.
    pub commune: Option<String>,
    pub near: Option<Near>,
}

/// A partner found, with its distance when the query had a point.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub id: Uuid,
    pub name: String,
    pub categories: Vec<Wallet>,
    pub commune: Option<String>,
    pub distance_km: Option<f64>,
    /// The page's order: the name, or the distance in metres zero-padded (a text cursor either way).
    pub sort_key: String,
}

#[derive(FromQueryResult)]
struct Row {
    id: Uuid,
    name: String,
    categories: String,
    commune: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[derive(FromQueryResult)]
struct Point {
    partner_id: Uuid,
    lat: f64,
    lon: f64,
}

/// Approved partners of `funders`, at most `first`, after the cursor `(sort_key, id)`: by name,
/// or nearest first when `query.near` is given (partners farther than the radius are left out;
/// a partner's distance is its nearest place: its address or one of its activities).
pub async fn search<C: ConnectionTrait>(
    db: &C,
    funders: &[Uuid],
    query: &DirectoryQuery,
    first: u64,
    after: Option<(String, Uuid)>,
) -> Result<Vec<Found>> {
    if funders.is_empty() {
        return Ok(vec![]);
    }
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = vec![PartnerStatus::Approved.into()];
    values.extend(funders.iter().map(|f| Value::from(*f)));
    let mut sql = format!(
        "SELECT p.id, p.name, p.categories, p.commune, p.lat, p.lon FROM partner p \
         WHERE p.status = $1 AND p.funder_id IN ({})",
        params(2, funders.len())
    );
    let mut bind = |v: Value| {
        values.push(v);
        format!("${}", values.len())
    };
    if let Some(words) = query.text.as_deref().map(fold).filter(|t| !t.is_empty()) {
        let escaped = words.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let m = bind(format!("%{escaped}%").into());
        sql.push_str(&format!(
            " AND (p.search_text LIKE {m} ESCAPE '\\' OR EXISTS (SELECT 1 FROM activity a WHERE a.partner_id = p.id \
             AND a.search_text LIKE {m} ESCAPE '\\'))"
        ));
    }
    if let Some(c) = query.category {
        let m = bind(format!("%{c}%").into());
        sql.push_str(&format!(" AND p.categories LIKE {m}"));
    }
    if let Some(commune) = query.commune.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        let (name, code) = (bind(format!(" {}", fold(commune)).into()), bind(commune.to_uppercase().into()));
        // Both `search_text` columns end with their folded commune.
        sql.push_str(&format!(
            " AND (p.commune_insee = {code} OR p.search_text LIKE '%' || {name} \
             OR EXISTS (SELECT 1 FROM activity a WHERE a.partner_id = p.id AND (a.commune_insee = {code} \
             OR a.search_text LIKE '%' || {name})))"
        ));
    }
    let Some(near) = query.near else {
        if let Some((name, id)) = &after {
            let (n, i) = (bind(name.clone().into()), bind((*id).into()));
            sql.push_str(&format!(" AND (p.name > {n} OR (p.name = {n} AND p.id > {i}))"));
        }
        let limit = bind((first as i64).into());
        sql.push_str(&format!(" ORDER BY p.name, p.id LIMIT {limit}"));
        let rows = Row::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
        return rows.into_iter().map(|r| found(r, None)).collect();
    };
    let (lat0, lat1, lon0, lon1) = near.bounds();
    let (a, b, c, d) = (bind(lat0.into()), bind(lat1.into()), bind(lon0.into()), bind(lon1.into()));
    let inside = |t: &str| format!("{t}.lat BETWEEN {a} AND {b} AND {t}.lon BETWEEN {c} AND {d}");
    sql.push_str(&format!(
        " AND (({}) OR EXISTS (SELECT 1 FROM activity a WHERE a.partner_id = p.id AND {}))",
        inside("p"),
        inside("a")
    ));
    let rows = Row::find_by_statement(stmt(backend, &sql, values)).all(db).await?;
    let places = activity_points(db, &rows.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
    let here = (near.lat, near.lon);
    let mut out = vec![];
    for r in rows {
        let own = r.lat.zip(r.lon).map(|p| distance_km(here, p));
        let nearest = places
            .get(&r.id)
            .into_iter()
            .flatten()
            .map(|p| distance_km(here, *p))
            .chain(own)
            .fold(f64::INFINITY, f64::min);
        if nearest <= near.radius_km {
            out.push(found(r, Some(nearest))?);
        }
    }
    out.sort_by(|x, y| (&x.sort_key, x.id).cmp(&(&y.sort_key, y.id)));
    if let Some((key, id)) = after {
        out.retain(|f| (&f.sort_key, f.id) > (&key, id));
    }
    out.truncate(first as usize);
    Ok(out)
}

fn found(r: Row, distance_km: Option<f64>) -> Result<Found> {
    let sort_key = match distance_km {
        Some(km) => format!("{:012}", (km * 1000.0).round() as u64),
        None => r.name.clone(),
    };
    Ok(Found {
        categories: categories_from_text(&r.categories)?,
        id: r.id,
        name: r.name,
        commune: r.commune,
        distance_km,
        sort_key,
    })
}

/// Where each partner's activities take place (those with a point).
async fn activity_points<C: ConnectionTrait>(db: &C, partners: &[Uuid]) -> Result<HashMap<Uuid, Vec<(f64, f64)>>> {
    let mut out: HashMap<Uuid, Vec<(f64, f64)>> = HashMap::new();
    for chunk in partners.chunks(500) {
        let sql = format!(
            "SELECT partner_id, lat, lon FROM activity WHERE lat IS NOT NULL AND lon IS NOT NULL AND partner_id IN ({})",
            params(1, chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|p| Value::from(*p)).collect();
        for p in Point::find_by_statement(stmt(db.get_database_backend(), &sql, values)).all(db).await? {
            out.entry(p.partner_id).or_default().push((p.lat, p.lon));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_accents_case_and_extra_blanks() {
        assert_eq!(fold("  Théâtre   Victor-Hugo "), "theatre victor-hugo");
        assert_eq!(fold("ÉCOLE DE MUSIQUE de Sèvres"), "ecole de musique de sevres");
        assert_eq!(fold("Boulogne-Billancourt"), fold("boulogne-billancourt"));
    }

    #[test]
    fn distances_are_great_circle_kilometres() {
        let paris = (48.8566, 2.3522);
        let nanterre = (48.8924, 2.2071);
        let d = distance_km(paris, nanterre);
        assert!((11.0..11.5).contains(&d), "{d}");
        assert_eq!(distance_km(paris, paris), 0.0);
        // The bounding box holds the whole circle, even away from the equator.
        let near = Near::new(48.85, 2.35, 10.0).unwrap();
        let (lat0, lat1, lon0, lon1) = near.bounds();
        for bearing in 0..36 {
            let (dy, dx) = (f64::from(bearing) * 10.0_f64).to_radians().sin_cos();
            let p =
                (48.85 + dy * 10.0 / 111.2 * 0.999, 2.35 + dx * 10.0 / (111.2 * 48.85_f64.to_radians().cos()) * 0.999);
            assert!(distance_km((48.85, 2.35), p) <= 10.05);
            assert!((lat0..=lat1).contains(&p.0) && (lon0..=lon1).contains(&p.1), "{p:?}");
        }
    }

    #[test]
    fn bad_points_and_radii_name_their_field() {
        let field = |r: Result<Near>| match r {
            Err(Error::BadInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(Near::new(91.0, 2.0, 5.0)), "near.lat");
        assert_eq!(field(Near::new(48.0, f64::NAN, 5.0)), "near.lon");
        assert_eq!(field(Near::new(48.0, 2.0, 0.0)), "near.radiusKm");
        assert_eq!(field(Near::new(48.0, 2.0, 500.0)), "near.radiusKm");
    }
}
