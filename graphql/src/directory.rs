//! The partner directory: families find approved partners and their activities by words,
//! wallet, commune or distance; partners publish their activities.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use passerelle_domain::auth;
use passerelle_domain::partner::{self, ActivityInput as DomainActivityInput, DirectoryQuery, Near};
use sea_orm::DatabaseConnection;

use crate::access::{SignedIn, partner_scope};
use crate::error::ApiResult;
use crate::pagination::{decode_name_cursor, name_cursor};
use crate::wallet::parent;
use crate::{GqlWallet, Money, parse_id};

/// A partner in the directory.
#[derive(SimpleObject)]
pub struct DirectoryPartner {
    pub id: ID,
    pub name: String,
    pub categories: Vec<GqlWallet>,
    pub commune: Option<String>,
    /// From the point searched around (`filter.near`): its nearest place, address or activity.
    pub distance_km: Option<f64>,
    pub activities: Vec<Activity>,
}

/// What a partner offers.
#[derive(SimpleObject)]
pub struct Activity {
    pub id: ID,
    pub title: String,
    pub category: GqlWallet,
    pub price: Option<Money>,
    pub age_min: Option<i32>,
    pub age_max: Option<i32>,
    pub season: Option<String>,
    pub commune: Option<String>,
    pub commune_insee: Option<String>,
    pub location: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl From<partner::Activity> for Activity {
    fn from(a: partner::Activity) -> Self {
        Activity {
            id: ID(a.id.to_string()),
            title: a.title,
            category: a.category.into(),
            price: a.price_cents.map(|c| Money(passerelle_domain::Cents(c))),
            age_min: a.age_min,
            age_max: a.age_max,
            season: a.season,
            commune: a.commune,
            commune_insee: a.commune_insee,
            location: a.location,
            lat: a.lat,
            lon: a.lon,
        }
    }
}

#[derive(InputObject)]
pub struct NearInput {
    pub lat: f64,
    pub lon: f64,
    /// Up to 100 km.
    pub radius_km: f64,
}

#[derive(InputObject, Default)]
pub struct PartnerFilterInput {
    /// Words of the name, an activity or the place: accents and case do not matter.
    pub text: Option<String>,
    pub category: Option<GqlWallet>,
    /// A commune's name or INSEE code.
    pub commune: Option<String>,
    /// Nearest first, within the radius.
    pub near: Option<NearInput>,
}

#[derive(InputObject)]
pub struct ActivityInput {
    /// One of the partner's activities to change; none: a new one.
    pub id: Option<ID>,
    pub title: String,
    pub category: GqlWallet,
    pub price: Option<Money>,
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

#[derive(Default)]
pub struct DirectoryQueryRoot;

#[Object]
impl DirectoryQueryRoot {
    /// Approved partners of the funders of the parent's children: by name, or nearest first.
    #[graphql(guard = "SignedIn")]
    async fn partners(
        &self,
        ctx: &Context<'_>,
        filter: Option<PartnerFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, DirectoryPartner, EmptyFields, EmptyFields>> {
        let p = parent(ctx)?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let page = crate::pagination::page(first, None)?.0;
        let after = after.map(|a| decode_name_cursor(&a)).transpose()?;
        let f = filter.unwrap_or_default();
        let near = f.near.map(|n| Near::new(n.lat, n.lon, n.radius_km)).transpose()?;
        let query = DirectoryQuery { text: f.text, category: f.category.map(Into::into), commune: f.commune, near };
        let funders = auth::linked_funders(db, p.account.id).await?;
        let rows = partner::search(db, &funders, &query, page + 1, after.clone()).await?;
        let has_next = rows.len() as u64 > page;
        let rows: Vec<_> = rows.into_iter().take(page as usize).collect();
        let mut activities = partner::activities_of(db, &rows.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(rows.into_iter().map(|r| {
            let (mine, rest) = activities.drain(..).partition(|a| a.partner_id == r.id);
            activities = rest;
            let node = DirectoryPartner {
                id: ID(r.id.to_string()),
                name: r.name,
                categories: r.categories.into_iter().map(Into::into).collect(),
                commune: r.commune,
                distance_km: r.distance_km,
                activities: mine.into_iter().map(Activity::from).collect::<Vec<_>>(),
            };
            Edge::new(name_cursor(&r.sort_key, r.id), node)
        }));
        Ok(conn)
    }
}

#[derive(Default)]
pub struct DirectoryMutation;

#[Object]
impl DirectoryMutation {
    /// Publishes or changes one of the calling partner's activities.
    async fn upsert_activity(&self, ctx: &Context<'_>, input: ActivityInput) -> ApiResult<Activity> {
        let partner = partner_scope(ctx)?;
        let activity = DomainActivityInput {
            id: input.id.as_ref().map(|i| parse_id(i, "id")).transpose()?,
            title: input.title,
            category: Some(input.category.into()),
            price: input.price.map(|m| m.0),
            age_min: input.age_min,
            age_max: input.age_max,
            season: input.season,
            commune: input.commune,
            commune_insee: input.commune_insee,
            location: input.location,
            lat: input.lat,
            lon: input.lon,
        };
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(partner::upsert_activity(db, partner, &activity).await?.into())
    }
}
