//! How often each door may be tried (docs/security-auth.md, security.md A3, A4, 8):
//!
//! * credentials (sign-in, re-authentication, partner client secrets): three keys, reserved
//!   *before* the password is checked, so parallel attempts cannot outrun the count:
//!   - the pair (account, address) is the only hard limit: `RATE_LIMITED` with a retry delay;
//!   - the address alone (every account): past its allowance an attempt waits up to
//!     [`MAX_WAIT_US`], and a flood beyond that is refused — for that address only;
//!   - the account alone (every address): an attempt waits up to [`MAX_WAIT_US`], never more
//!     and never refused, so nobody can lock a parent out by guessing on their behalf;
//! * requests that send mail (sign-up, password reset, child link) count per address and per
//!   target address, whether or not the target exists (same answer either way, A4);
//! * Argon2 (19 MiB, tens of ms of CPU) runs at most [`argon2_permits`] at once.

use std::sync::OnceLock;

use sea_orm::ConnectionTrait;
use tokio::sync::Semaphore;

use super::throttle::{MAX_WAIT_US, Slot, Throttle, ip_bucket, refund, reserve, throttle_reset};
use crate::error::{Error, Result};

/// The keys one credential attempt is counted on.
pub(super) struct CredentialKeys {
    /// The narrow key: hard limit.
    pair: String,
    /// The address, when known.
    ip: Option<String>,
    /// The account (or client id), from everywhere.
    account: String,
}

impl CredentialKeys {
    /// `scope` names the door (`login`, `oauth`); `subject` the account or client id.
    pub(super) fn new(scope: &str, subject: &str, ip: &str) -> CredentialKeys {
        let ip = ip_bucket(ip);
        CredentialKeys {
            pair: format!("{scope}:pair:{subject}|{ip}"),
            ip: Some(format!("{scope}:ip:{ip}")),
            account: format!("{scope}:acct:{subject}"),
        }
    }

    /// Re-authentication on a session: the session is the narrow key (a stolen session gets
    /// no more guesses than a stranger), the account shares the sign-in's wide key.
    pub(super) fn reauth(session: uuid::Uuid, email: &str) -> CredentialKeys {
        CredentialKeys { pair: format!("reauth:session:{session}"), ip: None, account: format!("login:acct:{email}") }
    }
}

/// Reserves one credential attempt; returns once it may go on (after a wait, if any).
pub(super) async fn admit_credentials<C: ConnectionTrait>(db: &C, keys: &CredentialKeys) -> Result<()> {
    if let Slot::Full { retry_after_secs } = reserve(db, &keys.pair, Throttle::LOGIN_PAIR, 0).await? {
        return Err(Error::Throttled { retry_after_secs });
    }
    let mut wait_us = 0;
    if let Some(ip) = &keys.ip {
        match reserve(db, ip, Throttle::LOGIN_IP, MAX_WAIT_US).await? {
            Slot::Go { wait_us: w } => wait_us = w,
            Slot::Full { retry_after_secs } => return Err(Error::Throttled { retry_after_secs }),
        }
    }
    wait_us = wait_us.max(match reserve(db, &keys.account, Throttle::LOGIN_ACCOUNT, MAX_WAIT_US).await? {
        Slot::Go { wait_us } => wait_us,
        Slot::Full { .. } => MAX_WAIT_US,
    });
    if wait_us > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(wait_us.unsigned_abs())).await;
    }
    Ok(())
}

/// After a success: the pair starts afresh, and the address gets its attempt back (many
/// people sign in from one school or one carrier-grade NAT).
pub(super) async fn credentials_ok<C: ConnectionTrait>(db: &C, keys: &CredentialKeys) -> Result<()> {
    throttle_reset(db, &keys.pair).await?;
    if let Some(ip) = &keys.ip {
        refund(db, ip, Throttle::LOGIN_IP).await?;
    }
    Ok(())
}

/// Counts a request that may send mail: per address (`scope:ip:…`, `per_ip`) and per target
/// address (`mail:to:…`, shared by every kind of mail), refusing with a retry delay when
/// either is used up. `to` is `None` when no address could be read from the input.
pub(super) async fn admit_mail_request<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    per_ip: Throttle,
    ip: &str,
    to: Option<&str>,
) -> Result<()> {
    let ip_key = format!("{scope}:ip:{}", ip_bucket(ip));
    if let Slot::Full { retry_after_secs } = reserve(db, &ip_key, per_ip, 0).await? {
        return Err(Error::Throttled { retry_after_secs });
    }
    if let Some(to) = to
        && let Slot::Full { retry_after_secs } = reserve(db, &format!("mail:to:{to}"), Throttle::MAIL_TO, 0).await?
    {
        return Err(Error::Throttled { retry_after_secs });
    }
    Ok(())
}

/// Concurrent Argon2 computations: one per CPU. Each takes 19 MiB and tens of milliseconds;
/// unbounded, a burst of sign-ins would exhaust memory and the blocking pool.
pub fn argon2_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The semaphore every password hash and verification waits on.
pub(super) fn argon2_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(argon2_permits()))
}
