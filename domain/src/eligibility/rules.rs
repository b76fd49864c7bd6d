//! The eligibility rules, pure.

use chrono::{Datelike, NaiveDate};

use crate::campaign::{Policy, TerritoryRule};
use crate::ids::GradeLevel;

/// What the school data says about a pupil.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PupilFacts {
    pub grade: Option<GradeLevel>,
    pub birth_date: Option<NaiveDate>,
    pub school_uai: Option<String>,
    /// Postal codes of the pupil's legal guardians (levels 1 and 2).
    pub guardian_postal_codes: Vec<String>,
    pub left_at: Option<NaiveDate>,
}

crate::stored_enum! {
    /// The outcome of the rules alone. Stored as `eligible`, `ineligible`, `review`
    /// (`eligibility.computed`).
    pub enum Computed {
        /// The school data confirms it: granted without review.
        Eligible,
        Ineligible,
        /// Data is missing: a staff member decides.
        Review,
    }
}

/// A decision and every reason behind it (stable codes, shown to staff).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub computed: Computed,
    pub reasons: Vec<&'static str>,
}

/// Whole years between `birth` and `on`.
fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// Applies `policy` to `facts`. Any refusal makes the pupil ineligible; otherwise any missing
/// fact sends the case to review; otherwise the pupil is eligible.
pub fn evaluate(facts: &PupilFacts, policy: &Policy) -> Decision {
    let mut refusals = vec![];
    let mut unknowns = vec![];
    if facts.left_at.is_some_and(|d| d <= policy.opens_on) {
        refusals.push("LEFT_SCHOOL");
    }
    match facts.grade {
        None => unknowns.push("GRADE_UNKNOWN"),
        Some(g) if !policy.eligible_grades.contains(&g) => refusals.push("GRADE_NOT_ELIGIBLE"),
        Some(_) => {}
    }
    if let Some(max) = policy.max_age {
        match facts.birth_date {
            None => unknowns.push("BIRTH_DATE_UNKNOWN"),
            Some(b) if age_on(b, policy.opens_on) > i32::from(max) => refusals.push("TOO_OLD"),
            Some(_) => {}
        }
    }
    let school = facts.school_uai.as_ref().map(|u| u.to_ascii_uppercase().starts_with(&policy.uai_prefix()));
    let dep = policy.departement.trim_start_matches('0');
    let residence = (!facts.guardian_postal_codes.is_empty())
        .then(|| facts.guardian_postal_codes.iter().any(|p| p.trim().starts_with(dep) && p.trim().len() == 5));
    match policy.territory {
        TerritoryRule::School => match school {
            None => unknowns.push("SCHOOL_UNKNOWN"),
            Some(false) => refusals.push("SCHOOL_OUTSIDE_DEPARTEMENT"),
            Some(true) => {}
        },
        TerritoryRule::Residence => match residence {
            None => unknowns.push("RESIDENCE_UNKNOWN"),
            Some(false) => refusals.push("RESIDENCE_OUTSIDE_DEPARTEMENT"),
            Some(true) => {}
        },
        TerritoryRule::SchoolOrResidence => match (school, residence) {
            (Some(true), _) | (_, Some(true)) => {}
            (None, None) => unknowns.push("TERRITORY_UNKNOWN"),
            (Some(false), None) | (None, Some(false)) => unknowns.push("TERRITORY_UNKNOWN"),
            (Some(false), Some(false)) => refusals.push("OUTSIDE_DEPARTEMENT"),
        },
    }
    let computed = if !refusals.is_empty() {
        Computed::Ineligible
    } else if !unknowns.is_empty() {
        Computed::Review
    } else {
        Computed::Eligible
    };
    refusals.extend(unknowns);
    Decision { computed, reasons: refusals }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PupilFacts {
        PupilFacts {
            grade: Some(GradeLevel::Cinquieme),
            birth_date: NaiveDate::from_ymd_opt(2014, 3, 2),
            school_uai: Some("0921778H".into()),
            guardian_postal_codes: vec!["92220".into()],
            left_at: None,
        }
    }

    #[test]
    fn a_collegien_of_a_92_school_is_eligible() {
        let d = evaluate(&facts(), &Policy::pass_plus("92", 2026));
        assert_eq!(d, Decision { computed: Computed::Eligible, reasons: vec![] });
    }

    #[test]
    fn refusals_and_unknowns() {
        let p = Policy::pass_plus("92", 2026);
        let paris = PupilFacts { school_uai: Some("0752387M".into()), ..facts() };
        assert_eq!(evaluate(&paris, &p).reasons, vec!["SCHOOL_OUTSIDE_DEPARTEMENT"]);
        let lycee = PupilFacts { grade: Some(GradeLevel::Other), ..facts() };
        assert_eq!(evaluate(&lycee, &p).computed, Computed::Ineligible);
        let unknown = PupilFacts { grade: None, ..facts() };
        assert_eq!(evaluate(&unknown, &p), Decision { computed: Computed::Review, reasons: vec!["GRADE_UNKNOWN"] });
        let left = PupilFacts { left_at: NaiveDate::from_ymd_opt(2026, 7, 4), ..facts() };
        assert_eq!(evaluate(&left, &p).reasons, vec!["LEFT_SCHOOL"]);
        let left_later = PupilFacts { left_at: NaiveDate::from_ymd_opt(2027, 1, 4), ..facts() };
        assert_eq!(evaluate(&left_later, &p).computed, Computed::Eligible, "left during the year: keeps the Pass");
    }

    #[test]
    fn age_limit_and_territory_rules_come_from_the_policy() {
        let mut p = Policy::pass_plus("92", 2026);
        p.max_age = Some(12);
        assert_eq!(evaluate(&facts(), &p).computed, Computed::Eligible, "12 on the opening day: within a limit of 12");
        p.max_age = Some(11);
        assert_eq!(evaluate(&facts(), &p).reasons, vec!["TOO_OLD"]);
        let unknown_birth = PupilFacts { birth_date: None, ..facts() };
        assert_eq!(evaluate(&unknown_birth, &p).reasons, vec!["BIRTH_DATE_UNKNOWN"]);
    }

    #[test]
    fn residence_rules() {
        let mut p = Policy::pass_plus("92", 2026);
        p.territory = TerritoryRule::Residence;
        let paris_school_92_home = PupilFacts { school_uai: Some("0752387M".into()), ..facts() };
        assert_eq!(evaluate(&paris_school_92_home, &p).computed, Computed::Eligible);
        let no_guardian = PupilFacts { guardian_postal_codes: vec![], ..facts() };
        assert_eq!(evaluate(&no_guardian, &p).reasons, vec!["RESIDENCE_UNKNOWN"]);
        p.territory = TerritoryRule::SchoolOrResidence;
        let outside =
            PupilFacts { school_uai: Some("0752387M".into()), guardian_postal_codes: vec!["75011".into()], ..facts() };
        assert_eq!(evaluate(&outside, &p).reasons, vec!["OUTSIDE_DEPARTEMENT"]);
    }

    #[test]
    fn ages_count_whole_years() {
        let b = NaiveDate::from_ymd_opt(2014, 9, 2).unwrap_or_default();
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2026, 9, 1).unwrap_or_default()), 11);
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2026, 9, 2).unwrap_or_default()), 12);
    }
}
