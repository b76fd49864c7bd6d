//! What a *full snapshot* says by omission: who left, and which links no longer hold.
//!
//! A full snapshot is the whole roster of its scope, so what it does not list is gone:
//! - **pupils** of the scope it did not stage are marked left ([`mark_pupil_leavers`]);
//! - **links**: the pupils it covers have exactly the links it states. AAF states each pupil's
//!   list in the record (`LinkMode::Replace`); SIECLE and CSV state links as separate records,
//!   so [`scope_links`] marks which staged pupils' lists replace the stored ones;
//! - **guardians** of the scope it neither staged nor named in a link are marked left
//!   ([`mark_guardian_leavers`]), and their links end with the link merge (`links`).
//!
//! Nothing is deleted but links: people keep their rows (money history, a return next year).
//!
//! **Scopes.** AAF: the académie's whole roster, so every `aaf:` person of the funder. SIECLE
//! and CSV: a file covers one collège (or a few), and says nothing about the others. Pupils:
//! the UAIs of the pupils read. Links and guardians: the schools whose links this import
//! states — those of its pupils named by at least one link record — so that a SIECLE pupils
//! file sent without its guardians file ends nobody's links. A guardian is in scope when one
//! of their stored links is to a pupil of those schools and none to a present pupil elsewhere
//! (a guardian whose other child is in another collège has not left).
//!
//! **Guards.** Like a snapshot without pupils marks no pupil, one without guardian records
//! marks no guardian (an AAF set sent without its `PersRelEleve` files is not "everybody
//! left"). A guardian named by a pupil's link in this import is not a leaver either: the
//! pupil's record is what gives parental authority, and it still states it.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::rows::prefix;
use super::sql::{BATCH, exec, params};
use super::stage::Ctx;
use super::types::RosterFormat;

/// Marks `left_at` on the pupils of the snapshot's scope that this import did not stage
/// (never deletes: money history must survive). `uais`: the UAIs of the SIECLE/CSV pupils read.
pub(super) async fn mark_pupil_leavers<C: ConnectionTrait>(
    db: &C,
    ctx: &Ctx,
    uais: &HashSet<String>,
) -> Result<u64, DbErr> {
    let head = "UPDATE pupil SET left_at = $1, updated_at_us = $2, last_import_id = $3 \
                WHERE funder_id = $4 AND source_key LIKE $5 AND left_at IS NULL \
                AND NOT EXISTS (SELECT 1 FROM imp_pupil t WHERE t.source_key = pupil.source_key)";
    let fixed: Vec<Value> = vec![
        ctx.today.into(),
        ctx.now_us.into(),
        ctx.import_id.into(),
        ctx.funder_id.into(),
        format!("{}%", prefix(ctx.format)).into(),
    ];
    if ctx.format == RosterFormat::Aaf {
        return exec(db, head, fixed).await;
    }
    let mut uais: Vec<&String> = uais.iter().collect();
    uais.sort_unstable();
    let mut n = 0;
    for chunk in uais.chunks(BATCH) {
        let sql = format!("{head} AND uai IN ({})", params(fixed.len() + 1, chunk.len()));
        let mut values = fixed.clone();
        values.extend(chunk.iter().map(|u| Value::from((*u).clone())));
        n += exec(db, &sql, values).await?;
    }
    Ok(n)
}

/// SIECLE/CSV: the staged pupils (refused ones aside) of the schools whose links this import
/// states get `links_replace`, so that the link merge ends the links they no longer list.
pub(super) async fn scope_links<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let sql = "UPDATE imp_pupil SET links_replace = true WHERE NOT refused AND uai IN \
               (SELECT t.uai FROM imp_pupil t WHERE t.source_key IN (SELECT pupil_key FROM imp_link_p))";
    exec(db, sql, vec![]).await?;
    Ok(())
}

/// The guardians of the scope (see the module doc) that this import neither staged nor named
/// in a link are put in `imp_gone` and marked left; returns how many.
/// Run after [`scope_links`] and `links::prune`, before the link merge.
pub(super) async fn mark_guardian_leavers<C: ConnectionTrait>(db: &C, ctx: &Ctx) -> Result<u64, DbErr> {
    // Joins rather than `NOT EXISTS`: the named guardians are a derived table, which both
    // engines hash or index once instead of scanning it per guardian.
    let mut sql = "INSERT INTO imp_gone (source_key) SELECT g.source_key FROM guardian g \
                   LEFT JOIN imp_guardian t ON t.source_key = g.source_key \
                   LEFT JOIN (SELECT DISTINCT guardian_key FROM imp_link_p) n ON n.guardian_key = g.source_key \
                   WHERE g.funder_id = $1 AND g.source_key LIKE $2 AND g.left_at IS NULL \
                   AND t.source_key IS NULL AND n.guardian_key IS NULL"
        .to_owned();
    if ctx.format != RosterFormat::Aaf {
        let linked = "SELECT 1 FROM guardianship x JOIN pupil p ON p.funder_id = x.funder_id \
                      AND p.source_key = x.pupil_key WHERE x.funder_id = $1 AND x.guardian_key = g.source_key";
        let schools = "(SELECT uai FROM imp_pupil WHERE links_replace AND uai IS NOT NULL)";
        sql.push_str(&format!(
            " AND EXISTS ({linked} AND p.uai IN {schools}) \
             AND NOT EXISTS ({linked} AND p.left_at IS NULL AND (p.uai IS NULL OR p.uai NOT IN {schools}))"
        ));
    }
    exec(db, &sql, vec![ctx.funder_id.into(), format!("{}%", prefix(ctx.format)).into()]).await?;
    let mark = "UPDATE guardian SET left_at = $1, updated_at_us = $2, last_import_id = $3 \
                WHERE funder_id = $4 AND source_key IN (SELECT source_key FROM imp_gone)";
    let values = vec![ctx.today.into(), ctx.now_us.into(), ctx.import_id.into(), ctx.funder_id.into()];
    exec(db, mark, values).await
}
