//! Tests of what a request becomes before anything is dialled: binding,
//! refusals, the cache key, decoding and schema inference.

use serde_json::{json, Map, Value};

use super::request::prepare;
use super::template::{pieces, Piece};
use super::transport::decode_all;
use super::*;
use crate::config::placeholders;

fn config(value: Value) -> Config {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("config: {e}"))
}

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("params must be an object, not {other}"),
    }
}

fn url_of(template: &str, p: Value) -> Result<String, SourceError> {
    let prepared = prepare(Kind::Rest, &config(json!({"url": template})), &params(p))?;
    Ok(prepared.url.to_string())
}

fn refused_param(result: Result<impl std::fmt::Debug, SourceError>) -> String {
    match result {
        Err(SourceError::ParameterRefused { name, .. }) => name,
        other => panic!("expected parameter_refused, got {other:?}"),
    }
}

#[test]
fn pieces_read_placeholders_as_the_config_does() {
    for text in [
        "/users/{{ id }}/posts?q={{q}}&x={{bad name}}",
        "{{a}}{{b}}",
        "{{",
        "}}{{x}}}}",
        "{{ {{y}} }}",
        "plain",
    ] {
        let names: Vec<String> = pieces(text)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Placeholder(name) => Some(name.to_owned()),
                Piece::Text(_) => None,
            })
            .collect();
        assert_eq!(names, placeholders(text), "{text}");
        let rebuilt: usize = pieces(text)
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Placeholder(_) => 0,
            })
            .sum();
        assert!(rebuilt <= text.len());
    }
}

#[test]
fn path_values_are_encoded_as_one_segment() {
    let url = url_of(
        "https://api.example.com/users/{{id}}/x",
        json!({"id": "a/b?c#d e"}),
    );
    assert_eq!(
        url.unwrap(),
        "https://api.example.com/users/a%2Fb%3Fc%23d%20e/x"
    );
    let url = url_of("https://api.example.com/u/{{id}}", json!({"id": "..a/b.."}));
    assert_eq!(url.unwrap(), "https://api.example.com/u/..a%2Fb..");
    let url = url_of("https://api.example.com/u/{{n}}", json!({"n": 42}));
    assert_eq!(url.unwrap(), "https://api.example.com/u/42");
}

#[test]
fn path_values_that_would_move_the_request_are_refused() {
    for value in [
        "..",
        ".",
        "../admin",
        "a/../b",
        "..\\x",
        "%2e%2e/x",
        "http://evil/",
        "//evil.example/x",
    ] {
        let result = url_of("https://api.example.com/u/{{id}}/x", json!({ "id": value }));
        assert_eq!(refused_param(result), "id", "{value}");
    }
    // A value that makes `..` with the text around it.
    let result = url_of("https://api.example.com/u/..{{b}}", json!({"b": ""}));
    assert_eq!(refused_param(result), "b");
    let result = url_of("https://api.example.com/u/%2E{{b}}", json!({"b": ""}));
    assert_eq!(refused_param(result), "b");
    // Objects have no text form.
    let result = url_of("https://api.example.com/u/{{id}}", json!({"id": {"a": 1}}));
    assert_eq!(refused_param(result), "id");
}

#[test]
fn placeholders_in_scheme_host_port_or_userinfo_are_refused() {
    for template in [
        "https://{{host}}/x",
        "https://api.example.com:{{port}}/x",
        "https://{{user}}@api.example.com/x",
        "https://api.{{host}}.com/x",
    ] {
        let result = url_of(
            template,
            json!({"host": "evil", "port": "1", "user": "u", "scheme": "http"}),
        );
        assert!(
            matches!(result, Err(SourceError::ParameterRefused { .. })),
            "{template}: {result:?}"
        );
    }
    // The configuration check already refuses a templated scheme.
    let result = url_of("{{scheme}}://api.example.com/x", json!({"scheme": "http"}));
    assert_eq!(result.unwrap_err().code(), "invalid_config");
}

#[test]
fn a_missing_parameter_is_refused_by_name() {
    let err = url_of("https://api.example.com/u/{{id}}", json!({})).unwrap_err();
    assert_eq!(err.code(), "parameter_refused");
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(refused_param(Err::<(), _>(err)), "id");
}

#[test]
fn query_values_are_encoded_as_values() {
    let cfg = config(json!({
        "url": "https://api.example.com/s?q={{q}}&fixed=1",
        "queryParams": {"filter": "name={{name}}", "a b": "x"},
    }));
    let p = params(json!({"q": "' OR 1=1 --", "name": "x&admin=true"}));
    let prepared = prepare(Kind::Rest, &cfg, &p).unwrap();
    assert_eq!(
        prepared.url.query().unwrap(),
        "q=%27%20OR%201%3D1%20--&fixed=1&a%20b=x&filter=name%3Dx%26admin%3Dtrue"
    );
    let pairs: Vec<(String, String)> = prepared.url.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("filter".to_owned(), "name=x&admin=true".to_owned())));
    assert!(!pairs.iter().any(|(k, _)| k == "admin"));
}

