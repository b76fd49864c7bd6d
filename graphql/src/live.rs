//! `passUpdated`: a parent's app hears of every committed change to a pass (a ticket issued or
//! redeemed, a payment, a refund, the card blocked, credit expired) over `graphql-transport-ws`.
//!
//! Changes come from the outbox rows the ledger writes in the same transaction as the money
//! (the api crate's feeder reads them and sends [`PassChanged`] on [`PassEvents`]), so an
//! event always describes a committed state. The subscription is authorised like the query
//! (a linked child's pass, else `NOT_FOUND`), and again at every event: unlinking stops it.

use async_graphql::{Context, ID, Subscription};
use futures_util::Stream;
use passerelle_domain::{notify, spending};
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::notifications::Notification;
use crate::parse_id;
use crate::wallet::{Pass, parent};

/// A committed change to a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassChanged {
    pub pass_id: Uuid,
}

/// The channel every subscription listens on (one per server process).
#[derive(Clone)]
pub struct PassEvents(pub broadcast::Sender<PassChanged>);

impl PassEvents {
    pub fn new() -> PassEvents {
        PassEvents(broadcast::channel(1024).0)
    }
}

impl Default for PassEvents {
    fn default() -> Self {
        Self::new()
    }
}

/// An inbox entry written for an account (by any node's dispatcher).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationAdded {
    pub account_id: Uuid,
    pub notification_id: Uuid,
}

/// The channel of inbox entries (one per server process).
#[derive(Clone)]
pub struct NotificationEvents(pub broadcast::Sender<NotificationAdded>);

impl Default for NotificationEvents {
    fn default() -> Self {
        NotificationEvents(broadcast::channel(1024).0)
    }
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// The pass, each time a change to it commits.
    async fn pass_updated(
        &self,
        ctx: &Context<'_>,
        pass_id: ID,
    ) -> Result<impl Stream<Item = ApiResult<Pass>> + use<>, ApiError> {
        let account = parent(ctx)?.account.id;
        let db = ctx.data_unchecked::<DatabaseConnection>().clone();
        let pass = parse_id(&pass_id, "passId")?;
        spending::pass_for_parent(&db, account, pass).await?;
        let events = ctx.data::<PassEvents>().map_err(|_| passerelle_domain::Error::NotFound("events"))?;
        let rx = events.0.subscribe();
        Ok(futures_util::stream::unfold((rx, db), move |(mut rx, db)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.pass_id == pass => {
                        let now =
                            spending::pass_for_parent(&db, account, pass).await.map(Pass::from).map_err(Into::into);
                        return Some((now, (rx, db)));
                    }
                    Ok(_) => {}
                    // Lagging behind only skips events: the next one carries the whole pass.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }

    /// Each new entry of the signed-in parent's (or club member's) inbox, as it is written.
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = ApiResult<Notification>> + use<>, ApiError> {
        let account = crate::notifications::inbox_owner(ctx)?.account.id;
        let db = ctx.data_unchecked::<DatabaseConnection>().clone();
        let events = ctx.data::<NotificationEvents>().map_err(|_| passerelle_domain::Error::NotFound("events"))?;
        let rx = events.0.subscribe();
        Ok(futures_util::stream::unfold((rx, db), move |(mut rx, db)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.account_id == account => {
                        let n = notify::get_notification(&db, account, e.notification_id).await;
                        return Some((n.map(Notification::from).map_err(Into::into), (rx, db)));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}
