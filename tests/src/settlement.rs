//! Settlement fixtures: valid bank identifiers, a funder's treasury account, partners with
//! validated bank details, and the SEPA schema check (xmllint, from Debian's libxml2-utils).

use std::process::Command;

use passerelle_domain::auth::Actor;
use passerelle_domain::partner::{BankDetailsInput, set_partner_bank_details, validate_partner_bank_details};
use passerelle_domain::settlement::{TreasuryInput, set_funder_settlement};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

/// The ISO 20022 schema the files must satisfy (`shared/fixtures/sepa/`).
pub const SEPA_XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/sepa/pain.001.001.03.xsd");

/// Today in Paris: the latest cutoff a batch accepts.
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Europe::Paris).date_naive()
}

/// A SIRET that passes the Luhn check.
pub const SIRET: &str = "73282932000074";

/// The `n`-th valid French IBAN (mod-97 check digits computed here).
pub fn iban(n: u64) -> String {
    let bban = format!("30002{:05}{:011}{:02}", n % 100_000, n, n % 97);
    // Letters count as two digits (F = 15, R = 27), then the check digits' place holder 00.
    let digits = format!("{bban}152700");
    let rem = digits.bytes().fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
    format!("FR{:02}{bban}", 98 - rem)
}

/// The funder's treasury: the debtor of its SEPA files.
pub async fn treasury(db: &DatabaseConnection, funder: Uuid) {
    let input = TreasuryInput {
        name: "Département des Hauts-de-Seine - Paierie".into(),
        iban: iban(9_999_999),
        bic: "BDFEFRPPCCT".into(),
        schedule: None,
    };
    set_funder_settlement(db, funder, &input).await.expect("treasury");
}

pub fn bank_input(name: &str, n: u64, bic: Option<&str>) -> BankDetailsInput {
    BankDetailsInput {
        legal_name: format!("{name} (association loi 1901)"),
        siret: SIRET.into(),
        iban: iban(n),
        bic: bic.map(str::to_owned),
        account_holder: name.into(),
    }
}

/// Bank details set by one staff member and validated by another: the partner can be paid.
pub async fn bank_ready(db: &DatabaseConnection, partner: Uuid, name: &str, n: u64, bic: Option<&str>) {
    let set = set_partner_bank_details(db, partner, &bank_input(name, n, bic), &Actor::tool("agent-a"))
        .await
        .expect("bank details");
    validate_partner_bank_details(db, partner, set.iban.as_str(), &Actor::tool("agent-b")).await.expect("validate");
}

/// Panics (with xmllint's report) unless `xml` is valid against [`SEPA_XSD`]. xmllint missing
/// is a failure, never a skip: `.ci/run` installs it.
pub fn assert_valid_sepa(xml: &str) {
    let path = std::env::temp_dir().join(format!("sepa-{}.xml", Uuid::new_v4().simple()));
    std::fs::write(&path, xml).expect("write the file");
    assert_valid_sepa_file(&path);
    let _ = std::fs::remove_file(&path);
}

pub fn assert_valid_sepa_file(path: &std::path::Path) {
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", SEPA_XSD])
        .arg(path)
        .output()
        .expect("xmllint (apt-get install -y libxml2-utils)");
    assert!(
        out.status.success(),
        "{} is not valid pain.001.001.03:\n{}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// The text of every `<tag>` element of `xml`, in order (enough for the files we write).
pub fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = vec![];
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start..];
        let Some(gt) = after.find('>') else { break };
        let Some(end) = after.find(&close) else { break };
        out.push(after[gt + 1..end].to_owned());
        rest = &after[end + close.len()..];
    }
    out
}

/// Sums decimal amounts ("12.34") to cents.
pub fn cents_of(amounts: &[String]) -> i64 {
    amounts
        .iter()
        .map(|a| {
            let d: rust_decimal::Decimal = a.parse().expect("amount");
            i64::try_from(d * rust_decimal::Decimal::ONE_HUNDRED).expect("cents")
        })
        .sum()
}
