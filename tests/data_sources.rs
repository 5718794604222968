//! Data sources through the REST API, against an upstream written for
//! the tests (`support::upstream`) on 127.0.0.1.
//!
//! The server under test opens 127.0.0.1/32 with `--data-source-allow`
//! (loopback is refused by default); its own port stays refused. What
//! each endpoint answers, what reaches the upstream, what is stored and
//! what is never shown.

mod support;

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::upstream::Upstream;
use support::*;

const CANARY: &str = "canary-9f1c2e7d-secret";

fn allow_loopback(c: &mut coform::Config) {
    c.data_source_allow = vec!["127.0.0.1/32".parse().unwrap()];
}

struct World {
    s: Server,
    up: Upstream,
    owner: Account,
    ws: String,
}

async fn world() -> World {
    let up = Upstream::start().await;
    let s = Server::start_with(allow_loopback).await;
    let owner = s.register("Olive", "olive@example.com").await;
    let ws = s.create_workspace(&owner.access, "Data").await;
    World { s, up, owner, ws }
}

impl World {
    async fn create(&self, name: &str, kind: &str, config: Value) -> Resp {
        self.s
            .post(
                "/api/data-sources",
                Some(&self.owner.access),
                json!({"workspaceId": self.ws, "name": name, "type": kind, "config": config}),
            )
            .await
    }

    async fn source(&self, name: &str, kind: &str, config: Value) -> String {
        id_of(self.create(name, kind, config).await.expect(201))
    }

    async fn execute(&self, id: &str, params: Value) -> Resp {
        self.s
            .post(
                &format!("/api/data-sources/{id}/execute"),
                Some(&self.owner.access),
                json!({ "params": params }),
            )
            .await
    }

    async fn get(&self, id: &str) -> Value {
        self.s
            .get(&format!("/api/data-sources/{id}"), Some(&self.owner.access))
            .await
            .expect(200)
            .clone()
    }
}

#[tokio::test]
async fn a_rest_source_is_created_executed_and_its_figures_follow_real_calls() {
    let w = world().await;
    let created = w
        .create("Countries", "rest", json!({"url": w.up.url("/countries")}))
        .await;
    let view = created.expect(201);
    assert_eq!(view["type"], "rest");
    assert_eq!(view["status"], "untested");
    assert_eq!(view["configVersion"], 1);
    assert_eq!(view["monitoring"]["health"], "unknown");
    assert_eq!(view["performance"]["successRate"], Value::Null);
    let id = id_of(view);

    let answer = w.execute(&id, json!({})).await;
    let answer = answer.expect(200);
    assert_eq!(answer["data"][0]["name"], "France");
    assert_eq!(answer["cached"], false);
    assert!(answer["durationMs"].is_u64());
    assert_eq!(w.up.hits("/countries"), 1);

    let view = w.get(&id).await;
    assert_eq!(view["status"], "active");
    assert_eq!(view["errorCount"], 0);
    assert_eq!(view["performance"]["successRate"], 1.0);
    assert_eq!(view["performance"]["calls"], 1);
    assert!(view["lastUsed"].is_i64());

    let list =
        w.s.get(
            &format!("/api/data-sources?workspaceId={}", w.ws),
            Some(&w.owner.access),
        )
        .await;
    let list = list.expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["page"], 1);
    assert_eq!(list["pageSize"], 20);

    // An upstream error is counted and named.
    let failing = w
        .source("Broken", "rest", json!({"url": w.up.url("/status/500")}))
        .await;
    w.execute(&failing, json!({}))
        .await
        .expect_error(424, "upstream_error");
    let view = w.get(&failing).await;
    assert_eq!(view["status"], "failing");
    assert_eq!(view["errorCount"], 1);
    assert_eq!(view["performance"]["successRate"], 0.0);

    // Health: a real call, recorded.
    let health =
        w.s.get(
            &format!("/api/data-sources/{id}/health"),
            Some(&w.owner.access),
        )
        .await;
    assert_eq!(health.expect(200)["health"], "healthy");
    let view = w.get(&id).await;
    assert_eq!(view["monitoring"]["health"], "healthy");
    assert!(view["monitoring"]["lastCheck"].is_i64());
    let health =
        w.s.get(
            &format!("/api/data-sources/{failing}/health"),
            Some(&w.owner.access),
        )
        .await;
    let health = health.expect(200);
    assert_eq!(health["health"], "unhealthy");
    assert_eq!(health["error"]["code"], "upstream_error");
    assert_eq!(w.get(&failing).await["monitoring"]["health"], "unhealthy");

    // Schema inferred from a sample.
    let schema =
        w.s.get(
            &format!("/api/data-sources/{id}/schema"),
            Some(&w.owner.access),
        )
        .await;
    let schema = schema.expect(200).to_string();
    assert!(
        schema.contains("code") && schema.contains("name"),
        "{schema}"
    );
}

