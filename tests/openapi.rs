//! The OpenAPI document is generated from the route declarations: every
//! endpoint of the API must appear in it, with its method.

mod support;

use serde_json::json;
use support::*;

const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/forgot-password"),
    ("post", "/api/auth/reset-password"),
    ("get", "/api/auth/verify-email"),
    ("post", "/api/auth/verify-email/resend"),
    ("get", "/api/auth/me"),
    ("put", "/api/auth/me"),
    ("delete", "/api/auth/me"),
    ("put", "/api/auth/password"),
    ("get", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions/{id}"),
    ("get", "/api/workspaces"),
    ("post", "/api/workspaces"),
    ("get", "/api/workspaces/{id}"),
    ("put", "/api/workspaces/{id}"),
    ("delete", "/api/workspaces/{id}"),
    ("post", "/api/workspaces/{id}/members"),
    ("get", "/api/workspaces/{id}/invitations"),
    ("delete", "/api/workspaces/{id}/invitations/{email}"),
    ("put", "/api/workspaces/{id}/members/{userId}"),
    ("delete", "/api/workspaces/{id}/members/{userId}"),
    ("get", "/api/workspaces/{id}/analytics"),
    ("post", "/api/workspaces/{id}/backup"),
    ("post", "/api/workspaces/{id}/restore"),
    ("get", "/api/templates"),
    ("post", "/api/templates"),
    ("get", "/api/templates/{id}"),
    ("put", "/api/templates/{id}"),
    ("delete", "/api/templates/{id}"),
    ("post", "/api/templates/{id}/session"),
    ("get", "/api/templates/{id}/versions"),
    ("post", "/api/templates/{id}/versions"),
    ("post", "/api/templates/{id}/export"),
    ("post", "/api/templates/{id}/import"),
    ("post", "/api/templates/import"),
    ("get", "/api/templates/{id}/preview"),
    ("get", "/api/public/templates/{id}/preview"),
    ("get", "/api/templates/{id}/analytics"),
    ("get", "/api/data-sources"),
    ("post", "/api/data-sources"),
    ("post", "/api/data-sources/test"),
    ("get", "/api/data-sources/{id}"),
    ("put", "/api/data-sources/{id}"),
    ("delete", "/api/data-sources/{id}"),
    ("post", "/api/data-sources/{id}/execute"),
    ("get", "/api/data-sources/{id}/schema"),
    ("post", "/api/data-sources/{id}/validate"),
    ("get", "/api/data-sources/{id}/health"),
    ("post", "/api/data-sources/{id}/cache"),
    ("get", "/api/schema/template"),
    ("get", "/api/schema/components"),
];

#[tokio::test]
async fn every_endpoint_is_in_the_openapi_document() {
    let s = Server::start().await;
    let r = s.get("/api/openapi.json", None).await;
    let doc = r.expect(200);
    assert!(doc.is_object(), "the document is not JSON: {}", r.text);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (method, path) in ENDPOINTS {
        if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "missing from /api/openapi.json: {missing:?}"
    );
    // Versions, diffs and restores are parameterised paths too.
    let versioned = paths
        .keys()
        .filter(|p| p.starts_with("/api/templates/{id}/versions/"))
        .count();
    assert!(
        versioned >= 3,
        "version detail, restore and diff routes: {versioned}"
    );
    // Every documented operation that needs a login says so.
    let me = &paths["/api/auth/me"]["get"];
    assert!(
        me["security"].is_array(),
        "GET /api/auth/me has no security requirement"
    );
    // ...and the public preview of a template needs none.
    let public = &paths["/api/public/templates/{id}/preview"]["get"];
    assert!(
        public["security"].is_null(),
        "the public preview asks for a login: {public}"
    );
    assert!(public["responses"]["404"].is_object(), "{public}");
}

// ---- the document against the server's answers (contract checks; the
// full run is scripts/schemathesis)

/// The document's operations as `(METHOD, path, operation)`.
fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

async fn document(s: &Server) -> serde_json::Value {
    s.get("/api/openapi.json", None).await.expect(200).clone()
}

