//! Password policy (A2) and password storage (A1, A4).
//!
//! Policy, following ASVS 6.2 and the French doctrine cited in A2:
//! * length in Unicode scalar values: at least 12 for parents and partner members and at least 16
//!   for staff (ANSSI: 12 for users, 16 for admins), at most 128 so that long passphrases fit
//!   (ASVS wants ≥ 64 allowed);
//! * no composition rules and no forced rotation (ASVS 6.2.5, 6.2.10);
//! * refused when it is one of ~20,000 common passwords (ASVS 6.2.4), compared case-insensitively;
//! * refused when it contains the user's e-mail local part or name (see [`check_password`]).
//!
//! The password is used exactly as typed: no trimming, no truncation, every character allowed
//! (ASVS 6.2.9). It is not Unicode-normalised here (no normaliser in our dependencies), so the
//! app should send NFC text.
//!
//! Storage is Argon2id with m = 19456 KiB, t = 2, p = 1 in a PHC string (A1), with
//! [`needs_rehash`] to upgrade hashes at the next successful login when parameters change, and
//! [`dummy_verify`] so that an unknown e-mail costs the same time as a wrong password (A4).

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2id memory cost in KiB (A1: 19 MiB).
pub const ARGON2_M_COST_KIB: u32 = 19_456;
/// Argon2id iterations (A1).
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes (A1).
pub const ARGON2_P_COST: u32 = 1;
/// Hash output length in bytes (the argon2 crate's default).
const ARGON2_OUTPUT_LEN: usize = 32;
/// Longest password accepted, in Unicode scalar values.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest password in bytes that can have passed [`check_password`] (4 bytes per scalar).
const MAX_PASSWORD_BYTES: usize = MAX_PASSWORD_CHARS * 4;
/// Name and e-mail fragments shorter than this are ignored by the personal-data check, or a user
/// called "Li" could hardly pick any password.
const MIN_PERSONAL_FRAGMENT_CHARS: usize = 3;

/// Stored hashes whose parameters exceed these are refused without computing anything, so a
/// corrupted or planted row cannot make one login allocate gigabytes or spin for minutes.
const MAX_STORED_M_COST_KIB: u32 = 256 * 1024;
const MAX_STORED_T_COST: u32 = 16;
const MAX_STORED_P_COST: u32 = 16;

/// The current parameters; a bad constant is a compile error, not a runtime panic.
const PARAMS: Params = match Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, Some(ARGON2_OUTPUT_LEN)) {
    Ok(params) => params,
    Err(_) => panic!("invalid Argon2 parameters"),
};

/// A well-formed PHC string with the current parameters, for [`dummy_verify`]. Its output was
/// made up, so no password matches it. The test `dummy_phc_uses_current_parameters` fails if the
/// parameters change without updating it (the dummy must cost what a real hash costs).
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZS1maXhlZC1zYWx0$sGLh0DjKyuAh16H9RAhSZ1K7g0JzfQV2rxyK2NwYbkA";

/// The minimum lengths of A2. Which one applies follows from the kind of account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPolicy {
    /// Parents and partner members: at least 12 characters.
    Standard,
    /// Département staff: at least 16 characters (staff also have MFA, A6).
    Staff,
}

impl PasswordPolicy {
    /// Minimum length in Unicode scalar values.
    pub const fn min_len(self) -> usize {
        match self {
            PasswordPolicy::Standard => 12,
            PasswordPolicy::Staff => 16,
        }
    }
}

/// Why a password was refused. Messages are safe and meant to help the user choose better.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {min} characters long; a few unrelated words make a strong one")]
    TooShort { min: usize },
    #[error("the password must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("this password is one of the most common ones and would be guessed quickly; choose another")]
    TooCommon,
    #[error("the password must not contain your e-mail address or your name")]
    ContainsPersonalData,
    /// Internal failure of the hasher; map it to an internal error, not to user input.
    #[error("the password could not be hashed")]
    Hashing,
}

impl PasswordError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PasswordError::TooShort { .. } => "PASSWORD_TOO_SHORT",
            PasswordError::TooLong { .. } => "PASSWORD_TOO_LONG",
            PasswordError::TooCommon => "PASSWORD_TOO_COMMON",
            PasswordError::ContainsPersonalData => "PASSWORD_CONTAINS_PERSONAL_DATA",
            PasswordError::Hashing => "PASSWORD_HASHING_FAILED",
        }
    }
}

/// Check a new password against the policy (A2).
///
/// `context` holds the user's e-mail address and names. The personal-data rule is deliberately
/// simple: each value is lower-cased; for an e-mail only the local part before any `+tag` is
/// kept; that value and each of its pieces split at non-alphanumeric characters (`jean.dupont` →
/// `jean`, `dupont`) is a fragment; fragments of fewer than 3 characters are ignored; the password
/// is refused when its lower-cased form contains any fragment.
pub fn check_password(policy: PasswordPolicy, password: &str, context: &[&str]) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong { max: MAX_PASSWORD_CHARS });
    }
    if chars < policy.min_len() {
        return Err(PasswordError::TooShort { min: policy.min_len() });
    }
    if is_common_password(password) {
        return Err(PasswordError::TooCommon);
    }
    let lower = password.to_lowercase();
    if personal_fragments(context).iter().any(|fragment| lower.contains(fragment.as_str())) {
        return Err(PasswordError::ContainsPersonalData);
    }
    Ok(())
}

