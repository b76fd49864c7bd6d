//! The naive reference ledger of the property test (`tests/it/ledger_props.rs`): counters per
//! account folded leg by leg, holds in a list, and every key with the request it carried. It
//! shares no code with the ledger: what it expects comes from the rules written out again.

use std::collections::{BTreeSet, HashMap, HashSet};

use passerelle_domain::ledger::{
    AccountId, Counters, LedgerError, Leg, Operation, Outcome, Scope, TransferId, TransferKind,
};
use uuid::Uuid;

/// An answer as the model predicts it: success, or the refusal's code.
pub type Expected = Result<(), String>;

/// The ledger's answer in the model's terms. A database error is never an answer: it panics.
pub fn answer_code(r: &Result<Outcome, LedgerError>) -> Expected {
    match r {
        Ok(_) => Ok(()),
        Err(LedgerError::Rejected(rej)) => Err(rej.code().to_owned()),
        Err(LedgerError::IdempotencyConflict) => Err("IDEMPOTENCY_CONFLICT".into()),
        Err(LedgerError::Invalid(_)) => Err("invalid".into()),
        Err(LedgerError::Db(e)) => panic!("database error: {e}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum HoldState {
    Pending,
    Done,
}

#[derive(Clone, Debug)]
struct ModelHold {
    /// The ledger's id, known once the operation that placed it succeeded.
    id: TransferId,
    debit: AccountId,
    credit: AccountId,
    amount: i64,
    expired: bool,
    state: HoldState,
}

/// What the model says of a submitted operation.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// A new key: applied (or refused) now. On success, the model indexes of the holds it
    /// placed, in leg order: give them their ids with [`Model::placed`].
    New(Expected, Vec<usize>),
    /// A key already used for the same request: the stored answer again.
    Replay(Expected),
}

impl Verdict {
    pub fn expected(&self) -> &Expected {
        match self {
            Verdict::New(e, _) | Verdict::Replay(e) => e,
        }
    }
}

#[derive(Clone, Default)]
pub struct Model {
    counters: HashMap<AccountId, Counters>,
    flagged: HashMap<AccountId, bool>,
    holds: Vec<ModelHold>,
    /// (scope, key) → (the request as written, its stored answer).
    keys: HashMap<(String, String), (String, Expected)>,
    /// Each account's funder and campaign.
    scopes: HashMap<AccountId, Scope>,
    /// Wallets whose card is blocked.
    blocked: HashSet<AccountId>,
    /// The campaign's generation deadline has passed (no spending; releases go to expired credit).
    generation_closed: bool,
    /// The partners' deadline has passed too (no redemption).
    validation_closed: bool,
    /// What released holds sent to the campaign's expired credit.
    expired_credit: i64,
}

/// What spending a wallet requires besides its balance (the ledger's gate, written out again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Gate {
    Open,
    Redeem,
    Spend,
}

impl Model {
    /// The funder and campaign of an account.
    pub fn scope(&mut self, account: AccountId, scope: Scope) {
        self.scopes.insert(account, scope);
    }

    /// Blocks or unblocks the card of a wallet.
    pub fn block(&mut self, wallet: AccountId, blocked: bool) {
        if blocked {
            self.blocked.insert(wallet);
        } else {
            self.blocked.remove(&wallet);
        }
    }

    /// Passes the generation deadline, and the partners' deadline too when `validation`.
    pub fn close(&mut self, validation: bool) {
        self.generation_closed = true;
        self.validation_closed |= validation;
    }

    pub fn expired_credit(&self) -> i64 {
        self.expired_credit
    }

    /// Legs that name accounts of two funders, or of two campaigns, are refused before anything.
    fn crosses(&self, legs: &[Leg]) -> bool {
        let mut funders = BTreeSet::new();
        let mut campaigns = BTreeSet::new();
        for leg in legs {
            if let Leg::Transfer { debit, credit, .. } | Leg::Hold { debit, credit, .. } = leg {
                for account in [debit.id, credit.id] {
                    let Some(s) = self.scopes.get(&account) else { continue };
                    funders.insert(s.funder);
                    campaigns.extend(s.campaign);
                }
            }
        }
        funders.len() > 1 || campaigns.len() > 1
    }

    fn gate(&self, legs: &[Leg]) -> Gate {
        let spending = |kind: &TransferKind| {
            matches!(kind, TransferKind::Ticket | TransferKind::Payment | TransferKind::CardCharge)
        };
        legs.iter()
            .map(|leg| match leg {
                Leg::Transfer { kind, debit, .. } | Leg::Hold { kind, debit, .. }
                    if self.is_flagged(debit.id) && spending(kind) =>
                {
                    Gate::Spend
                }
                Leg::Post { .. } => Gate::Redeem,
                _ => Gate::Open,
            })
            .max()
            .unwrap_or(Gate::Open)
    }

    fn is_flagged(&self, account: AccountId) -> bool {
        self.flagged.get(&account).copied().unwrap_or(false)
    }

    /// An account that must not be overdrawn (a pass wallet).
    pub fn flag(&mut self, account: AccountId) {
        self.flagged.insert(account, true);
    }

