//! Rate limits kept in the database (shared by every server process): GCRA, the generic cell
//! rate algorithm, a sliding window with continuous decay.
//!
//! Each key stores its *theoretical arrival time* `tat_us`. A [`Throttle`] allows `free`
//! attempts at once, refilled evenly over `max_block_secs` (one every `max_block_secs / free`
//! seconds, the emission interval `T`); with the tolerance `τ = (free - 1)·T`, an attempt at
//! `now` conforms when `tat - τ ≤ now` and moves `tat` to `max(tat, now) + T`. The row also
//! keeps `allow_at_us = tat - τ`, the first moment the next attempt conforms, so a check is one
//! comparison. Nothing needs resetting: an idle key decays back to a full allowance by itself.
//!
//! Attempts are *reserved* before the work they pay for (one conditional upsert, atomic on
//! both databases), so parallel attempts cannot slip through between a check and a record.
//! Callers choose what a key does when it is full (security.md A3, docs/security-auth.md):
//! hard refusal only for the narrowest key (an account from one address), a bounded wait for
//! the wide ones (a whole account, a whole address), so nobody can lock a parent out.

use std::net::IpAddr;

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};

use crate::db::{now_us, now_us_sql, stmt};

/// `free` attempts at once, refilled evenly over `max_block_secs`.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub free: i32,
    pub max_block_secs: i64,
}

impl Throttle {
    /// One account from one address: 5 at once, then one every 3 minutes (hard).
    pub const LOGIN_PAIR: Throttle = Throttle { free: 5, max_block_secs: 900 };
    /// One account from everywhere: 20 at once, then one a minute (waits, never refuses).
    pub const LOGIN_ACCOUNT: Throttle = Throttle { free: 20, max_block_secs: 1200 };
    /// One address, every account: 30 at once, then 30 a minute (waits, refuses floods).
    pub const LOGIN_IP: Throttle = Throttle { free: 30, max_block_secs: 60 };
    /// Child-link requests per account: 10 an hour. (Codes are limited in the challenge row
    /// and per child, `links.rs`: no key of their own.)
    pub const LINK_REQUEST: Throttle = Throttle { free: 10, max_block_secs: 3600 };
    /// Password-reset and child-link requests from one address: 10 an hour.
    pub const MAIL_IP: Throttle = Throttle { free: 10, max_block_secs: 3600 };
    /// Sign-ups from one address: 20 an hour (a parents' evening on a school's Wi-Fi).
    pub const SIGN_UP_IP: Throttle = Throttle { free: 20, max_block_secs: 3600 };
    /// Mails to one target address (whether or not it has an account): 3 an hour.
    pub const MAIL_TO: Throttle = Throttle { free: 3, max_block_secs: 3600 };

    /// The emission interval `T`, µs.
    fn interval_us(self) -> i64 {
        self.max_block_secs.max(1) * 1_000_000 / i64::from(self.free.max(1))
    }

    /// The tolerance `τ`, µs.
    fn tolerance_us(self) -> i64 {
        self.interval_us() * i64::from(self.free.max(1) - 1)
    }
}

/// The longest a wide key makes an attempt wait before it is refused (or, for an account key,
/// goes on anyway): short enough for a person, long enough to slow a script down.
pub const MAX_WAIT_US: i64 = 3_000_000;

/// What a reservation gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Reserved: go on after waiting this long (µs, 0 when within the free attempts).
    Go { wait_us: i64 },
    /// Nothing reserved: the key conforms again in this many seconds (at least 1).
    Full { retry_after_secs: u64 },
}

#[derive(FromQueryResult)]
struct AllowAt {
    allow_at_us: i64,
}

