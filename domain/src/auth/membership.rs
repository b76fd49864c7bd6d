//! Who acts for which partner: read with every request of a partner member (so removing a
//! member applies at once), hence part of authentication. `partner` manages memberships and
//! depends on this module, never the other way round.

use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

use crate::db::stmt;
use crate::error::Result;

crate::stored_enum! {
    /// What a member may do for its partner. Stored in `partner_member.role` as its snake_case name.
    pub enum PartnerRole {
        /// Everything a member does, plus the partner's API clients.
        Owner,
        Member,
    }
}

#[derive(FromQueryResult)]
struct Membership {
    partner_id: Uuid,
    role: PartnerRole,
}

/// The partner an account acts for, and its role there (read on every request: removing a
/// member applies at once, Z4).
pub async fn membership_of<C: ConnectionTrait>(db: &C, account: Uuid) -> Result<Option<(Uuid, PartnerRole)>> {
    let sql = "SELECT partner_id, role FROM partner_member WHERE account_id = $1";
    // An unknown stored role is a read error (the request fails), never "not a member".
    let row = Membership::find_by_statement(stmt(db.get_database_backend(), sql, [account.into()])).one(db).await?;
    Ok(row.map(|m| (m.partner_id, m.role)))
}
