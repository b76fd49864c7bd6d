//! Six-digit one-time codes: the family-link code and the e-mail OTP (A5).
//!
//! A5 asks for ≥ 20 bits from a CSPRNG, single use, ≤ 10 min lifetime, binding to the
//! originating request, and rate limiting. This module gives the pure parts:
//!
//! * [`new_code`] draws 6 digits (≈ 19.9 bits: 10^6 values) from `rand::rng()` by rejection
//!   sampling, so every code is exactly equally likely (no modulo bias).
//! * [`CodeHash`] is what the challenge row stores instead of the code. It is salted with the
//!   challenge id, which binds a code to the request that created it (a code from challenge A
//!   never checks against challenge B) and stops one precomputed table from covering every row.
//!   **Limit:** the space is only 10^6, so anyone who reads a row can still find its code by
//!   trying them all in well under a second. The hash only keeps codes from being readable at a
//!   glance (backups, support screens); the real protection is the short TTL, the attempt cap,
//!   single use and the per-account and per-IP throttling of A3/G8 around [`check_attempt`].
//! * [`check_attempt`] decides one attempt from the stored state, with no I/O.

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::identity::token::{hex_decode_32, hex_encode};

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;
/// Number of possible codes.
const CODE_SPACE: u32 = 1_000_000;
/// Largest multiple of [`CODE_SPACE`] that fits in a `u32` draw: draws at or above it are thrown
/// away, so each residue is hit by exactly `u32::MAX / CODE_SPACE` draws (rejection sampling).
const ACCEPT_BELOW: u32 = (u32::MAX / CODE_SPACE) * CODE_SPACE;
/// Domain separation, so this hash cannot be confused with any other SHA-256 use in the system.
const HASH_DOMAIN: &[u8] = b"passerelle/one-time-code/v1\0";

/// A fresh 6-digit code, leading zeros kept (`"004217"`).
pub fn new_code() -> String {
    let mut rng = rand::rng();
    code_from_draws(|| rng.random::<u32>())
}

/// Rejection sampling over uniform `u32` draws (split out so the rejection path is testable).
fn code_from_draws(mut draw: impl FnMut() -> u32) -> String {
    loop {
        let x = draw();
        if x < ACCEPT_BELOW {
            return format!("{:06}", x % CODE_SPACE);
        }
    }
}

/// SHA-256 over (domain, challenge id, code): what the challenge row stores.
#[derive(Clone, Copy)]
pub struct CodeHash([u8; 32]);

impl CodeHash {
    /// Hash `code` for the challenge `challenge_id`.
    pub fn of(challenge_id: Uuid, code: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(HASH_DOMAIN);
        hasher.update(challenge_id.as_bytes());
        hasher.update(code.as_bytes());
        Self(hasher.finalize().into())
    }

    /// Parse the stored form (64 lowercase hex digits).
    pub fn from_hex(hex: &str) -> Option<Self> {
        hex_decode_32(hex).map(Self)
    }

    /// The stored form: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// Constant-time check of a supplied code against this hash.
    pub fn matches(&self, challenge_id: Uuid, supplied: &str) -> bool {
        self.0.ct_eq(&Self::of(challenge_id, supplied).0).into()
    }
}

impl PartialEq for CodeHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CodeHash {}

impl std::fmt::Debug for CodeHash {
    /// Redacted: with a 10^6 space, the full hash is as good as the code (M9).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHash(…)")
    }
}

/// How long a challenge lives and how many wrong codes it takes (A5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengePolicy {
    /// Lifetime from creation; A5 says ≤ 10 minutes.
    pub ttl: TimeDelta,
    /// Wrong attempts allowed before the challenge is dead. With 5 attempts on 10^6 codes a
    /// guesser wins with probability 5·10^-6 per challenge, so creating challenges must itself be
    /// rate-limited (A3).
    pub max_attempts: u32,
}

impl ChallengePolicy {
    /// 10 minutes, 5 attempts.
    pub const DEFAULT: Self = Self { ttl: TimeDelta::minutes(10), max_attempts: 5 };
}

impl Default for ChallengePolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why an attempt was refused. Codes are stable for the mobile contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("this code has expired; ask for a new one")]
    Expired,
    #[error("too many wrong codes; ask for a new one")]
    TooManyAttempts,
    #[error("this code is not valid")]
    Wrong,
}

impl CodeError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Expired => "CODE_EXPIRED",
            CodeError::TooManyAttempts => "CODE_ATTEMPTS_EXCEEDED",
            CodeError::Wrong => "CODE_INVALID",
        }
    }
}