#[tokio::test]
async fn answers_are_cached_only_when_asked_and_until_invalidated() {
    let w = world().await;
    let id = w
        .source("Counter", "rest", json!({"url": w.up.url("/count")}))
        .await;
    let n = |r: &Resp| r.expect(200)["data"]["n"].as_u64().unwrap();
    assert_eq!(n(&w.execute(&id, json!({})).await), 1);
    assert_eq!(
        n(&w.execute(&id, json!({})).await),
        2,
        "no cache by default"
    );

    let path = format!("/api/data-sources/{id}/cache");
    let on =
        w.s.post(
            &path,
            Some(&w.owner.access),
            json!({"enabled": true, "ttl": 300}),
        )
        .await;
    assert_eq!(on.expect(200)["config"]["caching"]["enabled"], true);
    // A whole number written as a float is the integer the document's
    // `integer` promises; a fraction is not.
    let whole =
        w.s.post(
            &path,
            Some(&w.owner.access),
            json!({"enabled": true, "ttl": 300.0}),
        )
        .await;
    assert_eq!(whole.expect(200)["config"]["caching"]["ttl"], 300);
    w.s.post(
        &path,
        Some(&w.owner.access),
        json!({"enabled": true, "ttl": 300.5}),
    )
    .await
    .expect_error(400, "invalid_json");
    let first = w.execute(&id, json!({})).await;
    assert_eq!(first.expect(200)["cached"], false);
    let second = w.execute(&id, json!({})).await;
    assert_eq!(second.expect(200)["cached"], true);
    assert_eq!(n(&second), n(&first));
    assert_eq!(w.up.hits("/count"), 3);

    w.s.post(&path, Some(&w.owner.access), json!({"invalidate": true}))
        .await
        .expect(200);
    let third = w.execute(&id, json!({})).await;
    assert_eq!(third.expect(200)["cached"], false);
    assert_eq!(n(&third), n(&first) + 1);

    w.s.post(&path, Some(&w.owner.access), json!({"ttl": 0}))
        .await
        .expect_error(422, "validation_failed");
    w.s.post(&path, Some(&w.owner.access), json!({}))
        .await
        .expect_error(422, "validation_failed");
}

