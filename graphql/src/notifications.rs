//! The app's inbox, push tokens and notification preferences.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use passerelle_domain::auth::AccountKind;
use passerelle_domain::notify::{self, Preference};
use sea_orm::DatabaseConnection;

use crate::access::{SignedIn, signed_in};
use crate::account::Platform;
use crate::error::ApiResult;
use crate::pagination::{connection, keyset};
use crate::parse_id;
use crate::wallet::time;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "NotificationKind", remote = "passerelle_domain::notify::NotificationKind")]
pub enum GqlNotificationKind {
    TicketIssued,
    TicketRedeemed,
    TicketCancelled,
    Payment,
    CardCharge,
    Refund,
    CardBlocked,
    CreditExpiring,
    CreditExpired,
    CreditGranted,
    RequestReceived,
    RequestStatusChanged,
    SettlementPaid,
}

/// One inbox entry; `eventId` is the same in the push's `data.event_id`, so the app shows an
/// event once however it arrived.
#[derive(SimpleObject)]
pub struct Notification {
    pub id: ID,
    pub event_id: ID,
    pub kind: GqlNotificationKind,
    pub title: String,
    pub body: String,
    /// The pass it is about (pass events).
    pub pass_id: Option<ID>,
    /// The request it is about (`REQUEST_RECEIVED`, `REQUEST_STATUS_CHANGED`).
    pub request_id: Option<ID>,
    /// The settlement batch it is about (`SETTLEMENT_PAID`, to a partner's members).
    pub batch_id: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<notify::Notification> for Notification {
    fn from(n: notify::Notification) -> Self {
        let payload: serde_json::Value = serde_json::from_str(&n.payload).unwrap_or_default();
        Notification {
            id: ID(n.id.to_string()),
            event_id: ID(n.event_id.to_string()),
            kind: n.kind.into(),
            title: n.kind.title().to_owned(),
            body: n.kind.body().to_owned(),
            pass_id: payload["pass_id"].as_str().map(|p| ID(p.to_owned())),
            request_id: payload["request_id"].as_str().map(|r| ID(r.to_owned())),
            batch_id: payload["batch_id"].as_str().map(|b| ID(b.to_owned())),
            created_at: time(n.created_at_us),
            read_at: n.read_at_us.map(time),
        }
    }
}

#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "SetNotificationPreferenceInput")]
pub struct NotificationPreference {
    pub kind: GqlNotificationKind,
    pub push: bool,
    pub email: bool,
}

#[derive(InputObject)]
pub struct RegisterPushTokenInput {
    /// The FCM registration token of this device.
    pub token: String,
    pub platform: Platform,
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The signed-in parent's (or club member's) inbox, newest first.
    #[graphql(guard = "SignedIn")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        unread_only: Option<bool>,
    ) -> ApiResult<Connection<String, Notification, EmptyFields, EmptyFields>> {
        let p = inbox_owner(ctx)?;
        let page = keyset(first, after.as_deref())?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let rows = notify::list_notifications(db, p.account.id, unread_only.unwrap_or(false), &page).await?;
        Ok(connection(&page, rows, |n| (n.created_at_us, n.id), Notification::from))
    }

    #[graphql(guard = "SignedIn")]
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let p = inbox_owner(ctx)?;
        Ok(notify::unread_count(ctx.data_unchecked::<DatabaseConnection>(), p.account.id).await?)
    }

    /// Push and e-mail, per kind (both on unless turned off).
    #[graphql(guard = "SignedIn")]
    async fn notification_preferences(&self, ctx: &Context<'_>) -> ApiResult<Vec<NotificationPreference>> {
        let p = inbox_owner(ctx)?;
        let all = notify::preferences(ctx.data_unchecked::<DatabaseConnection>(), p.account.id).await?;
        Ok(all
            .into_iter()
            .map(|p| NotificationPreference { kind: p.kind.into(), push: p.push, email: p.email })
            .collect())
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks these entries read (all of them without `ids`); returns how many changed.
    #[graphql(guard = "SignedIn")]
    async fn mark_notifications_read(&self, ctx: &Context<'_>, ids: Option<Vec<ID>>) -> ApiResult<u64> {
        let p = inbox_owner(ctx)?;
        let ids = ids.map(|ids| ids.iter().map(|i| parse_id(i, "ids")).collect::<Result<Vec<_>, _>>()).transpose()?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        Ok(notify::mark_read(db, p.account.id, ids.as_deref()).await?)
    }

    #[graphql(guard = "SignedIn")]
    async fn set_notification_preference(
        &self,
        ctx: &Context<'_>,
        input: NotificationPreference,
    ) -> ApiResult<NotificationPreference> {
        let p = inbox_owner(ctx)?;
        let choice = Preference { kind: input.kind.into(), push: input.push, email: input.email };
        notify::set_preference(ctx.data_unchecked::<DatabaseConnection>(), p.account.id, choice).await?;
        Ok(input)
    }

    /// Records this device for push (call at every app start: tokens unused for 60 days are
    /// dropped). Any signed-in person.
    #[graphql(guard = "SignedIn")]
    async fn register_push_token(&self, ctx: &Context<'_>, input: RegisterPushTokenInput) -> ApiResult<bool> {
        let p = signed_in(ctx)?;
        let platform: &'static str = input.platform.into();
        let db = ctx.data_unchecked::<DatabaseConnection>();
        notify::register_push_token(db, p.account.id, &input.token, platform).await?;
        Ok(true)
    }
}

/// Who has an inbox: parents (their children's passes and requests) and clubs' members (their
/// affiliation request, their reimbursements). Staff and club software do not.
pub(crate) fn inbox_owner<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a passerelle_domain::auth::Principal> {
    let p = signed_in(ctx)?;
    match p.account.kind {
        AccountKind::Parent | AccountKind::PartnerMember => Ok(p),
        AccountKind::Staff => Err(passerelle_domain::Error::Forbidden.into()),
    }
}