/// Decide one attempt at a challenge, purely from its stored state.
///
/// * `attempts_so_far`: wrong attempts already recorded for this challenge.
/// * `supplied`: what the user typed; surrounding whitespace is ignored, anything other than
///   exactly 6 ASCII digits is simply wrong (and counts as an attempt).
///
/// Order matters: an expired or exhausted challenge is refused *without* comparing the code, so
/// it cannot serve as an oracle. The caller must, in the same transaction:
/// on `Err(Wrong)` increment the counter with a conditional update (`… SET attempts = attempts + 1
/// WHERE id = $1 AND attempts < $max`) so concurrent attempts (G8, alias batches) cannot overrun
/// the cap; on `Ok` delete or mark the challenge consumed (single use, A5).
pub fn check_attempt(
    policy: &ChallengePolicy,
    now: DateTime<Utc>,
    created_at: DateTime<Utc>,
    attempts_so_far: u32,
    challenge_id: Uuid,
    supplied: &str,
    stored_hash: &CodeHash,
) -> Result<(), CodeError> {
    if now.signed_duration_since(created_at) >= policy.ttl {
        return Err(CodeError::Expired);
    }
    if attempts_so_far >= policy.max_attempts {
        return Err(CodeError::TooManyAttempts);
    }
    let supplied = supplied.trim();
    let well_formed = supplied.len() == CODE_DIGITS && supplied.bytes().all(|b| b.is_ascii_digit());
    // Hash even a malformed input, so both paths cost about the same.
    let matches = stored_hash.matches(challenge_id, supplied);
    if well_formed && matches { Ok(()) } else { Err(CodeError::Wrong) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..500 {
            let code = new_code();
            assert_eq!(code.len(), CODE_DIGITS);
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
    }

    #[test]
    fn codes_cover_every_leading_digit() {
        let mut seen = [false; 10];
        for _ in 0..2_000 {
            let first = new_code().as_bytes()[0] - b'0';
            seen[usize::from(first)] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn rejection_sampling_throws_away_the_biased_tail() {
        assert_eq!(ACCEPT_BELOW, 4_294_000_000);
        let mut draws = [u32::MAX, ACCEPT_BELOW, 123].into_iter();
        assert_eq!(code_from_draws(|| draws.next().unwrap()), "000123");
        let mut draws = [ACCEPT_BELOW - 1].into_iter();
        assert_eq!(code_from_draws(|| draws.next().unwrap()), "999999");
        let mut draws = [0].into_iter();
        assert_eq!(code_from_draws(|| draws.next().unwrap()), "000000");
    }

    #[test]
    fn hash_is_bound_to_the_challenge() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let hash = CodeHash::of(a, "123456");
        assert!(hash.matches(a, "123456"));
        assert!(!hash.matches(b, "123456"));
        assert!(!hash.matches(a, "123457"));
        assert_ne!(CodeHash::of(b, "123456"), hash);
        assert_eq!(CodeHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(format!("{hash:?}"), "CodeHash(…)");
    }

    #[test]
    fn default_policy_is_ten_minutes_five_attempts() {
        assert_eq!(ChallengePolicy::default().ttl, TimeDelta::seconds(600));
        assert_eq!(ChallengePolicy::default().max_attempts, 5);
    }

    #[test]
    fn attempt_outcomes() {
        let p = ChallengePolicy::DEFAULT;
        let id = Uuid::new_v4();
        let hash = CodeHash::of(id, "042042");
        let just_before = t0() + TimeDelta::seconds(599);
        assert_eq!(check_attempt(&p, t0(), t0(), 0, id, "042042", &hash), Ok(()));
        assert_eq!(check_attempt(&p, just_before, t0(), 4, id, " 042042\n", &hash), Ok(()));
        assert_eq!(check_attempt(&p, t0(), t0(), 0, id, "042043", &hash), Err(CodeError::Wrong));
        assert_eq!(check_attempt(&p, t0(), t0(), 0, id, "42042", &hash), Err(CodeError::Wrong));
        assert_eq!(check_attempt(&p, t0(), t0(), 0, id, "0420420", &hash), Err(CodeError::Wrong));
        assert_eq!(check_attempt(&p, t0(), t0(), 0, id, "", &hash), Err(CodeError::Wrong));
        assert_eq!(check_attempt(&p, t0(), t0(), 0, Uuid::new_v4(), "042042", &hash), Err(CodeError::Wrong));
    }

    #[test]
    fn expiry_is_checked_first_and_is_exclusive() {
        let p = ChallengePolicy::DEFAULT;
        let id = Uuid::new_v4();
        let hash = CodeHash::of(id, "111111");
        let at_ttl = t0() + TimeDelta::minutes(10);
        assert_eq!(check_attempt(&p, at_ttl, t0(), 0, id, "111111", &hash), Err(CodeError::Expired));
        assert_eq!(check_attempt(&p, at_ttl, t0(), 9, id, "111111", &hash), Err(CodeError::Expired));
        assert_eq!(check_attempt(&p, at_ttl, t0(), 0, id, "x", &hash).unwrap_err().code(), "CODE_EXPIRED");
    }

    #[test]
    fn exhausted_challenge_refuses_even_the_right_code() {
        let p = ChallengePolicy::DEFAULT;
        let id = Uuid::new_v4();
        let hash = CodeHash::of(id, "777777");
        let err = check_attempt(&p, t0(), t0(), 5, id, "777777", &hash).unwrap_err();
        assert_eq!(err, CodeError::TooManyAttempts);
        assert_eq!(err.code(), "CODE_ATTEMPTS_EXCEEDED");
        assert_eq!(CodeError::Wrong.code(), "CODE_INVALID");
    }

    proptest! {
        #[test]
        fn only_the_right_code_passes(code in 0u32..1_000_000, other in 0u32..1_000_000, s in any::<String>()) {
            let id = Uuid::new_v4();
            let code = format!("{code:06}");
            let hash = CodeHash::of(id, &code);
            let p = ChallengePolicy::DEFAULT;
            prop_assert_eq!(check_attempt(&p, t0(), t0(), 0, id, &code, &hash), Ok(()));
            let other = format!("{other:06}");
            prop_assert_eq!(check_attempt(&p, t0(), t0(), 0, id, &other, &hash).is_ok(), other == code);
            prop_assert_eq!(check_attempt(&p, t0(), t0(), 0, id, &s, &hash).is_ok(), s.trim() == code);
        }
    }
}
