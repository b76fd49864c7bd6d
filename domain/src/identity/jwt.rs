//! Access tokens (A8): compact JWS signed with Ed25519 (`EdDSA`), written by hand.
//!
//! Writing the few lines of JWS ourselves keeps the algorithm allow-list explicit: the header must
//! be `{"alg":"EdDSA","typ":"JWT","kid":"…"}` with nothing else in it, and any other header
//! (`alg: none`, HS256 — the "sign with the public key" confusion —, RS256, a missing `alg`,
//! `jku`/`jwk`/`crit`…) is refused *before* any signature work (A8, API2:2023). Then come the
//! Ed25519 signature (`verify_strict`: no malleable signatures, no weak keys), `exp` and `nbf`
//! with at most 30 s of clock leeway, exact `iss` and `aud`, and a 4 KiB size cap.
//!
//! Tokens are short-lived ([`DEFAULT_ACCESS_TTL_SECS`], A8 proposes 10–15 min) and carry identity
//! only: roles and links are re-read from the database on each request (Z4).
//!
//! Key rotation: [`AccessTokenKeys`] signs with one key and verifies with a list of public keys
//! identified by `kid`, the RFC 7638 thumbprint of the key; keep the previous public key in the
//! list until every token it signed has expired.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

mod checked;

/// The only accepted `alg`.
pub const ALG: &str = "EdDSA";
/// The only accepted `typ`.
pub const TYP: &str = "JWT";
/// Tokens longer than this are refused unread (ours are ~400 bytes).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock leeway for `exp`, `nbf` and `iat`, in seconds.
pub const CLOCK_LEEWAY_SECS: i64 = 30;
/// Suggested access-token lifetime (A8 proposes 10–15 minutes).
pub const DEFAULT_ACCESS_TTL_SECS: i64 = 15 * 60;

/// Who the token was issued to. The claim value is the snake_case name (serde and strum agree).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TokenKind {
    Parent,
    PartnerMember,
    PartnerClient,
    Staff,
}

/// The claims of an access token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Account id.
    pub sub: Uuid,
    /// Session (device) id, so revoking a session can be checked per request (A10).
    pub sid: Uuid,
    pub kind: TokenKind,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Unique token id (for audit logs and deny-lists).
    pub jti: Uuid,
}

impl Claims {
    /// Claims valid from `now_unix` for `ttl_secs`, with a fresh random `jti`.
    pub fn new(
        iss: impl Into<String>,
        aud: impl Into<String>,
        sub: Uuid,
        sid: Uuid,
        kind: TokenKind,
        now_unix: i64,
        ttl_secs: i64,
    ) -> Self {
        Self {
            iss: iss.into(),
            aud: aud.into(),
            sub,
            sid,
            kind,
            iat: now_unix,
            nbf: now_unix,
            exp: now_unix.saturating_add(ttl_secs),
            jti: Uuid::new_v4(),
        }
    }

    /// The JSON payload, built without any fallible serialiser.
    fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("iss".into(), Value::String(self.iss.clone()));
        map.insert("aud".into(), Value::String(self.aud.clone()));
        map.insert("sub".into(), Value::String(self.sub.to_string()));
        map.insert("sid".into(), Value::String(self.sid.to_string()));
        map.insert("kind".into(), Value::String(self.kind.to_string()));
        map.insert("iat".into(), Value::from(self.iat));
        map.insert("nbf".into(), Value::from(self.nbf));
        map.insert("exp".into(), Value::from(self.exp));
        map.insert("jti".into(), Value::String(self.jti.to_string()));
        Value::Object(map).to_string()
    }
}

/// Why a token (or a key) was refused. Log the code; tell clients only "unauthenticated"
/// (or "expired", so the app knows to refresh) — the detail helps attackers more than users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued by another issuer")]
    WrongIssuer,
    #[error("token meant for another audience")]
    WrongAudience,
    #[error("invalid signing key material")]
    InvalidKey,
}

