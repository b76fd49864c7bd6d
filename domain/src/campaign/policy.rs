//! The campaign policy: amounts per wallet, who is eligible, and the dates. Pure.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::GradeLevel;
use crate::ledger::Wallet;
use crate::money::Cents;
use crate::request::RequestKind;

/// How much each wallet receives, for everyone and for boursiers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletAmounts {
    pub wallet: Wallet,
    pub base: Cents,
    /// Total for a boursier (not a bonus on top): 100 € instead of 80 €.
    pub boursier: Cents,
}

/// Which territory decides eligibility. Stored inside the policy JSON as `school`,
/// `residence`, `school_or_residence` (serde); not a column of its own.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TerritoryRule {
    /// The school is in the département (UAI prefix).
    School,
    /// A legal guardian lives in the département (postal code).
    Residence,
    /// Either of the two.
    SchoolOrResidence,
}

/// One campaign's rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub wallets: Vec<WalletAmounts>,
    pub eligible_grades: Vec<GradeLevel>,
    /// Oldest age (in whole years on `opens_on`) still eligible; `None`: no limit.
    pub max_age: Option<u8>,
    pub territory: TerritoryRule,
    /// The département number, "92"; UAIs start with "092", postal codes with "92".
    pub departement: String,
    pub opens_on: NaiveDate,
    /// Tickets can no longer be issued after this day (30 June).
    pub generation_deadline: NaiveDate,
    /// Partners can no longer validate tickets after this day (30 June N+1).
    pub validation_deadline: NaiveDate,
    /// How long a ticket stays valid once issued (never past the validation deadline).
    #[serde(default = "default_ticket_validity_days")]
    pub ticket_validity_days: u16,
    /// How many days a request of each kind should take to be decided; the staff's delay
    /// figures count the requests past it. Kinds not listed use [`DEFAULT_DECISION_DAYS`].
    #[serde(default)]
    pub request_targets: Vec<RequestTarget>,
}

/// The decision delay aimed at for one kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTarget {
    pub kind: RequestKind,
    pub decide_days: u16,
}

/// Two weeks: a family hears within a fortnight (a lost card's target is shorter: see
/// [`Policy::decision_target_days`]).
pub const DEFAULT_DECISION_DAYS: u16 = 15;

/// A month: long enough to book a first lesson, short enough that forgotten tickets give the
/// credit back within the school year. Policies stored before the field read this.
pub const DEFAULT_TICKET_VALIDITY_DAYS: u16 = 30;

