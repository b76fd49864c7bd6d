//! The whole story of a Pass, over HTTP, as the apps live it: staff import the roster and run
//! the grant; a parent links two children and sees 80 € / 100 €; issues a ticket for the judo
//! club, which checks it offline against the JWKS and redeems 25 € of 30 €, then refunds 10 €;
//! the theatre's software charges the card with its PIN; five wrong PINs block it; past the
//! generation deadline the scheduler moves what is left to expired credit, and a ticket
//! cancelled then goes there too; the ledger audit is clean.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passerelle_domain::auth::{AccountKind, Actor, StaffRole, create_account, create_api_client};
use passerelle_domain::ledger::{Wallet, audit};
use passerelle_domain::partner::{PartnerRole, add_partner_member, approve_partner, create_partner};
use passerelle_tests::accounts::{PASSWORD, sign_in, staff, totp};
use passerelle_tests::school::funder;
use passerelle_tests::smtp::{SmtpSink, digits};
use passerelle_tests::{TestApp, code};
use serde_json::{Value, json};

const ROSTER: &str = "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;\
echelon;resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;\
date_sortie\n\
0921778H;070832327JA;900001;MARTIN;Léa;14/03/2015;10010012110;6A;N;;800001;1;10;MARTIN;Claire;claire@example.org;;1;1;\n\
0921778H;070832328KB;900002;MARTIN;Hugo;02/09/2012;10210001110;4C;O;2;800001;1;10;MARTIN;Claire;claire@example.org;;1;1;\n";

const CHILDREN: &str = "{ children { givenName school { uai } pass { id number status \
    wallets { wallet granted available held spent expired } } } }";

fn campaign(funder: &str, generation: &str, opens: &str) -> Value {
    json!({ "i": {
        "funderId": funder, "schoolYear": 2026, "name": "Pass+ 2026-2027",
        "wallets": [
            { "wallet": "SPORT", "base": "40.00", "boursier": "50.00" },
            { "wallet": "CULTURE", "base": "40.00", "boursier": "50.00" }
        ],
        "eligibleGrades": ["SIXIEME", "CINQUIEME", "QUATRIEME", "TROISIEME"],
        "territory": "SCHOOL", "departement": "92",
        "opensOn": opens, "generationDeadline": generation, "validationDeadline": "2099-06-30"
    }})
}

/// `{wallet: [granted, available, held, spent, expired]}` of one child's pass.
fn wallets(children: &Value, name: &str) -> Value {
    let child = children["data"]["children"].as_array().unwrap().iter().find(|c| c["givenName"] == name).unwrap();
    let mut out = serde_json::Map::new();
    for w in child["pass"]["wallets"].as_array().unwrap() {
        let v: Vec<Value> =
            ["granted", "available", "held", "spent", "expired"].iter().map(|k| w[*k].clone()).collect();
        out.insert(w["wallet"].as_str().unwrap().to_owned(), Value::Array(v));
    }
    Value::Object(out)
}

fn pass_of(children: &Value, name: &str) -> (String, String) {
    let child = children["data"]["children"].as_array().unwrap().iter().find(|c| c["givenName"] == name).unwrap();
    (child["pass"]["id"].as_str().unwrap().to_owned(), child["pass"]["number"].as_str().unwrap().to_owned())
}

/// Checks a ticket's compact JWS with the keys fetched earlier, as a partner app does with no
/// network: header, Ed25519 signature, claims.
fn verify_offline(jwks: &Value, jws: &str) -> Value {
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("EdDSA"), Some("pass-ticket+jwt")));
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid in the JWKS");
    assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    let x: [u8; 32] = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(parts[2]).unwrap().try_into().unwrap();
    let input = format!("{}.{}", parts[0], parts[1]);
    public.verify_strict(input.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).expect("valid signature");
    let mut forged = parts[1].to_owned();
    forged.push('A');
    let tampered = format!("{}.{}", parts[0], forged);
    assert!(public.verify_strict(tampered.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).is_err());
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

/// Whether a `passUpdated` event shows the sport wallet at `available` (earlier changes may
/// come first).
fn sport_available(data: &Value, available: &str) -> bool {
    let wallets = data["passUpdated"]["wallets"].as_array().cloned().unwrap_or_default();
    wallets.iter().any(|w| w["wallet"] == "SPORT" && w["available"] == available)
}

const ISSUE: &str = "mutation($i: IssueTicketInput!) { issueTicket(input: $i) { replayed ticket { id code status \
    amount validUntil qrPayload partner { name } } } }";
const REDEEM: &str = "mutation($i: RedeemTicketInput!) { redeemTicket(input: $i) { replayed redemption { id amount \
    refundedAmount status partner { name } } } }";
