//! Family links: a parent reaches a child only through a verified link.
//!
//! The parent names the child (school UAI, names, birth date). If a pupil matches and one of
//! its legal guardians (level 1 or 2) has an e-mail on the school record, a 6-digit code is
//! sent there; entering it links the account to the pupil. The answer is the same whether or
//! not anything matched (no way to probe who attends which school), codes are single use,
//! valid 10 minutes, 5 attempts (reserved by a conditional update before the code is
//! compared), and requests are throttled per account and per address (A5, Z1). Only accounts
//! with a verified e-mail address may ask.
//!
//! Per child, across every account, at most `MAX_CHALLENGES_PER_CHILD` challenges and
//! `MAX_ATTEMPTS_PER_CHILD` code attempts (`child_link_guard`): many accounts cannot share
//! out the guessing of one child's code. Past either cap no code is sent any more and a
//! confirmation answers `LINK_REVIEW_REQUIRED`: the funder's staff link the family themselves
//! (`decide_family_link`) and clear the counters (`clear_child_link_guard`).

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};
use serde::Serialize;
use uuid::Uuid;

use super::guard::admit_mail_request;
use super::link_guard::{MAX_CHALLENGES_PER_CHILD, count_child_challenge, reserve_child_attempt};
use super::throttle::{Slot, Throttle, reserve};
use crate::db::{begin_write, now_us, now_us_sql, stmt};
use crate::error::{Error, Result};
use crate::identity::{ChallengePolicy, CodeError, CodeHash, check_attempt, new_code};
use crate::mail::Message;

/// What the parent gets back: always a challenge, whatever matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkChallenge {
    pub id: Uuid,
    pub expires_at_us: i64,
}

/// Upper-case, no accents, no punctuation: matching only, the records keep their spelling.
pub fn normalize_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let base = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
            'ç' | 'Ç' => 'C',
            'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'E',
            'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
            'ñ' | 'Ñ' => 'N',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
            'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
            'ý' | 'ÿ' | 'Ý' => 'Y',
            'œ' | 'Œ' => {
                out.push_str("OE");
                continue;
            }
            'æ' | 'Æ' => {
                out.push_str("AE");
                continue;
            }
            c if c.is_alphanumeric() => c.to_ascii_uppercase(),
            _ => continue,
        };
        out.push(base);
    }
    out
}

