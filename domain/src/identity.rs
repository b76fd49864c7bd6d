//! Identity primitives: passwords, TOTP, opaque tokens, one-time codes and access tokens.
//!
//! Everything here is pure (no database, no clock, no HTTP): callers pass the current time and
//! the stored state, and persist what comes back. Each rule cites its row in
//! `shared/reference/security.md` (A1–A13):
//!
//! * [`password`]: policy (A2) and Argon2id storage (A1), enumeration-safe login helper (A4);
//! * [`totp`]: RFC 6238 codes for staff MFA (A6), replay-proof (A5);
//! * [`token`]: refresh, e-mail and partner API secrets, stored only as hashes (A9, A12);
//! * [`codes`]: 6-digit family-link and e-mail codes with TTL and attempt cap (A5);
//! * [`jwt`]: Ed25519-signed access tokens with an explicit algorithm allow-list (A8);
//! * [`data_key`]: the AEAD key sealing secrets the server must read back (staff TOTP seeds).
//!
//! Secrets never implement a revealing `Debug` and must never be logged (M9).

pub mod codes;
pub mod data_key;
pub mod jwt;
pub mod password;
pub mod token;
pub mod totp;

pub use codes::{ChallengePolicy, CodeError, CodeHash, check_attempt, new_code};
pub use data_key::{DataKey, DataKeyError};
pub use jwt::{AccessTokenKeys, Claims, JwtError, TokenKind, key_id};
pub use password::{
    PasswordError, PasswordPolicy, check_password, dummy_verify, hash_password, needs_rehash, verify_password,
};
pub use token::{
    TokenHash, client_secret_public_id, new_client_secret, new_client_secret_for, new_email_token, new_refresh_token,
};
pub use totp::{TotpError, TotpSecret};