fn default_ticket_validity_days() -> u16 {
    DEFAULT_TICKET_VALIDITY_DAYS
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> Result<(), PolicyError> {
    Err(PolicyError { field, message: message.into() })
}

/// The instant a deadline *day* ends: midnight after it in Europe/Paris, in microseconds since
/// the epoch (the deadline day itself is still open: tickets can be issued on 30 June).
pub fn end_of_day_us(day: NaiveDate) -> i64 {
    use chrono::TimeZone as _;
    let next = day.succ_opt().unwrap_or(day).and_time(chrono::NaiveTime::MIN);
    // Midnight always exists in Paris (DST changes happen at 2–3 h); `earliest` covers the rest.
    chrono_tz::Europe::Paris
        .from_local_datetime(&next)
        .earliest()
        .map_or_else(|| next.and_utc().timestamp_micros(), |t| t.timestamp_micros())
}

impl Policy {
    /// When tickets, payments and card charges stop (end of `generation_deadline`).
    pub fn generation_deadline_us(&self) -> i64 {
        end_of_day_us(self.generation_deadline)
    }

    /// When partners can no longer redeem tickets (end of `validation_deadline`).
    pub fn validation_deadline_us(&self) -> i64 {
        end_of_day_us(self.validation_deadline)
    }

    /// Checks the policy is coherent before it is stored.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.wallets.is_empty() {
            return refuse("wallets", "at least one wallet");
        }
        for (i, w) in self.wallets.iter().enumerate() {
            if self.wallets[..i].iter().any(|o| o.wallet == w.wallet) {
                return refuse("wallets", format!("{} appears twice", w.wallet));
            }
            if w.base.0 < 0 || w.boursier.0 < w.base.0 {
                return refuse("wallets", "amounts must be ≥ 0 and the boursier amount ≥ the base amount");
            }
            if w.boursier.0 > 100_000 {
                return refuse("wallets", "more than 1,000 € per wallet is not a Pass amount");
            }
        }
        if !(1..=366).contains(&self.ticket_validity_days) {
            return refuse("ticketValidityDays", "1 to 366 days");
        }
        for (i, t) in self.request_targets.iter().enumerate() {
            if self.request_targets[..i].iter().any(|o| o.kind == t.kind) {
                return refuse("requestTargets", format!("{} appears twice", t.kind));
            }
            if !(1..=365).contains(&t.decide_days) {
                return refuse("requestTargets", "1 to 365 days");
            }
        }
        if self.eligible_grades.is_empty() {
            return refuse("eligibleGrades", "at least one grade");
        }
        if !(self.departement.len() == 2 || self.departement.len() == 3)
            || !self.departement.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return refuse("departement", "a département number such as 92, 2A or 971");
        }
        if self.opens_on >= self.generation_deadline {
            return refuse("generationDeadline", "must be after the opening date");
        }
        if self.generation_deadline > self.validation_deadline {
            return refuse("validationDeadline", "must not be before the ticket-generation deadline");
        }
        Ok(())
    }

    /// Days a request of `kind` should take to be decided: the policy's target, else a week
    /// for a lost card (the child cannot pay meanwhile) and [`DEFAULT_DECISION_DAYS`] otherwise.
    pub fn decision_target_days(&self, kind: RequestKind) -> u16 {
        let default = if kind == RequestKind::LostCard { 7 } else { DEFAULT_DECISION_DAYS };
        self.request_targets.iter().find(|t| t.kind == kind).map_or(default, |t| t.decide_days)
    }

    /// The UAI prefix of the département: "92" → "092", "971" → "971".
    pub fn uai_prefix(&self) -> String {
        format!("{:0>3}", self.departement)
    }

    /// Amount for `wallet`, boursier or not.
    pub fn amount(&self, wallet: Wallet, boursier: bool) -> Cents {
        self.wallets
            .iter()
            .find(|w| w.wallet == wallet)
            .map_or(Cents::ZERO, |w| if boursier { w.boursier } else { w.base })
    }

    /// The Pass+ 2026-27 model: 80 € (100 € for boursiers) split over sport and culture,
    /// 6e to 3e, school in the département, 30 June 2027 / 30 June 2028.
    pub fn pass_plus(departement: &str, school_year: i32) -> Policy {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        Policy {
            wallets: vec![
                WalletAmounts { wallet: Wallet::Sport, base: Cents(4000), boursier: Cents(5000) },
                WalletAmounts { wallet: Wallet::Culture, base: Cents(4000), boursier: Cents(5000) },
            ],
            eligible_grades: vec![
                GradeLevel::Sixieme,
                GradeLevel::Cinquieme,
                GradeLevel::Quatrieme,
                GradeLevel::Troisieme,
            ],
            max_age: None,
            territory: TerritoryRule::School,
            departement: departement.to_owned(),
            opens_on: date(school_year, 9, 1),
            generation_deadline: date(school_year + 1, 6, 30),
            validation_deadline: date(school_year + 2, 6, 30),
            ticket_validity_days: DEFAULT_TICKET_VALIDITY_DAYS,
            request_targets: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_day_ends_at_midnight_in_paris() {
        // 30 June 2027 is in summer time (UTC+2): the day ends at 22:00 UTC.
        let d = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap();
        let expected = chrono::DateTime::parse_from_rfc3339("2027-06-30T22:00:00Z").unwrap().timestamp_micros();
        assert_eq!(end_of_day_us(d), expected);
        // In winter (UTC+1): 23:00 UTC.
        let d = NaiveDate::from_ymd_opt(2027, 1, 15).unwrap();
        let expected = chrono::DateTime::parse_from_rfc3339("2027-01-15T23:00:00Z").unwrap().timestamp_micros();
        assert_eq!(end_of_day_us(d), expected);
    }

    #[test]
    fn the_pass_plus_model_is_valid_and_pays_80_or_100() {
        let p = Policy::pass_plus("92", 2026);
        assert_eq!(p.validate(), Ok(()));
        let total = |b| Wallet::ALL.iter().map(|w| p.amount(*w, b).0).sum::<i64>();
        assert_eq!((total(false), total(true)), (8000, 10000));
        assert_eq!(p.uai_prefix(), "092");
        assert_eq!(p.generation_deadline.to_string(), "2027-06-30");
    }

    #[test]
    fn incoherent_policies_are_refused() {
        let mut p = Policy::pass_plus("92", 2026);
        p.wallets[1].boursier = Cents(100);
        assert_eq!(p.validate().unwrap_err().field, "wallets");
        let mut p = Policy::pass_plus("92", 2026);
        p.generation_deadline = p.opens_on;
        assert_eq!(p.validate().unwrap_err().field, "generationDeadline");
        let mut p = Policy::pass_plus("92", 2026);
        p.wallets.push(p.wallets[0].clone());
        assert!(p.validate().is_err());
        let mut p = Policy::pass_plus("92", 2026);
        p.eligible_grades.clear();
        assert!(p.validate().is_err());
    }
}
