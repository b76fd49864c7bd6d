//! Batch loading for the parent app's home query: children with their passes → wallets, last
//! transactions and open tickets. Each level asks [`HomeLoader`] for its keys; the loader
//! answers all the keys requested in the same moment with one statement, so the query costs
//! the same few statements for one child or six (a test counts them).
//!
//! No cache: the loader lives with the schema, and answers must be as fresh as the request.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use passerelle_domain::school::query::{LinkedChild, linked_children_of};
use passerelle_domain::spending::{self, Pass, PassTransaction, Ticket, TicketStatus, WalletBalance};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::ApiError;

pub struct HomeLoader {
    db: DatabaseConnection,
}

pub type Loaders = DataLoader<HomeLoader>;

/// The loaders of a schema. A batch is every key asked for by the tasks ready to run when its
/// fetch gets its turn, with no timer: the fetch is spawned at the first key and yields once
/// to the scheduler, so the asking request's other fields and the requests that reached the same
/// level by then add their keys first. One request's keys of a level are asked in the same
/// poll, so they still share one statement (a test counts them).
///
/// async-graphql's default is a 1 ms timer per batch. Under load the requests then moved in
/// convoys and the CPU idled whenever all of them waited for a timer (18 % idle in `perf`,
/// 32 parents' home screens); yielding instead gave about 20 % more home screens per second
/// (README, spending section).
pub fn loaders(db: DatabaseConnection) -> Loaders {
    let spawn = |fetch| {
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            fetch.await
        })
    };
    DataLoader::new(HomeLoader { db }, spawn).delay(std::time::Duration::ZERO)
}

/// A parent's linked children, with their collèges and passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParentChildren(pub Uuid);

/// The passes of a pupil (a child found otherwise than by `children`, which reads them along).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PupilPasses(pub Uuid);

/// The wallets of a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PassWallets(pub Uuid);

/// The newest `n` history lines of a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LatestLines(pub Uuid, pub u64);

/// The newest `n` tickets of a pass, of one status if given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LatestTickets(pub Uuid, pub Option<TicketStatus>, pub u64);

/// Groups `(group, item)` pairs by group.
fn by<G: std::hash::Hash + Eq, T>(pairs: impl IntoIterator<Item = (G, T)>) -> HashMap<G, Vec<T>> {
    let mut out: HashMap<G, Vec<T>> = HashMap::new();
    for (g, t) in pairs {
        out.entry(g).or_default().push(t);
    }
    out
}

impl Loader<ParentChildren> for HomeLoader {
    type Value = Vec<LinkedChild>;
    type Error = ApiError;

    async fn load(&self, keys: &[ParentChildren]) -> Result<HashMap<ParentChildren, Vec<LinkedChild>>, ApiError> {
        let accounts: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let children = linked_children_of(&self.db, &accounts).await?;
        Ok(by(children.into_iter().map(|(account, child)| (ParentChildren(account), child))))
    }
}

impl Loader<PupilPasses> for HomeLoader {
    type Value = Vec<Pass>;
    type Error = ApiError;

    async fn load(&self, keys: &[PupilPasses]) -> Result<HashMap<PupilPasses, Vec<Pass>>, ApiError> {
        let pupils: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let passes = spending::passes_of_pupils(&self.db, &pupils).await?;
        Ok(by(passes.into_iter().map(|p| (PupilPasses(p.pupil_id), p))))
    }
}

impl Loader<PassWallets> for HomeLoader {
    type Value = Vec<WalletBalance>;
    type Error = ApiError;

    async fn load(&self, keys: &[PassWallets]) -> Result<HashMap<PassWallets, Vec<WalletBalance>>, ApiError> {
        let passes: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let wallets = spending::wallet_balances(&self.db, &passes).await?;
        Ok(by(wallets.into_iter().map(|w| (PassWallets(w.pass_id), w))))
    }
}

impl Loader<LatestLines> for HomeLoader {
    type Value = Vec<PassTransaction>;
    type Error = ApiError;

    async fn load(&self, keys: &[LatestLines]) -> Result<HashMap<LatestLines, Vec<PassTransaction>>, ApiError> {
        let mut out = HashMap::new();
        // One statement per page size asked for (the home screen asks one).
        for (n, passes) in by(keys.iter().map(|k| (k.1, k.0))) {
            let lines = spending::latest_transactions(&self.db, &passes, n).await?;
            out.extend(by(lines.into_iter().map(|(pass, line)| (LatestLines(pass, n), line))));
        }
        Ok(out)
    }
}

impl Loader<LatestTickets> for HomeLoader {
    type Value = Vec<Ticket>;
    type Error = ApiError;

    async fn load(&self, keys: &[LatestTickets]) -> Result<HashMap<LatestTickets, Vec<Ticket>>, ApiError> {
        let mut out = HashMap::new();
        for ((status, n), passes) in by(keys.iter().map(|k| ((k.1, k.2), k.0))) {
            let tickets = spending::latest_tickets(&self.db, &passes, status, n).await?;
            out.extend(by(tickets.into_iter().map(|t| (LatestTickets(t.pass_id, status, n), t))));
        }
        Ok(out)
    }
}
