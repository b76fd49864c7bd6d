//! The audit trail of decisions people take for others: a staff member linking or unlinking a
//! child, a partner owner handing out or withdrawing API credentials. Each row says who, what,
//! on whom, why and when (database clock), and is written in the same transaction as the change
//! itself: there is no change without its row, and no row for a change that did not happen.

use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use uuid::Uuid;

use crate::db::{now_us_sql, stmt};
use crate::error::{Error, Result};

/// Longest reason kept (a few sentences; the case file lives elsewhere).
pub const MAX_REASON_CHARS: usize = 500;

/// Who takes a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `None` only for the development back office and the command line.
    pub account_id: Option<Uuid>,
    /// The e-mail of the account, or "back-office" / "cli": readable without a join, and
    /// still meaningful if the account is later renamed.
    pub label: String,
}

impl Actor {
    pub fn account(id: Uuid, email: &str) -> Actor {
        Actor { account_id: Some(id), label: email.to_owned() }
    }

    /// A tool acting without an account (development back office, CLI, tests).
    pub fn tool(label: &str) -> Actor {
        Actor { account_id: None, label: label.to_owned() }
    }
}

/// One audited decision.
pub(crate) struct AuditEvent<'a> {
    pub action: &'static str,
    pub actor: &'a Actor,
    pub funder_id: Option<Uuid>,
    pub partner_id: Option<Uuid>,
    pub subject_account_id: Option<Uuid>,
    pub object_id: Option<Uuid>,
    pub reason: Option<&'a str>,
}

/// Writes the row (inside the caller's transaction); returns its time in µs.
pub(crate) async fn record<C: ConnectionTrait>(db: &C, e: &AuditEvent<'_>) -> Result<i64> {
    let backend = db.get_database_backend();
    let sql = format!(
        "INSERT INTO audit_event (id, action, actor_account_id, actor, funder_id, partner_id, subject_account_id, \
         object_id, reason, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {}) RETURNING created_at_us",
        now_us_sql(backend)
    );
    let values: [Value; 9] = [
        Uuid::now_v7().into(),
        e.action.into(),
        e.actor.account_id.into(),
        e.actor.label.clone().into(),
        e.funder_id.into(),
        e.partner_id.into(),
        e.subject_account_id.into(),
        e.object_id.into(),
        e.reason.map(str::to_owned).into(),
    ];
    let row = Recorded::find_by_statement(stmt(backend, &sql, values)).one(db).await?;
    Ok(row.ok_or(Error::NotFound("audit event"))?.created_at_us)
}

#[derive(FromQueryResult)]
struct Recorded {
    created_at_us: i64,
}

/// A reason as staff must give it: trimmed, 1 to [`MAX_REASON_CHARS`] characters, no control
/// characters but line breaks (it is shown to other staff and exported).
pub fn check_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    let bad_char = r.chars().any(|c| c.is_control() && c != '\n');
    if r.is_empty() || r.chars().count() > MAX_REASON_CHARS || bad_char {
        return Err(Error::bad_input("reason", format!("1 to {MAX_REASON_CHARS} characters, no control characters")));
    }
    Ok(r.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_bounded_and_printable() {
        assert_eq!(check_reason("  décision du juge \n").unwrap(), "décision du juge");
        assert!(check_reason("ligne 1\nligne 2").is_ok());
        for bad in ["", "   ", "a\u{0}b", "tab\there", &"é".repeat(MAX_REASON_CHARS + 1)] {
            assert!(matches!(check_reason(bad), Err(Error::BadInput { .. })), "{bad:?}");
        }
        assert!(check_reason(&"é".repeat(MAX_REASON_CHARS)).is_ok());
    }
}
