//! Tests of sealing, opening, masking and editing: no secret reaches the
//! stored or shown form, a sealed value opens only where it was sealed,
//! keys rotate, and an edit keeps secrets only while they go where they
//! went.

use serde_json::json;

use super::*;
use crate::config::{AuthType, Kind};

const WS: &str = "ws-1";
const SRC: &str = "src-1";

/// A recognisable secret: if it appears anywhere in a text, it leaked.
fn canary(name: &str) -> String {
    format!("CANARY-{name}-7f3a9c")
}

fn spec(id: &str, byte: u8) -> String {
    format!("{id}:{}", BASE64.encode([byte; 32]))
}

fn keys(spec_text: &str) -> Keyring {
    Keyring::parse(spec_text).unwrap_or_else(|e| panic!("{spec_text}: {e}"))
}

fn config(value: Value) -> Config {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
}

/// A REST source with a secret in every place one can be.
fn rest_with_every_secret() -> Config {
    config(json!({
        "url": format!("https://alice:{}@api.example.com/v1/{{{{id}}}}?q=1", canary("urlpw")),
        "headers": {
            "Authorization": canary("authz"),
            "X-Api-Key": canary("xkey"),
            "X-Plain": "visible",
        },
        "secretHeaders": ["x-api-key"],
        "authentication": {
            "type": "oauth2",
            "token": canary("token"),
            "credentials": {
                "tokenUrl": "https://auth.example.com/token",
                "clientId": "client",
                "clientSecret": canary("clientsecret"),
                "password": canary("password"),
                "value": canary("value"),
            }
        }
    }))
}

fn database() -> Config {
    config(json!({
        "engine": "postgresql", "host": "db.example.com", "port": 5432,
        "database": "app", "user": "reader", "password": canary("dbpw"),
        "query": "select 1", "sslMode": "verify-full"
    }))
}

#[test]
fn a_sealed_secret_opens_where_it_was_sealed() {
    let keys = keys(&spec("A", 1));
    let aad = Aad {
        workspace_id: WS,
        source_id: SRC,
        field: "password",
    };
    let sealed = keys.seal("hunter2", &aad);
    assert_eq!(sealed.key_id, "A");
    assert_eq!(BASE64.decode(&sealed.nonce).unwrap().len(), 24);
    assert_eq!(keys.open(&sealed, &aad).unwrap(), "hunter2");
    // Two seals of the same secret differ (random nonces).
    assert_ne!(keys.seal("hunter2", &aad), sealed);
}

#[test]
fn sealed_json_is_camel_case() {
    let keys = keys(&spec("A", 1));
    let aad = Aad {
        workspace_id: WS,
        source_id: SRC,
        field: "password",
    };
    let value = serde_json::to_value(keys.seal("x", &aad)).unwrap();
    let object = value.as_object().unwrap();
    let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["ciphertext", "keyId", "nonce"]);
}

#[test]
fn a_sealed_secret_does_not_open_in_another_place() {
    let keys = keys(&spec("A", 1));
    let here = Aad {
        workspace_id: WS,
        source_id: SRC,
        field: "password",
    };
    let sealed = keys.seal("hunter2", &here);
    for elsewhere in [
        Aad {
            source_id: "src-2",
            ..here
        },
        Aad {
            workspace_id: "ws-2",
            ..here
        },
        Aad {
            field: "authentication.token",
            ..here
        },
        // Length prefixes: moving a character between parts is another place.
        Aad {
            workspace_id: "ws-1s",
            source_id: "rc-1",
            ..here
        },
    ] {
        assert_eq!(
            keys.open(&sealed, &elsewhere),
            Err(SealError::Rejected),
            "{elsewhere:?}"
        );
    }
}

