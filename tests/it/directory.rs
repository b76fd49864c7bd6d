//! The directory end to end: clubs publish activities over HTTP, a parent finds them by words
//! (accent- and case-blind), wallet, commune and distance — the same answers on SQLite and
//! PostgreSQL — and bad coordinates or categories are refused naming their field.

use passerelle_domain::auth::AccountKind;
use passerelle_domain::partner::{PartnerRole, add_partner_member};
use passerelle_tests::accounts::{account, sign_in};
use passerelle_tests::spending::family;
use passerelle_tests::{TestApp, code};
use serde_json::{Value, json};

const UPSERT: &str =
    "mutation($i: ActivityInput!) { upsertActivity(input: $i) { id title category price commune lat lon } }";
const SEARCH: &str = "query($f: PartnerFilterInput, $first: Int, $after: String) { partners(filter: $f, first: $first, after: $after) { \
    edges { cursor node { name distanceKm activities { title communeInsee } } } pageInfo { hasNextPage } } }";

fn names(body: &Value) -> Vec<String> {
    let edges = body["data"]["partners"]["edges"].as_array().unwrap_or_else(|| panic!("{body}"));
    edges.iter().map(|e| e["node"]["name"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn parents_find_clubs_by_words_wallet_commune_and_distance() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    // The judo club (sport) and the theatre (culture) publish through their members' accounts.
    let mut members = vec![];
    for (partner, email) in [(f.sport, "judo@example.org"), (f.culture, "theatre@example.org")] {
        let id = account(&app, AccountKind::PartnerMember, email).await;
        add_partner_member(&app.db, partner, id, PartnerRole::Owner).await.unwrap();
        members.push(sign_in(&app, email, None).await);
    }
    let judo = json!({ "title": "Judo débutants 6-12 ans", "category": "SPORT", "price": "120.00", "ageMin": 6, "ageMax": 12,
                       "season": "2026-2027", "commune": "Sèvres", "communeInsee": "92072", "location": "Gymnase des Postes",
                       "lat": 48.8239, "lon": 2.2117 });
    let body = app.graphql_as(&members[0], UPSERT, json!({ "i": judo })).await;
    assert_eq!(body["data"]["upsertActivity"]["price"], "120.00", "{body}");
    let stage = json!({ "title": "Atelier d'improvisation", "category": "CULTURE", "commune": "Nanterre",
                        "communeInsee": "92050", "lat": 48.8924, "lon": 2.2071 });
    let body = app.graphql_as(&members[1], UPSERT, json!({ "i": stage })).await;
    let stage_id = body["data"]["upsertActivity"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();

    let parent = sign_in(&app, &f.parent_email, None).await;
    let search = |filter: Value| {
        let (app, parent) = (&app, parent.clone());
        async move { app.graphql_as(&parent, SEARCH, json!({ "f": filter })).await }
    };
    // Words: accents and case do not matter; a partner is found by its activities too.
    assert_eq!(names(&search(json!({ "text": "THEATRE" })).await), ["Théâtre"]);
    assert_eq!(names(&search(json!({ "text": "debutants" })).await), ["Club de judo"]);
    assert_eq!(names(&search(json!({ "text": "improvisation" })).await), ["Théâtre"]);
    assert!(names(&search(json!({ "text": "piscine" })).await).is_empty());
    // Wallet and commune (name, any accents, or INSEE code).
    assert_eq!(names(&search(json!({ "category": "CULTURE" })).await), ["Théâtre"]);
    assert_eq!(names(&search(json!({ "commune": "sevres" })).await), ["Club de judo"]);
    assert_eq!(names(&search(json!({ "commune": "92050" })).await), ["Théâtre"]);
    assert_eq!(names(&search(json!({})).await), ["Club de judo", "Théâtre"], "by name without a point");
    // Distance from the Sèvres gymnasium: the judo club within 2 km; both within 15 km, nearest first.
    let body = search(json!({ "near": { "lat": 48.8240, "lon": 2.2120, "radiusKm": 2.0 } })).await;
    assert_eq!(names(&body), ["Club de judo"]);
    let d = body["data"]["partners"]["edges"][0]["node"]["distanceKm"].as_f64().unwrap();
    assert!(d < 0.1, "{d}");
    let near = json!({ "near": { "lat": 48.8240, "lon": 2.2120, "radiusKm": 15.0 } });
    let body = search(near.clone()).await;
    assert_eq!(names(&body), ["Club de judo", "Théâtre"]);
    let far = body["data"]["partners"]["edges"][1]["node"]["distanceKm"].as_f64().unwrap();
    assert!((7.0..8.5).contains(&far), "Sèvres → Nanterre: {far}");
    // Pages follow the distance order.
    let page1 = app.graphql_as(&parent, SEARCH, json!({ "f": near, "first": 1 })).await;
    assert_eq!(names(&page1), ["Club de judo"]);
    assert_eq!(page1["data"]["partners"]["pageInfo"]["hasNextPage"], true);
    let cursor = page1["data"]["partners"]["edges"][0]["cursor"].clone();
    let page2 = app.graphql_as(&parent, SEARCH, json!({ "f": near, "first": 1, "after": cursor })).await;
    assert_eq!(names(&page2), ["Théâtre"]);
    assert_eq!(page2["data"]["partners"]["pageInfo"]["hasNextPage"], false);

    // Bad coordinates and radii name their field.
    for (filter, field) in [
        (json!({ "near": { "lat": 91.0, "lon": 2.2, "radiusKm": 5.0 } }), "near.lat"),
        (json!({ "near": { "lat": 48.8, "lon": -181.0, "radiusKm": 5.0 } }), "near.lon"),
        (json!({ "near": { "lat": 48.8, "lon": 2.2, "radiusKm": 0.0 } }), "near.radiusKm"),
    ] {
        let body = search(filter).await;
        assert_eq!((code(&body), body["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some(field)));
    }
    // A club publishes in its own wallets, at real coordinates, and changes only its own activities.
    let refusals = [
        (&members[0], json!({ "title": "Théâtre", "category": "CULTURE" }), "BAD_USER_INPUT", "category"),
        (
            &members[0],
            json!({ "title": "Judo", "category": "SPORT", "lat": 95.0, "lon": 2.0 }),
            "BAD_USER_INPUT",
            "lat",
        ),
        (&members[0], json!({ "title": "Judo", "category": "SPORT", "lat": 48.0 }), "BAD_USER_INPUT", "lon"),
        (
            &members[0],
            json!({ "title": "Judo", "category": "SPORT", "communeInsee": "9207" }),
            "BAD_USER_INPUT",
            "communeInsee",
        ),
        (&members[0], json!({ "title": " ", "category": "SPORT" }), "BAD_USER_INPUT", "title"),
        (&members[0], json!({ "id": stage_id, "title": "Volé", "category": "SPORT" }), "NOT_FOUND", ""),
    ];
    for (who, input, expected, field) in refusals {
        let body = app.graphql_as(who, UPSERT, json!({ "i": input })).await;
        assert_eq!(code(&body), expected, "{input}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"].as_str().unwrap_or(""), field, "{body}");
    }
    let count = passerelle_tests::count(&app.db, "SELECT COUNT(*) AS n FROM activity").await;
    assert_eq!(count, 2, "refusals wrote nothing");
    app.stop().await;
}
