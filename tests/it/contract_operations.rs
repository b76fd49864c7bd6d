//! The mobile contract's operations (`mobile-contract/operations/{parent,partner}/*.graphql`):
//! each is valid against the served schema, and `trusted-documents.json` registers exactly
//! them by the SHA-256 of their text.

use std::collections::BTreeMap;

use passerelle_graphql::trusted::{TrustedDocument, document_hash};

const OPERATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-contract/operations");
const REGISTRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-contract/trusted-documents.json");

fn operations() -> Vec<(String, String)> {
    let mut out = vec![];
    for app in ["parent", "partner"] {
        let dir = std::path::Path::new(OPERATIONS).join(app);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "graphql") {
                let name = format!("{app}/{}", path.file_name().unwrap().to_string_lossy());
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Errors of a request that could not start (parse, validation): none of them points into a
/// result. Without a database every resolver fails, with a path: those are fine here.
async fn request_errors(schema: &passerelle_graphql::AppSchema, document: &str) -> Vec<String> {
    use futures_util::StreamExt as _;
    let request = async_graphql::Request::new(document);
    let response = if document.trim_start().starts_with("subscription") {
        schema.execute_stream(request).next().await.expect("a first answer")
    } else {
        schema.execute(request).await
    };
    response.errors.into_iter().filter(|e| e.path.is_empty()).map(|e| e.message).collect()
}

#[tokio::test]
async fn every_contract_operation_is_valid_against_the_schema() {
    let schema = passerelle_graphql::offline_schema();
    let ops = operations();
    assert!(ops.len() >= 40, "{} operations", ops.len());
    for (name, document) in &ops {
        let errors = request_errors(&schema, document).await;
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    // The check can fail: an unknown field, a wrong argument, a missing variable declaration.
    for bad in [
        "query { children { nope } }",
        "query { partners(first: \"x\") { edges { cursor } } }",
        "query { lookupTicket(code: $c) { code } }",
    ] {
        assert!(!request_errors(&schema, bad).await.is_empty(), "{bad}");
    }
}

#[test]
fn the_trusted_documents_registry_is_the_operations() {
    let entries: BTreeMap<String, TrustedDocument> = operations()
        .into_iter()
        .map(|(file, document)| (document_hash(&document), TrustedDocument { file, document }))
        .collect();
    let built = serde_json::to_string_pretty(&entries).unwrap() + "\n";
    if std::env::var("UPDATE_CONTRACT").is_ok_and(|v| v == "1") {
        std::fs::write(REGISTRY, &built).unwrap();
    }
    let committed = std::fs::read_to_string(REGISTRY).unwrap_or_default();
    assert!(
        committed == built,
        "mobile-contract/trusted-documents.json is out of date: run `UPDATE_CONTRACT=1 cargo test -p passerelle-tests --test it contract`"
    );
    assert_eq!(
        passerelle_graphql::trusted::registered(),
        entries.len(),
        "the server registers them all (rebuild after updating)"
    );
}