#[test]
fn a_stored_ciphertext_copied_to_another_source_does_not_open() {
    let keys = keys(&spec("A", 1));
    let stored = seal_config(&keys, &database(), WS, SRC);
    for (ws, src) in [(WS, "src-2"), ("ws-2", SRC)] {
        let err = open_config(&keys, &stored, ws, src).unwrap_err();
        assert_eq!(err.field(), Some("password"));
        assert!(
            matches!(err, SealError::Field { ref cause, .. } if **cause == SealError::Rejected)
        );
    }
    // Moved to another field of the same source.
    let config = rest_with_every_secret();
    let mut stored = seal_config(&keys, &config, WS, SRC);
    let token = stored["authentication"]["token"].clone();
    stored["authentication"]["credentials"]["password"] = token;
    let err = open_config(&keys, &stored, WS, SRC).unwrap_err();
    assert_eq!(err.field(), Some("authentication.credentials.password"));
}

#[test]
fn tampered_ciphertext_does_not_open() {
    let keys = keys(&spec("A", 1));
    let aad = Aad {
        workspace_id: WS,
        source_id: SRC,
        field: "password",
    };
    let sealed = keys.seal("hunter2", &aad);
    let mut bytes = BASE64.decode(&sealed.ciphertext).unwrap();
    for i in [0, bytes.len() - 1] {
        bytes[i] ^= 1;
        let tampered = Sealed {
            ciphertext: BASE64.encode(&bytes),
            ..sealed.clone()
        };
        assert_eq!(keys.open(&tampered, &aad), Err(SealError::Rejected));
        bytes[i] ^= 1;
    }
    let truncated = Sealed {
        ciphertext: BASE64.encode(&bytes[..4]),
        ..sealed.clone()
    };
    assert_eq!(keys.open(&truncated, &aad), Err(SealError::Rejected));
    let bad_nonce = Sealed {
        nonce: BASE64.encode([0u8; 12]),
        ..sealed.clone()
    };
    assert!(matches!(
        keys.open(&bad_nonce, &aad),
        Err(SealError::Malformed { .. })
    ));
    let not_base64 = Sealed {
        ciphertext: "%%%".to_owned(),
        ..sealed.clone()
    };
    assert!(matches!(
        keys.open(&not_base64, &aad),
        Err(SealError::Malformed { .. })
    ));
    // Relabelled with another key's id: that key does not open it.
    let two = self::keys(&format!("{},{}", spec("A", 1), spec("B", 2)));
    let relabelled = Sealed {
        key_id: "B".to_owned(),
        ..sealed
    };
    assert_eq!(two.open(&relabelled, &aad), Err(SealError::Rejected));
}

#[test]
fn the_stored_form_holds_no_secret_and_opens_to_the_config() {
    let keys = keys(&spec("A", 1));
    let config = rest_with_every_secret();
    let stored = seal_config(&keys, &config, WS, SRC);
    let text = serde_json::to_string(&stored).unwrap();
    assert!(
        !text.contains("CANARY"),
        "a secret is stored in the clear: {text}"
    );
    // Everything else is stored as it was.
    assert_eq!(
        stored["url"], "https://alice@api.example.com/v1/{{id}}?q=1",
        "the URL keeps everything but its password, placeholders unencoded"
    );
    assert_eq!(stored["headers"]["X-Plain"], "visible");
    assert_eq!(
        stored["authentication"]["credentials"]["clientId"],
        "client"
    );
    for path in [
        &["authentication", "token"][..],
        &["authentication", "credentials", "password"],
        &["authentication", "credentials", "clientSecret"],
        &["authentication", "credentials", "value"],
        &["headers", "Authorization"],
        &["headers", "X-Api-Key"],
        &[URL_PASSWORD_KEY],
    ] {
        let sealed = sealed_of(get(&stored, path).unwrap());
        assert!(sealed.is_some(), "{path:?} is not sealed");
        let sealed: Sealed = serde_json::from_value(sealed.unwrap().clone()).unwrap();
        assert_eq!(sealed.key_id, "A");
    }
    assert_eq!(open_config(&keys, &stored, WS, SRC).unwrap(), config);

    let db = database();
    let stored = seal_config(&keys, &db, WS, SRC);
    assert!(!serde_json::to_string(&stored).unwrap().contains("CANARY"));
    assert_eq!(open_config(&keys, &stored, WS, SRC).unwrap(), db);
}

