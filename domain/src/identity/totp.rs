//! TOTP (RFC 6238) for staff MFA (A6): HMAC-SHA-1, 6 digits, 30-second steps.
//!
//! These are the parameters every authenticator app supports by default; SHA-1 is fine inside
//! HMAC here (RFC 6238 §5 relies on HMAC, not on collision resistance).
//!
//! Verification accepts the previous, current and next step (±30 s of clock drift) and refuses
//! any step at or before the last one that succeeded, so an observed code cannot be replayed
//! (A5: single use). The caller stores the step that [`TotpSecret::verify`] returns and passes
//! it back next time; attempts must also go through the login throttling of A3/G8.
//!
//! The secret is 160 bits (RFC 4226 §4 recommends that length), encoded in RFC 4648 base32
//! without padding, which is what `otpauth://` URIs and manual entry use.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Secret length in bytes (160 bits).
pub const SECRET_LEN: usize = 20;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Step length in seconds.
pub const STEP_SECS: u64 = 30;

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a TOTP secret could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the TOTP secret is not 32 characters of RFC 4648 base32")]
    InvalidSecret,
}

impl TotpError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TotpError::InvalidSecret => "TOTP_SECRET_INVALID",
        }
    }
}

/// A staff member's TOTP key. `Debug` is redacted so it cannot leak into logs (M9).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_LEN]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(…)")
    }
}

impl TotpSecret {
    /// A new random secret from `rand::rng()` (a CSPRNG).
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Wrap raw key bytes (e.g. after decrypting the stored value).
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// Read a base32 secret (either case, no padding, no spaces; exactly 20 bytes).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let bytes = base32_decode(text).ok_or(TotpError::InvalidSecret)?;
        let key: [u8; SECRET_LEN] = bytes.try_into().map_err(|_| TotpError::InvalidSecret)?;
        Ok(Self(key))
    }

    /// Upper-case base32 without padding (32 characters).
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The `otpauth://` URI for the enrolment QR code (Key Uri Format). It contains the secret:
    /// render it once for the enrolling user, never log it or put it in an API URL (A13, M9).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        let account = percent_encode(account);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            self.to_base32()
        )
    }

    /// The code for the step containing `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> String {
        format!("{:06}", self.hotp(unix_secs / STEP_SECS, 6))
    }

    /// Check `code` at time `unix_secs`, allowing one step of drift either way.
    ///
    /// Returns the step that matched, which the caller must persist as the new `last_used_step`;
    /// `None` for a wrong or malformed code, or for a step `≤ last_used_step` (replay). Each
    /// candidate is compared in constant time and all three are always computed.
    pub fn verify(&self, code: &str, unix_secs: u64, last_used_step: Option<u64>) -> Option<u64> {
        let well_formed = code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit());
        let current = unix_secs / STEP_SECS;
        let mut matched = None;
        for step in [current.checked_sub(1), Some(current), current.checked_add(1)].into_iter().flatten() {
            let expected = format!("{:06}", self.hotp(step, 6));
            let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
            let fresh = last_used_step.is_none_or(|last| step > last);
            if well_formed && equal && fresh && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }

    /// RFC 4226 HOTP with dynamic truncation, reduced to `digits` decimal digits (≤ 9).
    fn hotp(&self, counter: u64, digits: u32) -> u32 {
        let mac = hmac_sha1(&self.0, &counter.to_be_bytes());
        let offset = usize::from(mac[19] & 0x0f);
        // offset ≤ 15, so offset + 3 ≤ 18 < 20: always in bounds.
        let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
        bin % 10u32.pow(digits.min(9))
    }
}

