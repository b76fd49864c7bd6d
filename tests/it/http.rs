//! The HTTP surface: health, readiness, the GraphQL transport rules, graceful stop.

use passerelle_tests::{Backend, TestApp, code};
use serde_json::{Value, json};

#[tokio::test]
async fn healthz_and_readyz_answer_200_on_a_migrated_database() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().contains_key("x-request-id"), "{path} carries a request id");
    }
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_while_migrations_are_pending() {
    use passerelle_migrations::{Migrator, MigratorTrait};
    let app = TestApp::spawn().await;
    Migrator::down(&app.db, Some(1)).await.unwrap();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], "migrations_pending");
    app.stop().await;
}

#[tokio::test]
async fn server_info_reports_version_environment_and_database() {
    let app = TestApp::spawn().await;
    let body = app.graphql("{ serverInfo { version environment database } }", json!({})).await;
    let info = &body["data"]["serverInfo"];
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["environment"], "test");
    assert_eq!(info["database"], Backend::selected().name());
    app.stop().await;
}

#[tokio::test]
async fn graphql_refuses_get_forms_and_batches() {
    let app = TestApp::spawn().await;
    let get = app.client.get(app.url("/graphql?query={__typename}")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    let form = app.client.post(app.url("/graphql")).body("query={__typename}").send().await.unwrap();
    assert_eq!(form.status(), 415);
    let batch = app.client.post(app.url("/graphql")).json(&json!([{ "query": "{__typename}" }])).send().await.unwrap();
    assert_eq!(batch.status(), 400);
    let body: Value = batch.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");
    app.stop().await;
}

/// `{ __schema { types { fields { type { ofType { … { name } } } } } } }`: a valid query
/// `depth` fields deep (it runs: `ofType` is null past the last wrapper).
fn introspection_of_depth(depth: usize) -> String {
    let of_types = depth - 5; // __schema, types, fields, type … name
    format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(of_types),
        "}".repeat(of_types)
    )
}

/// The refusal of a query by one of the schema's limits: no data, one error, this message.
fn assert_refused(body: &Value, message: &str) {
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors: {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["message"], message, "{body}");
}

#[tokio::test]
async fn the_depth_limit_refuses_a_valid_query_one_level_too_deep() {
    let app = TestApp::spawn().await;
    // Twelve levels: served.
    let body = app.graphql(&introspection_of_depth(12), json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["__schema"]["types"].as_array().is_some_and(|t| !t.is_empty()), "{body}");
    // Thirteen: the same kind of query, refused by the depth limit alone.
    let body = app.graphql(&introspection_of_depth(13), json!({})).await;
    assert_refused(&body, "Query is nested too deep.");
    app.stop().await;
}

#[tokio::test]
async fn the_complexity_limit_refuses_a_valid_query_of_many_aliases() {
    let app = TestApp::spawn().await;
    // Each aliased `serverInfo { version }` costs 2: 250 are served, 251 exceed 500.
    let aliases = |n: usize| -> String {
        let fields: String = (0..n).map(|i| format!("a{i}: serverInfo {{ version }} ")).collect();
        format!("{{ {fields} }}")
    };
    let body = app.graphql(&aliases(250), json!({})).await;
    assert_eq!(body["data"]["a249"]["version"], env!("CARGO_PKG_VERSION"), "{body}");
    assert_refused(&app.graphql(&aliases(251), json!({})).await, "Query is too complex.");
    app.stop().await;
}

#[tokio::test]
async fn the_directive_limit_refuses_a_valid_query_with_nine_on_a_field() {
    // A flood of directives costs the parser and validator before anything runs
    // (CVE-2024-47614); repeating `@skip(if: false)` is accepted and runs, so only the limit of
    // eight stops it.
    let app = TestApp::spawn().await;
    let directives = |n: usize| format!("{{ __typename {} }}", "@skip(if: false) ".repeat(n));
    let body = app.graphql(&directives(8), json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query", "eight are served: {body}");
    let body = app.graphql(&directives(9), json!({})).await;
    assert_refused(&body, "The number of directives on the field `__typename` cannot be greater than `8`");
    app.stop().await;
}

#[tokio::test]
async fn graphiql_is_served_outside_production_only() {
    let app = TestApp::spawn().await;
    assert_eq!(app.client.get(app.url("/graphiql")).send().await.unwrap().status(), 200);
    app.stop().await;
    let prod = TestApp::spawn_with(&[("PASSERELLE_ENV", "production")]).await;
    assert_eq!(prod.client.get(prod.url("/graphiql")).send().await.unwrap().status(), 404);
    let intro = prod.graphql("{ __schema { queryType { name } } }", json!({})).await;
    assert!(intro["data"]["__schema"].is_null(), "introspection is off in production: {intro}");
    prod.stop().await;
}

#[tokio::test]
async fn graceful_stop_closes_the_listener() {
    let app = TestApp::spawn().await;
    let url = app.url("/healthz");
    let client = app.client.clone();
    app.stop().await;
    let refused = client.get(url).send().await.expect_err("nothing listens after stop");
    assert!(refused.is_connect(), "{refused:?}");
}

/// GraphQL over HTTP: `Accept` decides the media type; with `application/graphql-response+json`
/// a request that could not run is 400 without `data`; one that ran is 200.
#[tokio::test]
async fn accept_negotiation_follows_the_graphql_over_http_specification() {
    let app = TestApp::spawn().await;
    let post = |accept: Option<&'static str>, query: &'static str| {
        let mut r = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(json!({ "query": query }).to_string());
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        r.send()
    };
    let media = |r: &reqwest::Response| r.headers()["content-type"].to_str().unwrap().to_owned();
    for accept in [None, Some("application/json"), Some("*/*")] {
        let r = post(accept, "{ __typename }").await.unwrap();
        assert_eq!((r.status().as_u16(), media(&r)), (200, "application/json".to_owned()), "{accept:?}");
    }
    let r = post(Some("application/json"), "{ nope").await.unwrap();
    assert_eq!(r.status(), 200, "application/json: errors in a 200");
    let gql = "application/graphql-response+json";
    let r = post(Some(gql), "{ __typename }").await.unwrap();
    assert_eq!((r.status().as_u16(), media(&r)), (200, gql.to_owned()));
    for broken in ["{ nope", "{ noSuchField }"] {
        let r = post(Some(gql), broken).await.unwrap();
        assert_eq!((r.status().as_u16(), media(&r)), (400, gql.to_owned()), "{broken}");
        let body: Value = r.json().await.unwrap();
        assert!(body.get("data").is_none() && body["errors"].is_array(), "{body}");
    }
    // It ran (and the field failed for this caller): 200, with `data`.
    let r = post(Some(gql), "{ children { id } }").await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("data").is_some(), "{body}");
    // q-values: the preferred of the two.
    let r = post(Some("application/json;q=0.5, application/graphql-response+json"), "{ __typename }").await.unwrap();
    assert_eq!(media(&r), gql);
    let r = post(Some("text/html"), "{ __typename }").await.unwrap();
    assert_eq!(r.status(), 406);
    app.stop().await;
}