#[test]
fn secret_paths_lists_every_secret() {
    let mut paths = secret_paths(&rest_with_every_secret());
    paths.sort();
    assert_eq!(
        paths,
        [
            "authentication.credentials.clientSecret",
            "authentication.credentials.password",
            "authentication.credentials.value",
            "authentication.token",
            "headers.Authorization",
            "headers.X-Api-Key",
            "url.password",
        ]
    );
    assert_eq!(secret_paths(&database()), ["password"]);
    let plain = config(json!({"url": "https://user@api.example.com/"}));
    assert!(secret_paths(&plain).is_empty());
}

#[test]
fn url_passwords_are_found_as_the_http_client_reads_them() {
    let cases = [
        ("https://u:pw@h.example/", Some("pw")),
        ("https://u:p:w@h.example/", Some("p:w")),
        ("https://u:p@w@h.example/x@y", Some("p@w")),
        ("HTTPS:///u:pw@h.example", Some("pw")),
        ("https:\\\\u:pw@h.example", Some("pw")),
        ("https://u:@h.example/", None),
        ("https://u@h.example/", None),
        ("https://h.example/a:b@c", None),
        ("https://h.example?u:p@h", None),
        ("https://h.example#u:p@h", None),
        ("not a url", None),
    ];
    for (url, password) in cases {
        let found = url_password_span(url).map(|(c, a)| &url[c + 1..a]);
        assert_eq!(found, password, "{url}");
        if let (Some(password), Ok(parsed)) = (password, url::Url::parse(url)) {
            // The same password the URL parser sees (it percent-encodes `@`, `:`).
            let encoded = parsed.password().unwrap();
            assert_eq!(
                encoded.replace("%40", "@").replace("%3A", ":"),
                password,
                "{url}"
            );
        }
    }
    // Tabs and newlines are ignored by the parser: they may split the
    // scheme or the password, and none of the password may stay behind.
    let url = "https:\t//u:p\nw@h.example/";
    let (colon, at) = url_password_span(url).unwrap();
    let cut = format!("{}{}", &url[..colon], &url[at..]);
    assert_eq!(url::Url::parse(&cut).unwrap().password(), None);
    assert_eq!(url::Url::parse(url).unwrap().password(), Some("pw"));
}

#[test]
fn a_url_with_an_odd_password_round_trips() {
    let keys = keys(&spec("A", 1));
    for url in [
        "https://:CANARY-x@h.example/",
        "https://u:CANARY-p%40ss@h.example/{{a}}",
        "https:\t//u:CANARY-p\nw@h.example/",
    ] {
        let config = config(json!({ "url": url }));
        let stored = seal_config(&keys, &config, WS, SRC);
        assert!(!stored.to_string().contains("CANARY"), "{url}: {stored}");
        assert_eq!(
            open_config(&keys, &stored, WS, SRC).unwrap(),
            config,
            "{url}"
        );
        let (masked, set) = masked_config(&stored);
        assert!(set);
        assert!(!masked.to_string().contains("CANARY"));
    }
}

#[test]
fn keys_rotate() {
    let a = keys(&spec("A", 1));
    let stored = seal_config(&a, &rest_with_every_secret(), WS, SRC);

    let b_then_a = keys(&format!("{},{}", spec("B", 2), spec("A", 1)));
    assert_eq!(b_then_a.sealing_id(), "B");
    assert_eq!(
        open_config(&b_then_a, &stored, WS, SRC).unwrap(),
        rest_with_every_secret()
    );
    let resealed = reseal(&b_then_a, &stored, WS, SRC).unwrap();
    let text = resealed.to_string();
    assert!(text.contains("\"keyId\":\"B\"") && !text.contains("\"keyId\":\"A\""));

    let b = keys(&spec("B", 2));
    assert_eq!(
        open_config(&b, &resealed, WS, SRC).unwrap(),
        rest_with_every_secret()
    );
    // The old form needs the old key.
    let err = open_config(&b, &stored, WS, SRC).unwrap_err();
    assert!(matches!(err, SealError::Field { ref cause, .. }
        if **cause == SealError::UnknownKey { key_id: "A".to_owned() }));
}

