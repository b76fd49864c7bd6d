//! `passUpdated`: a parent's app hears of every committed change to a pass (a ticket issued or
//! redeemed, a payment, a refund, the card blocked, credit expired) over `graphql-transport-ws`.
//!
//! Changes come from the outbox rows the ledger writes in the same transaction as the money
//! (the api crate's feeder reads them and sends [`PassChanged`] on [`PassEvents`]), so an
//! event always describes a committed state. The subscription is authorised like the query
//! (a linked child's pass, else `NOT_FOUND`), and again at every event: unlinking stops it.

use std::collections::{HashMap, VecDeque};

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
                    Ok(e) if e.pass_id != pass => {}
                    // Fallen behind a burst (the yearly grant sends one event per pass): the
                    // events skipped may have been this pass's, and the pass as it stands
                    // answers for all of them. Skipping them lost the change for good.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        let now =
                            spending::pass_for_parent(&db, account, pass).await.map(Pass::from).map_err(Into::into);
                        return Some((now, (rx, db)));
                    }
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
        let start = passerelle_domain::db::now_us(&db).await.map_err(passerelle_domain::Error::from)?;
        let inbox = Inbox::new(rx, db, account, start);
        Ok(futures_util::stream::unfold(inbox, |mut inbox| async move {
            let next = inbox.next().await?;
            Some((next, inbox))
        }))
    }
}

/// Rows a subscriber that fell behind reads back at once.
const CATCH_UP: u64 = 100;

/// How long after its time a change may still commit (a transaction that started earlier can
/// commit after a later one): the feeder reads this far back, and a subscriber remembers what
/// it sent over as long.
pub const LOOK_BACK_US: i64 = 10_000_000;

/// What was sent over the look-back, each id once: the feeder's memory of the rows it sent on
/// the channels, and a subscriber's of the entries it sent. Ids older than the look-back
/// (behind the newest time sent) are forgotten by [`SentOnce::forget_old`].
#[derive(Default)]
pub struct SentOnce {
    sent: HashMap<Uuid, i64>,
    newest: Option<i64>,
}

impl SentOnce {
    /// Nothing sent yet, the look-back counted from `at`.
    pub fn starting_at(at: i64) -> SentOnce {
        SentOnce { sent: HashMap::new(), newest: Some(at) }
    }

    /// Whether `id` (of time `at`) was not sent yet; it is from now on.
    pub fn first_time(&mut self, id: Uuid, at: i64) -> bool {
        self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        self.sent.insert(id, at).is_none()
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.sent.contains_key(id)
    }

    /// The newest time sent (or started at) less `look_back`: where a read back starts (the
    /// whole window with [`LOOK_BACK_US`]).
    pub fn since(&self, look_back: i64) -> Option<i64> {
        self.newest.map(|n| n - look_back)
    }

    pub fn forget_old(&mut self) {
        if let Some(start) = self.since(LOOK_BACK_US) {
            self.sent.retain(|_, at| *at > start);
        }
    }
}

/// One `notificationAdded` subscription.
struct Inbox {
    rx: broadcast::Receiver<NotificationAdded>,
    db: DatabaseConnection,
    account: Uuid,
    sent: SentOnce,
    /// After falling behind: where reading back goes on (time, id), until a short page.
    catch_up: Option<(i64, Uuid)>,
    /// Entries read back, to send.
    missed: VecDeque<notify::Notification>,
}

impl Inbox {
    fn new(rx: broadcast::Receiver<NotificationAdded>, db: DatabaseConnection, account: Uuid, start: i64) -> Inbox {
        Inbox { rx, db, account, sent: SentOnce::starting_at(start), catch_up: None, missed: VecDeque::new() }
    }

    /// The next entry to send, each once; `None` once the channel closes. A subscriber that
    /// fell behind a burst (events dropped, some perhaps its own) reads its inbox back over
    /// the look-back instead.
    async fn next(&mut self) -> Option<ApiResult<Notification>> {
        loop {
            if let Some(n) = self.missed.pop_front() {
                if let Some(n) = self.unsent(n) {
                    return Some(Ok(n.into()));
                }
                continue;
            }
            if let Some(after) = self.catch_up {
                match notify::notifications_after(&self.db, self.account, after, CATCH_UP).await {
                    Ok(page) => {
                        let last = page.last().map(|n| (n.created_at_us, n.id));
                        self.catch_up = last.filter(|_| page.len() as u64 == CATCH_UP);
                        self.missed.extend(page);
                    }
                    Err(e) => return Some(Err(e.into())),
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(e) if e.account_id == self.account && !self.sent.contains(&e.notification_id) => {
                    // `None` from `unsent` must not end the stream: the loop goes on.
                    match notify::get_notification(&self.db, self.account, e.notification_id).await {
                        Ok(n) => {
                            if let Some(n) = self.unsent(n) {
                                return Some(Ok(n.into()));
                            }
                        }
                        Err(e) => return Some(Err(e.into())),
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.catch_up = self.sent.since(LOOK_BACK_US).map(|start| (start, Uuid::max()));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// `n`, unless it was sent already; remembered as sent.
    fn unsent(&mut self, n: notify::Notification) -> Option<notify::Notification> {
        let first = self.sent.first_time(n.id, n.created_at_us);
        self.sent.forget_old();
        first.then_some(n)
    }
}