#[tokio::test]
async fn secrets_are_used_sealed_and_never_shown() {
    let w = world().await;
    let bearer = format!("Bearer {CANARY}");
    let created = w
        .create(
            "Private",
            "rest",
            json!({
                "url": w.up.url("/echo/private"),
                "headers": {"X-Api-Key": format!("{CANARY}-key"), "Accept": "application/json"},
                "secretHeaders": ["X-Api-Key"],
                "authentication": {"type": "bearer", "token": CANARY},
            }),
        )
        .await;
    let mut responses = vec![created.text.clone()];
    let view = created.expect(201).clone();
    let id = id_of(&view);
    assert_eq!(view["credentialsSet"], true);
    assert_eq!(view["config"]["headers"]["Accept"], "application/json");

    // The upstream receives the secrets: they are really used.
    let answer = w.execute(&id, json!({})).await;
    responses.push(answer.text.clone());
    answer.expect(200);
    let sent =
        w.up.received()
            .pop()
            .expect("a request reached the upstream");
    let header = |name: &str| {
        sent.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("authorization").as_deref(), Some(bearer.as_str()));
    assert_eq!(
        header("x-api-key").as_deref(),
        Some(format!("{CANARY}-key").as_str())
    );

    // Every way of reading it shows masks.
    for path in [
        format!("/api/data-sources/{id}"),
        format!("/api/data-sources?workspaceId={}", w.ws),
        format!("/api/data-sources/{id}/schema"),
    ] {
        responses.push(w.s.get(&path, Some(&w.owner.access)).await.text);
    }
    // A partial change keeps the secrets; so does sending the mask back.
    let renamed =
        w.s.put(
            &format!("/api/data-sources/{id}"),
            Some(&w.owner.access),
            json!({"name": "Renamed", "config": {"timeoutMs": 5000,
                   "authentication": {"token": "••••••"}}}),
        )
        .await;
    responses.push(renamed.text.clone());
    assert_eq!(renamed.expect(200)["configVersion"], 2);
    w.execute(&id, json!({})).await.expect(200);
    let sent = w.up.received().pop().unwrap();
    assert!(sent
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == &bearer));
    // Tests and errors.
    for body in [
        json!({"id": id}),
        json!({"id": id, "config": {"url": w.up.url("/status/401")}}),
    ] {
        responses.push(
            w.s.post("/api/data-sources/test", Some(&w.owner.access), body)
                .await
                .text,
        );
    }
    for text in &responses {
        assert!(
            !text.contains(CANARY),
            "a response shows the secret: {text}"
        );
    }

    // At rest: not in any file of the data directory.
    let state = w.s.state();
    let stored = state.sources.store.data_source(&id).await.unwrap().unwrap();
    assert!(!stored.config.contains(CANARY));
    w.s.post(
        &format!("/api/workspaces/{}/backup", w.ws),
        Some(&w.owner.access),
        json!({}),
    )
    .await;
    let mut files = vec![w.s.data_dir().to_path_buf()];
    let mut scanned = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            scanned += 1;
            assert!(
                !bytes
                    .windows(CANARY.len())
                    .any(|win| win == CANARY.as_bytes()),
                "{} holds the secret in the clear",
                path.display()
            );
        }
    }
    assert!(scanned > 0);
}

