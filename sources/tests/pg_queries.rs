//! Reading through a PostgreSQL source: parameters bound by type, values
//! as JSON, the row cap, the test sample and the schema, against a real
//! server.

mod support;

use coform_sources::PgLimits;
use serde_json::{json, Map, Value};
use support::postgres::{executor, PgServer};

fn params(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

#[tokio::test]
async fn a_select_binds_its_parameters_and_answers_rows_as_json() {
    let pg = PgServer::start().await;
    let source =
        pg.reader("SELECT id, name FROM t WHERE id >= {{min}} AND name <> {{skip}} ORDER BY id");
    let rows = executor(PgLimits::default())
        .execute(&source, &params(json!({"min": "1", "skip": "grace"})))
        .await
        .unwrap();
    assert_eq!(
        rows,
        json!([{"id": 1, "name": "ada"}, {"id": 3, "name": "it's"}])
    );
}

#[tokio::test]
async fn every_column_type_has_its_json_form() {
    let pg = PgServer::start().await;
    let source = pg.reader(
        "SELECT id, score, born, seen, tags, doc, blob, uid, ok, ratio, \
         interval '1 day 2 hours' AS span, inet '10.0.0.1' AS addr, \
         ARRAY[[1, 2], [3, 4]] AS grid, NULL::text AS nothing \
         FROM t WHERE id = {{id}}",
    );
    let rows = executor(PgLimits::default())
        .execute(&source, &params(json!({"id": 1})))
        .await
        .unwrap();
    assert_eq!(
        rows,
        json!([{
            "id": 1,
            "score": "12.50",
            "born": "1815-12-10",
            "seen": "2024-01-02T03:04:05.500Z",
            "tags": ["a", "b"],
            "doc": {"k": [1, 2]},
            "blob": "AP8=",
            "uid": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "ok": true,
            "ratio": 0.25,
            "span": "P1DT2H",
            "addr": "10.0.0.1",
            "grid": [[1, 2], [3, 4]],
            "nothing": null,
        }])
    );
}

#[tokio::test]
async fn parameters_take_the_types_the_server_gives_them() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits::default());
    let source = pg.reader(
        "SELECT {{n}}::numeric + 1 AS n, {{d}}::date + 1 AS d, {{doc}}::jsonb -> 'a' AS a, \
         {{ids}}::int[] AS ids, {{u}}::uuid AS u, {{flag}}::bool AS flag",
    );
    let rows = exec
        .execute(
            &source,
            &params(json!({"n": "1.25", "d": "2024-02-28", "doc": {"a": [true]},
                "ids": [3, null, 5], "u": "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "flag": false})),
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        json!([{"n": "2.25", "d": "2024-02-29", "a": [true], "ids": [3, null, 5],
            "u": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "flag": false}])
    );

    // A value that does not fit its type is refused by name.
    let source = pg.reader("SELECT * FROM t WHERE id = {{id}}");
    for bad in [
        json!("1 OR 1=1"),
        json!(1.5),
        json!({"a": 1}),
        json!(3_000_000_000u64),
    ] {
        let err = exec
            .execute(&source, &params(json!({"id": bad})))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "parameter_refused", "{bad}: {err}");
        assert!(err.to_string().contains("\"id\""), "{err}");
    }
    // A missing one too, before anything is dialled.
    let err = exec.execute(&source, &Map::new()).await.unwrap_err();
    assert_eq!(err.code(), "parameter_refused");
}

#[tokio::test]
async fn more_rows_than_the_cap_is_an_error_not_a_short_answer() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits {
        max_rows: 10,
        ..PgLimits::default()
    });
    let rows = exec
        .execute(
            &pg.reader("SELECT n FROM big WHERE n <= 10 ORDER BY n"),
            &Map::new(),
        )
        .await
        .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 10);
    let err = exec
        .execute(&pg.reader("SELECT n FROM big"), &Map::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "row_limit");
    // A cross join of a million rows is cut off by the portal, not read.
    let err = exec
        .execute(
            &pg.reader("SELECT a.n FROM big a, big b, big c, big d"),
            &Map::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "row_limit");
}

