//! Property test: random sequences of grant / hold / post / partial post / void / expire /
//! transfer / refund / multi-leg operations (with holds among their legs) / replay / key reuse
//! with other metadata or other amounts / payments to another funder's partner (refused) /
//! blocking and unblocking a card / passing the campaign's deadlines (spending refused,
//! redemption until the partners' deadline, released holds to expired credit), run against the
//! real ledger on the real database AND
//! against a naive reference model (`passerelle_tests::ledger_model`). After every step the
//! answers must agree, every account's counters must equal the model's, and the audit must
//! find nothing.

use passerelle_domain::Cents;
use passerelle_domain::db::stmt;
use passerelle_domain::ledger::*;
use passerelle_tests::fresh_db_with_pool;
use passerelle_tests::ledger::{books, campaign_books, pass_wallet};
use passerelle_tests::ledger_model::{Model, Verdict, answer_code};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sea_orm::{ConnectionTrait, DatabaseConnection};
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
    /// A payment to another funder's partner: refused whole.
    Cross {
        wallet: usize,
        amount: i64,
    },
    /// The card of a wallet is blocked (lost) or active again.
    Block {
        wallet: usize,
        blocked: bool,
    },
    /// The generation deadline passes; the partners' deadline too when `validation`.
    Close {
        validation: bool,
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
        1 => (w.clone(), amount.clone()).prop_map(|(wallet, amount)| Cmd::Cross { wallet, amount }),
        1 => (w.clone(), any::<bool>()).prop_map(|(wallet, blocked)| Cmd::Block { wallet, blocked }),
        1 => proptest::bool::weighted(0.3).prop_map(|validation| Cmd::Close { validation }),
    ]
}

struct Case {
    wallets: Vec<AccountRef>,
    /// The pass of each wallet (its card).
    passes: Vec<Uuid>,
    budget: AccountRef,
    partner: AccountRef,
    /// A partner of another funder.
    foreign: AccountRef,
    scope: Scope,
    /// The campaign's expired credit (made up front: the ledger finds the same account).
    expired: AccountRef,
    model: Model,
    /// Every operation sent with a new key, and the ledger's first answer.
    history: Vec<(Operation, Result<Outcome, LedgerError>)>,
}

impl Case {
    /// Carries out a command that changes the world around the ledger (a card, the calendar)
    /// as the rest of the service will (a lost-card report, the passing of a deadline), and tells
    /// the model; `None` for the commands that send operations.
    async fn environment(&mut self, db: &DatabaseConnection, cmd: &Cmd) -> Option<()> {
        let backend = db.get_database_backend();
        match *cmd {
            Cmd::Block { wallet, blocked } => {
                let status = if blocked { "blocked" } else { "active" };
                let sql = "UPDATE pass SET status = $1 WHERE id = $2";
                db.execute_raw(stmt(backend, sql, [status.into(), self.passes[wallet].into()])).await.unwrap();
                self.model.block(self.wallets[wallet].id, blocked);
            }
            Cmd::Close { validation } => {
                let sql = if validation {
                    "UPDATE campaign SET generation_deadline_us = 0, validation_deadline_us = 0 WHERE id = $1"
                } else {
                    "UPDATE campaign SET generation_deadline_us = 0 WHERE id = $1"
                };
                db.execute_raw(stmt(backend, sql, [self.scope.campaign.into()])).await.unwrap();
                self.model.close(validation);
            }
            _ => return None,
        }
        Some(())
    }

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
            Cmd::Cross { wallet, amount } => {
                (vec![self.transfer(TransferKind::Payment, w(wallet), self.foreign, amount)], false)
            }
            Cmd::Replay { .. } | Cmd::Reuse { .. } | Cmd::ReuseAmounts { .. } => return None,
            Cmd::Block { .. } | Cmd::Close { .. } => return None,
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
    let (mut wallets, mut passes) = (vec![], vec![]);
    let mut model = Model::default();
    let b = campaign_books(db, i64::MAX, i64::MAX).await;
    for _ in 0..WALLETS {
        let (pass, wallet) = pass_wallet(db, b, 0).await;
        model.flag(wallet.id);
        wallets.push(wallet);
        passes.push(pass);
    }
    let foreign = books(db).await.partner;
    for account in wallets.iter().chain([&b.budget, &b.partner, &foreign]) {
        model.scope(account.id, account.scope);
    }
    let (budget, partner, scope) = (b.budget, b.partner, b.scope);
    let campaign = scope.campaign.expect("a campaign");
    let expired = ensure_account(db, AccountSpec::of(AccountKind::ExpiredCredit, campaign, scope)).await.unwrap();
    let mut case = Case { wallets, passes, budget, partner, foreign, scope, expired, model, history: vec![] };

    for (step, cmd) in cmds.into_iter().enumerate() {
        if case.environment(db, &cmd).await.is_some() {
            check(db, &case).await?;
            continue;
        }
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
    let all = case.wallets.iter().chain([&case.budget, &case.partner, &case.foreign]);
    for account in all {
        let actual = get_account(db, account.id).await.unwrap().unwrap().counters;
        prop_assert_eq!(actual, case.model.counters(account.id), "account {}", account.id);
    }
    let lost = get_account(db, case.expired.id).await.unwrap().unwrap().counters.credits_posted;
    prop_assert_eq!(lost, case.model.expired_credit(), "expired credit");
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
