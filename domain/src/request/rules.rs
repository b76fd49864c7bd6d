//! The request state machine. Pure: which party may do what in which state, and where it
//! leads. The service applies it inside one conditional update (`WHERE status = <from>`), so
//! two staff members deciding at once cannot both win.
//!
//! ```text
//! submitted ──acknowledge──▶ in_review ──approve/reject──▶ approved / rejected
//!     │  ▲                      │
//!     │  └────── answer ─── needs_info ◀── ask_info ──┘ (also from submitted)
//!     └─ approve/reject (decided at once)      any open state ──cancel──▶ cancelled
//! ```
//!
//! Démarches Simplifiées' model, reduced to what the Pass needs: an acknowledgement ("prise en
//! compte"), back-and-forth for missing information, a decision ("résolution").

crate::stored_enum! {
    /// What a family (or a partner) asks of the funder.
    #[derive(PartialOrd, Ord)]
    pub enum RequestKind {
        /// Sign a child up for a campaign the roster did not make it eligible for.
        Enrolment,
        /// The boursier amount, with a proof document.
        BoursierBonus,
        /// A new card number for a lost or stolen card, balances and tickets carried over.
        LostCard,
        /// Wrong school data (eligibility decided on it): decided through the staff override.
        DataCorrection,
        /// A family contests a redemption; staff settle it with the partner.
        RedemptionDispute,
        /// A club asks to accept the Pass (`applyForAffiliation`); approval makes it a partner.
        PartnerAffiliation,
    }
}

crate::stored_enum! {
    /// Where a request stands (contract: `RequestStatus`).
    pub enum RequestStatus {
        Submitted,
        InReview,
        NeedsInfo,
        Approved,
        Rejected,
        Cancelled,
    }
}

impl RequestStatus {
    /// No action changes a closed request; a new one must be filed.
    pub fn is_closed(self) -> bool {
        matches!(self, RequestStatus::Approved | RequestStatus::Rejected | RequestStatus::Cancelled)
    }
}

crate::stored_enum! {
    /// Who acts: the family (the requester, or staff at the counter acting for them) or the
    /// funder's staff deciding.
    pub enum Party {
        Family,
        Staff,
    }
}

crate::stored_enum! {
    /// Everything that can happen to a request; stored on each event.
    pub enum Action {
        Submit,
        Acknowledge,
        AskInfo,
        Answer,
        Approve,
        Reject,
        Cancel,
        /// A message, public or internal; the status stays.
        Comment,
        /// Staff hand the request to one of them; the status stays.
        Assign,
    }
}

/// Why an action is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// This party never does this (a family approving its own request).
    #[error("not allowed")]
    Forbidden,
    /// Not from this state (approving a cancelled request, answering when nothing was asked).
    #[error("a request {status} cannot be {action}")]
    WrongState { status: RequestStatus, action: Action },
}

/// The status after `action` by `party` on a request in `status`.
pub fn next(status: RequestStatus, party: Party, action: Action) -> Result<RequestStatus, Refusal> {
    use Action as A;
    use RequestStatus as S;
    let allowed = match action {
        A::Submit => return Err(Refusal::WrongState { status, action }), // only creates a request
        A::Acknowledge | A::AskInfo | A::Approve | A::Reject | A::Assign => party == Party::Staff,
        A::Answer | A::Cancel => party == Party::Family,
        A::Comment => true,
    };
    if !allowed {
        return Err(Refusal::Forbidden);
    }
    let to = match (action, status) {
        (A::Acknowledge, S::Submitted) => S::InReview,
        (A::AskInfo, S::Submitted | S::InReview) => S::NeedsInfo,
        (A::Answer, S::NeedsInfo) => S::Submitted,
        (A::Approve, S::Submitted | S::InReview) => S::Approved,
        (A::Reject, S::Submitted | S::InReview) => S::Rejected,
        (A::Cancel, S::Submitted | S::InReview | S::NeedsInfo) => S::Cancelled,
        (A::Comment | A::Assign, s) if !s.is_closed() => s,
        _ => return Err(Refusal::WrongState { status, action }),
    };
    Ok(to)
}

/// Which delays an action stops: the family's clock runs from submission to acknowledgement
/// (prise en compte), to the first staff response (traitement: a question, a public message or
/// a decision) and to the decision (résolution).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Milestones {
    pub acknowledges: bool,
    pub responds: bool,
    pub decides: bool,
}