#[tokio::test]
async fn parameters_are_where_the_server_reads_them() {
    let s = Server::start().await;
    let doc = document(&s).await;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().expect("parameter name");
            let in_template = path.contains(&format!("{{{name}}}"));
            match p["in"].as_str() {
                Some("path") => {
                    assert!(in_template, "{method} {path}: `{name}` is not in the path");
                    assert_eq!(p["required"], true, "{method} {path}: path `{name}`");
                }
                Some("query") => assert!(!in_template, "{method} {path}: `{name}`"),
                other => panic!("{method} {path}: `{name}` in {other:?}"),
            }
        }
    }
    // The listing's paging is in the query string, with its bounds.
    let list = &doc["paths"]["/api/templates"]["get"]["parameters"];
    let page_size = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pageSize")
        .expect("pageSize");
    assert_eq!(page_size["in"], "query");
    assert_eq!(page_size["required"], false);
    assert_eq!(page_size["schema"]["minimum"], 1);
    assert_eq!(page_size["schema"]["maximum"], 100);
    let owner = s.register("Ada", "ada@example.com").await;
    s.get("/api/templates?pageSize=100", Some(&owner.access))
        .await
        .expect(200);
    s.get("/api/templates?pageSize=101", Some(&owner.access))
        .await
        .expect_error(422, "validation_failed");
    s.get("/api/templates?page=0", Some(&owner.access))
        .await
        .expect_error(422, "validation_failed");
}

#[tokio::test]
async fn operation_ids_are_unique() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let mut seen = std::collections::HashMap::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId {id} of both {other} and {method} {path}");
        }
    }
    assert_eq!(
        seen["templates_versions_get"],
        "GET /api/templates/{id}/versions/{number}"
    );
}

#[tokio::test]
async fn malformed_bodies_and_query_strings_answer_a_documented_400() {
    let s = Server::start().await;
    let doc = document(&s).await;
    for (method, path, op) in operations(&doc) {
        let reads_query = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        if reads_query || op.get("requestBody").is_some() {
            assert!(
                op["responses"]["400"].is_object(),
                "{method} {path} does not document its 400"
            );
        }
    }
    let owner = s.register("Ada", "ada@example.com").await;
    // No body where one is required, as the contract run sends it.
    for (method, path) in [
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/forgot-password"),
        ("POST", "/api/workspaces"),
        ("POST", "/api/templates"),
        ("POST", "/api/data-sources"),
    ] {
        s.request(method, path, Some(&owner.access), &[], Body::None)
            .await
            .expect_error(400, "invalid_json");
    }
    // A required query parameter left out.
    s.get("/api/data-sources", Some(&owner.access))
        .await
        .expect_error(400, "bad_request");
    s.get("/api/auth/verify-email", None)
        .await
        .expect_error(400, "bad_request");
}

#[tokio::test]
async fn every_operation_on_an_id_is_linked_from_where_the_id_comes_from() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let ops = operations(&doc);
    let by_id: std::collections::HashMap<String, &serde_json::Value> = ops
        .iter()
        .map(|(_, _, op)| (op["operationId"].as_str().unwrap().to_owned(), op))
        .collect();
    let mut linked = std::collections::HashSet::new();
    for (method, path, op) in &ops {
        for (status, response) in op["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let target_id = link["operationId"].as_str().expect("operationId");
                let target = by_id.get(target_id).unwrap_or_else(|| {
                    panic!("{method} {path} {status} link {name}: no operation {target_id}")
                });
                for (param, expr) in link["parameters"].as_object().into_iter().flatten() {
                    let (place, pname) = param.split_once('.').expect("qualified name");
                    assert!(
                        target["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["in"] == place && p["name"] == pname),
                        "link {name}: {target_id} has no {place} parameter {pname}"
                    );
                    assert!(expr.as_str().is_some_and(|e| e.starts_with('$')), "{expr}");
                }
                linked.insert(target_id.to_owned());
            }
        }
    }
    let mut unreachable = Vec::new();
    for (method, path, op) in &ops {
        if path.contains('{') && !linked.contains(op["operationId"].as_str().unwrap()) {
            unreachable.push(format!("{method} {path}"));
        }
    }
    assert!(
        unreachable.is_empty(),
        "no link leads to these operations: {unreachable:?}"
    );
    // The links name the fields the creating answers really have.
    let owner = s.register("Ada", "ada@example.com").await;
    let ws = s
        .post("/api/workspaces", Some(&owner.access), json!({"name": "W"}))
        .await;
    let ws_id = ws.expect(201)["id"].as_str().expect("id").to_owned();
    let link =
        &doc["paths"]["/api/workspaces"]["post"]["responses"]["201"]["links"]["CreateTemplate"];
    assert_eq!(link["requestBody"]["workspaceId"], "$response.body#/id");
    let t = s.create_template(&owner.access, &ws_id, "T", None).await;
    let v = s
        .post(
            &format!("/api/templates/{}/versions", id_of(&t)),
            Some(&owner.access),
            json!({}),
        )
        .await;
    assert!(v.expect(201)["number"].is_u64(), "{}", v.text);
    let sessions = s.get("/api/auth/sessions", Some(&owner.access)).await;
    assert!(
        sessions.expect(200)[0]["id"].is_string(),
        "{}",
        sessions.text
    );
}

