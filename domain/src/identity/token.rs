//! Opaque bearer secrets: refresh tokens, e-mail verification / password-reset tokens and partner
//! API client secrets.
//!
//! Every secret here is 32 bytes (256 bits) from `rand::rng()`, a ChaCha12 CSPRNG seeded and
//! periodically reseeded from the operating system. That is twice the ≥ 128 bits ASVS 7.2.3 asks
//! for session tokens (A9), so nobody can guess one online or offline.
//!
//! Only a [`TokenHash`] (SHA-256) is ever stored (A9, A12): a database leak then yields nothing
//! that can be presented. A plain, unsalted hash is enough because the input is uniformly random
//! and ≥ 112 bits: there is no dictionary to try, and SHA-256 preimages are out of reach. That is
//! why these secrets do not go through Argon2 like passwords do (A1).
//!
//! Secrets travel only in request bodies or headers, never in query strings (A13), and they are
//! never logged (M9): the type of the plaintext is a bare `String` handed over once, and
//! [`TokenHash`]'s `Debug` shows only a short prefix of the digest.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in every token and secret (256 bits; ASVS 7.2.3 asks for ≥ 128).
pub const TOKEN_BYTES: usize = 32;
/// Length of a token's text: 32 bytes in base64url without padding.
pub const TOKEN_CHARS: usize = 43;
/// Prefix of partner API client secrets (A12). A fixed prefix lets secret scanners (and people)
/// recognise a leaked key, and keeps them apart from user tokens.
pub const CLIENT_SECRET_PREFIX: &str = "psk_";
/// Random bytes in a client's public id (hex-encoded, so 16 characters).
const CLIENT_ID_BYTES: usize = 8;
const CLIENT_ID_CHARS: usize = CLIENT_ID_BYTES * 2;

/// SHA-256 of an opaque secret, the only form that is stored.
///
/// Equality is constant-time (`subtle`), so comparing a presented secret's hash against a stored
/// one leaks no prefix through timing, even where a database lookup by hash is not used.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hash a presented (or freshly issued) secret.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Parse the stored form: exactly 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        hex_decode_32(hex).map(Self)
    }

    /// The stored form: 64 lowercase hex digits (what goes into the database column).
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `presented` hashes to this value (constant-time comparison of the digests).
    pub fn matches(&self, presented: &str) -> bool {
        *self == Self::of(presented)
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TokenHash {}

impl fmt::Debug for TokenHash {
    /// Only a prefix: enough to correlate in a debugger, useless to an attacker reading logs (M9).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        write!(f, "TokenHash({}…)", hex.get(..8).unwrap_or_default())
    }
}

/// A fresh refresh token (A9): the plaintext to send to the app once, and the hash to store.
///
/// Rotation, family revocation on reuse and absolute expiry are the session service's job; this
/// only makes the secret.
pub fn new_refresh_token() -> (String, TokenHash) {
    let token = random_token();
    let hash = TokenHash::of(&token);
    (token, hash)
}

/// A fresh e-mail verification or password-reset token: the plaintext goes into the e-mail once,
/// only the hash is stored, and the row is consumed on first use (single use, A5/A9).
///
/// Put it in the link's fragment (`#…`) or a deep link, and have the page or app POST it to the
/// API, so it never appears in an API query string or an access log (A13).
pub fn new_email_token() -> (String, TokenHash) {
    new_refresh_token()
}

/// Whether `s` has the shape of a token from this module (43 base64url characters).
///
/// A cheap pre-check so that garbage is refused before any database lookup.
pub fn is_well_formed_token(s: &str) -> bool {
    s.len() == TOKEN_CHARS && s.bytes().all(is_base64url_byte)
}

/// A fresh partner API client secret (A12): `(public_id, secret, hash)`.
///
/// The secret reads `psk_<public_id>_<43 random base64url chars>`. The public id (64 random bits,
/// hex) is stored in clear and used to find the client row; the hash of the *whole* secret is
/// stored beside it and compared in constant time. Show the secret once; rotating means issuing a
/// new one and deleting the old hash.
pub fn new_client_secret() -> (String, String, TokenHash) {
    let id_bytes: [u8; CLIENT_ID_BYTES] = rand::random();
    let public_id = hex_encode(&id_bytes);
    let (secret, hash) = new_client_secret_for(&public_id);
    (public_id, secret, hash)
}

/// A fresh secret for an existing client: `(secret, hash)`. Rotation keeps the client's public
/// id, so club software changes one setting, not two.
pub fn new_client_secret_for(public_id: &str) -> (String, TokenHash) {
    let secret = format!("{CLIENT_SECRET_PREFIX}{public_id}_{}", random_token());
    let hash = TokenHash::of(&secret);
    (secret, hash)
}

