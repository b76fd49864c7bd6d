//! Property test: random sequences of grant / hold / post / partial post / void / expire /
//! transfer / refund / multi-leg / replay / key reuse, run against the real ledger on the
//! real database AND against a naive reference model that folds legs one by one. After every
//! step the outcomes must agree, every account's counters must equal the model's, and the
//! audit must find nothing.

use std::collections::HashMap;

use passerelle_domain::Cents;
use passerelle_domain::ledger::*;
use passerelle_tests::fresh_db_with_pool;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

const WALLETS: usize = 3;

#[derive(Clone, Debug)]
enum Cmd {
    Grant { wallet: usize, amount: i64 },
    Spend { wallet: usize, amount: i64 },
    Move { from: usize, to: usize, amount: i64 },
    Refund { wallet: usize, amount: i64 },
    Pair { a: usize, b: usize, amount_a: i64, amount_b: i64 },
    Hold { wallet: usize, amount: i64, expired: bool },
    Post { hold: usize, amount: Option<i64> },
    Void { hold: usize },
    Expire { hold: usize },
    Replay { op: usize },
    Reuse { op: usize },
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let w = 0..WALLETS;
    let amount = 1i64..4000;
    prop_oneof![
        3 => (w.clone(), amount.clone()).prop_map(|(wallet, amount)| Cmd::Grant { wallet, amount }),
        3 => (w.clone(), amount.clone()).prop_map(|(wallet, amount)| Cmd::Spend { wallet, amount }),
        1 => (w.clone(), w.clone(), amount.clone()).prop_map(|(from, to, amount)| Cmd::Move { from, to, amount }),
        1 => (w.clone(), amount.clone()).prop_map(|(wallet, amount)| Cmd::Refund { wallet, amount }),
        1 => (w.clone(), w.clone(), amount.clone(), amount.clone())
            .prop_map(|(a, b, amount_a, amount_b)| Cmd::Pair { a, b, amount_a, amount_b }),
        3 => (w.clone(), amount.clone(), any::<bool>()).prop_map(|(wallet, amount, expired)| Cmd::Hold { wallet, amount, expired }),
        2 => (any::<usize>(), proptest::option::of(1i64..4500)).prop_map(|(hold, amount)| Cmd::Post { hold, amount }),
        1 => any::<usize>().prop_map(|hold| Cmd::Void { hold }),
        1 => any::<usize>().prop_map(|hold| Cmd::Expire { hold }),
        1 => any::<usize>().prop_map(|op| Cmd::Replay { op }),
        1 => any::<usize>().prop_map(|op| Cmd::Reuse { op }),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum HoldState {
    Pending,
    Done,
}

#[derive(Clone, Debug)]
struct ModelHold {
    id: TransferId,
    debit: AccountId,
    credit: AccountId,
    amount: i64,
    expired: bool,
    state: HoldState,
}

/// The naive reference: counters per account, folded leg by leg.
#[derive(Clone, Default)]
struct Model {
    counters: HashMap<AccountId, Counters>,
    flagged: HashMap<AccountId, bool>,
    holds: Vec<ModelHold>,
}

type Expected = Result<(), String>;

impl Model {
    /// Applies legs to a copy; returns the expected outcome and commits the copy on success.
    fn apply(&mut self, legs: &[Leg], hold_expired: bool) -> (Expected, Vec<usize>) {
        let mut next = self.clone();
        let mut touched_holds = vec![];
        for leg in legs {
            let r = match leg {
                Leg::Transfer { debit, credit, amount, .. } => {
                    if debit.id == credit.id {
                        return (Err("invalid".into()), vec![]);
                    }
                    next.c(debit.id).debits_posted += amount.0;
                    next.c(credit.id).credits_posted += amount.0;
                    Ok(())
                }
                Leg::Hold { debit, credit, amount, .. } => {
                    next.c(debit.id).debits_pending += amount.0;
                    next.c(credit.id).credits_pending += amount.0;
                    next.holds.push(ModelHold {
                        id: Uuid::nil(),
                        debit: debit.id,
                        credit: credit.id,
                        amount: amount.0,
                        expired: hold_expired,
                        state: HoldState::Pending,
                    });
                    touched_holds.push(next.holds.len() - 1);
                    Ok(())
                }
                Leg::Post { hold, amount } => next.resolve(*hold, |h| {
                    if h.expired {
                        return Err("HOLD_EXPIRED".into());
                    }
                    match amount {
                        Some(a) if a.0 > h.amount => Err("AMOUNT_EXCEEDS_HOLD".into()),
                        other => Ok(other.map_or(h.amount, |a| a.0)),
                    }
                }),
                Leg::Void { hold } => next.resolve(*hold, |_| Ok(0)),
                Leg::Expire { hold } => {
                    next.resolve(*hold, |h| if h.expired { Ok(0) } else { Err("HOLD_NOT_EXPIRED".into()) })
                }
            };
            if let Err(e) = r {
                return (Err(e), vec![]);
            }
        }
        let mut overdrawn: Vec<AccountId> = next
            .counters
            .iter()
            .filter(|(id, c)| next.flagged.get(*id).copied().unwrap_or(false) && c.available() < 0)
            .map(|(id, _)| *id)
            .collect();
        overdrawn.sort();
        if !overdrawn.is_empty() {
            return (Err("INSUFFICIENT_FUNDS".into()), vec![]);
        }
        *self = next;
        (Ok(()), touched_holds)
    }

    fn c(&mut self, id: AccountId) -> &mut Counters {
        self.counters.entry(id).or_default()
    }

    /// Resolves a hold: `moved` returns how much to post (0 = release only) or a refusal code.
    fn resolve(&mut self, id: TransferId, moved: impl Fn(&ModelHold) -> Result<i64, String>) -> Result<(), String> {
        let Some(i) = self.holds.iter().position(|h| h.id == id) else { return Err("HOLD_NOT_FOUND".into()) };
        let h = self.holds[i].clone();
        if h.state != HoldState::Pending {
            return Err("HOLD_NOT_PENDING".into());
        }
        let amount = moved(&h)?;
        self.c(h.debit).debits_pending -= h.amount;
        self.c(h.credit).credits_pending -= h.amount;
        self.c(h.debit).debits_posted += amount;
        self.c(h.credit).credits_posted += amount;
        self.holds[i].state = HoldState::Done;
        Ok(())
    }
}

fn code(r: &Result<Outcome, LedgerError>) -> Result<(), String> {
    match r {
        Ok(_) => Ok(()),
        Err(LedgerError::Rejected(rej)) => Err(rej.code().to_owned()),
        Err(LedgerError::IdempotencyConflict) => Err("IDEMPOTENCY_CONFLICT".into()),
        Err(LedgerError::Invalid(_)) => Err("invalid".into()),
        Err(LedgerError::Db(e)) => panic!("database error: {e}"),
    }
}

struct Case {
    wallets: Vec<AccountRef>,
    budget: AccountRef,
    partner: AccountRef,
    model: Model,
    history: Vec<(Operation, Result<Outcome, String>)>,
}

async fn run_case(db: &DatabaseConnection, cmds: Vec<Cmd>) -> Result<(), TestCaseError> {
    let tag = Uuid::new_v4().simple().to_string();
    let mut wallets = vec![];
    let mut model = Model::default();
    let b = passerelle_tests::ledger::books(db).await;
    for _ in 0..WALLETS {
        let id = passerelle_tests::ledger::wallet(db, b, Wallet::Culture).await;
        model.flagged.insert(id.id, true);
        wallets.push(id);
    }
    let (budget, partner) = (b.budget, b.partner);
    let mut case = Case { wallets, budget, partner, model, history: vec![] };

    for (step, cmd) in cmds.into_iter().enumerate() {
        let key = format!("{tag}-{step}");
        let w = |i: usize| case.wallets[i];
        let t = |kind, debit, credit, amount| Leg::Transfer { kind, debit, credit, amount: Cents(amount) };
        let hold_id = |i: usize| case.model.holds.get(i % case.model.holds.len().max(1)).map(|h| h.id);
        let (legs, expired) = match cmd {
            Cmd::Grant { wallet, amount } => (vec![t(TransferKind::Grant, case.budget, w(wallet), amount)], false),
            Cmd::Spend { wallet, amount } => (vec![t(TransferKind::Payment, w(wallet), case.partner, amount)], false),
            Cmd::Move { from, to, amount } => (vec![t(TransferKind::Correction, w(from), w(to), amount)], false),
            Cmd::Refund { wallet, amount } => (vec![t(TransferKind::Refund, case.partner, w(wallet), amount)], false),
            Cmd::Pair { a, b, amount_a, amount_b } => (
                vec![
                    t(TransferKind::Payment, w(a), case.partner, amount_a),
                    t(TransferKind::Payment, w(b), case.partner, amount_b),
                ],
                false,
            ),
            Cmd::Hold { wallet, amount, expired } => {
                let timeout_ms = if expired { 0 } else { 3_600_000 };
                let leg = Leg::Hold {
                    kind: TransferKind::Ticket,
                    debit: w(wallet),
                    credit: case.partner,
                    amount: Cents(amount),
                    timeout_ms,
                };
                (vec![leg], expired)
            }
            Cmd::Post { hold, amount } => match hold_id(hold) {
                Some(hold) => (vec![Leg::Post { hold, amount: amount.map(Cents) }], false),
                None => continue,
            },
            Cmd::Void { hold } => match hold_id(hold) {
                Some(hold) => (vec![Leg::Void { hold }], false),
                None => continue,
            },
            Cmd::Expire { hold } => match hold_id(hold) {
                Some(hold) => (vec![Leg::Expire { hold }], false),
                None => continue,
            },
            Cmd::Replay { op } | Cmd::Reuse { op } if case.history.is_empty() => {
                let _ = op;
                continue;
            }
            Cmd::Replay { op } => {
                let (original, first) = case.history[op % case.history.len()].clone();
                let again = execute(db, &original).await;
                if original.is_expiry() && first.is_err() {
                    // An expiry's refusal is not stored (it depends on the clock): a replay
                    // runs again and answers as the model does now.
                    let (expected, _) = case.model.apply(&original.legs, false);
                    prop_assert_eq!(expected, code(&again));
                    check(db, &case).await?;
                    continue;
                }
                match (&first, &again) {
                    (Ok(a), Ok(b)) => {
                        prop_assert!(b.replayed, "a replay is flagged");
                        prop_assert_eq!(&a.transfers, &b.transfers);
                    }
                    (Err(a), r) => prop_assert_eq!(Err(a.clone()), code(r)),
                    (Ok(_), Err(e)) => prop_assert!(false, "replay of a success failed: {e}"),
                }
                check(db, &case).await?;
                continue;
            }
            Cmd::Reuse { op } => {
                let (original, first) = case.history[op % case.history.len()].clone();
                if original.legs.is_empty() {
                    continue;
                }
                let changed = original.clone().with_metadata(serde_json::json!({ "changed": step }));
                // A refused expiry left its key free: the changed request simply runs.
                let expected = if original.is_expiry() && first.is_err() {
                    case.model.apply(&original.legs, false).0
                } else {
                    Err("IDEMPOTENCY_CONFLICT".to_owned())
                };
                prop_assert_eq!(code(&execute(db, &changed).await), expected);
                check(db, &case).await?;
                continue;
            }
        };
        let op = Operation::new("model", key, legs.clone());
        let (expected, new_holds) = case.model.apply(&legs, expired);
        let actual = execute(db, &op).await;
        prop_assert_eq!(&expected, &code(&actual), "step {} {:?}", step, legs);
        if let Ok(outcome) = &actual {
            for (i, model_index) in new_holds.into_iter().enumerate() {
                let pending: Vec<&TransferRecord> =
                    outcome.transfers.iter().filter(|t| t.phase == Phase::Pending).collect();
                case.model.holds[model_index].id = pending[i].id;
            }
        }
        let stored = actual.map_err(|e| code(&Err(e)).err().unwrap_or_default());
        if !matches!(&stored, Err(c) if c == "invalid") {
            case.history.push((op, stored));
        }
        check(db, &case).await?;
    }
    Ok(())
}

/// Every account equals the model, and the audit is clean.
async fn check(db: &DatabaseConnection, case: &Case) -> Result<(), TestCaseError> {
    let all = case.wallets.iter().chain([&case.budget, &case.partner]);
    for account in all {
        let id = &account.id;
        let actual = get_account(db, *id).await.unwrap().unwrap().counters;
        let expected = case.model.counters.get(id).copied().unwrap_or_default();
        prop_assert_eq!(actual, expected, "account {}", id);
    }
    let report = audit(db).await.unwrap();
    prop_assert!(report.is_clean(), "audit: {:?}", report.violations);
    Ok(())
}

#[test]
fn the_ledger_agrees_with_a_naive_model_after_every_step() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tdb = rt.block_on(fresh_db_with_pool(4));
    let cases = std::env::var("LEDGER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = proptest::collection::vec(cmd(), 5..40);
    let result = runner.run(&strategy, |cmds| rt.block_on(run_case(&tdb.db, cmds)));
    if let Err(e) = result {
        panic!("{e}");
    }
}