    pub fn counters(&self, account: AccountId) -> Counters {
        self.counters.get(&account).copied().unwrap_or_default()
    }

    /// The id of the `i`-th hold placed so far (wrapping), if any.
    pub fn hold_id(&self, i: usize) -> Option<TransferId> {
        self.holds.get(i % self.holds.len().max(1)).map(|h| h.id)
    }

    /// Records the ledger's ids of the holds an operation placed (`new` from [`Verdict::New`]).
    pub fn placed(&mut self, new: &[usize], ids: &[TransferId]) {
        assert_eq!(new.len(), ids.len(), "one pending transfer per hold leg");
        for (model_index, id) in new.iter().zip(ids) {
            self.holds[*model_index].id = *id;
        }
    }

    /// What the ledger must answer to `op` (its holds expire at once if `holds_expired`). A key
    /// seen with another request conflicts; with the same request it gets the stored answer. A
    /// refused expiry is not stored (its answer depends on the clock): it runs again.
    pub fn submit(&mut self, op: &Operation, holds_expired: bool) -> Verdict {
        let key = (op.scope.clone(), op.key.clone());
        let request = format!("{:?} {}", op.legs, op.metadata);
        if let Some((stored, answer)) = self.keys.get(&key) {
            if *stored != request {
                return Verdict::Replay(Err("IDEMPOTENCY_CONFLICT".into()));
            }
            return Verdict::Replay(answer.clone());
        }
        let (answer, new_holds) = self.apply(&op.legs, holds_expired);
        let expiry = op.legs.iter().all(|l| matches!(l, Leg::Expire { .. }));
        let stored = match &answer {
            Err(code) if code == "invalid" => false,
            Err(_) => !expiry,
            Ok(()) => true,
        };
        if stored {
            self.keys.insert(key, (request, answer.clone()));
        }
        Verdict::New(answer, new_holds)
    }

    /// Applies legs to a copy; commits the copy on success.
    fn apply(&mut self, legs: &[Leg], hold_expired: bool) -> (Expected, Vec<usize>) {
        if self.crosses(legs) {
            return (Err("invalid".into()), vec![]);
        }
        let gate = self.gate(legs);
        let mut next = self.clone();
        let mut placed = vec![];
        let mut touched = BTreeSet::new();
        for leg in legs {
            match leg {
                Leg::Transfer { debit, credit, .. } | Leg::Hold { debit, credit, .. } => {
                    touched.extend([debit.id, credit.id]);
                }
                Leg::Post { hold, .. } | Leg::Void { hold } | Leg::Expire { hold } => {
                    if let Some(h) = next.holds.iter().find(|h| h.id == *hold) {
                        touched.extend([h.debit, h.credit]);
                    }
                }
            }
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
                    placed.push(next.holds.len() - 1);
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
                Leg::Void { hold } => next.release(*hold, |_| Ok(())),
                Leg::Expire { hold } => {
                    next.release(*hold, |h| if h.expired { Ok(()) } else { Err("HOLD_NOT_EXPIRED".into()) })
                }
            };
            if let Err(e) = r {
                return (Err(e), vec![]);
            }
        }
        // Every wallet the operation touches, in id order: its balance, and for a wallet given
        // out from under a gate, its card and the gate's deadline. The first refusal answers.
        for id in touched.into_iter().filter(|id| self.is_flagged(*id)) {
            let (before, after) = (self.counters(id), next.counters(id));
            let debits = after.debits_posted > before.debits_posted || after.debits_pending > before.debits_pending;
            let gated = gate != Gate::Open && debits;
            let closed = match gate {
                Gate::Spend => next.generation_closed,
                Gate::Redeem => next.validation_closed,
                Gate::Open => false,
            };
            if gated && next.blocked.contains(&id) {
                return (Err("CARD_BLOCKED".into()), vec![]);
            }
            if gated && closed {
                return (Err("CAMPAIGN_CLOSED".into()), vec![]);
            }
            if after.available() < 0 {
                return (Err("INSUFFICIENT_FUNDS".into()), vec![]);
            }
        }
        *self = next;
        (Ok(()), placed)
    }

    /// Releases a hold (void or expiry); after the generation deadline the held credit of a
    /// wallet goes to the campaign's expired credit instead of back to the wallet.
    fn release(&mut self, id: TransferId, allowed: impl Fn(&ModelHold) -> Result<(), String>) -> Result<(), String> {
        let held = self.holds.iter().find(|h| h.id == id).map(|h| (h.debit, h.amount));
        self.resolve(id, |h| allowed(h).map(|()| 0))?;
        if let Some((wallet, amount)) = held.filter(|(w, _)| self.generation_closed && self.is_flagged(*w)) {
            self.c(wallet).debits_posted += amount;
            self.expired_credit += amount;
        }
        Ok(())
    }

    fn c(&mut self, id: AccountId) -> &mut Counters {
        self.counters.entry(id).or_default()
    }

    /// Resolves a hold: `moved` returns how much to post (0 = release only) or a refusal code.
    fn resolve(&mut self, id: TransferId, moved: impl FnOnce(&ModelHold) -> Result<i64, String>) -> Result<(), String> {
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