const CHARGE: &str = "mutation($i: ChargeCardInput!) { chargeCard(input: $i) { redemption { amount source } } }";

#[tokio::test]
async fn the_story_of_a_pass_from_the_roster_to_expired_credit() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with_smtp(&sink).await;
    let f = funder(&app.db, "92").await;

    // Staff: campaign, roster upload and import, grant.
    let (_, secret) = staff(&app, "admin@example.org", &[(f, StaffRole::Admin)]).await;
    let admin = sign_in(&app, "admin@example.org", Some(&totp(&secret, 0))).await;
    let upsert = "mutation($i: CampaignInput!) { upsertCampaign(input: $i) { id } }";
    let body = app.graphql_as(&admin, upsert, campaign(&f.to_string(), "2099-06-30", "2026-09-01")).await;
    let campaign_id = body["data"]["upsertCampaign"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    let upload: Value = app
        .client
        .post(app.url("/uploads"))
        .bearer_auth(&admin)
        .body(ROSTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let import = "mutation($i: ImportRosterInput!) { importRoster(input: $i) { status created } }";
    let v = json!({ "i": { "funderId": f.to_string(), "format": "CSV", "uploadIds": [upload["id"]] } });
    let body = app.graphql_as(&admin, import, v).await;
    assert_eq!(body["data"]["importRoster"], json!({ "status": "SUCCEEDED", "created": 2 }), "{body}");
    let grant = "mutation($c: ID!) { runCampaignGrant(campaignId: $c) { passes creditedAmount } }";
    let body = app.graphql_as(&admin, grant, json!({ "c": campaign_id })).await;
    assert_eq!(body["data"]["runCampaignGrant"], json!({ "passes": 2, "creditedAmount": "180.00" }), "{body}");

    // The parent links both children with the codes sent to the school record's address.
    create_account(&app.db, AccountKind::Parent, "claire@example.org", PASSWORD, "Claire", true, &[]).await.unwrap();
    let parent = sign_in(&app, "claire@example.org", None).await;
    for (n, (given, born)) in [("Léa", "2015-03-14"), ("Hugo", "2012-09-02")].into_iter().enumerate() {
        let q = "mutation($i: RequestChildLinkInput!) { requestChildLink(input: $i) { challengeId } }";
        let v = json!({ "i": { "uai": "0921778H", "pupilFamilyName": "Martin", "pupilGivenName": given, "pupilBirthDate": born } });
        let body = app.graphql_as(&parent, q, v).await;
        let challenge = body["data"]["requestChildLink"]["challengeId"].as_str().unwrap().to_owned();
        let mail = sink.wait_for("claire@example.org", n + 1).await.pop().expect("the code's mail");
        let code6 = digits(&mail.data, 6).expect("a code in the mail");
        let q = "mutation($c: ID!, $k: String!) { confirmChildLink(challengeId: $c, code: $k) { givenName } }";
        let body = app.graphql_as(&parent, q, json!({ "c": challenge, "k": code6 })).await;
        assert_eq!(body["data"]["confirmChildLink"]["givenName"], given, "{body}");
    }
    let children = app.graphql_as(&parent, CHILDREN, json!({})).await;
    assert_eq!(wallets(&children, "Léa")["SPORT"], json!(["40.00", "40.00", "0.00", "0.00", "0.00"]), "{children}");
    assert_eq!(wallets(&children, "Hugo")["SPORT"], json!(["50.00", "50.00", "0.00", "0.00", "0.00"]));
    assert_eq!(wallets(&children, "Hugo")["CULTURE"], json!(["50.00", "50.00", "0.00", "0.00", "0.00"]));
    let (hugo, hugo_card) = pass_of(&children, "Hugo");
    let (lea, _) = pass_of(&children, "Léa");

    // The clubs: a judo club (a member signs in) and a theatre (its software, client credentials).
    let club = create_partner(&app.db, "Club de judo de Bagneux").await.unwrap().id;
    approve_partner(&app.db, club, f, &[Wallet::Sport], Some("Bagneux")).await.unwrap();
    let member = create_account(&app.db, AccountKind::PartnerMember, "judo@example.org", PASSWORD, "Judo", true, &[])
        .await
        .unwrap()
        .0
        .id;
    add_partner_member(&app.db, club, member, PartnerRole::Member).await.unwrap();
    let judo = sign_in(&app, "judo@example.org", None).await;
    let theatre = create_partner(&app.db, "Théâtre Victor Hugo").await.unwrap().id;
    approve_partner(&app.db, theatre, f, &[Wallet::Culture], None).await.unwrap();
    let issued = create_api_client(&app.db, &Actor::tool("test"), theatre, "Billetterie").await.unwrap();
    let (_, _, token) =
        app.oauth_token(Some((&issued.client.client_id, &issued.secret)), "grant_type=client_credentials").await;
    let software = token["access_token"].as_str().unwrap_or_else(|| panic!("{token}")).to_owned();

    // The club's app fetched the keys earlier, while online.
    let jwks: Value = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();

    // A 30 € ticket for the judo club; replaying the request answers the same ticket.
    let v = json!({ "i": { "passId": hugo, "wallet": "SPORT", "amount": "30.00", "partnerId": club.to_string(), "idempotencyKey": "t-1" } });
    let body = app.graphql_as(&parent, ISSUE, v.clone()).await;
    let ticket = body["data"]["issueTicket"]["ticket"].clone();
    assert_eq!((ticket["status"].as_str(), ticket["amount"].as_str()), (Some("ISSUED"), Some("30.00")), "{body}");
    let again = app.graphql_as(&parent, ISSUE, v).await;
    assert_eq!(
        (again["data"]["issueTicket"]["replayed"].as_bool(), &again["data"]["issueTicket"]["ticket"]["id"]),
        (Some(true), &ticket["id"])
    );

    // The parent's app listens to Hugo's pass.
    let mut socket =
        passerelle_tests::ws::subscribe(app.addr, &parent, passerelle_tests::ws::PASS_UPDATED, json!({ "p": hugo }))
            .await;

    // Offline check at the door, then redemption once back online.
    let claims = verify_offline(&jwks, ticket["qrPayload"].as_str().unwrap());
    assert_eq!(
        (claims["code"].clone(), claims["amount"].as_str(), claims["partner"].clone()),
        (ticket["code"].clone(), Some("30.00"), json!(club.to_string()))
    );
    assert_eq!(claims["jti"], ticket["id"]);
    let lookup = app
        .graphql_as(
            &judo,
            "query($c: String!) { lookupTicket(code: $c) { amount status pupilGivenName } }",
            json!({ "c": ticket["code"] }),
        )
        .await;
    assert_eq!(
        lookup["data"]["lookupTicket"],
        json!({ "amount": "30.00", "status": "ISSUED", "pupilGivenName": "Hugo" }),
        "{lookup}"
    );
    let v = json!({ "i": { "code": ticket["code"], "amount": "25.00", "idempotencyKey": "scan-1" } });
    let body = app.graphql_as(&judo, REDEEM, v.clone()).await;
    let redemption = body["data"]["redeemTicket"]["redemption"].clone();
    assert_eq!(
        (redemption["amount"].as_str(), redemption["partner"]["name"].as_str()),
        (Some("25.00"), Some("Club de judo de Bagneux")),
        "{body}"
    );
    assert_eq!(app.graphql_as(&judo, REDEEM, v).await["data"]["redeemTicket"]["replayed"], true);
    let twice =
        app.graphql_as(&judo, REDEEM, json!({ "i": { "code": ticket["code"], "idempotencyKey": "scan-2" } })).await;
    assert_eq!(code(&twice), "TICKET_NOT_REDEEMABLE", "{twice}");

    // The socket heard of it: the pass as committed after the redemption.
    passerelle_tests::ws::next_matching(&mut socket, |d| sport_available(d, "25.00")).await;

    // The family sees it: 25 € spent, the other 5 € back; the history names the club.
    let children = app.graphql_as(&parent, CHILDREN, json!({})).await;
    assert_eq!(wallets(&children, "Hugo")["SPORT"], json!(["50.00", "25.00", "0.00", "25.00", "0.00"]));
    let history = "query { children { givenName pass { transactions(first: 10) { edges { node { kind amount status partner { name } } } } } } }";
    let body = app.graphql_as(&parent, history, json!({})).await;
    let hugo_history = body["data"]["children"].as_array().unwrap().iter().find(|c| c["givenName"] == "Hugo").unwrap()
        ["pass"]["transactions"]["edges"]
        .clone();
    assert!(
        hugo_history.as_array().unwrap().iter().any(|e| e["node"]["kind"] == "TICKET"
            && e["node"]["amount"] == "-25.00"
            && e["node"]["partner"]["name"] == "Club de judo de Bagneux"),
        "{body}"
    );

    // The club refunds 10 €.
    let v = json!({ "i": { "redemptionId": redemption["id"], "amount": "10.00", "reason": "cours annulé", "idempotencyKey": "refund-1" } });
    let body = app.graphql_as(&judo, "mutation($i: RefundRedemptionInput!) { refundRedemption(input: $i) { redemption { refundedAmount status } } }", v).await;
    assert_eq!(
        body["data"]["refundRedemption"]["redemption"],
        json!({ "refundedAmount": "10.00", "status": "PARTIALLY_REFUNDED" }),
        "{body}"
    );
    let too_much =
        json!({ "i": { "redemptionId": redemption["id"], "amount": "20.00", "idempotencyKey": "refund-2" } });
    let body = app
        .graphql_as(
            &judo,
            "mutation($i: RefundRedemptionInput!) { refundRedemption(input: $i) { replayed } }",
            too_much,
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "only 15 € are left to refund: {body}");

    // A bearer ticket on Léa's pass, kept for after the deadline.
    let v = json!({ "i": { "passId": lea, "wallet": "SPORT", "amount": "20.00", "idempotencyKey": "t-lea" } });
    let lea_ticket = app.graphql_as(&parent, ISSUE, v).await["data"]["issueTicket"]["ticket"]["id"].clone();

    // The card: a PIN set with the parent's password, a charge by the theatre's software.
    let pin = "mutation($i: SetCardPinInput!) { setCardPin(input: $i) { hasPin } }";
    let body =
        app.graphql_as(&parent, pin, json!({ "i": { "passId": hugo, "pin": "4821", "password": PASSWORD } })).await;
    assert_eq!(body["data"]["setCardPin"]["hasPin"], true, "{body}");
    let charge = |pin: &str, key: &str| json!({ "i": { "cardNumber": hugo_card, "pin": pin, "wallet": "CULTURE", "amount": "12.00", "idempotencyKey": key } });
    let body = app.graphql_as(&software, CHARGE, charge("4821", "desk-1")).await;
    assert_eq!(
        body["data"]["chargeCard"]["redemption"],
        json!({ "amount": "12.00", "source": "CARD_CHARGE" }),
        "{body}"
    );
    let mut codes = vec![];
    for i in 0..5 {
        codes.push(code(&app.graphql_as(&software, CHARGE, charge("0000", &format!("bad-{i}"))).await).to_owned());
    }
    assert_eq!(codes, ["WRONG_PIN", "WRONG_PIN", "WRONG_PIN", "WRONG_PIN", "CARD_BLOCKED"]);
    assert_eq!(code(&app.graphql_as(&software, CHARGE, charge("4821", "desk-2")).await), "CARD_BLOCKED");
    let children = app.graphql_as(&parent, CHILDREN, json!({})).await;
    let hugo_pass = children["data"]["children"].as_array().unwrap().iter().find(|c| c["givenName"] == "Hugo").unwrap()
        ["pass"]
        .clone();
    assert_eq!(hugo_pass["status"], "BLOCKED");
    assert_eq!(wallets(&children, "Hugo")["CULTURE"], json!(["50.00", "38.00", "0.00", "12.00", "0.00"]));

    // The generation deadline passes (yesterday): the scheduler closes every wallet, and
    // Léa's cancelled ticket sends its credit to expired credit too.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let opens = yesterday - chrono::Duration::days(300);
    let body =
        app.graphql_as(&admin, upsert, campaign(&f.to_string(), &yesterday.to_string(), &opens.to_string())).await;
    assert!(body["errors"].is_null(), "{body}");
    let report = passerelle_api::scheduler::tick(&app.db).await.unwrap();
    assert_eq!(report.wallets_closed, 4, "{report:?}");
    let cancel = "mutation($t: ID!) { cancelTicket(ticketId: $t) { status } }";
    let body = app.graphql_as(&parent, cancel, json!({ "t": lea_ticket })).await;
    assert_eq!(body["data"]["cancelTicket"]["status"], "CANCELLED", "{body}");
    let late = json!({ "i": { "passId": lea, "wallet": "CULTURE", "amount": "1.00", "idempotencyKey": "t-late" } });
    assert_eq!(code(&app.graphql_as(&parent, ISSUE, late).await), "CAMPAIGN_CLOSED");
    let children = app.graphql_as(&parent, CHILDREN, json!({})).await;
    assert_eq!(wallets(&children, "Léa")["SPORT"], json!(["40.00", "0.00", "0.00", "0.00", "40.00"]), "{children}");
    assert_eq!(wallets(&children, "Léa")["CULTURE"], json!(["40.00", "0.00", "0.00", "0.00", "40.00"]));
    assert_eq!(wallets(&children, "Hugo")["SPORT"], json!(["50.00", "0.00", "0.00", "15.00", "35.00"]));
    assert_eq!(wallets(&children, "Hugo")["CULTURE"], json!(["50.00", "0.00", "0.00", "12.00", "38.00"]));
    assert_eq!(passerelle_api::scheduler::tick(&app.db).await.unwrap().wallets_closed, 0, "nothing left to close");

    let report = audit(&app.db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
    app.stop().await;
}