/// The rules the handlers check are in the document, and the server
/// checks them as the document states them (each case here was a
/// disagreement a schemathesis run found).
#[tokio::test]
async fn the_document_states_the_rules_the_server_checks() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let register = schema("RegisterRequest");
    assert_eq!(register["properties"]["password"]["minLength"], 10);
    assert_eq!(register["properties"]["password"]["maxLength"], 128);
    assert_eq!(register["properties"]["name"]["maxLength"], 100);
    assert!(register["properties"]["email"]["pattern"].is_string());
    assert_eq!(
        schema("AddMember")["properties"]["role"]["enum"],
        json!(["viewer", "editor", "admin", "owner"])
    );
    let file = schema("TemplateFile");
    assert_eq!(file["additionalProperties"], false);
    assert_eq!(
        file["properties"]["format"]["enum"],
        json!(["coform-template"])
    );
    assert_eq!(file["properties"]["version"]["enum"], json!([1]));
    assert_eq!(schema("FileListing")["additionalProperties"], false);
    let tags = &schema("CreateTemplate")["properties"]["tags"];
    assert_eq!(tags["items"]["type"], "string");
    assert_eq!(tags["maxItems"], 20);
    // Optional objects are not required.
    for (name, field) in [
        ("CreateWorkspace", "settings"),
        ("UpdateWorkspace", "settings"),
        ("UpdateMeRequest", "profile"),
        ("CreateTemplate", "content"),
        ("UpdateTemplate", "content"),
        ("UpdateDataSource", "config"),
        ("TestDataSource", "params"),
    ] {
        let required = schema(name)["required"].clone();
        assert!(
            !required
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r == field),
            "{name}.{field} is required in the document: {required}"
        );
    }

    let owner = s.register("Ada", "ada@example.com").await;
    let tok = Some(owner.access.as_str());
    // A name's length counts the white space around it, as `maxLength`
    // does; white space alone is no name.
    let padded = format!("  {}", "n".repeat(199));
    s.post("/api/workspaces", tok, json!({"name": padded}))
        .await
        .expect_error(422, "validation_failed");
    s.post("/api/workspaces", tok, json!({"name": "   "}))
        .await
        .expect_error(422, "validation_failed");
    let ws = s.create_workspace(&owner.access, "W").await;
    // `settings: null` is what leaving it out is.
    s.put(
        &format!("/api/workspaces/{ws}"),
        tok,
        json!({"name": null, "description": null, "settings": null}),
    )
    .await
    .expect(200);
    // A tag is a string.
    s.post(
        "/api/templates",
        tok,
        json!({"workspaceId": ws, "name": "T", "tags": [{}]}),
    )
    .await
    .expect_error(400, "invalid_json");
    // An address of 254 characters with multi-byte letters is one address.
    let long = format!("{}@example.com", "é".repeat(242));
    assert_eq!(long.chars().count(), 254);
    let r = s
        .post(
            &format!("/api/workspaces/{ws}/members"),
            tok,
            json!({"email": long, "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    // Version numbers start at 1.
    let t = id_of(&s.create_template(&owner.access, &ws, "T", None).await);
    let diff = &doc["paths"]["/api/templates/{id}/versions/{from}/diff/{to}"]["get"];
    let from = diff["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "from")
        .unwrap();
    assert_eq!(from["schema"]["pattern"], "^(current|[1-9][0-9]{0,18})$");
    s.get(&format!("/api/templates/{t}/versions/0/diff/current"), tok)
        .await
        .expect_error(400, "bad_request");
}

#[tokio::test]
async fn a_backup_with_whole_numbers_written_as_floats_restores() {
    let s = Server::start().await;
    let owner = s.register("Ada", "ada@example.com").await;
    let ws = s.create_workspace(&owner.access, "W").await;
    s.create_template(&owner.access, &ws, "T", None).await;
    let mut backup = s.backup_json(&owner.access, &ws).await;
    let exported = backup["exportedAt"].as_i64().expect("exportedAt");
    backup["exportedAt"] = json!(exported as f64);
    backup["version"] = json!(1.0);
    let joined = backup["members"][0]["joinedAt"].as_i64().expect("joinedAt");
    backup["members"][0]["joinedAt"] = json!(joined as f64);
    s.post(
        &format!("/api/workspaces/{ws}/restore"),
        Some(&owner.access),
        backup.clone(),
    )
    .await
    .expect(200);
    // A fraction is still not a whole number; the error names the field.
    backup["members"][0]["joinedAt"] = json!(0.5);
    let r = s
        .post(
            &format!("/api/workspaces/{ws}/restore"),
            Some(&owner.access),
            backup,
        )
        .await;
    r.expect_error(400, "invalid_json");
    assert!(r.text.contains("members[0].joinedAt"), "{}", r.text);
}