#[test]
fn keyring_specifications_are_checked() {
    let good = BASE64.encode([7u8; 32]);
    assert!(matches!(Keyring::parse(""), Err(KeyringError::Empty)));
    assert!(matches!(Keyring::parse("  "), Err(KeyringError::Empty)));
    assert!(matches!(
        Keyring::parse(&good),
        Err(KeyringError::Malformed { position: 1 })
    ));
    assert!(matches!(
        Keyring::parse(&format!("A:{good},")),
        Err(KeyringError::Malformed { position: 2 })
    ));
    assert!(matches!(
        Keyring::parse(&format!("a b:{good}")),
        Err(KeyringError::InvalidId { position: 1 })
    ));
    assert!(matches!(
        Keyring::parse(&format!("{}:{good}", "x".repeat(33))),
        Err(KeyringError::InvalidId { .. })
    ));
    assert_eq!(
        Keyring::parse("A:not*base64").unwrap_err(),
        KeyringError::InvalidBase64 { id: "A".to_owned() }
    );
    assert_eq!(
        Keyring::parse(&format!("A:{}", BASE64.encode([1u8; 16]))).unwrap_err(),
        KeyringError::WrongLength {
            id: "A".to_owned(),
            len: 16
        }
    );
    assert_eq!(
        Keyring::parse(&format!("A:{good}, A:{good}")).unwrap_err(),
        KeyringError::DuplicateId { id: "A".to_owned() }
    );
    // No message quotes the key material.
    let short = BASE64.encode([9u8; 31]);
    for bad in [
        short.clone(),
        format!("A:{short}"),
        format!("A:{good},A:{short}"),
    ] {
        let message = Keyring::parse(&bad).unwrap_err().to_string();
        assert!(!message.contains(&short), "{message}");
    }
    let ring = Keyring::parse(&format!(
        " key_1-x:{good} , old:{}",
        BASE64.encode([8u8; 32])
    ))
    .unwrap();
    assert_eq!(ring.sealing_id(), "key_1-x");
}

#[test]
fn a_generated_keyring_reads_back_and_debug_shows_no_key() {
    let (ring, text) = Keyring::generate("k2026");
    let again = Keyring::parse(&text).unwrap();
    let aad = Aad {
        workspace_id: WS,
        source_id: SRC,
        field: "password",
    };
    assert_eq!(again.open(&ring.seal("s", &aad), &aad).unwrap(), "s");
    let debug = format!("{ring:?}");
    let key = text.split_once(':').unwrap().1;
    assert!(debug.contains("k2026") && !debug.contains(key), "{debug}");
    let (_, other) = Keyring::generate("k2026");
    assert_ne!(text, other);
}

#[test]
fn masked_output_holds_no_secret() {
    let keys = keys(&spec("A", 1));
    let config = rest_with_every_secret();
    let clear = serde_json::to_value(&config).unwrap();
    let stored = seal_config(&keys, &config, WS, SRC);
    for form in [&clear, &stored] {
        let (masked, set) = masked_config(form);
        assert!(set);
        let text = masked.to_string();
        assert!(!text.contains("CANARY"), "{text}");
        assert!(
            !text.contains("ciphertext") && !text.contains("sealed"),
            "{text}"
        );
        assert_eq!(
            masked["url"],
            format!("https://alice:{MASK}@api.example.com/v1/{{{{id}}}}?q=1")
        );
        assert_eq!(masked["authentication"]["token"], MASK);
        assert_eq!(masked["headers"]["X-Api-Key"], MASK);
        assert_eq!(masked["headers"]["X-Plain"], "visible");
        assert!(masked.get(URL_PASSWORD_KEY).is_none());
    }
    let plain = json!({"url": "https://api.example.com/", "method": "POST",
                       "body": {"sealed": true, "nested": {"sealed": {"keyId": 1}}}});
    let (masked, set) = masked_config(&plain);
    assert!(!set);
    assert_eq!(masked, plain, "nothing that is not a secret is masked");
}

#[test]
fn a_stored_secret_in_the_clear_is_refused() {
    let keys = keys(&spec("A", 1));
    let stored = serde_json::to_value(database()).unwrap();
    let err = open_config(&keys, &stored, WS, SRC).unwrap_err();
    assert_eq!(err.field(), Some("password"));
    assert!(!err.to_string().contains("CANARY"));
}

// ---------------------------------------------------------------------
// Edits.