/// Starts a link: finds the pupil and a legal guardian's e-mail on the school record, and
/// queues the code's mail to that address with the challenge (one transaction). The answer
/// is the same whether or not anything matched; no inline SMTP tells them apart either.
pub async fn request_child_link(
    db: &DatabaseConnection,
    account_id: Uuid,
    ip: &str,
    uai: &str,
    family_name: &str,
    given_name: &str,
    birth_date: NaiveDate,
) -> Result<LinkChallenge> {
    let backend = db.get_database_backend();
    let sql = "SELECT email_verified_at_us FROM account WHERE id = $1";
    let verified = Verified::find_by_statement(stmt(backend, sql, [account_id.into()])).one(db).await?;
    if verified.is_none_or(|v| v.email_verified_at_us.is_none()) {
        return Err(Error::EmailNotVerified);
    }
    // Every request counts: ten requests an hour is plenty for a family, not for a prober.
    if let Slot::Full { retry_after_secs } =
        reserve(db, &format!("link:acct:{account_id}"), Throttle::LINK_REQUEST, 0).await?
    {
        return Err(Error::Throttled { retry_after_secs });
    }
    admit_mail_request(db, "link", Throttle::MAIL_IP, ip, None).await?;
    let sql = "SELECT p.id, p.source_key, p.funder_id, p.family_name, p.usage_name, p.given_name FROM pupil p \
               WHERE p.uai = $1 AND p.birth_date = $2 AND p.left_at IS NULL";
    let values = [uai.trim().to_ascii_uppercase().into(), birth_date.into()];
    let rows = Candidate::find_by_statement(stmt(backend, sql, values)).all(db).await?;
    let (fam, giv) = (normalize_name(family_name), normalize_name(given_name));
    let matched = rows.into_iter().find(|c| {
        (normalize_name(&c.family_name) == fam || c.usage_name.as_deref().is_some_and(|u| normalize_name(u) == fam))
            && normalize_name(&c.given_name) == giv
    });
    let mut send = None;
    let mut pupil_id = Uuid::nil();
    if let Some(Candidate { id, source_key, funder_id: funder, given_name: given, .. }) = matched {
        let sql = "SELECT g.email FROM guardianship gs JOIN guardian g ON g.funder_id = gs.funder_id AND g.source_key = gs.guardian_key \
                   WHERE gs.funder_id = $1 AND gs.pupil_key = $2 AND gs.legal_level IN (1, 2) AND g.email IS NOT NULL \
                   AND g.left_at IS NULL ORDER BY gs.legal_level, g.source_key";
        let contacts =
            Contact::find_by_statement(stmt(backend, sql, [funder.into(), source_key.into()])).all(db).await?;
        if let Some(c) = contacts.into_iter().next() {
            pupil_id = id;
            // Past the child's cap the challenge looks the same, but no code exists for it.
            if count_child_challenge(db, id).await? <= MAX_CHALLENGES_PER_CHILD {
                send = Some((c.email, new_code(), given));
            }
        }
    }
    let challenge_id = Uuid::new_v4();
    // With no match, the challenge exists but no code can ever satisfy it.
    let code = send.as_ref().map_or_else(|| Uuid::new_v4().to_string(), |(_, code, _)| code.clone());
    let hash = CodeHash::of(challenge_id, &code);
    let ttl = ChallengePolicy::DEFAULT.ttl.num_microseconds().unwrap_or(600_000_000);
    let now = now_us_sql(backend);
    let sql = format!(
        "INSERT INTO link_challenge (id, account_id, pupil_id, code_hash, channel, destination, attempts, created_at_us, expires_at_us) \
         VALUES ($1, $2, $3, $4, 'email', $5, 0, {now}, {now} + $6) RETURNING expires_at_us"
    );
    let destination = send.as_ref().map(|(to, _, _)| mask_email(to)).unwrap_or_default();
    let values: [Value; 6] =
        [challenge_id.into(), account_id.into(), pupil_id.into(), hash.to_hex().into(), destination.into(), ttl.into()];
    // The code's mail is queued with the challenge: both or neither.
    let txn = begin_write(db).await?;
    let row =
        Expiry::find_by_statement(stmt(backend, &sql, values)).one(&txn).await?.ok_or(Error::NotFound("challenge"))?;
    if let Some((to, code, child_given_name)) = send {
        crate::mail::queue(&txn, None, &Message::LinkCode { to, child_given_name, code }).await?;
    }
    txn.commit().await?;
    Ok(LinkChallenge { id: challenge_id, expires_at_us: row.expires_at_us })
}

/// A pupil born that day at that school, whose names may match.
#[derive(FromQueryResult)]
struct Candidate {
    id: Uuid,
    source_key: String,
    funder_id: Uuid,
    family_name: String,
    usage_name: Option<String>,
    given_name: String,
}

/// A legal guardian's address on the school record.
#[derive(FromQueryResult)]
struct Contact {
    email: String,
}

#[derive(FromQueryResult)]
struct Expiry {
    expires_at_us: i64,
}

/// A challenge whose attempt [`confirm_child_link`] reserved (`attempts` counts it).
#[derive(FromQueryResult)]
struct Reserved {
    pupil_id: Uuid,
    code_hash: String,
    attempts: i32,
    created_at_us: i64,
}

#[derive(FromQueryResult)]
struct Consumed {
    consumed_at_us: Option<i64>,
}

#[derive(FromQueryResult)]
struct Verified {
    email_verified_at_us: Option<i64>,
}

#[derive(FromQueryResult)]
struct LinkedPupil {
    pupil_id: Uuid,
}

fn mask_email(e: &str) -> String {
    match e.split_once('@') {
        Some((l, d)) => format!("{}…@{d}", l.chars().next().unwrap_or('*')),
        None => "…".into(),
    }
}

