//! The HTTP surface: health, readiness, the GraphQL transport rules, graceful stop.

use passerelle_tests::{Backend, TestApp};
use serde_json::json;

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
    let body: serde_json::Value = batch.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    app.stop().await;
}

#[tokio::test]
async fn hostile_queries_are_refused_by_the_limits() {
    let app = TestApp::spawn().await;
    let refused = |body: &serde_json::Value| body["errors"].is_array() && body.get("data").is_none_or(|d| d.is_null());
    // Depth: introspection lets us nest far deeper than the limit of 12.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {} name {} }} }} }} }}",
        "{ ofType ".repeat(10),
        "}".repeat(10)
    );
    let body = app.graphql(&deep, json!({})).await;
    assert!(refused(&body), "too deep: {body}");
    // Aliases multiply the cost: 600 aliased fields exceed the complexity limit of 500.
    let wide: String = (0..600).map(|i| format!("a{i}: serverInfo {{ version }} ")).collect();
    let body = app.graphql(&format!("{{ {wide} }}"), json!({})).await;
    assert!(refused(&body), "too complex: {body}");
    // Directive overload (CVE-2024-47614).
    let directives = format!("{{ __typename {} }}", "@skip(if: false) ".repeat(50));
    let body = app.graphql(&directives, json!({})).await;
    assert!(refused(&body), "too many directives: {body}");
    // A normal query still passes.
    assert_eq!(
        app.graphql("{ serverInfo { version } }", json!({})).await["data"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
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
    assert!(client.get(url).send().await.is_err(), "nothing listens after stop");
}