impl JwtError {
    /// The stable, machine-readable code (for logs and metrics).
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::TooLarge => "JWT_TOO_LARGE",
            JwtError::Malformed => "JWT_MALFORMED",
            JwtError::UnsupportedAlgorithm => "JWT_UNSUPPORTED_ALGORITHM",
            JwtError::UnknownKey => "JWT_UNKNOWN_KEY",
            JwtError::BadSignature => "JWT_BAD_SIGNATURE",
            JwtError::Expired => "JWT_EXPIRED",
            JwtError::NotYetValid => "JWT_NOT_YET_VALID",
            JwtError::WrongIssuer => "JWT_WRONG_ISSUER",
            JwtError::WrongAudience => "JWT_WRONG_AUDIENCE",
            JwtError::InvalidKey => "JWT_INVALID_KEY",
        }
    }
}

/// The JOSE header as received. Unknown or duplicate members make parsing fail.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
}

/// The RFC 7638 JWK thumbprint of an Ed25519 public key (RFC 8037 §2), used as its `kid`.
pub fn key_id(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
}

/// The signing key and the public keys accepted for verification.
pub struct AccessTokenKeys {
    signing: SigningKey,
    kid: String,
    verifying: Vec<(String, VerifyingKey)>,
    /// Tokens whose signature one of `verifying` checked (never cleared by adding a key: a key
    /// is only ever added).
    checked: checked::Checked,
}

impl fmt::Debug for AccessTokenKeys {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.verifying.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("AccessTokenKeys").field("kid", &self.kid).field("verifying", &kids).finish_non_exhaustive()
    }
}

impl AccessTokenKeys {
    /// Sign with `signing`; verify with its public key only.
    pub fn from_signing_key(signing: SigningKey) -> Self {
        let public = signing.verifying_key();
        let kid = key_id(&public);
        Self { signing, verifying: vec![(kid.clone(), public)], kid, checked: checked::Checked::default() }
    }