/// The milestones `action` by `party` reaches (`public` says whether a message went to the family).
pub fn milestones(party: Party, action: Action, public: bool) -> Milestones {
    if party != Party::Staff {
        return Milestones::default();
    }
    let decides = matches!(action, Action::Approve | Action::Reject);
    let responds = decides || action == Action::AskInfo || (action == Action::Comment && public);
    // Any move of the request by staff shows it was taken into account; an internal note does not.
    let acknowledges = responds || action == Action::Acknowledge;
    Milestones { acknowledges, responds, decides }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use strum::VariantArray;

    use super::*;

    fn action() -> impl Strategy<Value = Action> {
        proptest::sample::select(Action::VARIANTS)
    }

    fn party() -> impl Strategy<Value = Party> {
        prop_oneof![Just(Party::Family), Just(Party::Staff)]
    }

    #[test]
    fn the_happy_path_and_the_back_and_forth() {
        use Action as A;
        use RequestStatus as S;
        let steps = [
            (Party::Staff, A::Acknowledge, S::InReview),
            (Party::Staff, A::AskInfo, S::NeedsInfo),
            (Party::Family, A::Answer, S::Submitted),
            (Party::Staff, A::Acknowledge, S::InReview),
            (Party::Staff, A::Comment, S::InReview),
            (Party::Staff, A::Approve, S::Approved),
        ];
        let mut s = S::Submitted;
        for (party, action, expected) in steps {
            s = next(s, party, action).unwrap();
            assert_eq!(s, expected, "{action} by {party:?}");
        }
        assert_eq!(next(s, Party::Family, A::Cancel), Err(Refusal::WrongState { status: s, action: A::Cancel }));
    }

    #[test]
    fn families_never_decide_and_staff_never_cancel_for_them() {
        for a in [Action::Acknowledge, Action::AskInfo, Action::Approve, Action::Reject] {
            assert_eq!(next(RequestStatus::Submitted, Party::Family, a), Err(Refusal::Forbidden));
        }
        assert_eq!(next(RequestStatus::NeedsInfo, Party::Staff, Action::Answer), Err(Refusal::Forbidden));
        assert_eq!(next(RequestStatus::Submitted, Party::Staff, Action::Cancel), Err(Refusal::Forbidden));
    }

    #[test]
    fn an_internal_note_is_no_response_to_the_family() {
        let note = milestones(Party::Staff, Action::Comment, false);
        assert_eq!(note, Milestones::default());
        let public = milestones(Party::Staff, Action::Comment, true);
        assert!(public.acknowledges && public.responds && !public.decides);
        assert!(milestones(Party::Staff, Action::Approve, false).decides);
        assert_eq!(milestones(Party::Family, Action::Answer, true), Milestones::default());
    }

    proptest! {
        /// Whatever is tried in whatever order: a closed request never changes again, only staff
        /// close it by a decision and only the family by a cancellation, a refused action
        /// changes nothing, and every status reached is one the diagram has.
        #[test]
        fn closed_requests_stay_closed_and_only_the_right_party_closes(
            steps in proptest::collection::vec((party(), action()), 1..40)
        ) {
            let mut status = RequestStatus::Submitted;
            for (party, action) in steps {
                let before = status;
                match next(before, party, action) {
                    Ok(to) => {
                        prop_assert!(!before.is_closed(), "{before} moved to {to}");
                        if to.is_closed() {
                            let by_staff = matches!(to, RequestStatus::Approved | RequestStatus::Rejected);
                            prop_assert_eq!(party == Party::Staff, by_staff);
                        }
                        if matches!(action, Action::Comment | Action::Assign) {
                            prop_assert_eq!(to, before);
                        }
                        status = to;
                    }
                    Err(Refusal::Forbidden) => {
                        prop_assert!(matches!(
                            (party, action),
                            (
                                Party::Family,
                                Action::Acknowledge | Action::AskInfo | Action::Approve | Action::Reject | Action::Assign
                            )
                                | (Party::Staff, Action::Answer | Action::Cancel)
                        ));
                    }
                    Err(Refusal::WrongState { status: s, .. }) => prop_assert_eq!(s, before),
                }
            }
        }

        /// Decided requests were acknowledged and answered: a decision reaches all three milestones.
        #[test]
        fn a_decision_reaches_every_milestone(public in any::<bool>()) {
            for a in [Action::Approve, Action::Reject] {
                let m = milestones(Party::Staff, a, public);
                prop_assert!(m.acknowledges && m.responds && m.decides);
            }
        }
    }
}
