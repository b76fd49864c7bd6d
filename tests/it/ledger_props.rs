//! Property test: random sequences of grant / hold / post / partial post / void / expire /
//! transfer / refund / multi-leg operations (with holds among their legs) / replay / key reuse
//! with other metadata or other amounts, run against the real ledger on the real database AND
//! against a naive reference model (`passerelle_tests::ledger_model`). After every step the
//! answers must agree, every account's counters must equal the model's, and the audit must
//! find nothing.

use passerelle_domain::Cents;
use passerelle_domain::ledger::*;
use passerelle_tests::fresh_db_with_pool;
use passerelle_tests::ledger_model::{Model, Verdict, answer_code};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

/// Cases per run, in CI too: the environment cannot lower it.
const CASES: u32 = 256;
const WALLETS: usize = 3;
const HOUR_MS: i64 = 3_600_000;

#[derive(Clone, Debug)]
enum Cmd {
    Grant {
        wallet: usize,
        amount: i64,
    },
    Spend {
        wallet: usize,
        amount: i64,
    },
    Move {
        from: usize,
        to: usize,
        amount: i64,
    },
    Refund {
        wallet: usize,
        amount: i64,
    },
    Pair {
        a: usize,
        b: usize,
        amount_a: i64,
        amount_b: i64,
    },
    Hold {
        wallet: usize,
        amount: i64,
        expired: bool,
    },
    /// A hold and a payment in one operation, in either order.
    HoldAndPay {
        hold: usize,
        pay: usize,
        held: i64,
        paid: i64,
        expired: bool,
        hold_first: bool,
    },
    /// Two holds in one operation.
    TwoHolds {
        a: usize,
        b: usize,
        amount_a: i64,
        amount_b: i64,
        expired: bool,
    },
    /// Voids a hold and places another in one operation, in either order.
    Rebook {
        hold: usize,
        wallet: usize,
        amount: i64,
        void_first: bool,
    },
    Post {
        hold: usize,
        amount: Option<i64>,
    },
    Void {
        hold: usize,
    },
    Expire {
        hold: usize,
    },
    Replay {
        op: usize,
    },
    /// An earlier key with other metadata.
    Reuse {
        op: usize,
    },
    /// An earlier key with other amounts.
    ReuseAmounts {
        op: usize,
        extra: i64,
    },
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
        1 => (w.clone(), w.clone(), amount.clone(), amount.clone(), any::<bool>(), any::<bool>()).prop_map(
            |(hold, pay, held, paid, expired, hold_first)| Cmd::HoldAndPay { hold, pay, held, paid, expired, hold_first }
        ),
        1 => (w.clone(), w.clone(), amount.clone(), amount.clone(), any::<bool>())
            .prop_map(|(a, b, amount_a, amount_b, expired)| Cmd::TwoHolds { a, b, amount_a, amount_b, expired }),
        1 => (any::<usize>(), w.clone(), amount.clone(), any::<bool>())
            .prop_map(|(hold, wallet, amount, void_first)| Cmd::Rebook { hold, wallet, amount, void_first }),
        2 => (any::<usize>(), proptest::option::of(1i64..4500)).prop_map(|(hold, amount)| Cmd::Post { hold, amount }),
        1 => any::<usize>().prop_map(|hold| Cmd::Void { hold }),
        1 => any::<usize>().prop_map(|hold| Cmd::Expire { hold }),
        1 => any::<usize>().prop_map(|op| Cmd::Replay { op }),
        1 => any::<usize>().prop_map(|op| Cmd::Reuse { op }),
        1 => (any::<usize>(), 1i64..500).prop_map(|(op, extra)| Cmd::ReuseAmounts { op, extra }),
    ]
}

struct Case {
    wallets: Vec<AccountRef>,
    budget: AccountRef,
    partner: AccountRef,
    model: Model,
    /// Every operation sent with a new key, and the ledger's first answer.
    history: Vec<(Operation, Result<Outcome, LedgerError>)>,
}

impl Case {
    fn hold(&self, wallet: usize, amount: i64, expired: bool) -> Leg {
        let timeout_ms = if expired { 0 } else { HOUR_MS };
        let debit = self.wallets[wallet];
        Leg::Hold { kind: TransferKind::Ticket, debit, credit: self.partner, amount: Cents(amount), timeout_ms }
    }

    fn transfer(&self, kind: TransferKind, debit: AccountRef, credit: AccountRef, amount: i64) -> Leg {
        Leg::Transfer { kind, debit, credit, amount: Cents(amount) }
    }

