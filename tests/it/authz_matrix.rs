//! The authorization matrix: every root query and mutation × every kind of caller, with the
//! expected outcome. A new operation without an entry fails this test: the default is deny,
//! and someone must decide who may call it.

use std::collections::BTreeSet;

use passerelle_domain::auth::{AccountKind, Actor, StaffRole, create_account, create_api_client, create_staff_account};
use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::partner::{PartnerRole, add_partner_member, create_partner};
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{TestApp, code};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "a long passphrase for the matrix";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    ParentA,
    ParentB,
    PartnerMember,
    PartnerOwner,
    /// Club software with a client-credentials token of the owner's partner.
    PartnerClient,
    Admin,
    EligibilityOfficer,
    FinanceOfficer,
    Auditor,
}

const EVERYONE: [Who; 10] = [
    Who::Anonymous,
    Who::ParentA,
    Who::ParentB,
    Who::PartnerMember,
    Who::PartnerOwner,
    Who::PartnerClient,
    Who::Admin,
    Who::EligibilityOfficer,
    Who::FinanceOfficer,
    Who::Auditor,
];

/// Who may call an operation; everyone else is refused (UNAUTHENTICATED when anonymous,
/// FORBIDDEN otherwise).
#[derive(Clone, Copy)]
enum Rule {
    /// Open to all: the answer does not depend on who asks (a failed sign-in is
    /// UNAUTHENTICATED for everyone alike).
    Public,
    /// People signed in on a device (not API clients: no account, no session to manage).
    Accounts,
    Parents,
    Staff(&'static [Who]),
    /// Managing the partner's API clients.
    PartnerOwner,
    /// Acting for a partner: its members and its API clients.
    Partner,
    /// A requester's own requests (parents, clubs' people), and staff with these roles (reading
    /// them, or acting for the family at the counter).
    FamilyOrStaff(&'static [Who]),
    /// People of a club (not its software): applying to join.
    PartnerPeople,
    /// Who has an inbox: parents and clubs' people.
    Inbox,
}

const ANY_STAFF: &[Who] = &[Who::Admin, Who::EligibilityOfficer, Who::FinanceOfficer, Who::Auditor];
const ADMIN: &[Who] = &[Who::Admin];
const ELIGIBILITY: &[Who] = &[Who::Admin, Who::EligibilityOfficer];
const REQUEST_READERS: &[Who] = &[Who::Admin, Who::EligibilityOfficer, Who::Auditor];
const SETTLE: &[Who] = &[Who::Admin, Who::FinanceOfficer];

impl Rule {
    fn allows(self, who: Who) -> bool {
        match self {
            Rule::Public => true,
            Rule::Accounts => !matches!(who, Who::Anonymous | Who::PartnerClient),
            Rule::Parents => matches!(who, Who::ParentA | Who::ParentB),
            Rule::Staff(list) => list.contains(&who),
            Rule::PartnerOwner => who == Who::PartnerOwner,
            Rule::Partner => matches!(who, Who::PartnerMember | Who::PartnerOwner | Who::PartnerClient),
            Rule::PartnerPeople => matches!(who, Who::PartnerMember | Who::PartnerOwner),
            Rule::Inbox => matches!(who, Who::ParentA | Who::ParentB | Who::PartnerMember | Who::PartnerOwner),
            Rule::FamilyOrStaff(list) => {
                matches!(who, Who::ParentA | Who::ParentB | Who::PartnerMember | Who::PartnerOwner)
                    || list.contains(&who)
            }
        }
    }
}

struct Fixture {
    funder: Uuid,
    campaign: Uuid,
    pupil: Uuid,
    parent_a: Uuid,
}

/// The matrix: operation name, rule, and a request exercising it.
fn matrix(f: &Fixture) -> Vec<(&'static str, Rule, String, Value)> {
    let (fu, ca, pu, pa) = (f.funder.to_string(), f.campaign.to_string(), f.pupil.to_string(), f.parent_a.to_string());
    let some_id = json!({ "c": Uuid::new_v4().to_string() });
    let device = json!({ "deviceId": "m", "platform": "WEB", "name": "matrix" });
    vec![
        ("serverInfo", Rule::Public, "{ serverInfo { version } }".into(), json!({})),
        ("viewer", Rule::Public, "{ viewer { id } }".into(), json!({})),
        ("logIn", Rule::Public, "mutation($d: DeviceInput!) { logIn(input: { email: \"pa@example.org\", password: \"a long passphrase for the matrix\", device: $d }) { accessToken } }".into(), json!({ "d": device })),
        ("entSignIn", Rule::Public, "mutation { entSignIn(input: { ticket: \"ST-x\", service: \"s\", device: { deviceId: \"m\", platform: WEB, name: \"m\" } }) { accessToken } }".into(), json!({})),
        ("oidcProviders", Rule::Public, "{ oidcProviders }".into(), json!({})),
        ("startOidcSignIn", Rule::Public, "mutation { startOidcSignIn(input: { provider: \"none\" }) { state } }".into(), json!({})),
        ("completeOidcSignIn", Rule::Public, "mutation($d: DeviceInput!) { completeOidcSignIn(input: { state: \"nope\", code: \"c\", device: $d }) { accessToken } }".into(), json!({ "d": device })),
        ("refreshSession", Rule::Public, "mutation { refreshSession(refreshToken: \"nope\") { accessToken } }".into(), json!({})),
        ("signUp", Rule::Public, "mutation { signUp(input: { email: \"new-matrix@example.org\", password: \"short\", displayName: \"M\" }) { verificationSent } }".into(), json!({})),
        ("requestPasswordReset", Rule::Public, "mutation { requestPasswordReset(email: \"nobody@example.org\") }".into(), json!({})),
        ("resetPassword", Rule::Public, "mutation { resetPassword(token: \"nope\", newPassword: \"a brand new passphrase\") }".into(), json!({})),
        ("verifyEmail", Rule::Public, "mutation { verifyEmail(token: \"nope\") }".into(), json!({})),
        ("sessions", Rule::Accounts, "{ sessions { id } }".into(), json!({})),
        ("logOut", Rule::Accounts, "mutation($s: ID) { logOut(sessionId: $s) }".into(), json!({ "s": Uuid::new_v4().to_string() })),
        ("children", Rule::Parents, "{ children { id } }".into(), json!({})),
        ("requestChildLink", Rule::Parents, "mutation { requestChildLink(input: { uai: \"0921778H\", pupilFamilyName: \"X\", pupilGivenName: \"Y\", pupilBirthDate: \"2014-01-01\" }) { challengeId } }".into(), json!({})),
        ("confirmChildLink", Rule::Parents, "mutation($c: ID!) { confirmChildLink(challengeId: $c, code: \"000000\") { id } }".into(), json!({ "c": Uuid::new_v4().to_string() })),
        ("campaigns", Rule::Staff(ANY_STAFF), "query($f: ID!) { campaigns(funderId: $f) { id } }".into(), json!({ "f": fu })),
        ("pupils", Rule::Staff(ANY_STAFF), "query($f: ID!) { pupils(filter: { funderId: $f }, first: 5) { edges { cursor } } }".into(), json!({ "f": fu })),
        ("rosterImports", Rule::Staff(ANY_STAFF), "query($f: ID!) { rosterImports(funderId: $f, first: 5) { edges { cursor } } }".into(), json!({ "f": fu })),
        ("upsertCampaign", Rule::Staff(ADMIN), "mutation($f: ID!) { upsertCampaign(input: { funderId: $f, schoolYear: 2027, name: \"x\", wallets: [{ wallet: SPORT, base: \"40.00\", boursier: \"50.00\" }], eligibleGrades: [SIXIEME], territory: SCHOOL, departement: \"92\", opensOn: \"2027-09-01\", generationDeadline: \"2028-06-30\", validationDeadline: \"2029-06-30\" }) { id } }".into(), json!({ "f": fu })),
        ("runCampaignGrant", Rule::Staff(ADMIN), "mutation($c: ID!) { runCampaignGrant(campaignId: $c) { passes } }".into(), json!({ "c": ca })),
        ("setEligibility", Rule::Staff(ELIGIBILITY), "mutation($p: ID!, $c: ID!) { setEligibility(input: { pupilId: $p, campaignId: $c, eligible: true, reason: \"matrix\" }) { eligible } }".into(), json!({ "p": pu, "c": ca })),
        ("importRoster", Rule::Staff(ELIGIBILITY), "mutation($f: ID!, $u: ID!) { importRoster(input: { funderId: $f, format: CSV, uploadIds: [$u] }) { id } }".into(), json!({ "f": fu, "u": Uuid::new_v4().to_string() })),
        ("reauthenticate", Rule::Accounts, "mutation { reauthenticate(input: { password: \"not the password\" }) { validUntil } }".into(), json!({})),
        ("linkChildToAccount", Rule::Staff(ELIGIBILITY), "mutation($a: ID!, $p: ID!) { linkChildToAccount(input: { accountId: $a, pupilId: $p, reason: \"matrix\" }) { linked } }".into(), json!({ "a": pa, "p": pu })),
        ("unlinkChild", Rule::Staff(ELIGIBILITY), "mutation($a: ID!, $p: ID!) { unlinkChild(input: { accountId: $a, pupilId: $p, reason: \"matrix\" }) { linked } }".into(), json!({ "a": pa, "p": pu })),
        ("partnerProfile", Rule::Partner, "{ partnerProfile { id name } }".into(), json!({})),
        ("apiClients", Rule::PartnerOwner, "{ apiClients { id clientId } }".into(), json!({})),
        ("createApiClient", Rule::PartnerOwner, "mutation { createApiClient(input: { name: \"matrix\" }) { clientSecret } }".into(), json!({})),
        ("rotateApiClientSecret", Rule::PartnerOwner, "mutation($c: ID!) { rotateApiClientSecret(input: { apiClientId: $c }) { clientSecret } }".into(), some_id.clone()),
        ("revokeApiClient", Rule::PartnerOwner, "mutation($c: ID!) { revokeApiClient(input: { apiClientId: $c }) { id } }".into(), some_id.clone()),
        ("partners", Rule::Parents, "{ partners(first: 5) { edges { node { id name } } } }".into(), json!({})),
        ("issueTicket", Rule::Parents, "mutation($c: ID!) { issueTicket(input: { passId: $c, wallet: SPORT, amount: \"5.00\", idempotencyKey: \"m\" }) { replayed } }".into(), some_id.clone()),
        ("cancelTicket", Rule::Parents, "mutation($c: ID!) { cancelTicket(ticketId: $c) { id } }".into(), some_id.clone()),
        ("payPartner", Rule::Parents, "mutation($c: ID!) { payPartner(input: { passId: $c, wallet: SPORT, amount: \"5.00\", partnerId: $c, idempotencyKey: \"m\" }) { replayed } }".into(), some_id.clone()),
        ("setCardPin", Rule::Parents, "mutation($c: ID!) { setCardPin(input: { passId: $c, pin: \"1234\", password: \"x\" }) { id } }".into(), some_id.clone()),
        ("reportLostCard", Rule::Parents, "mutation($c: ID!) { reportLostCard(passId: $c) { id } }".into(), some_id.clone()),
        ("lookupTicket", Rule::Partner, "{ lookupTicket(code: \"ABCDE-FGHJK\") { status } }".into(), json!({})),
        ("redemptions", Rule::Partner, "{ redemptions(first: 5) { edges { cursor } } }".into(), json!({})),
        ("redeemTicket", Rule::Partner, "mutation { redeemTicket(input: { code: \"ABCDE-FGHJK\", idempotencyKey: \"m\" }) { replayed } }".into(), json!({})),
        ("chargeCard", Rule::Partner, "mutation { chargeCard(input: { cardNumber: \"0000 0000 0000 0000\", pin: \"1234\", wallet: SPORT, amount: \"5.00\", idempotencyKey: \"m\" }) { replayed } }".into(), json!({})),
        ("notifications", Rule::Inbox, "{ notifications(first: 5) { edges { cursor } } }".into(), json!({})),
        ("unreadNotificationCount", Rule::Inbox, "{ unreadNotificationCount }".into(), json!({})),
        ("notificationPreferences", Rule::Inbox, "{ notificationPreferences { kind } }".into(), json!({})),
        ("markNotificationsRead", Rule::Inbox, "mutation { markNotificationsRead }".into(), json!({})),
        ("setNotificationPreference", Rule::Inbox, "mutation { setNotificationPreference(input: { kind: REFUND, push: true, email: true }) { kind } }".into(), json!({})),
        ("registerPushToken", Rule::Accounts, "mutation { registerPushToken(input: { token: \"matrix-token\", platform: ANDROID }) }".into(), json!({})),
        ("requests", Rule::Parents, "{ requests(first: 5) { edges { cursor } } }".into(), json!({})),
        ("request", Rule::FamilyOrStaff(REQUEST_READERS), "query($c: ID!) { request(id: $c) { id } }".into(), some_id.clone()),
        ("submitRequest", Rule::Parents, "mutation($c: ID!) { submitRequest(input: { kind: LOST_CARD, subjectId: $c }) { id } }".into(), some_id.clone()),
        ("enrol", Rule::Parents, "mutation($p: ID!, $c: ID!) { enrol(input: { childId: $p, campaignId: $c }) { id } }".into(), json!({ "p": pu, "c": ca })),
        ("answerRequest", Rule::FamilyOrStaff(ELIGIBILITY), "mutation($c: ID!) { answerRequest(input: { requestId: $c, message: \"m\" }) { id } }".into(), some_id.clone()),
        ("cancelRequest", Rule::FamilyOrStaff(ELIGIBILITY), "mutation($c: ID!) { cancelRequest(requestId: $c) { id } }".into(), some_id.clone()),
        ("commentRequest", Rule::FamilyOrStaff(ELIGIBILITY), "mutation($c: ID!) { commentRequest(input: { requestId: $c, message: \"m\" }) { id } }".into(), some_id.clone()),
        ("requestQueue", Rule::Staff(REQUEST_READERS), "query($f: ID!) { requestQueue(filter: { funderId: $f }) { edges { cursor } } }".into(), json!({ "f": fu })),
        ("requestStats", Rule::Staff(REQUEST_READERS), "query($f: ID!) { requestStats(funderId: $f) { kind } }".into(), json!({ "f": fu })),
        ("acknowledgeRequest", Rule::Staff(ELIGIBILITY), "mutation($c: ID!) { acknowledgeRequest(requestId: $c) { id } }".into(), some_id.clone()),
        ("assignRequest", Rule::Staff(ELIGIBILITY), "mutation($c: ID!) { assignRequest(input: { requestId: $c }) { id } }".into(), some_id.clone()),
        ("decideRequest", Rule::Staff(ELIGIBILITY), "mutation($c: ID!) { decideRequest(input: { requestId: $c, decision: APPROVE }) { id } }".into(), some_id.clone()),
        ("openRequestAtCounter", Rule::Staff(ELIGIBILITY), "mutation($c: ID!) { openRequestAtCounter(input: { kind: LOST_CARD, subjectId: $c }) { id } }".into(), some_id.clone()),
        ("applyForAffiliation", Rule::PartnerPeople, "mutation($f: ID!) { applyForAffiliation(input: { funderId: $f, name: \"C\", kind: ASSOCIATION, categories: [SPORT], address: \"a\", postcode: \"92140\", commune: \"Clamart\", communeInsee: \"92023\", lat: 48.8, lon: 2.26, contactEmail: \"c@example.org\", legalName: \"C\", siret: \"73282932000074\", iban: \"x\", accountHolder: \"C\", conventionVersion: \"x\", acceptConvention: true }) { id } }".into(), json!({ "f": fu })),
        ("approvePartner", Rule::Staff(ELIGIBILITY), "mutation($c: ID!) { approvePartner(partnerId: $c) { id } }".into(), some_id.clone()),
        ("suspendPartner", Rule::Staff(ELIGIBILITY), "mutation($c: ID!) { suspendPartner(input: { partnerId: $c, reason: \"m\" }) { id } }".into(), some_id.clone()),
        ("reinstatePartner", Rule::Staff(ELIGIBILITY), "mutation($c: ID!) { reinstatePartner(input: { partnerId: $c, reason: \"m\" }) { id } }".into(), some_id.clone()),
        ("upsertActivity", Rule::Partner, "mutation { upsertActivity(input: { title: \"Judo\", category: SPORT }) { id } }".into(), json!({})),
        ("settlementBatch", Rule::Staff(ANY_STAFF), "query($c: ID!) { settlementBatch(id: $c) { id } }".into(), some_id.clone()),
        ("reimbursements", Rule::Partner, "{ reimbursements(first: 5) { edges { cursor } } }".into(), json!({})),
        ("createSettlementBatch", Rule::Staff(SETTLE), "mutation($f: ID!) { createSettlementBatch(input: { funderId: $f, cutoff: \"2026-01-15\" }) { id } }".into(), json!({ "f": fu })),
        ("approveSettlementBatch", Rule::Staff(SETTLE), "mutation($c: ID!) { approveSettlementBatch(batchId: $c) { id } }".into(), some_id.clone()),
        ("setPartnerBankDetails", Rule::Staff(SETTLE), "mutation($c: ID!) { setPartnerBankDetails(input: { partnerId: $c, legalName: \"x\", siret: \"73282932000074\", iban: \"x\", accountHolder: \"x\" }) { validated } }".into(), some_id.clone()),
        ("validatePartnerBankDetails", Rule::Staff(SETTLE), "mutation($c: ID!) { validatePartnerBankDetails(input: { partnerId: $c, iban: \"x\" }) { validated } }".into(), some_id.clone()),
        ("setFunderSettlementAccount", Rule::Staff(ADMIN), "mutation($f: ID!) { setFunderSettlementAccount(input: { funderId: $f, name: \"x\", iban: \"x\", bic: \"x\" }) { schedule } }".into(), json!({ "f": fu })),
        ("refundRedemption", Rule::Partner, "mutation($c: ID!) { refundRedemption(input: { redemptionId: $c, amount: \"5.00\", idempotencyKey: \"m\" }) { replayed } }".into(), some_id),
    ]
}

async fn token(app: &TestApp, email: &str, totp: Option<passerelle_domain::identity::TotpSecret>) -> String {
    let code = totp.map(|t| t.code_at(chrono::Utc::now().timestamp() as u64));
    let q = "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }";
    let v = json!({ "i": { "email": email, "password": PASSWORD, "totpCode": code, "device": { "deviceId": "m", "platform": "WEB", "name": "m" } } });
    let body = app.graphql(q, v).await;
    body["data"]["logIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("{email}: {body}")).to_owned()
}

#[tokio::test]
async fn every_operation_answers_each_kind_of_caller_as_the_matrix_says() {
    let app = TestApp::spawn().await;
    let f = funder(&app.db, "92").await;
    let c = upsert_campaign(&app.db, f, 2026, "Pass+", &Policy::pass_plus("92", 2026), "t").await.unwrap();
    let pupil =
        insert_pupils(&app.db, f, &[PupilSeed { key: "k", grade: "5E", uai: "0921778H", boursier: false }]).await[0];
    let club = create_partner(&app.db, "Club").await.unwrap();

    let mut tokens: Vec<(Who, Option<String>)> = vec![(Who::Anonymous, None)];
    let mut parent_a = Uuid::nil();
    for (who, email, kind, role) in [
        (Who::ParentA, "pa@example.org", AccountKind::Parent, None),
        (Who::ParentB, "pb@example.org", AccountKind::Parent, None),
        (Who::PartnerMember, "pm@example.org", AccountKind::PartnerMember, Some(PartnerRole::Member)),
        (Who::PartnerOwner, "po@example.org", AccountKind::PartnerMember, Some(PartnerRole::Owner)),
    ] {
        let (account, _) = create_account(&app.db, kind, email, PASSWORD, "x", true, &[]).await.unwrap();
        if let Some(role) = role {
            add_partner_member(&app.db, club.id, account.id, role).await.unwrap();
        }
        if who == Who::ParentA {
            parent_a = account.id;
        }
        tokens.push((who, Some(token(&app, email, None).await)));
    }
    let issued = create_api_client(&app.db, &Actor::tool("matrix"), club.id, "club software").await.unwrap();
    let (status, _, body) =
        app.oauth_token(Some((&issued.client.client_id, &issued.secret)), "grant_type=client_credentials").await;
    let client_token = body["access_token"].as_str().unwrap_or_else(|| panic!("{status}: {body}")).to_owned();
    tokens.push((Who::PartnerClient, Some(client_token)));
    let fixture = Fixture { funder: f, campaign: c.id, pupil, parent_a };
    for (who, email, role) in [
        (Who::Admin, "admin@example.org", StaffRole::Admin),
        (Who::EligibilityOfficer, "elig@example.org", StaffRole::EligibilityOfficer),
        (Who::FinanceOfficer, "fin@example.org", StaffRole::FinanceOfficer),
        (Who::Auditor, "audit@example.org", StaffRole::Auditor),
    ] {
        let (_, totp) = create_staff_account(&app.db, &app.data_key, email, PASSWORD, "x", &[(f, role)]).await.unwrap();
        tokens.push((who, Some(token(&app, email, Some(totp)).await)));
    }
    assert_eq!(tokens.iter().map(|(w, _)| *w).collect::<Vec<_>>(), EVERYONE.to_vec());

    // Every root operation of the served schema has an entry, and every entry still exists.
    let intro =
        app.graphql("{ __schema { queryType { fields { name } } mutationType { fields { name } } } }", json!({})).await;
    let mut served = BTreeSet::new();
    for root in ["queryType", "mutationType"] {
        for field in intro["data"]["__schema"][root]["fields"].as_array().unwrap() {
            served.insert(field["name"].as_str().unwrap().to_owned());
        }
    }
    let entries = matrix(&fixture);
    let listed: BTreeSet<String> = entries.iter().map(|(n, ..)| n.to_string()).collect();
    assert_eq!(served, listed, "operations without a matrix entry (or entries without an operation)");

    for (name, rule, query, vars) in &entries {
        let mut public_codes = BTreeSet::new();
        for (who, bearer) in &tokens {
            let body = match bearer {
                Some(t) => app.graphql_as(t, query, vars.clone()).await,
                None => app.graphql(query, vars.clone()).await,
            };
            let code = code(&body);
            if matches!(rule, Rule::Public) {
                assert_ne!(code, "FORBIDDEN", "{name} as {who:?}: {body}");
                // Ten callers asking one address in a row use up its mail allowance: throttling
                // depends on what was asked before, not on who asks.
                if code != "RATE_LIMITED" {
                    public_codes.insert(code.to_owned());
                }
            } else if rule.allows(*who) {
                assert!(!matches!(code, "UNAUTHENTICATED" | "FORBIDDEN"), "{name} should be open to {who:?}: {body}");
            } else {
                let expected = if *who == Who::Anonymous { "UNAUTHENTICATED" } else { "FORBIDDEN" };
                assert_eq!(code, expected, "{name} as {who:?}: {body}");
                assert!(
                    body["data"].is_null() || body["data"][*name].is_null(),
                    "{name} as {who:?} leaked data: {body}"
                );
            }
        }
        assert!(public_codes.len() <= 1, "{name} answers differently depending on the caller: {public_codes:?}");
    }
    app.stop().await;
}