#[test]
fn header_values_with_control_characters_are_refused() {
    let cfg = config(json!({"url": "https://api.example.com/",
        "headers": {"X-Name": "hello {{name}}"}}));
    for value in ["a\r\nX-Injected: 1", "a\nb", "a\0b", "a\u{7f}"] {
        let result = prepare(Kind::Rest, &cfg, &params(json!({ "name": value })));
        assert_eq!(refused_param(result), "name", "{value:?}");
    }
    let prepared = prepare(Kind::Rest, &cfg, &params(json!({"name": "x y"}))).unwrap();
    let header = prepared
        .headers
        .iter()
        .find(|h| h.name == "x-name")
        .unwrap();
    assert_eq!(header.value, "hello x y");
    assert!(!header.secret);
}

#[test]
fn managed_headers_cannot_be_set() {
    let cfg = config(json!({"url": "https://api.example.com/", "headers": {"Host": "evil"}}));
    let err = prepare(Kind::Rest, &cfg, &Map::new()).unwrap_err();
    assert_eq!(err.code(), "invalid_config");
}

#[test]
fn body_placeholders_keep_their_type_and_text_is_escaped() {
    let cfg = config(json!({
        "url": "https://api.example.com/", "method": "POST",
        "body": {"id": "{{id}}", "tags": "{{tags}}", "note": "by {{name}}", "{{key}}": 1,
                 "nested": [{"n": "{{ flag }}"}]},
    }));
    let p = params(
        json!({"id": 7, "tags": ["a", "b"], "name": "\"},\"admin\":true,\"x\":\"",
        "flag": false, "key": "ignored"}),
    );
    let prepared = prepare(Kind::Rest, &cfg, &p).unwrap();
    let body: Value = serde_json::from_slice(prepared.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"id": 7, "tags": ["a", "b"], "note": "by \"},\"admin\":true,\"x\":\"",
               "{{key}}": 1, "nested": [{"n": false}]})
    );
    assert!(body.get("admin").is_none());
    let content_type = prepared
        .headers
        .iter()
        .find(|h| h.name == "content-type")
        .unwrap();
    assert_eq!(content_type.value, "application/json");
}

#[test]
fn graphql_sends_the_query_as_written_and_binds_variables() {
    let cfg = config(json!({
        "url": "https://api.example.com/graphql",
        "query": "query($id: ID!) { user(id: $id) { name } } # {{id}}",
        "variables": {"id": "{{id}}", "label": "n={{id}}"},
    }));
    let prepared = prepare(Kind::Graphql, &cfg, &params(json!({"id": "5\" } evil {"}))).unwrap();
    assert_eq!(prepared.method, hyper::Method::POST);
    assert!(!prepared.idempotent);
    let body: Value = serde_json::from_slice(prepared.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"query": "query($id: ID!) { user(id: $id) { name } } # {{id}}",
               "variables": {"id": "5\" } evil {", "label": "n=5\" } evil {"}})
    );
}

#[test]
fn auth_headers_are_marked_secret() {
    let cases = [
        (
            json!({"type": "bearer", "token": "tok-123"}),
            "authorization",
            "Bearer tok-123",
        ),
        (
            json!({"type": "basic", "credentials": {"username": "u", "password": "p:w"}}),
            "authorization",
            "Basic dTpwOnc=",
        ),
        (
            json!({"type": "apiKey", "credentials": {"name": "X-Api-Key", "value": "k-1"}}),
            "x-api-key",
            "k-1",
        ),
    ];
    for (auth, name, value) in cases {
        let cfg = config(json!({"url": "https://api.example.com/", "authentication": auth}));
        let prepared = prepare(Kind::Rest, &cfg, &Map::new()).unwrap();
        let header = prepared.headers.iter().find(|h| h.name == name).unwrap();
        assert_eq!(header.value, value);
        assert!(header.secret, "{name}");
    }
    let cfg = config(
        json!({"url": "https://api.example.com/x?a=1", "authentication":
        {"type": "apiKey", "credentials": {"name": "api key", "value": "k&1", "in": "query"}}}),
    );
    let prepared = prepare(Kind::Rest, &cfg, &Map::new()).unwrap();
    assert_eq!(prepared.url.query(), Some("a=1&api%20key=k%261"));
}

#[test]
fn request_key_follows_the_request_and_hides_secrets() {
    let base = json!({"url": "https://api.example.com/u/{{id}}",
        "authentication": {"type": "bearer", "token": "secret-token"}});
    let key = |cfg: Value, p: Value| request_key(Kind::Rest, &config(cfg), &params(p)).unwrap();
    let a = key(base.clone(), json!({"id": 1}));
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a, key(base.clone(), json!({"id": 1})));
    // The parameter's text is what counts: 1 and "1" make one request.
    assert_eq!(a, key(base.clone(), json!({"id": "1"})));
    assert_ne!(a, key(base.clone(), json!({"id": 2})));
    let mut other = base.clone();
    other["authentication"]["token"] = json!("another-token");
    assert_ne!(a, key(other, json!({"id": 1})));
    // Caching settings do not change the request.
    let mut cached = base.clone();
    cached["caching"] = json!({"enabled": true, "ttl": 30});
    assert_eq!(a, key(cached, json!({"id": 1})));
    // OAuth 2: the secret counts, through its hash.
    let oauth = |secret: &str| {
        json!({"url": "https://api.example.com/", "authentication": {"type": "oauth2",
            "credentials": {"tokenUrl": "https://auth.example.com/token",
            "clientId": "c", "clientSecret": secret}}})
    };
    assert_ne!(key(oauth("s1"), json!({})), key(oauth("s2"), json!({})));
    let err = request_key(Kind::Rest, &config(base), &Map::new()).unwrap_err();
    assert_eq!(err.code(), "parameter_refused");
}