fn bearer() -> Config {
    config(json!({
        "url": format!("https://u:{}@api.example.com/v1/items", canary("urlpw")),
        "headers": {"X-Key": canary("xkey"), "X-Plain": "a"},
        "secretHeaders": ["X-Key"],
        "authentication": {"type": "bearer", "token": canary("token")},
    }))
}

fn required(result: Result<Config, MergeError>) -> Vec<String> {
    match result {
        Err(MergeError::SecretsRequired { fields }) => fields,
        other => panic!("expected secrets_required, got {other:?}"),
    }
}

#[test]
fn an_edit_at_the_same_origin_keeps_the_secrets() {
    let next = merge_config(
        &bearer(),
        &json!({"url": format!("https://u:{MASK}@API.example.com:443/v2/{{{{id}}}}"),
                "headers": {"X-Plain": "b"}, "timeoutMs": 5000}),
    )
    .unwrap();
    assert_eq!(
        next.url.as_deref(),
        Some(
            format!(
                "https://u:{}@API.example.com:443/v2/{{{{id}}}}",
                canary("urlpw")
            )
            .as_str()
        )
    );
    assert_eq!(next.headers["X-Key"], canary("xkey"));
    assert_eq!(next.headers["X-Plain"], "b");
    assert_eq!(next.authentication.unwrap().token, Some(canary("token")));
    assert_eq!(next.timeout_ms, Some(5000));
}

#[test]
fn the_mask_sent_back_keeps_the_secret() {
    let next = merge_config(
        &bearer(),
        &json!({"authentication": {"type": "bearer", "token": MASK},
                "headers": {"X-Key": MASK}}),
    )
    .unwrap();
    assert_eq!(next.authentication.unwrap().token, Some(canary("token")));
    assert_eq!(next.headers["X-Key"], canary("xkey"));
}

#[test]
fn a_new_origin_needs_the_secrets_again() {
    let fields = required(merge_config(
        &bearer(),
        &json!({"url": "https://u@evil.example/v1/items"}),
    ));
    assert_eq!(fields, ["authentication.token", "headers.X-Key"]);
    // Masked secrets count as kept.
    let fields = required(merge_config(
        &bearer(),
        &json!({"url": format!("https://u:{MASK}@evil.example/"),
                "authentication": {"token": MASK}}),
    ));
    assert_eq!(
        fields,
        ["authentication.token", "headers.X-Key", "url.password"]
    );
    // Scheme and port are part of the origin.
    for url in [
        "http://u@api.example.com/v1/items",
        "https://u@api.example.com:8443/v1/items",
    ] {
        assert!(
            !required(merge_config(&bearer(), &json!({ "url": url }))).is_empty(),
            "{url}"
        );
    }
    // The URL's password alone is kept while the URL is not sent.
    let fields = required(merge_config(
        &config(json!({"url": "https://u:pw@a.example/"})),
        &json!({"authentication": {"type": "oauth2",
            "credentials": {"tokenUrl": "https://evil.example/t", "clientId": "c",
                            "clientSecret": "new"}}}),
    ));
    assert_eq!(fields, ["url.password"]);
}

#[test]
fn a_new_origin_with_the_secrets_sent_is_accepted() {
    let next = merge_config(
        &bearer(),
        &json!({"url": "https://u:new-pw@other.example/",
                "authentication": {"token": "new-token"},
                "headers": {"X-Key": "new-key"}}),
    )
    .unwrap();
    assert_eq!(next.url.as_deref(), Some("https://u:new-pw@other.example/"));
    assert_eq!(
        next.authentication.unwrap().token.as_deref(),
        Some("new-token")
    );
    assert_eq!(next.headers["X-Key"], "new-key");
    // Or with the secrets removed.
    let next = merge_config(
        &bearer(),
        &json!({"url": "https://other.example/", "authentication": null,
                "headers": {"X-Key": null}}),
    )
    .unwrap();
    assert!(next.authentication.is_none());
    assert!(!next.headers.contains_key("X-Key"));
    assert!(secret_paths(&next).is_empty());
}