/// Whether `password` (lower-cased, and also with surrounding whitespace trimmed) is on the
/// common-passwords list. See `COMMON-PASSWORDS-SOURCE.md` for where the list comes from.
pub fn is_common_password(password: &str) -> bool {
    let lower = password.to_lowercase();
    let list = common_passwords();
    list.contains(lower.as_str()) || list.contains(lower.trim())
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common-passwords.txt").lines().map(str::trim).filter(|line| !line.is_empty()).collect()
    })
}

fn personal_fragments(context: &[&str]) -> Vec<String> {
    let mut fragments = Vec::new();
    for value in context {
        let lower = value.trim().to_lowercase();
        let base = match lower.rsplit_once('@') {
            Some((local, _domain)) => local.split('+').next().unwrap_or(local).to_owned(),
            None => lower,
        };
        fragments.extend(base.split(|c: char| !c.is_alphanumeric()).map(str::to_owned));
        fragments.push(base);
    }
    fragments.retain(|fragment| fragment.chars().count() >= MIN_PERSONAL_FRAGMENT_CHARS);
    fragments
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

/// Hash a password for storage: Argon2id with the A1 parameters and a 128-bit random salt, as a
/// PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
///
/// Call [`check_password`] first; this hashes whatever it is given.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| PasswordError::Hashing)?;
    let hash = argon2().hash_password(password.as_bytes(), &salt).map_err(|_| PasswordError::Hashing)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string.
///
/// `false`, never a panic, for a malformed PHC string, a non-Argon2 algorithm, absurd stored
/// parameters, or a password longer than any that could have been stored. The comparison of the
/// outputs is constant-time (done by the `password-hash` crate).
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_STORED_M_COST_KIB
        || params.t_cost() > MAX_STORED_T_COST
        || params.p_cost() > MAX_STORED_P_COST
    {
        return false;
    }
    argon2().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Whether a stored hash should be replaced at the next successful login (A1): another algorithm
/// or version, other parameters, or a string that does not parse.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() || parsed.version != Some(u32::from(Version::V0x13)) {
        return true;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    params.m_cost() != ARGON2_M_COST_KIB
        || params.t_cost() != ARGON2_T_COST
        || params.p_cost() != ARGON2_P_COST
        || params.output_len() != Some(ARGON2_OUTPUT_LEN)
        || !params.keyid().is_empty()
        || !params.data().is_empty()
}