    /// A new random key (32 bytes from `rand::rng()`, a CSPRNG). For development and tests; in
    /// production load the key with [`AccessTokenKeys::from_pkcs8_pem`].
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        Self::from_signing_key(SigningKey::from_bytes(&seed))
    }

    /// Load an Ed25519 private key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as written by
    /// [`AccessTokenKeys::to_pkcs8_pem`] or `openssl genpkey -algorithm ed25519`.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, JwtError> {
        SigningKey::from_pkcs8_pem(pem).map(Self::from_signing_key).map_err(|_| JwtError::InvalidKey)
    }

    /// The private key as PKCS#8 PEM (e.g. to write a dev key file); zeroed when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, JwtError> {
        self.signing.to_pkcs8_pem(LineEnding::LF).map_err(|_| JwtError::InvalidKey)
    }

    /// The current public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> Result<String, JwtError> {
        self.signing.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|_| JwtError::InvalidKey)
    }

    /// Also accept tokens signed by `key` (a previous key during rotation). Returns its `kid`.
    pub fn add_verifying_key(&mut self, key: VerifyingKey) -> String {
        let kid = key_id(&key);
        if !self.verifying.iter().any(|(known, _)| *known == kid) {
            self.verifying.push((kid.clone(), key));
        }
        kid
    }

    /// [`AccessTokenKeys::add_verifying_key`] from an SPKI PEM public key.
    pub fn add_verifying_key_pem(&mut self, pem: &str) -> Result<String, JwtError> {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(|_| JwtError::InvalidKey)?;
        Ok(self.add_verifying_key(key))
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half of the signing key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Sign `claims` into a compact JWS.
    pub fn issue(&self, claims: &Claims) -> String {
        let header = format!(r#"{{"alg":"{ALG}","typ":"{TYP}","kid":{}}}"#, Value::String(self.kid.clone()));
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_json()));
        let signature = self.signing.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Check a token and return its claims. Never panics, whatever `token` holds.
    ///
    /// Order: size, shape (exactly three segments), header allow-list and `kid`, signature, then
    /// the claims (`iss`, `aud`, `exp`, `nbf`, `iat`). A token whose signature was checked
    /// before skips the first four ([`checked`]); its claims are checked every time.
    pub fn verify(
        &self,
        token: &str,
        now_unix: i64,
        expected_iss: &str,
        expected_aud: &str,
    ) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge);
        }
        let digest = checked::Checked::digest(token);
        let claims = match self.checked.get(&digest) {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature(token)?;
                self.checked.remember(digest, &claims);
                claims
            }
        };
        if claims.iss != expected_iss {
            return Err(JwtError::WrongIssuer);
        }
        if claims.aud != expected_aud {
            return Err(JwtError::WrongAudience);
        }
        if now_unix >= claims.exp.saturating_add(CLOCK_LEEWAY_SECS) {
            return Err(JwtError::Expired);
        }
        let now_with_leeway = now_unix.saturating_add(CLOCK_LEEWAY_SECS);
        if now_with_leeway < claims.nbf || now_with_leeway < claims.iat {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }

    /// The claims of a token of ours, whose shape, header and signature hold.
    fn verify_signature(&self, token: &str) -> Result<Claims, JwtError> {
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(JwtError::Malformed);
        };

        let header: Header = serde_json::from_slice(&decode(header_b64)?).map_err(|_| JwtError::Malformed)?;
        if header.alg.as_deref() != Some(ALG) {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        if header.typ.as_deref() != Some(TYP) {
            return Err(JwtError::Malformed);
        }
        let kid = header.kid.ok_or(JwtError::Malformed)?;
        let key = self.verifying.iter().find(|(known, _)| *known == kid).map(|(_, key)| key);
        let key = key.ok_or(JwtError::UnknownKey)?;

        let signature = Signature::from_slice(&decode(signature_b64)?).map_err(|_| JwtError::Malformed)?;
        let signing_input = token.get(..header_b64.len() + 1 + payload_b64.len()).ok_or(JwtError::Malformed)?;
        key.verify_strict(signing_input.as_bytes(), &signature).map_err(|_| JwtError::BadSignature)?;

        serde_json::from_slice(&decode(payload_b64)?).map_err(|_| JwtError::Malformed)
    }
}