#[test]
fn a_database_source_is_not_called_over_http() {
    let cfg = config(json!({"engine": "postgresql", "host": "h", "database": "d",
        "user": "u", "query": "select 1"}));
    let err = request_key(Kind::Database, &cfg, &Map::new()).unwrap_err();
    assert_eq!(err.code(), "invalid_config");
}

#[test]
fn upstream_messages_are_cleaned() {
    let body = format!("bad token secret-token\u{7}\r\n{}", "x".repeat(500));
    let err = upstream_error(
        StatusCode::UNAUTHORIZED,
        body.as_bytes(),
        &["secret-token".to_owned()],
    );
    let SourceError::Upstream { status, message } = err else {
        panic!("not upstream");
    };
    assert_eq!(status, Some(401));
    assert!(message.starts_with("bad token [secret]x"), "{message}");
    assert_eq!(message.chars().count(), MESSAGE_CHARS);
    assert!(!message.chars().any(char::is_control));
}

#[test]
fn gzip_and_deflate_are_decoded_within_the_limit() {
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;
    let text = br#"{"hello":"world"}"#;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(text).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(decode_all("gzip", &gz, 1024).unwrap(), text);
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(text).unwrap();
    assert_eq!(
        decode_all("deflate", &zlib.finish().unwrap(), 1024).unwrap(),
        text
    );
    let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
    raw.write_all(text).unwrap();
    assert_eq!(
        decode_all("deflate", &raw.finish().unwrap(), 1024).unwrap(),
        text
    );
    assert_eq!(decode_all("identity", text, 1024).unwrap(), text);

    // 1 MiB of zeros compresses to about a kilobyte: refused by what it
    // decodes to.
    let mut bomb = GzEncoder::new(Vec::new(), Compression::best());
    bomb.write_all(&vec![0u8; 1 << 20]).unwrap();
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 4096);
    let err = decode_all("gzip", &bomb, 64 * 1024).unwrap_err();
    assert_eq!(err.code(), "response_too_large");
    assert_eq!(decode_all("gzip", &bomb, 1 << 20).unwrap().len(), 1 << 20);

    assert_eq!(
        decode_all("gzip", b"not gzip at all", 1024)
            .unwrap_err()
            .code(),
        "invalid_response"
    );
    assert_eq!(
        decode_all("br", text, 1024).unwrap_err().code(),
        "invalid_response"
    );
}

#[test]
fn schemas_are_inferred_from_samples() {
    let sample = json!({
        "total": 2,
        "items": [
            {"id": 1, "name": "a", "score": 1.5, "tags": []},
            {"id": 2, "name": null, "score": 2, "extra": true, "tags": ["x"]},
        ],
    });
    assert_eq!(
        infer_schema(&sample),
        json!({
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "items": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": ["string", "null"]},
                        "score": {"type": "number"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "extra": {"type": "boolean"},
                    },
                    "required": ["id", "name", "score", "tags"],
                }},
            },
            "required": ["items", "total"],
        })
    );
    assert_eq!(
        infer_schema(&json!([])),
        json!({"type": "array", "items": {}})
    );
    assert_eq!(
        infer_schema(&json!([1, "a", {"b": 1}, "c"])),
        json!({"type": "array", "items": {"anyOf": [
            {"type": "integer"}, {"type": "string"},
            {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]}})
    );
}

#[test]
fn introspection_types_are_described_in_schema_language() {
    let data = json!({"__schema": {
    "queryType": {"name": "Query"}, "mutationType": null,
    "types": [
        {"kind": "OBJECT", "name": "Query", "fields": [
            {"name": "users", "args": [{"name": "first", "type": {"kind": "SCALAR", "name": "Int"}}],
             "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "LIST", "name": null,
                "ofType": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "OBJECT", "name": "User"}}}}}]},
        {"kind": "OBJECT", "name": "__Type", "fields": []},
        {"kind": "ENUM", "name": "Role", "fields": null, "enumValues": [{"name": "ADMIN"}]},
    ]}});
    assert_eq!(
        describe_schema(&data),
        json!({"queryType": "Query", "mutationType": null, "types": [
            {"name": "Query", "kind": "OBJECT", "fields": [
                {"name": "users", "type": "[User!]!", "args": [{"name": "first", "type": "Int"}]}]},
            {"name": "Role", "kind": "ENUM", "enumValues": ["ADMIN"]},
        ]})
    );
}
