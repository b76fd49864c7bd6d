//! The fingerprint's text is compared with keys stored by earlier releases: a change of its
//! JSON (key order, spacing, escapes) or of its hex would turn every retry into a conflict.
//! The expected digests were computed outside Rust (Python's `json.dumps` with sorted keys,
//! compact separators and `ensure_ascii=False`, then `hashlib.sha256`).

use uuid::Uuid;

use super::model::*;
use crate::money::Cents;

fn id(last: u8) -> Uuid {
    Uuid::parse_str(&format!("0192f0c0-0000-7000-8000-0000000000{last:02x}")).expect("a valid uuid")
}

#[test]
fn a_legs_fingerprint_keeps_its_stored_text() {
    let scope = Scope::campaign(id(1), id(2));
    let debit = AccountRef { id: id(0x0a), limited: false, scope };
    let credit = AccountRef { id: id(0x0b), limited: true, scope };
    let legs = vec![
        Leg::Transfer { kind: TransferKind::Grant, debit, credit, amount: Cents(8000) },
        Leg::Post { hold: id(0x0b), amount: None },
    ];
    let op = Operation::new("system:grant", "k", legs).with_metadata(serde_json::json!({ "partner": "é\"x" }));
    assert_eq!(
        op.fingerprint().expect("a fingerprint"),
        "3536f5e18736cbfe0586d4e0a35035ab4dd9b614c15b847d74ea7a80bebdd1b2"
    );
}

#[test]
fn a_requests_fingerprint_keeps_its_stored_text() {
    let op = Operation::new("parent:x", "k", vec![Leg::Void { hold: id(3) }])
        .with_request(serde_json::json!({ "amount": "30.00", "wallet": "sport" }));
    assert_eq!(
        op.fingerprint().expect("a fingerprint"),
        "eb3b1d89b9f2115fe8f99fef706664916490bb90066008246de48bcc66e0e882"
    );
}

#[test]
fn holds_posts_voids_and_expiries_keep_their_stored_text() {
    let wallet = AccountRef { id: id(4), limited: true, scope: Scope::campaign(id(1), id(2)) };
    let clearing = AccountRef { id: id(5), limited: false, scope: Scope::funder(id(1)) };
    let legs = vec![
        Leg::Hold {
            kind: TransferKind::Ticket,
            debit: wallet,
            credit: clearing,
            amount: Cents(3000),
            timeout_ms: 86_400_000,
        },
        Leg::Post { hold: id(6), amount: Some(Cents(2500)) },
        Leg::Void { hold: id(7) },
        Leg::Expire { hold: id(8) },
    ];
    let op = Operation::new("partner:x", "k", legs);
    assert_eq!(
        op.fingerprint().expect("a fingerprint"),
        "cf875ab5f84bb6a78799921591b43022c59a6f87187bc7bb6dbc5b7174738bee"
    );
}

/// What the fingerprint was first computed from: the legs through a sorted `Value` tree.
fn through_value_tree(op: &Operation) -> String {
    use sha2::{Digest, Sha256};
    let body = match &op.request {
        Some(request) => serde_json::json!({ "request": request, "metadata": op.metadata }),
        None => serde_json::json!({ "legs": op.legs, "metadata": op.metadata }),
    };
    format!("{:x}", Sha256::digest(body.to_string()))
}

mod any {
    use proptest::prelude::*;

    use super::*;

    fn uuid() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    fn account() -> impl Strategy<Value = AccountRef> {
        (uuid(), any::<bool>(), uuid(), proptest::option::of(uuid()))
            .prop_map(|(id, limited, funder, campaign)| AccountRef { id, limited, scope: Scope { funder, campaign } })
    }

    fn kind() -> impl Strategy<Value = TransferKind> {
        proptest::sample::select(vec![
            TransferKind::Grant,
            TransferKind::TopUp,
            TransferKind::Ticket,
            TransferKind::Refund,
        ])
    }

    pub(super) fn leg() -> impl Strategy<Value = Leg> {
        prop_oneof![
            (kind(), account(), account(), any::<i64>()).prop_map(|(kind, debit, credit, a)| Leg::Transfer {
                kind,
                debit,
                credit,
                amount: Cents(a)
            }),
            (kind(), account(), account(), any::<i64>(), any::<i64>()).prop_map(
                |(kind, debit, credit, a, timeout_ms)| {
                    Leg::Hold { kind, debit, credit, amount: Cents(a), timeout_ms }
                }
            ),
            (uuid(), proptest::option::of(any::<i64>())).prop_map(|(hold, a)| Leg::Post { hold, amount: a.map(Cents) }),
            uuid().prop_map(|hold| Leg::Void { hold }),
            uuid().prop_map(|hold| Leg::Expire { hold }),
        ]
    }

    pub(super) fn metadata() -> impl Strategy<Value = serde_json::Value> {
        (any::<Option<String>>(), any::<Option<i64>>()).prop_map(|(text, n)| match (text, n) {
            (None, None) => serde_json::Value::Null,
            (text, n) => serde_json::json!({ "partner": text, "activity": n, "é\"\n": [1, "x"] }),
        })
    }
}

proptest::proptest! {
    #[test]
    fn the_fingerprint_is_the_sorted_value_trees_digest(
        legs in proptest::collection::vec(any::leg(), 1..6),
        metadata in any::metadata(),
        request in proptest::option::of(any::metadata()),
    ) {
        let mut op = Operation::new("s", "k", legs).with_metadata(metadata);
        op.request = request;
        proptest::prop_assert_eq!(op.fingerprint().expect("a fingerprint"), through_value_tree(&op));
    }
}