/// The public id inside a presented client secret, or `None` if it does not have the exact
/// shape produced by [`new_client_secret`]. Never panics, whatever the input.
pub fn client_secret_public_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(CLIENT_SECRET_PREFIX)?;
    let public_id = rest.get(..CLIENT_ID_CHARS)?;
    let random = rest.get(CLIENT_ID_CHARS..)?.strip_prefix('_')?;
    let id_ok = public_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (id_ok && is_well_formed_token(random)).then_some(public_id)
}

fn random_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn is_base64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Lowercase hex of `bytes`: the one form in which digests are stored and compared (token and
/// code hashes, ledger fingerprints, attachments, trusted documents, roster rows).
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Exactly 64 lowercase hex digits into 32 bytes; anything else is `None`.
pub(crate) fn hex_decode_32(hex: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *slot = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn refresh_token_has_256_bits_and_hash_matches() {
        let (token, hash) = new_refresh_token();
        assert_eq!(token.len(), TOKEN_CHARS);
        assert!(is_well_formed_token(&token));
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), TOKEN_BYTES);
        assert!(hash.matches(&token));
        assert!(!hash.matches(&format!("{token}x")));
        assert_eq!(hash, TokenHash::of(&token));
    }

    #[test]
    fn tokens_do_not_repeat() {
        let tokens: HashSet<String> = (0..200).map(|_| new_refresh_token().0).collect();
        assert_eq!(tokens.len(), 200);
        let (a, _) = new_email_token();
        assert!(is_well_formed_token(&a));
    }

    #[test]
    fn hash_is_sha256_hex() {
        // FIPS 180-2 test vector for "abc".
        let hash = TokenHash::of("abc");
        assert_eq!(hash.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_ne!(TokenHash::of("abd"), hash);
        assert!(format!("{hash:?}").starts_with("TokenHash(ba7816bf"));
        assert!(!format!("{hash:?}").contains("f20015ad"));
    }

    #[test]
    fn from_hex_is_strict() {
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(TokenHash::from_hex(good).is_some());
        assert!(TokenHash::from_hex(&good.to_uppercase()).is_none());
        assert!(TokenHash::from_hex(&good[..63]).is_none());
        assert!(TokenHash::from_hex(&format!("{good}0")).is_none());
        assert!(TokenHash::from_hex(&good.replace('b', "g")).is_none());
        assert!(TokenHash::from_hex("").is_none());
        // 64 bytes but multi-byte characters must not confuse the pairing.
        assert!(TokenHash::from_hex(&"é".repeat(32)).is_none());
    }

    #[test]
    fn well_formed_token_rejects_other_shapes() {
        assert!(!is_well_formed_token(""));
        assert!(!is_well_formed_token(&"a".repeat(42)));
        assert!(!is_well_formed_token(&"a".repeat(44)));
        assert!(!is_well_formed_token(&format!("{}=", "a".repeat(42))));
        assert!(!is_well_formed_token(&format!("{}+", "a".repeat(42))));
        assert!(is_well_formed_token(&format!("{}-_", "a".repeat(41))));
    }

    #[test]
    fn client_secret_round_trip() {
        let (public_id, secret, hash) = new_client_secret();
        assert_eq!(public_id.len(), CLIENT_ID_CHARS);
        assert!(secret.starts_with(CLIENT_SECRET_PREFIX));
        assert_eq!(secret.len(), CLIENT_SECRET_PREFIX.len() + CLIENT_ID_CHARS + 1 + TOKEN_CHARS);
        assert_eq!(client_secret_public_id(&secret), Some(public_id.as_str()));
        assert!(hash.matches(&secret));
        let (other_id, other_secret, _) = new_client_secret();
        assert_ne!(other_id, public_id);
        assert!(!hash.matches(&other_secret));
        let (rotated, rotated_hash) = new_client_secret_for(&public_id);
        assert_eq!(client_secret_public_id(&rotated), Some(public_id.as_str()));
        assert_ne!(rotated, secret);
        assert!(rotated_hash.matches(&rotated) && !hash.matches(&rotated));
    }

    #[test]
    fn client_secret_parse_refuses_near_misses() {
        let (_, secret, _) = new_client_secret();
        assert_eq!(client_secret_public_id(&secret[1..]), None);
        assert_eq!(client_secret_public_id(&format!("{secret}a")), None);
        assert_eq!(client_secret_public_id(&secret[..secret.len() - 1]), None);
        assert_eq!(client_secret_public_id(&secret.replacen('_', "-", 2)), None);
        assert_eq!(client_secret_public_id(&secret.to_uppercase()), None);
        assert_eq!(client_secret_public_id("psk_"), None);
        assert_eq!(client_secret_public_id("psk_ééééééééé"), None);
    }

    proptest! {
        #[test]
        fn client_secret_parse_never_panics(s in any::<String>()) {
            let _ = client_secret_public_id(&s);
            let _ = TokenHash::from_hex(&s);
            let _ = is_well_formed_token(&s);
        }

        #[test]
        fn hex_round_trip(bytes in any::<[u8; 32]>()) {
            prop_assert_eq!(hex_decode_32(&hex_encode(&bytes)), Some(bytes));
        }
    }
}