/// Spend the time of one real verification against a fixed hash, and learn nothing.
///
/// Call it when the e-mail given at login is unknown (or the account cannot log in), so that
/// response time does not reveal which e-mails have accounts (A4, ASVS 6.3.8).
pub fn dummy_verify(password: &str) {
    std::hint::black_box(verify_password(password, DUMMY_PHC));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parameters_are_the_a1_values_and_the_crate_defaults() {
        assert_eq!((PARAMS.m_cost(), PARAMS.t_cost(), PARAMS.p_cost()), (19_456, 2, 1));
        let default = Params::DEFAULT;
        assert_eq!((default.m_cost(), default.t_cost(), default.p_cost()), (19_456, 2, 1));
    }

    #[test]
    fn length_is_counted_in_characters() {
        let std = PasswordPolicy::Standard;
        assert_eq!(check_password(std, "horse battl", &[]), Err(PasswordError::TooShort { min: 12 }));
        assert_eq!(check_password(std, "horse battle", &[]), Ok(()));
        // 11 characters but 22 bytes: still too short.
        assert_eq!(check_password(std, &"é".repeat(11), &[]).unwrap_err().code(), "PASSWORD_TOO_SHORT");
        assert_eq!(check_password(std, &"é".repeat(12), &[]), Ok(()));
        assert_eq!(check_password(std, &"🦊".repeat(128), &[]), Ok(()));
        let too_long = check_password(std, &"a🦊".repeat(65), &[]).unwrap_err();
        assert_eq!(too_long, PasswordError::TooLong { max: 128 });
        assert_eq!(too_long.code(), "PASSWORD_TOO_LONG");
    }

    #[test]
    fn staff_need_sixteen() {
        let staff = PasswordPolicy::Staff;
        assert_eq!(check_password(staff, "correct horse b", &[]), Err(PasswordError::TooShort { min: 16 }));
        assert_eq!(check_password(staff, "correct horse ba", &[]), Ok(()));
        assert!(PasswordError::TooShort { min: 16 }.to_string().contains("16 characters"));
    }

    #[test]
    fn spaces_are_kept_and_no_composition_rules() {
        assert_eq!(check_password(PasswordPolicy::Standard, "            ", &[]), Ok(()));
        assert_eq!(check_password(PasswordPolicy::Standard, "alllowercase", &[]), Ok(()));
    }

    #[test]
    fn common_list_is_loaded_and_case_insensitive() {
        assert!(common_passwords().len() > 19_000);
        assert!(common_passwords().iter().all(|p| *p == p.to_lowercase()));
        assert!(is_common_password("password"));
        assert!(is_common_password("PassWord"));
        assert!(is_common_password(" azerty "));
        assert!(!is_common_password("a sentence nobody has typed before"));
        for pw in ["qwerty123456", "QWERTY123456", "1q2w3e4r5t6y", "motherfucker", "password1234"] {
            let err = check_password(PasswordPolicy::Standard, pw, &[]).unwrap_err();
            assert_eq!(err, PasswordError::TooCommon, "{pw}");
            assert_eq!(err.code(), "PASSWORD_TOO_COMMON");
        }
    }

    #[test]
    fn personal_data_is_refused() {
        let ctx = ["Marie-Claire.Dupont+pass@example.fr", "Marie-Claire", "Dupont", "Li"];
        let std = PasswordPolicy::Standard;
        for pw in ["marie-claire.dupont", "xxDUPONTxx2024", "claire aime le vélo", "MarieMarieMarie"] {
            let err = check_password(std, pw, &ctx).unwrap_err();
            assert_eq!(err, PasswordError::ContainsPersonalData, "{pw}");
            assert_eq!(err.code(), "PASSWORD_CONTAINS_PERSONAL_DATA");
        }
        // Short names, the +tag and the domain are not fragments.
        assert_eq!(check_password(std, "lilas passent", &ctx), Ok(()));
        assert_eq!(check_password(std, "example fr rocks", &ctx), Ok(()));
        assert_eq!(check_password(std, "anything goes here", &["", "  ", "@", "jo@x"]), Ok(()));
    }

    #[test]
    fn hash_verify_and_rehash() {
        let phc = hash_password("le chat dort sur le canapé").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!needs_rehash(&phc));
        assert!(verify_password("le chat dort sur le canapé", &phc));
        assert!(!verify_password("le chat dort sur le canape", &phc));
    }

    #[test]
    fn malformed_or_foreign_hashes_never_verify() {
        for phc in [
            "",
            "$",
            "plaintext",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$!!!",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$argon2id$v=19$m=4194304,t=2,p=1$c29tZS1maXhlZC1zYWx0$sGLh0DjKyuAh16H9RAhSZ1K7g0JzfQV2rxyK2NwYbkA",
            "$argon2id$v=19$m=19456,t=1000,p=1$c29tZS1maXhlZC1zYWx0$sGLh0DjKyuAh16H9RAhSZ1K7g0JzfQV2rxyK2NwYbkA",
        ] {
            assert!(!verify_password("whatever password", phc), "{phc}");
            assert!(needs_rehash(phc), "{phc}");
        }
        assert!(!verify_password(&"a".repeat(MAX_PASSWORD_BYTES + 1), DUMMY_PHC));
    }

    #[test]
    fn older_parameters_need_rehash() {
        let salt_and_hash = "c29tZS1maXhlZC1zYWx0$sGLh0DjKyuAh16H9RAhSZ1K7g0JzfQV2rxyK2NwYbkA";
        for prefix in [
            "$argon2id$v=19$m=15360,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=1,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=2$",
            "$argon2i$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=16$m=19456,t=2,p=1$",
            "$argon2id$m=19456,t=2,p=1$",
        ] {
            assert!(needs_rehash(&format!("{prefix}{salt_and_hash}")), "{prefix}");
        }
        assert!(needs_rehash("$argon2id$v=19$m=19456,t=2,p=1$c29tZS1maXhlZC1zYWx0$c2hvcnQtaGFzaA"));
    }

    #[test]
    fn dummy_phc_uses_current_parameters() {
        assert!(!needs_rehash(DUMMY_PHC));
        // Its salt must be usable, or verification would bail out early and be fast (A4).
        let parsed = PasswordHash::new(DUMMY_PHC).unwrap();
        let rehashed = argon2().hash_password(b"some password", parsed.salt.unwrap()).unwrap();
        assert_eq!(rehashed.hash.unwrap().len(), 32);
        assert_ne!(rehashed.hash, parsed.hash);
        dummy_verify("some password");
    }

    proptest! {
        #[test]
        fn policy_never_panics(pw in any::<String>(), ctx in proptest::collection::vec(any::<String>(), 0..4)) {
            let ctx: Vec<&str> = ctx.iter().map(String::as_str).collect();
            let _ = check_password(PasswordPolicy::Standard, &pw, &ctx);
            let _ = needs_rehash(&pw);
        }
    }
}
