//! GraphQL sources: the document is sent as written and parameters
//! travel as variables; `data` is the answer, `errors` an upstream
//! error; the schema comes from introspection.

mod support;

use coform_sources::{HttpLimits, Kind, SourceError};
use serde_json::{json, Value};
use support::*;

fn source(server: &TestServer, variables: Value) -> Value {
    json!({
        "url": server.url("/graphql"),
        "query": "query($id: ID!) { user(id: $id) { id } } # {{id}} stays text",
        "variables": variables,
    })
}

#[tokio::test]
async fn variables_are_bound_and_the_query_is_never_templated() {
    let server = TestServer::start().await;
    let (client, recording) = client(HttpLimits::default());
    let cfg = config(source(
        &server,
        json!({"id": "{{id}}", "label": "user {{id}}", "n": "{{n}}"}),
    ));
    let data = client
        .execute(
            Kind::Graphql,
            &cfg,
            &params(json!({"id": "7\" } admin {", "n": 3})),
        )
        .await
        .unwrap();
    assert_eq!(
        data["query"],
        "query($id: ID!) { user(id: $id) { id } } # {{id}} stays text"
    );
    assert_eq!(
        data["variables"],
        json!({"id": "7\" } admin {", "label": "user 7\" } admin {", "n": 3})
    );
    assert_eq!(recording.dialled(), vec![server.addr]);
}

#[tokio::test]
async fn graphql_errors_become_upstream_errors() {
    let server = TestServer::start().await;
    let (client, _) = client(HttpLimits::default());
    let cfg = config(json!({
        "url": server.url("/graphql"),
        "query": "query { user { id } }",
        "variables": {"fail": "no such user, token tok-graph-secret"},
        "authentication": {"type": "bearer", "token": "tok-graph-secret"},
    }));
    match client
        .execute(Kind::Graphql, &cfg, &params(json!({})))
        .await
    {
        Err(SourceError::Upstream { status, message }) => {
            assert_eq!(status, None);
            assert_eq!(message, "no such user, token [secret]");
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn oauth_credentials_reach_a_graphql_endpoint() {
    let server = TestServer::start().await;
    let (client, _) = client(HttpLimits::default());
    let cfg = config(json!({
        "url": server.url("/graphql"),
        "query": "{ me }",
        "authentication": {"type": "oauth2", "credentials": {
            "tokenUrl": server.url("/oauth/token"), "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET}},
    }));
    let data = client
        .execute(Kind::Graphql, &cfg, &params(json!({})))
        .await
        .unwrap();
    assert_eq!(data["authorization"], "Bearer tok-1");
    assert_eq!(data["variables"], json!({}));
}

#[tokio::test]
async fn a_graphql_post_is_not_retried() {
    let server = TestServer::start().await;
    let (client, _) = client(HttpLimits::default());
    let cfg = config(json!({"url": server.url("/flaky/g/1"), "query": "{ a }", "retries": 3}));
    let result = client
        .execute(Kind::Graphql, &cfg, &params(json!({})))
        .await;
    assert!(matches!(
        result,
        Err(SourceError::Upstream {
            status: Some(503),
            ..
        })
    ));
    assert_eq!(server.flaky_calls("g"), 1);
}

#[tokio::test]
async fn the_schema_comes_from_introspection() {
    let server = TestServer::start().await;
    let (client, _) = client(HttpLimits::default());
    // The source's own query and variables are not what is sent.
    let cfg = config(source(&server, json!({"fail": "must not run"})));
    let schema = client
        .schema(Kind::Graphql, &cfg, &params(json!({})))
        .await
        .unwrap();
    assert_eq!(
        schema,
        json!({
            "queryType": "Query",
            "mutationType": null,
            "types": [
                {"name": "Query", "kind": "OBJECT", "fields": [
                    {"name": "user", "type": "User", "description": "One user",
                     "args": [{"name": "id", "type": "ID!"}]}]},
                {"name": "User", "kind": "OBJECT", "fields": [
                    {"name": "id", "type": "ID!"},
                    {"name": "tags", "type": "[String]"}]},
                {"name": "ID", "kind": "SCALAR"},
            ],
        })
    );
}