    /// The legs of a command that sends a new operation (and whether its holds expire at once);
    /// `None` for the commands that resend an earlier one, or that find no hold to resolve.
    fn legs(&self, cmd: &Cmd) -> Option<(Vec<Leg>, bool)> {
        let w = |i: usize| self.wallets[i];
        let (budget, partner) = (self.budget, self.partner);
        let resolve = |hold: usize, leg: fn(TransferId) -> Leg| self.model.hold_id(hold).map(|h| (vec![leg(h)], false));
        Some(match *cmd {
            Cmd::Grant { wallet, amount } => {
                (vec![self.transfer(TransferKind::Grant, budget, w(wallet), amount)], false)
            }
            Cmd::Spend { wallet, amount } => {
                (vec![self.transfer(TransferKind::Payment, w(wallet), partner, amount)], false)
            }
            Cmd::Move { from, to, amount } => {
                (vec![self.transfer(TransferKind::Correction, w(from), w(to), amount)], false)
            }
            Cmd::Refund { wallet, amount } => {
                (vec![self.transfer(TransferKind::Refund, partner, w(wallet), amount)], false)
            }
            Cmd::Pair { a, b, amount_a, amount_b } => (
                vec![
                    self.transfer(TransferKind::Payment, w(a), partner, amount_a),
                    self.transfer(TransferKind::Payment, w(b), partner, amount_b),
                ],
                false,
            ),
            Cmd::Hold { wallet, amount, expired } => (vec![self.hold(wallet, amount, expired)], expired),
            Cmd::HoldAndPay { hold, pay, held, paid, expired, hold_first } => {
                let mut legs =
                    vec![self.hold(hold, held, expired), self.transfer(TransferKind::Payment, w(pay), partner, paid)];
                if !hold_first {
                    legs.reverse();
                }
                (legs, expired)
            }
            Cmd::TwoHolds { a, b, amount_a, amount_b, expired } => {
                (vec![self.hold(a, amount_a, expired), self.hold(b, amount_b, expired)], expired)
            }
            Cmd::Rebook { hold, wallet, amount, void_first } => {
                let mut legs = vec![Leg::Void { hold: self.model.hold_id(hold)? }, self.hold(wallet, amount, false)];
                if !void_first {
                    legs.reverse();
                }
                (legs, false)
            }
            Cmd::Post { hold, amount } => {
                let h = self.model.hold_id(hold)?;
                (vec![Leg::Post { hold: h, amount: amount.map(Cents) }], false)
            }
            Cmd::Void { hold } => resolve(hold, |hold| Leg::Void { hold })?,
            Cmd::Expire { hold } => resolve(hold, |hold| Leg::Expire { hold })?,
            Cmd::Replay { .. } | Cmd::Reuse { .. } | Cmd::ReuseAmounts { .. } => return None,
        })
    }

    /// The operation a resend command sends again: the same, other metadata, other amounts.
    fn resend(&self, cmd: &Cmd, step: usize) -> Option<Operation> {
        let pick = |op: usize| self.history.get(op % self.history.len().max(1)).map(|(o, _)| o.clone());
        match *cmd {
            Cmd::Replay { op } => pick(op),
            Cmd::Reuse { op } => Some(pick(op)?.with_metadata(serde_json::json!({ "changed": step }))),
            Cmd::ReuseAmounts { op, extra } => {
                let mut changed = pick(op)?;
                let mut any = false;
                for leg in &mut changed.legs {
                    if let Leg::Transfer { amount, .. }
                    | Leg::Hold { amount, .. }
                    | Leg::Post { amount: Some(amount), .. } = leg
                    {
                        amount.0 += extra;
                        any = true;
                    }
                }
                any.then_some(changed)
            }
            _ => None,
        }
    }
}

async fn run_case(db: &DatabaseConnection, cmds: Vec<Cmd>) -> Result<(), TestCaseError> {
    let tag = Uuid::new_v4().simple().to_string();
    let mut wallets = vec![];
    let mut model = Model::default();
    let b = passerelle_tests::ledger::books(db).await;
    for _ in 0..WALLETS {
        let id = passerelle_tests::ledger::wallet(db, b, Wallet::Culture).await;
        model.flag(id.id);
        wallets.push(id);
    }
    let (budget, partner) = (b.budget, b.partner);
    let mut case = Case { wallets, budget, partner, model, history: vec![] };

    for (step, cmd) in cmds.into_iter().enumerate() {
        let (op, expired) = match case.legs(&cmd) {
            Some((legs, expired)) => (Operation::new("model", format!("{tag}-{step}"), legs), expired),
            None => match case.resend(&cmd, step) {
                Some(op) => (op, false),
                None => continue,
            },
        };
        let verdict = case.model.submit(&op, expired);
        let actual = execute(db, &op).await;
        prop_assert_eq!(verdict.expected(), &answer_code(&actual), "step {} {:?}: {:?}", step, cmd, op.legs);
        match (verdict, &actual) {
            (Verdict::New(_, placed), Ok(outcome)) => {
                prop_assert!(!outcome.replayed, "a new key is not a replay");
                let pending: Vec<TransferId> =
                    outcome.transfers.iter().filter(|t| t.phase == Phase::Pending).map(|t| t.id).collect();
                case.model.placed(&placed, &pending);
            }
            (Verdict::Replay(_), Ok(again)) => {
                let first = case.history.iter().find(|(o, _)| o.key == op.key).map(|(_, r)| r);
                let Some(Ok(first)) = first else { return Err(TestCaseError::fail("replayed an unknown success")) };
                prop_assert!(again.replayed, "a replay is flagged");
                prop_assert_eq!(&first.transfers, &again.transfers);
            }
            _ => {}
        }
        if !matches!(cmd, Cmd::Replay { .. } | Cmd::Reuse { .. } | Cmd::ReuseAmounts { .. })
            && !matches!(&actual, Err(LedgerError::Invalid(_)))
        {
            case.history.push((op, actual));
        }
        check(db, &case).await?;
    }
    Ok(())
}

/// Every account equals the model, and the audit is clean.
async fn check(db: &DatabaseConnection, case: &Case) -> Result<(), TestCaseError> {
    let all = case.wallets.iter().chain([&case.budget, &case.partner]);
    for account in all {
        let actual = get_account(db, account.id).await.unwrap().unwrap().counters;
        prop_assert_eq!(actual, case.model.counters(account.id), "account {}", account.id);
    }
    let report = audit(db).await.unwrap();
    prop_assert!(report.is_clean(), "audit: {:?}", report.violations);
    Ok(())
}

#[test]
fn the_ledger_agrees_with_a_naive_model_after_every_step() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tdb = rt.block_on(fresh_db_with_pool(4));
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let strategy = proptest::collection::vec(cmd(), 5..40);
    let result = runner.run(&strategy, |cmds| rt.block_on(run_case(&tdb.db, cmds)));
    if let Err(e) = result {
        panic!("{e}");
    }
}