/// Confirms a link with the code received. Each call spends one of the challenge's 5
/// attempts (and one of the child's), reserved before the code is compared, so parallel
/// guesses cannot exceed them; after 5, or after 10 minutes, the challenge is dead. Success
/// links the account to the pupil once.
pub async fn confirm_child_link(
    db: &DatabaseConnection,
    account_id: Uuid,
    challenge_id: Uuid,
    code: &str,
) -> Result<Uuid> {
    let backend = db.get_database_backend();
    let max = ChallengePolicy::DEFAULT.max_attempts as i32;
    let sql = "UPDATE link_challenge SET attempts = attempts + 1 WHERE id = $1 AND account_id = $2 \
               AND consumed_at_us IS NULL AND attempts < $3 RETURNING pupil_id, code_hash, attempts, created_at_us";
    let values = [challenge_id.into(), account_id.into(), max.into()];
    let Some(Reserved { pupil_id: pupil, code_hash, attempts, created_at_us: created }) =
        Reserved::find_by_statement(stmt(backend, sql, values)).one(db).await?
    else {
        return Err(unreserved(db, account_id, challenge_id).await?);
    };
    let stored = CodeHash::from_hex(&code_hash).ok_or(Error::NotFound("challenge"))?;
    let now = now_us(db).await?;
    let to_time = |us: i64| DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default();
    if to_time(now).signed_duration_since(to_time(created)) >= ChallengePolicy::DEFAULT.ttl {
        return Err(Error::bad_input("code", "the code has expired: ask for a new one"));
    }
    if !pupil.is_nil() && !reserve_child_attempt(db, pupil).await? {
        return Err(Error::LinkReviewRequired);
    }
    // The attempt being made is already counted: the policy sees the ones before it.
    let before = (attempts - 1).max(0) as u32;
    let verdict = check_attempt(
        &ChallengePolicy::DEFAULT,
        to_time(now),
        to_time(created),
        before,
        challenge_id,
        code.trim(),
        &stored,
    );
    match verdict {
        Ok(()) if !pupil.is_nil() => {
            let txn = begin_write(db).await?;
            let sql = format!(
                "UPDATE link_challenge SET consumed_at_us = {} WHERE id = $1 AND consumed_at_us IS NULL",
                now_us_sql(backend)
            );
            if txn.execute_raw(stmt(backend, &sql, [challenge_id.into()])).await?.rows_affected() == 0 {
                return Err(Error::Conflict("this code was already used".into()));
            }
            let existing =
                "SELECT id FROM family_link WHERE account_id = $1 AND pupil_id = $2 AND revoked_at_us IS NULL";
            if txn.query_one_raw(stmt(backend, existing, [account_id.into(), pupil.into()])).await?.is_none() {
                let sql = format!(
                    "INSERT INTO family_link (id, account_id, pupil_id, via, author, created_at_us) VALUES ($1, $2, $3, 'code', 'parent', {})",
                    now_us_sql(backend)
                );
                txn.execute_raw(stmt(backend, &sql, [Uuid::now_v7().into(), account_id.into(), pupil.into()])).await?;
            }
            txn.commit().await?;
            Ok(pupil)
        }
        Ok(()) | Err(CodeError::Wrong) => Err(Error::bad_input("code", "wrong code")),
        Err(CodeError::Expired) => Err(Error::bad_input("code", "the code has expired: ask for a new one")),
        Err(CodeError::TooManyAttempts) => Err(Error::RateLimited),
    }
}

/// Why no attempt could be reserved on a challenge.
async fn unreserved(db: &DatabaseConnection, account_id: Uuid, challenge_id: Uuid) -> Result<Error> {
    let sql = "SELECT consumed_at_us FROM link_challenge WHERE id = $1 AND account_id = $2";
    let row =
        Consumed::find_by_statement(stmt(db.get_database_backend(), sql, [challenge_id.into(), account_id.into()]))
            .one(db)
            .await?;
    Ok(match row {
        None => Error::NotFound("challenge"),
        Some(Consumed { consumed_at_us: Some(_) }) => Error::Conflict("this code was already used".into()),
        Some(_) => Error::RateLimited,
    })
}

/// Pupils an account is linked to (live links only): the only children a parent can reach.
pub async fn linked_pupils<C: ConnectionTrait>(db: &C, account_id: Uuid) -> Result<Vec<Uuid>> {
    let sql = "SELECT pupil_id FROM family_link WHERE account_id = $1 AND revoked_at_us IS NULL ORDER BY created_at_us";
    let rows =
        LinkedPupil::find_by_statement(stmt(db.get_database_backend(), sql, [account_id.into()])).all(db).await?;
    Ok(rows.into_iter().map(|r| r.pupil_id).collect())
}

#[derive(FromQueryResult)]
struct LinkedFunder {
    funder_id: Uuid,
}

/// The funders of a parent's linked children (whose partners the parent may pay).
pub async fn linked_funders<C: ConnectionTrait>(db: &C, account_id: Uuid) -> Result<Vec<Uuid>> {
    let sql = "SELECT DISTINCT p.funder_id FROM family_link l JOIN pupil p ON p.id = l.pupil_id \
               WHERE l.account_id = $1 AND l.revoked_at_us IS NULL";
    let rows =
        LinkedFunder::find_by_statement(stmt(db.get_database_backend(), sql, [account_id.into()])).all(db).await?;
    Ok(rows.into_iter().map(|r| r.funder_id).collect())
}