/// Reserves one attempt on `key`, if it conforms within `max_wait_us` (0: only right now).
pub async fn reserve<C: ConnectionTrait>(db: &C, key: &str, t: Throttle, max_wait_us: i64) -> Result<Slot, DbErr> {
    let backend = db.get_database_backend();
    let now = now_us(db).await?;
    let (interval, tolerance) = (t.interval_us(), t.tolerance_us());
    // $2 now, $3 T, $4 τ, $5 the wait accepted. The WHERE keeps a full key untouched.
    let sql = "INSERT INTO throttle (key, tat_us, allow_at_us) VALUES ($1, $2 + $3, $2 + $3 - $4) \
               ON CONFLICT (key) DO UPDATE SET \
               tat_us = (CASE WHEN throttle.tat_us > $2 THEN throttle.tat_us ELSE $2 END) + $3, \
               allow_at_us = (CASE WHEN throttle.tat_us > $2 THEN throttle.tat_us ELSE $2 END) + $3 - $4 \
               WHERE throttle.allow_at_us <= $2 + $5 RETURNING allow_at_us";
    let values: [Value; 5] = [key.into(), now.into(), interval.into(), tolerance.into(), max_wait_us.max(0).into()];
    if let Some(row) = AllowAt::find_by_statement(stmt(backend, sql, values)).one(db).await? {
        // The attempt is served at the previous allow_at: the new one less one interval.
        return Ok(Slot::Go { wait_us: (row.allow_at_us - interval - now).max(0) });
    }
    let sql = "SELECT allow_at_us FROM throttle WHERE key = $1";
    let allow_at =
        AllowAt::find_by_statement(stmt(backend, sql, [key.into()])).one(db).await?.map_or(now, |r| r.allow_at_us);
    let secs = ((allow_at - max_wait_us.max(0) - now).max(0) as u64).div_ceil(1_000_000).max(1);
    Ok(Slot::Full { retry_after_secs: secs })
}

/// Gives one attempt back (a success on a wide key: shared addresses are not penalised for
/// the sign-ins that worked).
pub async fn refund<C: ConnectionTrait>(db: &C, key: &str, t: Throttle) -> Result<(), DbErr> {
    let sql = "UPDATE throttle SET tat_us = tat_us - $2, allow_at_us = allow_at_us - $3 WHERE key = $1";
    let values: [Value; 3] = [key.into(), t.interval_us().into(), t.interval_us().into()];
    db.execute_raw(stmt(db.get_database_backend(), sql, values)).await.map(|_| ())
}

/// True when `key` has no attempt left right now.
pub async fn throttle_check<C: ConnectionTrait>(db: &C, key: &str) -> Result<bool, DbErr> {
    let sql = format!(
        "SELECT allow_at_us > {} AS blocked FROM throttle WHERE key = $1",
        now_us_sql(db.get_database_backend())
    );
    let row = Blocked::find_by_statement(stmt(db.get_database_backend(), &sql, [key.into()])).one(db).await?;
    Ok(row.is_some_and(|r| r.blocked))
}

#[derive(FromQueryResult)]
struct Blocked {
    blocked: bool,
}

/// Counts an attempt after the fact (after a [`throttle_check`]); a full key is not pushed
/// further, so it decays on time whatever is tried meanwhile.
pub async fn throttle_fail<C: ConnectionTrait>(db: &C, key: &str, t: Throttle) -> Result<(), DbErr> {
    reserve(db, key, t, 0).await.map(|_| ())
}

/// Forgets `key` (after a success on a narrow key).
pub async fn throttle_reset<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    db.execute_raw(stmt(db.get_database_backend(), "DELETE FROM throttle WHERE key = $1", [key.into()]))
        .await
        .map(|_| ())
}

/// Drops the keys that have decayed back to a full allowance: they hold nothing.
pub async fn throttle_purge<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let sql = format!("DELETE FROM throttle WHERE tat_us < {}", now_us_sql(db.get_database_backend()));
    Ok(db.execute_raw(stmt(db.get_database_backend(), &sql, [])).await?.rows_affected())
}

/// The throttling key of a client address: IPv4 as is, IPv6 by its /64 (one customer's
/// network: an attacker has billions of addresses in it), IPv4-mapped IPv6 as IPv4.
/// Anything that does not parse is used as given.
pub fn ip_bucket(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(|a| a.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(v4) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_keyed_on_its_64_and_mapped_ipv4_on_the_address() {
        assert_eq!(ip_bucket("2001:db8:1:2:aaaa::1"), ip_bucket("2001:db8:1:2:ffff::9"));
        assert_ne!(ip_bucket("2001:db8:1:2::1"), ip_bucket("2001:db8:1:3::1"));
        assert_eq!(ip_bucket("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(ip_bucket("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn a_throttle_refills_evenly_over_its_window() {
        let t = Throttle::LOGIN_PAIR;
        assert_eq!(t.interval_us(), 180_000_000);
        assert_eq!(t.tolerance_us(), 4 * 180_000_000);
    }
}