#[tokio::test]
async fn the_test_call_answers_a_sample_of_twenty_rows() {
    let pg = PgServer::start().await;
    let rows = executor(PgLimits {
        max_rows: 10,
        ..PgLimits::default()
    })
    .test(&pg.reader("SELECT n FROM big ORDER BY n"), &Map::new())
    .await
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[19], json!({"n": 20}));
}

#[tokio::test]
async fn the_schema_lists_only_what_the_role_may_read() {
    let pg = PgServer::start().await;
    let schema = executor(PgLimits::default())
        .schema(&pg.reader("SELECT 1"))
        .await
        .unwrap();
    let tables: Vec<(&str, &str)> = schema["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["schema"].as_str().unwrap(), t["name"].as_str().unwrap()))
        .collect();
    assert_eq!(tables, vec![("public", "big"), ("public", "t")]);
    let t = &schema["tables"][1];
    assert_eq!(
        t["columns"][0],
        json!({"name": "id", "type": "integer", "nullable": false})
    );
    assert_eq!(
        t["columns"][2],
        json!({"name": "score", "type": "numeric(10,2)", "nullable": true})
    );
}

#[tokio::test]
async fn a_column_without_a_json_form_asks_for_a_cast() {
    let pg = PgServer::start().await;
    let err = executor(PgLimits::default())
        .execute(&pg.reader("SELECT point(1, 2) AS p"), &Map::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_query");
    assert!(err.to_string().contains("p::text"), "{err}");
    let rows = executor(PgLimits::default())
        .execute(&pg.reader("SELECT point(1, 2)::text AS p"), &Map::new())
        .await
        .unwrap();
    assert_eq!(rows, json!([{"p": "(1,2)"}]));
}

#[tokio::test]
async fn a_wrong_password_is_an_upstream_error_without_the_password() {
    let pg = PgServer::start().await;
    let source = pg.config("reader", "not-the-password", "SELECT 1");
    let err = executor(PgLimits::default())
        .execute(&source, &Map::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error", "{err}");
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn ssl_modes_against_a_server_without_tls() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits::default());
    let mut source = pg.reader("SELECT 1 AS one");
    // prefer falls back to plain text when the server says no...
    source.ssl_mode = Some(serde_json::from_value(json!("prefer")).unwrap());
    assert_eq!(
        exec.execute(&source, &Map::new()).await.unwrap(),
        json!([{"one": 1}])
    );
    // ...require and verify-full do not.
    for mode in ["require", "verify-full"] {
        source.ssl_mode = Some(serde_json::from_value(json!(mode)).unwrap());
        let err = exec.execute(&source, &Map::new()).await.unwrap_err();
        assert_eq!(err.code(), "upstream_unreachable", "{mode}: {err}");
    }
}

/// Whether the executor's own connection is encrypted, as the server
/// sees it.
const OVER_TLS: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[tokio::test]
async fn ssl_modes_against_a_server_with_a_self_signed_certificate() {
    let pg = PgServer::start_with_tls().await;
    let exec = executor(PgLimits::default());
    let mut source = pg.reader(OVER_TLS);
    for (mode, encrypted) in [("disable", false), ("prefer", true), ("require", true)] {
        source.ssl_mode = Some(serde_json::from_value(json!(mode)).unwrap());
        let rows = exec.execute(&source, &Map::new()).await.unwrap();
        assert_eq!(rows, json!([{ "ssl": encrypted }]), "{mode}");
    }
    // No root vouches for the certificate: verify-full refuses it.
    source.ssl_mode = Some(serde_json::from_value(json!("verify-full")).unwrap());
    let err = exec.execute(&source, &Map::new()).await.unwrap_err();
    assert_eq!(err.code(), "upstream_unreachable", "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}