/// Strict base64url without padding (non-canonical trailing bits are refused by the engine).
fn decode(segment: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;
    use strum::VariantArray as _;

    const ISS: &str = "https://passerelle.test";
    const AUD: &str = "passerelle-app";
    const NOW: i64 = 1_750_000_000;

    fn claims() -> Claims {
        Claims::new(ISS, AUD, Uuid::new_v4(), Uuid::new_v4(), TokenKind::Parent, NOW, DEFAULT_ACCESS_TTL_SECS)
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with any header and payload, carrying a genuine Ed25519 signature by `keys`.
    fn ed25519_token(keys: &AccessTokenKeys, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        format!("{input}.{}", b64(keys.signing.sign(input.as_bytes()).to_bytes()))
    }

    fn our_header(keys: &AccessTokenKeys) -> String {
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, keys.kid())
    }

    #[test]
    fn round_trip_and_exact_header() {
        let keys = AccessTokenKeys::generate();
        let c = claims();
        let token = keys.issue(&c);
        assert_eq!(keys.verify(&token, NOW, ISS, AUD), Ok(c.clone()));
        let header = decode(token.split('.').next().unwrap()).unwrap();
        assert_eq!(String::from_utf8(header).unwrap(), our_header(&keys));
        assert!(token.len() < 600, "{}", token.len());
        // The hand-built payload agrees with the derived serialisation.
        assert_eq!(serde_json::from_str::<Value>(&c.to_json()).unwrap(), serde_json::to_value(&c).unwrap());
        // The claim values tokens already in circulation carry.
        let names: Vec<&str> = TokenKind::VARIANTS.iter().map(|k| <&'static str>::from(*k)).collect();
        assert_eq!(names, ["parent", "partner_member", "partner_client", "staff"]);
        for &kind in TokenKind::VARIANTS {
            assert_eq!(serde_json::to_value(kind).unwrap(), Value::String(kind.to_string()));
            assert_eq!(kind.to_string().parse::<TokenKind>(), Ok(kind));
            let c = Claims { kind, ..claims() };
            assert_eq!(keys.verify(&keys.issue(&c), NOW, ISS, AUD), Ok(c));
        }
    }

    /// The second use of a token skips its signature, never its claims; a token changed by
    /// one byte is checked in full.
    #[test]
    fn a_token_seen_before_is_still_checked_for_times_issuer_and_audience() {
        let keys = AccessTokenKeys::generate();
        let c = claims();
        let token = keys.issue(&c);
        assert_eq!(keys.verify(&token, NOW, ISS, AUD), Ok(c.clone()));
        assert_eq!(keys.verify(&token, NOW, ISS, AUD), Ok(c.clone()));
        assert_eq!(keys.verify(&token, NOW + DEFAULT_ACCESS_TTL_SECS + 31, ISS, AUD), Err(JwtError::Expired));
        assert_eq!(keys.verify(&token, NOW - 3600, ISS, AUD), Err(JwtError::NotYetValid));
        assert_eq!(keys.verify(&token, NOW, "https://other", AUD), Err(JwtError::WrongIssuer));
        assert_eq!(keys.verify(&token, NOW, ISS, "other-app"), Err(JwtError::WrongAudience));
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(keys.verify(&forged, NOW, ISS, AUD), Err(JwtError::BadSignature));
        // What one key set remembers, another (here without the signing key) does not.
        let other = AccessTokenKeys::generate();
        assert_eq!(other.verify(&token, NOW, ISS, AUD), Err(JwtError::UnknownKey));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let keys = AccessTokenKeys::generate();
        let payload = claims().to_json();
        let none = format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, keys.kid());
        let unsigned = format!("{}.{}.", b64(&none), b64(&payload));
        assert_eq!(keys.verify(&unsigned, NOW, ISS, AUD), Err(JwtError::UnsupportedAlgorithm));
        let kid = keys.kid();
        for header in [
            none.clone(),
            format!(r#"{{"alg":"None","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"Ed25519","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"eddsa","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":null,"typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"typ":"JWT","kid":"{kid}"}}"#),
        ] {
            // Even a genuine Ed25519 signature does not rescue a wrong header.
            let token = ed25519_token(&keys, &header, &payload);
            assert_eq!(keys.verify(&token, NOW, ISS, AUD), Err(JwtError::UnsupportedAlgorithm), "{header}");
        }
        assert_eq!(JwtError::UnsupportedAlgorithm.code(), "JWT_UNSUPPORTED_ALGORITHM");
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        let keys = AccessTokenKeys::generate();
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, keys.kid());
        let input = format!("{}.{}", b64(&header), b64(claims().to_json()));
        let pem = keys.public_key_pem().unwrap();
        for secret in [keys.verifying_key().as_bytes().as_slice(), pem.as_bytes()] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!("{input}.{}", b64(mac.finalize().into_bytes()));
            assert_eq!(keys.verify(&token, NOW, ISS, AUD), Err(JwtError::UnsupportedAlgorithm));
        }
    }

    #[test]
    fn other_header_shapes_are_refused() {
        let keys = AccessTokenKeys::generate();
        let payload = claims().to_json();
        let kid = keys.kid();
        for (header, expected) in [
            (format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","jku":"https://evil"}}"#), JwtError::Malformed),
            (format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","crit":["b64"]}}"#), JwtError::Malformed),
            (format!(r#"{{"alg":"EdDSA","alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#), JwtError::Malformed),
            (format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#), JwtError::Malformed),
            (format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#), JwtError::Malformed),
            (r#"{"alg":"EdDSA","typ":"JWT"}"#.to_owned(), JwtError::Malformed),
            (r#"{"alg":"EdDSA","typ":"JWT","kid":"someone-else"}"#.to_owned(), JwtError::UnknownKey),
            (r#"["EdDSA"]"#.to_owned(), JwtError::Malformed),
            ("not json".to_owned(), JwtError::Malformed),
        ] {
            let token = ed25519_token(&keys, &header, &payload);
            assert_eq!(keys.verify(&token, NOW, ISS, AUD), Err(expected), "{header}");
        }
    }

    #[test]
    fn signature_by_another_key_is_refused() {
        let keys = AccessTokenKeys::generate();
        let attacker = AccessTokenKeys::generate();
        let forged = ed25519_token(&attacker, &our_header(&keys), &claims().to_json());
        assert_eq!(keys.verify(&forged, NOW, ISS, AUD), Err(JwtError::BadSignature));
        assert_eq!(keys.verify(&attacker.issue(&claims()), NOW, ISS, AUD), Err(JwtError::UnknownKey));
    }

    #[test]
    fn tampered_token_is_refused() {
        let keys = AccessTokenKeys::generate();
        let original = claims();
        let token = keys.issue(&original);
        let parts: Vec<&str> = token.split('.').collect();
        let staff = Claims { kind: TokenKind::Staff, sub: Uuid::new_v4(), ..original };
        let tampered = format!("{}.{}.{}", parts[0], b64(staff.to_json()), parts[2]);
        assert_eq!(keys.verify(&tampered, NOW, ISS, AUD), Err(JwtError::BadSignature));
        let mut signature = decode(parts[2]).unwrap();
        signature[10] ^= 1;
        let tampered = format!("{}.{}.{}", parts[0], parts[1], b64(signature));
        assert_eq!(keys.verify(&tampered, NOW, ISS, AUD), Err(JwtError::BadSignature));
    }

    #[test]
    fn time_window_allows_thirty_seconds_of_leeway() {
        let keys = AccessTokenKeys::generate();
        let c = claims();
        let token = keys.issue(&c);
        assert!(keys.verify(&token, c.exp + 29, ISS, AUD).is_ok());
        assert_eq!(keys.verify(&token, c.exp + 30, ISS, AUD), Err(JwtError::Expired));
        assert_eq!(keys.verify(&token, i64::MAX, ISS, AUD), Err(JwtError::Expired));
        assert!(keys.verify(&token, NOW - 30, ISS, AUD).is_ok());
        assert_eq!(keys.verify(&token, NOW - 31, ISS, AUD), Err(JwtError::NotYetValid));
        let future = Claims { nbf: NOW + 120, ..claims() };
        assert_eq!(keys.verify(&keys.issue(&future), NOW, ISS, AUD), Err(JwtError::NotYetValid));
        let issued_later = Claims { iat: NOW + 120, ..claims() };
        assert_eq!(keys.verify(&keys.issue(&issued_later), NOW, ISS, AUD), Err(JwtError::NotYetValid));
    }

    #[test]
    fn issuer_and_audience_must_match_exactly() {
        let keys = AccessTokenKeys::generate();
        let token = keys.issue(&claims());
        assert_eq!(keys.verify(&token, NOW, "https://other.test", AUD), Err(JwtError::WrongIssuer));
        assert_eq!(keys.verify(&token, NOW, ISS, "passerelle-staff"), Err(JwtError::WrongAudience));
        assert_eq!(keys.verify(&token, NOW, ISS, "passerelle-app "), Err(JwtError::WrongAudience));
        assert_eq!(JwtError::WrongAudience.code(), "JWT_WRONG_AUDIENCE");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let keys = AccessTokenKeys::generate();
        let token = keys.issue(&claims());
        let (head, last) = token.split_at(token.len() - 1);
        // The signature's last character carries 4 unused bits: flipping one is non-canonical.
        let non_canonical = format!("{head}{}", if last == "A" { "B" } else { "A" });
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            "a.b".into(),
            "!!!.@@@.###".into(),
            format!("{token}."),
            format!("{token}.e30"),
            format!("{token} "),
            format!("{token}="),
            format!(" {token}"),
            token.replacen('.', "..", 1),
            non_canonical,
        ] {
            let result = keys.verify(&bad, NOW, ISS, AUD);
            assert!(matches!(result, Err(JwtError::Malformed | JwtError::BadSignature)), "{bad:?}: {result:?}");
        }
        let huge = format!("{token}{}", "A".repeat(MAX_TOKEN_BYTES));
        assert_eq!(keys.verify(&huge, NOW, ISS, AUD), Err(JwtError::TooLarge));
    }

    #[test]
    fn pem_round_trip_and_rotation() {
        let old = AccessTokenKeys::generate();
        let pem = old.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let reloaded = AccessTokenKeys::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(reloaded.kid(), old.kid());
        let old_token = old.issue(&claims());
        assert!(reloaded.verify(&old_token, NOW, ISS, AUD).is_ok());
        assert_eq!(AccessTokenKeys::from_pkcs8_pem("garbage").unwrap_err(), JwtError::InvalidKey);
        let mut new = AccessTokenKeys::generate();
        assert_eq!(new.verify(&old_token, NOW, ISS, AUD), Err(JwtError::UnknownKey));
        assert_eq!(new.add_verifying_key_pem(&old.public_key_pem().unwrap()).unwrap(), old.kid());
        assert!(new.verify(&old_token, NOW, ISS, AUD).is_ok());
        assert_eq!(old.verify(&new.issue(&claims()), NOW, ISS, AUD), Err(JwtError::UnknownKey));
        assert_eq!(new.add_verifying_key_pem(&pem).unwrap_err(), JwtError::InvalidKey);
        let debug = format!("{new:?}");
        assert!(debug.contains(old.kid()) && !debug.contains(&pem[30..60]), "{debug}");
    }

    /// RFC 8037 Appendix A: the Ed25519 key, its thumbprint and the example JWS.
    #[test]
    fn rfc8037_vectors() {
        let seed: [u8; 32] = decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap().try_into().unwrap();
        let keys = AccessTokenKeys::from_signing_key(SigningKey::from_bytes(&seed));
        assert_eq!(b64(keys.verifying_key().as_bytes()), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(keys.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let rfc_jws = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-\
                       09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        assert_eq!(ed25519_token(&keys, r#"{"alg":"EdDSA"}"#, "Example of Ed25519 signing"), rfc_jws);
        // A valid RFC signature, but without our `typ` and `kid`: refused all the same.
        assert_eq!(keys.verify(rfc_jws, NOW, ISS, AUD), Err(JwtError::Malformed));
    }

    proptest! {
        #[test]
        fn random_strings_never_panic(s in any::<String>(), t in "[A-Za-z0-9_=.-]{0,400}") {
            let keys = AccessTokenKeys::generate();
            prop_assert!(keys.verify(&s, NOW, ISS, AUD).is_err());
            prop_assert!(keys.verify(&t, NOW, ISS, AUD).is_err());
        }

        #[test]
        fn any_issuer_and_audience_round_trip(iss in any::<String>(), aud in "\\PC{0,40}", ttl in 1i64..100_000) {
            let keys = AccessTokenKeys::generate();
            let c = Claims::new(iss.clone(), aud.clone(), Uuid::new_v4(), Uuid::new_v4(), TokenKind::Staff, NOW, ttl);
            let token = keys.issue(&c);
            prop_assume!(token.len() <= MAX_TOKEN_BYTES);
            prop_assert_eq!(keys.verify(&token, NOW, &iss, &aud), Ok(c));
        }
    }
}