#[tokio::test]
async fn changing_the_origin_or_the_auth_type_needs_the_secrets_again() {
    let w = world().await;
    let id = w
        .source(
            "Auth",
            "rest",
            json!({"url": w.up.url("/echo/a"),
                   "authentication": {"type": "basic", "credentials": {"username": "u", "password": CANARY}}}),
        )
        .await;
    let path = format!("/api/data-sources/{id}");
    // Same origin, other path: kept.
    w.s.put(
        &path,
        Some(&w.owner.access),
        json!({"config": {"url": w.up.url("/echo/b")}}),
    )
    .await
    .expect(200);
    // Another origin (the name `localhost` instead of the address).
    let other = format!("http://localhost:{}/echo/c", w.up.addr.port());
    let refused =
        w.s.put(
            &path,
            Some(&w.owner.access),
            json!({"config": {"url": other}}),
        )
        .await;
    let err = refused.expect_error(422, "secrets_required");
    assert!(
        err["details"]["fields"].to_string().contains("password"),
        "{err}"
    );
    assert_eq!(w.get(&id).await["configVersion"], 2, "nothing changed");
    // Another auth type without its secret.
    w.s.put(
        &path,
        Some(&w.owner.access),
        json!({"config": {"authentication": {"type": "bearer"}}}),
    )
    .await
    .expect_error(422, "secrets_required");
    // Sent again: accepted.
    w.s.put(
        &path,
        Some(&w.owner.access),
        json!({"config": {"url": other, "authentication": {"credentials": {"password": "new-password"}}}}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn the_guard_refuses_inward_addresses_before_dialling() {
    let w = world().await;
    // Literal addresses are refused when the source is saved.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://[fd00::1]/",
        "http://0x7f.2/",
        "http://2130706434/",
        &format!("http://{}/api/auth/me", w.s.addr),
    ] {
        let r = w.create("Inward", "rest", json!({ "url": url })).await;
        r.expect_error(422, "blocked_address");
    }
    let r = w
        .create(
            "Db",
            "database",
            json!({"engine": "postgresql", "host": "169.254.169.254", "database": "d",
                   "user": "u", "query": "select 1"}),
        )
        .await;
    r.expect_error(422, "blocked_address");
    let r =
        w.s.post(
            "/api/data-sources/test",
            Some(&w.owner.access),
            json!({"workspaceId": w.ws, "type": "rest", "config": {"url": "http://192.168.1.1/"}}),
        )
        .await;
    r.expect_error(422, "blocked_address");
    // A redirect to a refused address is refused at the hop.
    let id = w
        .source(
            "Redirect",
            "rest",
            json!({"url": w.up.url("/redirect?to=http://169.254.169.254/latest")}),
        )
        .await;
    w.execute(&id, json!({}))
        .await
        .expect_error(422, "blocked_address");
    // Without the allow-list, loopback itself is refused.
    let closed = Server::start().await;
    let alice = closed.register("Alice", "alice@example.com").await;
    let ws = closed.create_workspace(&alice.access, "Closed").await;
    closed
        .post(
            "/api/data-sources",
            Some(&alice.access),
            json!({"workspaceId": ws, "name": "L", "type": "rest", "config": {"url": w.up.url("/countries")}}),
        )
        .await
        .expect_error(422, "blocked_address");
    assert_eq!(w.up.hits("/countries"), 0);
}

#[tokio::test]
async fn parameters_are_values_never_code() {
    let w = world().await;
    let id = w
        .source(
            "Params",
            "rest",
            json!({"url": w.up.url("/echo/items/{{id}}"),
                   "queryParams": {"q": "{{q}}"},
                   "headers": {"X-Trace": "{{trace}}"},
                   "method": "POST",
                   "body": {"id": "{{id}}", "count": "{{count}}", "note": "id={{id}}"}}),
        )
        .await;
    let ok = w
        .execute(
            &id,
            json!({"id": "a b", "q": "' OR 1=1 --", "trace": "t1", "count": 3}),
        )
        .await;
    let echo = &ok.expect(200)["data"];
    assert_eq!(echo["path"], "/echo/items/a%20b");
    assert_eq!(
        echo["body"]["count"], 3,
        "a whole placeholder keeps its type"
    );
    assert_eq!(echo["body"]["note"], "id=a b");
    let query = echo["query"].as_str().unwrap();
    assert!(!query.contains('\''), "the quote is encoded: {query}");
    for params in [
        json!({"id": "../admin", "q": "x", "trace": "t", "count": 1}),
        json!({"id": "http://evil.example/", "q": "x", "trace": "t", "count": 1}),
        json!({"id": "1", "q": "x", "trace": "t\r\nX-Injected: 1", "count": 1}),
        json!({"q": "x", "trace": "t", "count": 1}),
    ] {
        w.execute(&id, params)
            .await
            .expect_error(422, "parameter_refused");
    }
    assert!(w
        .up
        .received()
        .iter()
        .all(|r| !r.headers.iter().any(|(k, _)| k == "x-injected")));
    // The schema is read from a sample call, which needs its parameters.
    let schema = format!("/api/data-sources/{id}/schema");
    w.s.get(&schema, Some(&w.owner.access))
        .await
        .expect_error(422, "parameter_refused");
    let params = r#"{"id":"7","q":"x","trace":"t","count":2}"#;
    let with = format!("{schema}?params={}", params.replace('"', "%22"));
    let r = w.s.get(&with, Some(&w.owner.access)).await;
    assert!(r.expect(200).to_string().contains("body"), "{}", r.text);
    w.s.get(&format!("{schema}?params=[1]"), Some(&w.owner.access))
        .await
        .expect_error(422, "validation_failed");
}

#[tokio::test]
async fn a_graphql_source_binds_variables_and_introspects() {
    let w = world().await;
    let id = w
        .source(
            "Graph",
            "graphql",
            json!({"url": w.up.url("/graphql"),
                   "query": "query($code: String) { country(code: $code) { name } }",
                   "variables": {"code": "{{code}}", "fail": "{{fail}}"}}),
        )
        .await;
    let r = w
        .execute(&id, json!({"code": "\"}) { admin }", "fail": false}))
        .await;
    let data = &r.expect(200)["data"];
    assert_eq!(data["echo"]["code"], "\"}) { admin }");
    assert!(!data["query"].as_str().unwrap().contains("admin"));
    w.execute(&id, json!({"code": "x", "fail": true}))
        .await
        .expect_error(424, "upstream_error");
    let schema =
        w.s.get(
            &format!("/api/data-sources/{id}/schema"),
            Some(&w.owner.access),
        )
        .await;
    assert!(schema.expect(200).to_string().contains("Country"));
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let w = world().await;
    for (body, field) in [
        (json!({"url": "ftp://x.example/"}), "config.url"),
        (
            json!({"url": w.up.url("/"), "password": "x"}),
            "config.password",
        ),
        (json!({"url": w.up.url("/"), "proxy": "x"}), "config"),
        (
            json!({"url": w.up.url("/"), "timeoutMs": 0}),
            "config.timeoutMs",
        ),
        (
            json!({"url": w.up.url("/"), "retries": 9}),
            "config.retries",
        ),
        (
            json!({"url": w.up.url("/"), "headers": {"X": "a\nb"}}),
            "config.headers.X",
        ),
    ] {
        let r = w.create("Bad", "rest", body.clone()).await;
        r.expect_error(422, "validation_failed");
        assert!(!r.field_error(field).is_empty(), "{body} → {}", r.text);
    }
    w.create("", "rest", json!({"url": w.up.url("/")}))
        .await
        .expect_error(422, "validation_failed");
    let list =
        w.s.get(
            &format!("/api/data-sources?workspaceId={}", w.ws),
            Some(&w.owner.access),
        )
        .await;
    assert_eq!(list.expect(200)["total"], 0);
    // Names are unique in a workspace.
    w.source("Same", "rest", json!({"url": w.up.url("/")}))
        .await;
    w.create("same", "rest", json!({"url": w.up.url("/")}))
        .await
        .expect_error(409, "conflict");
}

#[tokio::test]
async fn viewers_execute_only_what_a_form_binds() {
    let w = world().await;
    let viewer = w.s.register("Vic", "vic@example.com").await;
    w.s.add_member(&w.owner.access, &w.ws, &viewer.email, "viewer")
        .await;
    let id = w
        .source("Countries", "rest", json!({"url": w.up.url("/countries")}))
        .await;
    let other = w
        .source("Other", "rest", json!({"url": w.up.url("/countries")}))
        .await;
    let bound = json!({"meta": {"title": "Bound"}, "components": {"country": {
        "id": "country", "type": "select", "label": "Country", "index": "a0",
        "properties": {"options": [{"label": "None", "value": "none"}],
                       "optionsSource": {"dataSourceId": id, "labelKey": "name", "valueKey": "code"}}}}});
    let tpl = id_of(
        &w.s.create_template(&w.owner.access, &w.ws, "Bound", Some(bound))
            .await,
    );
    let exec = |source: String, body: Value| {
        let s = &w.s;
        let token = viewer.access.clone();
        async move {
            s.post(
                &format!("/api/data-sources/{source}/execute"),
                Some(&token),
                body,
            )
            .await
        }
    };
    exec(id.clone(), json!({}))
        .await
        .expect_error(403, "forbidden");
    let r = exec(id.clone(), json!({"templateId": tpl})).await;
    assert_eq!(r.expect(200)["data"][2]["name"], "Japan");
    exec(other.clone(), json!({"templateId": tpl}))
        .await
        .expect_error(403, "forbidden");
    // The viewer sees the list, without secrets, and cannot test or change.
    w.s.get(
        &format!("/api/data-sources?workspaceId={}", w.ws),
        Some(&viewer.access),
    )
    .await
    .expect(200);
    w.s.post(
        "/api/data-sources/test",
        Some(&viewer.access),
        json!({"id": id}),
    )
    .await
    .expect_error(403, "forbidden");
}

#[tokio::test]
async fn a_sealed_secret_copied_to_another_source_does_not_open() {
    let w = world().await;
    let a = w
        .source(
            "A",
            "rest",
            json!({"url": w.up.url("/countries"), "authentication": {"type": "bearer", "token": CANARY}}),
        )
        .await;
    let b = w
        .source("B", "rest", json!({"url": w.up.url("/countries")}))
        .await;
    let store = &w.s.state().sources.store;
    let sealed_a = store.data_source(&a).await.unwrap().unwrap().config;
    let version_b = store.data_source(&b).await.unwrap().unwrap().config_version;
    assert!(store
        .reseal_data_source(&b, &sealed_a, version_b)
        .await
        .unwrap());
    w.execute(&b, json!({})).await.expect_error(500, "internal");
    let v =
        w.s.post(
            &format!("/api/data-sources/{b}/validate"),
            Some(&w.owner.access),
            json!({}),
        )
        .await;
    assert_eq!(v.expect(200)["valid"], false);
    assert_eq!(w.up.hits("/countries"), 0, "nothing was sent");
}

#[tokio::test]
async fn secrets_survive_a_key_rotation() {
    use base64::Engine as _;
    let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let spec = Arc::new(Mutex::new(format!("old:{}", key(1))));
    let current = spec.clone();
    let up = Upstream::start().await;
    let mut s = Server::start_with(move |c| {
        allow_loopback(c);
        c.secrets_key = Some(current.lock().unwrap().clone());
    })
    .await;
    let owner = s.register("Olive", "olive@example.com").await;
    let ws = s.create_workspace(&owner.access, "Keys").await;
    let created = s
        .post(
            "/api/data-sources",
            Some(&owner.access),
            json!({"workspaceId": ws, "name": "K", "type": "rest",
                   "config": {"url": up.url("/echo/k"), "authentication": {"type": "bearer", "token": CANARY}}}),
        )
        .await;
    let id = id_of(created.expect(201));
    s.stop().await;

    *spec.lock().unwrap() = format!("new:{},old:{}", key(2), key(1));
    let mut config = coform::Config::for_tests_with_auth(s.data_dir().to_path_buf());
    config.secrets_key = Some(spec.lock().unwrap().clone());
    assert_eq!(coform::server::rotate_secrets(&config).await.unwrap(), 1);

    // The old key is gone: the secret still opens.
    *spec.lock().unwrap() = format!("new:{}", key(2));
    s.start_again().await;
    let stored = s
        .state()
        .sources
        .store
        .data_source(&id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.config.contains("\"new\""), "{}", stored.config);
    let owner = s.login("olive@example.com", support::PASSWORD).await;
    s.post(
        &format!("/api/data-sources/{id}/execute"),
        Some(&owner.access),
        json!({}),
    )
    .await
    .expect(200);
    let sent = up.received().pop().unwrap();
    assert!(sent
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == &format!("Bearer {CANARY}")));
}

#[tokio::test]
async fn deleting_a_workspace_deletes_its_sources() {
    let w = world().await;
    let id = w
        .source("Gone", "rest", json!({"url": w.up.url("/countries")}))
        .await;
    w.s.delete(&format!("/api/workspaces/{}", w.ws), Some(&w.owner.access))
        .await
        .expect(204);
    assert!(w
        .s
        .state()
        .sources
        .store
        .data_source(&id)
        .await
        .unwrap()
        .is_none());
}

#[test]
fn an_allow_list_or_key_that_would_open_too_much_stops_the_server_at_start() {
    use clap::Parser;
    let parse = |args: &[&str]| {
        let mut all = vec!["coform"];
        all.extend_from_slice(args);
        coform::config::Cli::try_parse_from(all).map(|cli| cli.into_config())
    };
    // A range holding the metadata address, and malformed ranges.
    let config = parse(&["--data-source-allow", "169.254.0.0/16"]).unwrap();
    let err = config.validate().unwrap_err();
    assert!(err.contains("169.254.169.254"), "{err}");
    assert!(parse(&["--data-source-allow", "10.0.0.0/33"]).is_err());
    assert!(parse(&["--data-source-allow", "localhost"]).is_err());
    let ok = parse(&["--data-source-allow", "10.20.0.0/16,127.0.0.1/32"]).unwrap();
    assert!(ok.validate().is_ok());
    // Keys: malformed, and missing with MongoDB.
    let config = parse(&["--secrets-key", "k1:tooshort"]).unwrap();
    let err = config.validate().unwrap_err();
    assert!(!err.contains("tooshort"), "the key is never echoed: {err}");
    let config = parse(&[
        "--store",
        "mongodb://127.0.0.1:1/x",
        "--jwt-secret",
        "0123456789abcdef0123456789abcdef",
    ])
    .unwrap();
    assert!(config.validate().unwrap_err().contains("--secrets-key"));
}

/// The PostgreSQL server the sources crate's tests use (initdb + pg_ctl).
#[path = "../sources/tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

#[tokio::test]
async fn a_postgresql_source_reads_through_the_api_with_a_read_only_role() {
    let pg = postgres::PgServer::start().await;
    let w = world().await;
    let db = |user: &str, password: &str, query: &str| {
        json!({"engine": "postgresql", "host": "127.0.0.1", "port": pg.port,
               "database": "postgres", "user": user, "password": password,
               "sslMode": "disable", "query": query})
    };
    // A role that could write is refused by a test, before it is saved.
    let r =
        w.s.post(
            "/api/data-sources/test",
            Some(&w.owner.access),
            json!({"workspaceId": w.ws, "type": "database",
                   "config": db("writer", postgres::WRITER_PASSWORD, "SELECT id FROM t")}),
        )
        .await;
    r.expect_error(422, "unsafe_role");
    assert!(!r.text.contains(postgres::WRITER_PASSWORD));

    let query = "SELECT id, name FROM t WHERE name = {{name}} OR id = {{id}} ORDER BY id";
    let id = w
        .source(
            "People",
            "database",
            db("reader", postgres::READER_PASSWORD, query),
        )
        .await;
    let view = w.get(&id).await;
    assert_eq!(view["credentialsSet"], true);
    assert!(!view.to_string().contains(postgres::READER_PASSWORD));
    let r = w.execute(&id, json!({"name": "ada", "id": 2})).await;
    let rows = r.expect(200)["data"].clone();
    assert_eq!(
        rows,
        json!([{"id": 1, "name": "ada"}, {"id": 2, "name": "grace"}])
    );
    // Injection attempts are values.
    for (name, id_param) in [
        (json!("' OR 1=1 --"), json!(0)),
        (json!("x'; DROP TABLE t; --"), json!(0)),
    ] {
        let r = w.execute(&id, json!({"name": name, "id": id_param})).await;
        assert_eq!(r.expect(200)["data"], json!([]));
    }
    w.execute(&id, json!({"name": "ada", "id": "1; DROP TABLE t"}))
        .await
        .expect_error(422, "parameter_refused");
    assert_eq!(pg.rows_in_t().await, 3, "the table is intact");
    // A write in the query fails in its read-only transaction.
    let writes = w
        .source(
            "Writes",
            "database",
            db(
                "reader",
                postgres::READER_PASSWORD,
                "INSERT INTO t (id, name) VALUES (9, 'x') RETURNING id",
            ),
        )
        .await;
    w.execute(&writes, json!({}))
        .await
        .expect_error(424, "upstream_error");
    assert_eq!(pg.rows_in_t().await, 3);
    // The schema lists what the role may read, and only that.
    let schema =
        w.s.get(
            &format!("/api/data-sources/{id}/schema"),
            Some(&w.owner.access),
        )
        .await;
    let tables: Vec<String> = schema.expect(200)["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(tables.contains(&"t".to_owned()), "{tables:?}");
    assert!(!tables.contains(&"hidden".to_owned()), "{tables:?}");
    // Health connects (the query has parameters, so it is not run).
    let health =
        w.s.get(
            &format!("/api/data-sources/{id}/health"),
            Some(&w.owner.access),
        )
        .await;
    assert_eq!(health.expect(200)["health"], "healthy");
}

/// The binary at its most talkative: not one log line carries a secret.
#[tokio::test]
async fn no_log_line_carries_a_secret() {
    let up = Upstream::start().await;
    let server = support::process::ProcessServer::start_env(
        &[
            "--data-source-allow",
            "127.0.0.1/32",
            "--log-format",
            "json",
        ],
        &[("COFORM_LOG", "trace")],
    )
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", server.addr);
    let call = |method: reqwest::Method, path: String, token: Option<String>, body: Value| {
        let request = http
            .request(method, format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        async move {
            let response = request.send().await.expect("a request to the binary");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let (status, me) = call(
        reqwest::Method::POST,
        "/api/auth/register".into(),
        None,
        json!({"email": "log@example.com", "password": support::PASSWORD, "name": "Log"}),
    )
    .await;
    assert_eq!(status, 201, "{me}");
    let token = me["accessToken"].as_str().unwrap().to_owned();
    let (_, ws) = call(
        reqwest::Method::POST,
        "/api/workspaces".into(),
        Some(token.clone()),
        json!({"name": "Logs"}),
    )
    .await;
    let ws = id_of(&ws);
    let mut ids = Vec::new();
    for (name, url) in [
        ("ok", up.url("/echo/ok")),
        ("denied", up.url("/reflect/401")),
    ] {
        let (status, source) = call(
            reqwest::Method::POST,
            "/api/data-sources".into(),
            Some(token.clone()),
            json!({"workspaceId": ws, "name": name, "type": "rest", "config": {
                "url": url,
                "headers": {"Cookie": format!("session={CANARY}")},
                "authentication": {"type": "basic",
                    "credentials": {"username": "u", "password": CANARY}}}}),
        )
        .await;
        assert_eq!(status, 201, "{source}");
        ids.push(id_of(&source));
    }
    for id in &ids {
        call(
            reqwest::Method::POST,
            format!("/api/data-sources/{id}/execute"),
            Some(token.clone()),
            json!({"params": {}}),
        )
        .await;
        call(
            reqwest::Method::GET,
            format!("/api/data-sources/{id}/health"),
            Some(token.clone()),
            Value::Null,
        )
        .await;
    }
    // A change that needs the secrets again, refused.
    let (status, _) = call(
        reqwest::Method::PUT,
        format!("/api/data-sources/{}", ids[0]),
        Some(token.clone()),
        json!({"config": {"url": format!("http://localhost:{}/echo", up.addr.port())}}),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        up.received()
            .iter()
            .any(|r| r.headers.iter().any(|(_, v)| v.contains(CANARY))),
        "the secret was really sent"
    );
    let log = server.stderr();
    assert!(
        log.contains("data source call failed") && log.contains("upstream_error"),
        "the failed call is logged: {log}"
    );
    assert!(!log.contains(CANARY), "a log line carries the secret");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{CANARY}"));
    assert!(
        !log.contains(&basic),
        "a log line carries the Basic credential"
    );
}
