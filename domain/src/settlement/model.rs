//! Settlement's pure rules: schedules and dates, grouping what is owed into one line per
//! partner. No database here.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use uuid::Uuid;

use crate::money::Cents;

crate::stored_enum! {
    /// Where a batch stands (`settlement_batch.status`).
    pub enum BatchStatus {
        /// Made, its file can be reviewed; no money moved in the books yet.
        Draft,
        /// The funder's staff approved it: the books say the partners are paid.
        Approved,
    }
}

crate::stored_enum! {
    /// How often a funder pays its partners (`funder.settlement_schedule`).
    pub enum Schedule {
        /// 1st–15th and 16th–end of month (the default, as Pass Culture pays).
        SemiMonthly,
        Monthly,
    }
}

impl Schedule {
    /// The last day of the latest period fully over on `today` (its cutoff).
    pub fn due_cutoff(self, today: NaiveDate) -> NaiveDate {
        let end_of_last_month = today.with_day(1).and_then(|d| d.pred_opt()).unwrap_or(today);
        match self {
            Schedule::SemiMonthly if today.day() > 15 => today.with_day(15).unwrap_or(end_of_last_month),
            _ => end_of_last_month,
        }
    }
}

/// The first weekday after `day`: when the bank is asked to execute the transfers (TARGET2
/// holidays aside: the bank moves a closed day to the next open one).
pub fn execution_date(day: NaiveDate) -> NaiveDate {
    let mut next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    while matches!(next.weekday(), Weekday::Sat | Weekday::Sun) {
        next = next.checked_add_days(Days::new(1)).unwrap_or(next);
    }
    next
}

crate::stored_enum! {
    /// What settlement can deduct or pay: a redemption (positive) or a refund (negative).
    pub enum ItemKind {
        Redemption,
        Refund,
    }
}

/// A posted redemption or refund not settled yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenItem {
    pub kind: ItemKind,
    pub source_id: Uuid,
    pub partner_id: Uuid,
    /// Signed: refunds are negative.
    pub amount: Cents,
}

/// One partner's share of a batch, before it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouped {
    pub partner_id: Uuid,
    pub redeemed: Cents,
    /// Positive: what was refunded.
    pub refunded: Cents,
    pub items: Vec<OpenItem>,
}

impl Grouped {
    pub fn net(&self) -> Cents {
        Cents(self.redeemed.0 - self.refunded.0)
    }
}

/// Groups open items per partner (in partner order) and splits the partners paid now from the
/// ones carried to the next batch: a net that is not positive, or a partner `payable` refuses
/// (no validated bank details). A carried partner's items stay open, so its refunds are
/// deducted later and nothing is lost.
pub fn group(items: Vec<OpenItem>, payable: impl Fn(Uuid) -> bool) -> (Vec<Grouped>, Vec<Grouped>) {
    let mut by_partner: BTreeMap<Uuid, Grouped> = BTreeMap::new();
    for item in items {
        let g = by_partner.entry(item.partner_id).or_insert_with(|| Grouped {
            partner_id: item.partner_id,
            redeemed: Cents::ZERO,
            refunded: Cents::ZERO,
            items: vec![],
        });
        match item.kind {
            ItemKind::Redemption => g.redeemed.0 += item.amount.0,
            ItemKind::Refund => g.refunded.0 -= item.amount.0,
        }
        g.items.push(item);
    }
    by_partner.into_values().partition(|g| g.net().0 > 0 && payable(g.partner_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn semi_monthly_cutoffs_are_the_15th_and_the_end_of_month() {
        let s = Schedule::SemiMonthly;
        assert_eq!(s.due_cutoff(day("2026-12-06")), day("2026-11-30"));
        assert_eq!(s.due_cutoff(day("2026-12-15")), day("2026-11-30"));
        assert_eq!(s.due_cutoff(day("2026-12-16")), day("2026-12-15"));
        assert_eq!(s.due_cutoff(day("2027-03-01")), day("2027-02-28"));
        assert_eq!(Schedule::Monthly.due_cutoff(day("2026-12-20")), day("2026-11-30"));
        assert_eq!(s.due_cutoff(day("2027-01-01")), day("2026-12-31"));
    }

    #[test]
    fn execution_is_the_next_weekday() {
        assert_eq!(execution_date(day("2026-12-04")), day("2026-12-07")); // Friday → Monday
        assert_eq!(execution_date(day("2026-12-06")), day("2026-12-07")); // Sunday → Monday
        assert_eq!(execution_date(day("2026-12-07")), day("2026-12-08"));
    }

    fn item(kind: ItemKind, partner: u128, cents: i64) -> OpenItem {
        let amount = if kind == ItemKind::Refund { Cents(-cents) } else { Cents(cents) };
        OpenItem { kind, source_id: Uuid::now_v7(), partner_id: Uuid::from_u128(partner), amount }
    }

    #[test]
    fn partners_with_a_non_positive_net_or_no_validated_bank_are_carried() {
        let items = vec![
            item(ItemKind::Redemption, 1, 1000),
            item(ItemKind::Refund, 1, 300),
            item(ItemKind::Redemption, 2, 500),
            item(ItemKind::Refund, 2, 500),
            item(ItemKind::Refund, 3, 200),
            item(ItemKind::Redemption, 4, 700),
        ];
        let (paid, carried) = group(items, |p| p != Uuid::from_u128(4));
        assert_eq!(paid.len(), 1);
        assert_eq!((paid[0].redeemed, paid[0].refunded, paid[0].net()), (Cents(1000), Cents(300), Cents(700)));
        assert_eq!(paid[0].items.len(), 2);
        let carried: Vec<u128> = carried.iter().map(|g| g.partner_id.as_u128()).collect();
        assert_eq!(carried, vec![2, 3, 4]);
    }
}
