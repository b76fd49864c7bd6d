//! Secrets the server must read back (staff TOTP seeds) are stored sealed with an AEAD
//! (ChaCha20-Poly1305, from `ring`) under one data key, so a copy of the database (a backup, a
//! read-only SQL injection) yields no second factor.
//!
//! A sealed value reads `enc1:<base64url(nonce ‖ ciphertext ‖ tag)>`. The nonce is 96 random
//! bits per sealing: a few thousand staff secrets stay far below the collision bound. The
//! associated data names the row the value belongs to (e.g. `totp:<account id>`), so a sealed
//! secret copied onto another row does not open.
//!
//! The key is 32 random bytes, given as standard base64 (`openssl rand -base64 32`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The prefix of a sealed value; base32 TOTP seeds (A–Z, 2–7) never contain `:`.
pub const SEALED_PREFIX: &str = "enc1:";

const KEY_LEN: usize = 32;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataKeyError {
    #[error("the data key must be 32 bytes in standard base64")]
    BadKey,
    #[error("not a sealed value")]
    NotSealed,
    /// Wrong key, wrong row, or a modified value.
    #[error("the sealed value does not open with this key")]
    Unopenable,
}

/// The key sealing secrets at rest. Its `Debug` shows nothing of it.
pub struct DataKey {
    key: LessSafeKey,
    /// For [`DataKey::to_base64`] (writing a generated development key once).
    raw: [u8; KEY_LEN],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    fn from_bytes(raw: [u8; KEY_LEN]) -> DataKey {
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &raw).expect("32-byte ChaCha20-Poly1305 key"));
        DataKey { key, raw }
    }

    /// A fresh random key (development, tests).
    pub fn generate() -> DataKey {
        DataKey::from_bytes(rand::random())
    }

    /// Reads a key in standard base64 (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<DataKey, DataKeyError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| DataKeyError::BadKey)?;
        let raw: [u8; KEY_LEN] = bytes.try_into().map_err(|_| DataKeyError::BadKey)?;
        Ok(DataKey::from_bytes(raw))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.raw)
    }

    /// Seals `plaintext` for the row named by `aad`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad.as_bytes()), &mut buffer)
            .expect("sealing a short secret");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for the row named by `aad`.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>, DataKeyError> {
        let body = sealed.strip_prefix(SEALED_PREFIX).ok_or(DataKeyError::NotSealed)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| DataKeyError::Unopenable)?;
        if bytes.len() < NONCE_LEN {
            return Err(DataKeyError::Unopenable);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DataKeyError::Unopenable)?;
        let mut buffer = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buffer)
            .map_err(|_| DataKeyError::Unopenable)?;
        Ok(plain.to_vec())
    }

    /// Whether a stored value is sealed (else it is a value from before sealing).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_row() {
        let key = DataKey::generate();
        let sealed = key.seal("totp:a", b"JBSWY3DPEHPK3PXP");
        assert!(DataKey::is_sealed(&sealed));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(key.open("totp:a", &sealed).unwrap(), b"JBSWY3DPEHPK3PXP");
        assert_eq!(key.open("totp:b", &sealed), Err(DataKeyError::Unopenable), "another row");
        assert_eq!(DataKey::generate().open("totp:a", &sealed), Err(DataKeyError::Unopenable), "another key");
        let mut tampered = sealed.clone();
        tampered.replace_range(10..11, if &sealed[10..11] == "A" { "B" } else { "A" });
        assert_eq!(key.open("totp:a", &tampered), Err(DataKeyError::Unopenable));
        assert_eq!(key.open("totp:a", "JBSWY3DPEHPK3PXP"), Err(DataKeyError::NotSealed));
        assert_ne!(key.seal("totp:a", b"x"), key.seal("totp:a", b"x"), "a fresh nonce each time");
    }

    #[test]
    fn keys_round_trip_through_base64_and_refuse_other_lengths() {
        let key = DataKey::generate();
        let again = DataKey::from_base64(&format!(" {}\n", key.to_base64())).unwrap();
        assert_eq!(again.open("r", &key.seal("r", b"s")).unwrap(), b"s");
        assert_eq!(DataKey::from_base64("c2hvcnQ=").unwrap_err(), DataKeyError::BadKey);
        assert_eq!(DataKey::from_base64("not base64!").unwrap_err(), DataKeyError::BadKey);
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }
}
