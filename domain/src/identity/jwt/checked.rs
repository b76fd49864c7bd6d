//! Signatures already checked, so that a token used again skips the Ed25519 verification.
//!
//! A device sends the same access token with every request for its fifteen minutes; checking
//! its signature each time was the largest single cost of a redemption in our own process
//! (`spending-bench` under `perf`: about 3 % of the machine at 32 clients). What is kept is
//! the SHA-256 of a token whose signature verified, with its claims: a token that differs by
//! one byte has another digest and is checked in full. The claims' times, issuer and audience
//! are still checked on every use, and the caller still reads the session or client from the
//! database (Z4), so revocation applies to the next request as before. The tokens themselves
//! are not kept.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::Claims;

/// At most this many tokens are remembered; when full, the memory starts over (an entry costs
/// about 300 bytes; a busy node sees a few thousand live tokens).
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub(super) struct Checked {
    seen: Mutex<HashMap<[u8; 32], Claims>>,
}

impl Checked {
    pub(super) fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of a token whose signature was checked before.
    pub(super) fn get(&self, digest: &[u8; 32]) -> Option<Claims> {
        self.seen.lock().ok()?.get(digest).cloned()
    }

    pub(super) fn remember(&self, digest: [u8; 32], claims: &Claims) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= CAPACITY {
                seen.clear();
            }
            seen.insert(digest, claims.clone());
        }
    }
}
