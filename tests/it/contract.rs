//! The mobile contract: the committed schema is the served one, and every error code the
//! domain can send is documented.

use passerelle_domain::Error;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-contract/schema.graphql");
const CODES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-contract/error-codes.md");

#[test]
fn the_committed_schema_is_the_served_schema() {
    let served = passerelle_graphql::export_sdl();
    if std::env::var("UPDATE_CONTRACT").is_ok_and(|v| v == "1") {
        std::fs::write(SCHEMA, &served).unwrap();
    }
    let committed = std::fs::read_to_string(SCHEMA).unwrap_or_default();
    assert!(
        committed == served,
        "mobile-contract/schema.graphql is out of date: run `UPDATE_CONTRACT=1 cargo test -p passerelle-tests --test it contract` \
         (or `cargo run -p passerelle-api -- export-schema --out mobile-contract/schema.graphql`), review the diff and note it in \
         mobile-contract/CHANGELOG.md"
    );
}

#[test]
fn every_domain_error_code_is_documented() {
    let doc = std::fs::read_to_string(CODES).unwrap();
    let all = [
        Error::Unauthenticated,
        Error::Forbidden,
        Error::NotFound("x"),
        Error::bad_input("f", "m"),
        Error::Conflict("c".into()),
        Error::InsufficientFunds,
        Error::IdempotencyConflict,
        Error::RateLimited,
        Error::ReauthRequired,
        Error::RefreshSuperseded,
        Error::CampaignClosed,
        Error::CardBlocked,
        Error::TicketNotRedeemable,
        Error::WrongPin { attempts_left: 1 },
        Error::internal(std::io::Error::other("x")),
    ];
    for e in all {
        assert!(doc.contains(&format!("`{}`", e.code())), "{} is not in error-codes.md", e.code());
    }
}

/// `push-payloads.md` documents every notification kind, each with a JSON example of exactly
/// the `data` keys the dispatcher sends (string values).
#[test]
fn every_push_kind_is_documented_with_its_payload() {
    use strum::VariantArray as _;
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-contract/push-payloads.md")).unwrap();
    let examples: Vec<serde_json::Value> = doc
        .split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .map(|json| serde_json::from_str(json.trim()).expect("each example is JSON"))
        .collect();
    for kind in passerelle_domain::notify::NotificationKind::VARIANTS {
        let name = kind.to_string();
        assert!(doc.contains(&format!("| `{name}` |")), "{name} has no row");
        let example =
            examples.iter().find(|e| e["kind"] == name.as_str()).unwrap_or_else(|| panic!("{name}: no example"));
        let keys: Vec<&String> = example.as_object().unwrap().keys().collect();
        let mut expected = vec!["event_id", "kind", kind.about()];
        expected.sort_unstable();
        assert_eq!(keys, expected, "{name}");
        assert!(example.as_object().unwrap().values().all(serde_json::Value::is_string), "{name}: strings only");
    }
    assert_eq!(examples.len(), passerelle_domain::notify::NotificationKind::VARIANTS.len());
}