/// HMAC-SHA-1 with a 20-byte key.
///
/// HMAC zero-pads keys shorter than the hash block (RFC 2104 §2), so the key padded to SHA-1's
/// 64-byte block gives the same MAC and uses the infallible fixed-size constructor.
fn hmac_sha1(key: &[u8; SECRET_LEN], message: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    for (slot, byte) in block.iter_mut().zip(key) {
        *slot = *byte;
    }
    let mut mac = <Hmac<Sha1> as hmac::digest::KeyInit>::new(&block.into());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in bytes {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32_ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32_ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Strict RFC 4648 base32 decoding: letters in either case and digits 2–7, no padding, no
/// whitespace, a length that encodes whole bytes, and zero trailing bits (so every byte string
/// has exactly one accepted spelling, up to case). `None` otherwise; never panics.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Five or more left-over bits means a dangling character (invalid length); non-zero
    // left-over bits means a non-canonical spelling.
    (bits < 5 && acc == 0).then_some(out)
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(*b"12345678901234567890")
    }

    /// RFC 6238 Appendix B, SHA-1 column.
    const RFC6238_SHA1: [(u64, u32); 6] = [
        (59, 94_287_082),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ];

    #[test]
    fn rfc6238_appendix_b_eight_digits() {
        let secret = rfc_secret();
        for (time, expected) in RFC6238_SHA1 {
            assert_eq!(secret.hotp(time / STEP_SECS, 8), expected, "T = {time}");
        }
    }

    #[test]
    fn rfc6238_appendix_b_six_digits() {
        let secret = rfc_secret();
        for (time, expected) in RFC6238_SHA1 {
            let code = secret.code_at(time);
            assert_eq!(code, format!("{:06}", expected % 1_000_000), "T = {time}");
            assert_eq!(secret.verify(&code, time, None), Some(time / STEP_SECS));
        }
        assert_eq!(secret.code_at(1_111_111_109), "081804");
    }

    #[test]
    fn rfc4648_base32_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(base32_decode(&encoded.to_lowercase()).unwrap(), plain.as_bytes());
        }
        assert_eq!(rfc_secret().to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn base32_decode_is_strict() {
        assert_eq!(base32_decode("MY======"), None);
        assert_eq!(base32_decode("M"), None);
        assert_eq!(base32_decode("MZX"), None);
        assert_eq!(base32_decode("MZXW6Y"), None);
        assert_eq!(base32_decode("MZ"), None, "non-zero trailing bits");
        assert_eq!(base32_decode("MZ XW6"), None);
        assert_eq!(base32_decode("MZ1W6"), None);
        assert_eq!(base32_decode("MZÉW6"), None);
    }

    #[test]
    fn secret_base32_round_trip_and_length_check() {
        let secret = TotpSecret::generate();
        assert_ne!(secret, TotpSecret::generate());
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        assert_eq!(TotpSecret::from_base32(&text), Ok(secret.clone()));
        assert_eq!(TotpSecret::from_base32(&text.to_lowercase()), Ok(secret));
        assert_eq!(TotpSecret::from_base32("MZXW6YTBOI"), Err(TotpError::InvalidSecret));
        assert_eq!(TotpSecret::from_base32("not base32!").unwrap_err().code(), "TOTP_SECRET_INVALID");
        assert_eq!(format!("{:?}", rfc_secret()), "TotpSecret(…)");
    }

    #[test]
    fn otpauth_uri_is_encoded() {
        let uri = rfc_secret().otpauth_uri("Pass Département", "agent+mfa@ex.fr");
        assert_eq!(
            uri,
            "otpauth://totp/Pass%20D%C3%A9partement:agent%2Bmfa%40ex.fr?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Pass%20D%C3%A9partement&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn one_step_of_drift_either_way() {
        let secret = rfc_secret();
        let now = 1_700_000_015;
        let step = now / STEP_SECS;
        assert_eq!(secret.verify(&secret.code_at(now - 30), now, None), Some(step - 1));
        assert_eq!(secret.verify(&secret.code_at(now + 30), now, None), Some(step + 1));
        assert_eq!(secret.verify(&secret.code_at(now - 60), now, None), None);
        assert_eq!(secret.verify(&secret.code_at(now + 60), now, None), None);
        // Near the epoch there is no previous step; nothing underflows.
        assert_eq!(secret.verify(&secret.code_at(0), 0, None), Some(0));
        assert_eq!(secret.verify(&secret.code_at(u64::MAX), u64::MAX, None), Some(u64::MAX / STEP_SECS));
    }

    #[test]
    fn replay_is_refused() {
        let secret = rfc_secret();
        let now = 1_700_000_015;
        let code = secret.code_at(now);
        let step = secret.verify(&code, now, None).unwrap();
        assert_eq!(secret.verify(&code, now, Some(step)), None);
        assert_eq!(secret.verify(&code, now + 20, Some(step)), None);
        // A code from the previous step is refused once the current one was used.
        assert_eq!(secret.verify(&secret.code_at(now - 30), now, Some(step)), None);
        // The next step is still fine.
        assert_eq!(secret.verify(&secret.code_at(now + 30), now + 30, Some(step)), Some(step + 1));
        assert_eq!(secret.verify(&code, now, Some(step - 1)), Some(step));
    }

    #[test]
    fn malformed_codes_are_refused() {
        let secret = rfc_secret();
        let now = 1_700_000_015;
        let code = secret.code_at(now);
        for bad in ["", "12345", "1234567", " 123456", "12345a", "１２３４５６"] {
            assert_eq!(secret.verify(bad, now, None), None, "{bad:?}");
        }
        assert_eq!(secret.verify(&format!("{code} "), now, None), None);
        assert_eq!(secret.verify(&format!("0{code}"), now, None), None);
    }

    proptest! {
        #[test]
        fn base32_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = base32_encode(&bytes);
            prop_assert_eq!(text.len(), (bytes.len() * 8).div_ceil(5));
            prop_assert_eq!(base32_decode(&text), Some(bytes));
        }

        #[test]
        fn base32_decode_never_panics_and_is_canonical(s in any::<String>(), b in "[A-Za-z2-7]{0,40}") {
            for text in [s, b] {
                if let Some(bytes) = base32_decode(&text) {
                    prop_assert_eq!(base32_encode(&bytes), text.to_uppercase());
                }
            }
        }

        #[test]
        fn verify_never_panics(code in any::<String>(), t in any::<u64>(), last in any::<Option<u64>>()) {
            let _ = rfc_secret().verify(&code, t, last);
        }
    }
}
