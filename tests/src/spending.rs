//! A family with a granted pass and two approved partners (one sport, one culture), set up
//! through the domain's own use cases: for the spending races and the benchmark.

use passerelle_domain::auth::{AccountKind, create_account};
use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::db::{now_us_sql, stmt};
use passerelle_domain::ledger::Wallet;
use passerelle_domain::partner::{approve_partner, create_partner};
use passerelle_domain::spending::{self, Pass, TicketKeys};
use passerelle_domain::usecase::recompute_and_grant;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::school::{PupilSeed, funder, insert_pupils};

/// What [`family`] created.
pub struct Family {
    pub funder: Uuid,
    pub campaign: Uuid,
    pub parent: Uuid,
    pub parent_email: String,
    /// One pass per pupil asked for, in order.
    pub passes: Vec<Pass>,
    pub sport: Uuid,
    pub culture: Uuid,
    pub keys: TicketKeys,
    pub data_key: passerelle_domain::identity::DataKey,
}

/// `pupils` pupils of 6e in 092 (the first boursier when `boursier`), granted, all linked to
/// one parent; a sport club and a theatre approved by the funder.
pub async fn family(db: &DatabaseConnection, pupils: usize, boursier: bool) -> Family {
    let funder = funder(db, "92").await;
    let policy = Policy::pass_plus("92", 2026);
    let campaign = upsert_campaign(db, funder, 2026, "Pass+ 2026-2027", &policy, "test").await.expect("campaign").id;
    let keys: Vec<String> = (0..pupils).map(|i| format!("p{i}")).collect();
    let seeds: Vec<PupilSeed<'_>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| PupilSeed { key: k, grade: "6E", uai: "0921778H", boursier: boursier && i == 0 })
        .collect();
    let ids = insert_pupils(db, funder, &seeds).await;
    recompute_and_grant(db, campaign, &|_, _| {}).await.expect("grant");
    let email = format!("parent-{}@example.org", Uuid::new_v4().simple());
    let parent = create_account(db, AccountKind::Parent, &email, crate::accounts::PASSWORD, "Parent", true, &[])
        .await
        .expect("parent")
        .0
        .id;
    for pupil in &ids {
        link(db, parent, *pupil).await;
    }
    let all = spending::passes_of_pupils(db, &ids).await.expect("passes");
    let passes = ids.iter().filter_map(|id| all.iter().find(|p| p.pupil_id == *id).cloned()).collect();
    let sport = create_partner(db, "Club de judo").await.expect("club").id;
    approve_partner(db, sport, funder, &[Wallet::Sport], Some("Bagneux")).await.expect("approve club");
    let culture = create_partner(db, "Théâtre").await.expect("theatre").id;
    approve_partner(db, culture, funder, &[Wallet::Culture], Some("Bagneux")).await.expect("approve theatre");
    Family {
        funder,
        campaign,
        parent,
        parent_email: email,
        passes,
        sport,
        culture,
        keys: TicketKeys::new("http://passerelle.test"),
        data_key: passerelle_domain::identity::DataKey::generate(),
    }
}

/// Links `pupil` to `account` as staff would.
pub async fn link(db: &DatabaseConnection, account: Uuid, pupil: Uuid) {
    let backend = db.get_database_backend();
    let sql = format!(
        "INSERT INTO family_link (id, account_id, pupil_id, via, author, created_at_us) VALUES ($1, $2, $3, 'staff', 'test', {})",
        now_us_sql(backend)
    );
    db.execute_raw(stmt(backend, &sql, [Uuid::now_v7().into(), account.into(), pupil.into()])).await.expect("link");
}

impl Family {
    /// A ticket of `cents` on the sport wallet of pass `i` (bearer when `partner` is `None`).
    pub async fn ticket(
        &self,
        db: &DatabaseConnection,
        i: usize,
        cents: i64,
        partner: Option<Uuid>,
        key: &str,
    ) -> spending::Ticket {
        let input = spending::IssueTicket {
            pass_id: self.passes[i].id,
            wallet: Wallet::Sport,
            amount: passerelle_domain::Cents(cents),
            partner_id: partner,
            idempotency_key: key.into(),
        };
        spending::issue_ticket(db, &self.keys, &self.data_key, self.parent, &input).await.expect("issue ticket").0
    }

    /// The balances of pass `i`'s `wallet`.
    pub async fn balance(&self, db: &DatabaseConnection, i: usize, wallet: Wallet) -> spending::WalletBalance {
        let all = spending::wallet_balances(db, &[self.passes[i].id]).await.expect("balances");
        all.into_iter().find(|w| w.wallet == wallet).expect("wallet")
    }
}