#[test]
fn a_new_auth_type_needs_the_secrets_again() {
    let fields = required(merge_config(
        &bearer(),
        &json!({"authentication": {"type": "apiKey",
            "credentials": {"name": "X-Other", "value": "v"}}}),
    ));
    assert_eq!(
        fields,
        ["authentication.token", "headers.X-Key", "url.password"]
    );
}

#[test]
fn a_new_database_host_port_or_tls_mode_needs_the_password_again() {
    for change in [
        json!({"host": "evil.example"}),
        json!({"port": 6432}),
        json!({"sslMode": "disable"}),
    ] {
        assert_eq!(
            required(merge_config(&database(), &change)),
            ["password"],
            "{change}"
        );
    }
    let next = merge_config(
        &database(),
        &json!({"host": "DB.example.com", "query": "select 2"}),
    )
    .unwrap();
    assert_eq!(next.password, Some(canary("dbpw")));
    assert_eq!(next.query.as_deref(), Some("select 2"));
    assert!(next.check(Kind::Database).is_ok());
    let next = merge_config(
        &database(),
        &json!({"host": "new.example", "password": "pw2"}),
    )
    .unwrap();
    assert_eq!(next.password.as_deref(), Some("pw2"));
}

#[test]
fn a_new_token_endpoint_needs_the_client_secret_again() {
    let current = config(json!({
        "url": "https://api.example.com/",
        "authentication": {"type": "oauth2", "credentials": {
            "tokenUrl": "https://auth.example.com/token", "clientId": "c",
            "clientSecret": canary("cs")}}
    }));
    let fields = required(merge_config(
        &current,
        &json!({"authentication": {"credentials": {"tokenUrl": "https://evil.example/token"}}}),
    ));
    assert_eq!(fields, ["authentication.credentials.clientSecret"]);
}

#[test]
fn a_header_that_stops_being_secret_must_be_sent_again() {
    let fields = required(merge_config(&bearer(), &json!({"secretHeaders": []})));
    assert_eq!(fields, ["headers.X-Key"]);
    let next = merge_config(
        &bearer(),
        &json!({"secretHeaders": [], "headers": {"X-Key": "public now"}}),
    )
    .unwrap();
    assert_eq!(next.headers["X-Key"], "public now");
}

#[test]
fn a_mask_with_nothing_to_keep_is_refused() {
    let fields = required(merge_config(
        &config(json!({"url": "https://api.example.com/"})),
        &json!({"authentication": {"type": "bearer", "token": MASK},
                "url": format!("https://u:{MASK}@api.example.com/")}),
    ));
    assert_eq!(fields, ["authentication.token", "url.password"]);
}

#[test]
fn null_removes_and_objects_merge() {
    let current = config(json!({
        "url": "https://api.example.com/",
        "headers": {"A": "1", "B": "2"},
        "queryParams": {"q": "x"},
        "body": {"keep": null, "old": 1},
        "retries": 2,
    }));
    let next = merge_config(
        &current,
        &json!({"headers": {"A": null, "C": "3"}, "retries": null,
                "body": {"new": null}}),
    )
    .unwrap();
    assert_eq!(
        next.headers.keys().map(String::as_str).collect::<Vec<_>>(),
        ["B", "C"]
    );
    assert_eq!(next.retries, None);
    assert_eq!(next.query_params["q"], "x");
    // The body is a document: replaced whole, its nulls kept.
    assert_eq!(next.body, Some(json!({"new": null})));
    assert_eq!(next.auth_type(), AuthType::None);
}

#[test]
fn a_bad_shape_is_invalid_and_quotes_no_value() {
    let err = merge_config(&database(), &json!({"port": "CANARY-in-port"})).unwrap_err();
    assert_eq!(err.code(), "invalid_config");
    assert!(!err.to_string().contains("CANARY"), "{err}");
    let err = merge_config(&database(), &json!({"sslMode": "CANARY-mode"})).unwrap_err();
    assert!(!err.to_string().contains("CANARY"), "{err}");
    let err = merge_config(&database(), &json!({"proxy": "http://x"})).unwrap_err();
    assert!(err.to_string().contains("proxy"), "{err}");
    assert!(matches!(
        merge_config(&database(), &json!([1])),
        Err(MergeError::Invalid { .. })
    ));
}
