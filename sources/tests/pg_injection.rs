//! A PostgreSQL source cannot be made to write, to run a second
//! statement, or to run for ever, whatever its query or parameters say;
//! after every attempt the table is still there, with its rows.

mod support;

use std::time::{Duration, Instant};

use coform_sources::PgLimits;
use serde_json::{json, Map, Value};
use support::postgres::{executor, PgServer, WRITER_PASSWORD};

fn params(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

#[tokio::test]
async fn sql_in_a_parameter_is_only_a_value() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits::default());
    let source = pg.reader("SELECT id FROM t WHERE name = {{name}}");
    for attack in ["' OR 1=1 --", "x'; DROP TABLE t; --", "1; DROP TABLE t"] {
        let rows = exec
            .execute(&source, &params(json!({ "name": attack })))
            .await
            .unwrap();
        assert_eq!(rows, json!([]), "{attack}");
    }
    // The text is compared as it is: the row named with a quote matches.
    let rows = exec
        .execute(&source, &params(json!({"name": "it's"})))
        .await
        .unwrap();
    assert_eq!(rows, json!([{"id": 3}]));
    assert_eq!(pg.rows_in_t().await, 3);
}

#[tokio::test]
async fn a_second_statement_in_the_query_is_refused() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits::default());
    for query in [
        "SELECT 1; DROP TABLE t",
        "SELECT * FROM t WHERE id = {{id}}; DELETE FROM t",
        "SELECT 1;/**/DROP TABLE t",
    ] {
        let err = exec
            .execute(&pg.reader(query), &params(json!({"id": 1})))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_query", "{query}: {err}");
    }
    assert_eq!(pg.rows_in_t().await, 3);
}

#[tokio::test]
async fn a_placeholder_inside_quotes_is_refused() {
    let pg = PgServer::start().await;
    let err = executor(PgLimits::default())
        .execute(
            &pg.reader("SELECT id FROM t WHERE name = '{{name}}'"),
            &params(json!({"name": "' OR 1=1 --"})),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "parameter_refused");
}

#[tokio::test]
async fn a_slow_query_hits_the_timeout() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits::default());
    let admin = pg.client("super", support::postgres::SUPER_PASSWORD).await;
    for query in [
        "SELECT pg_sleep(10)",
        // Turning the limit off inside the statement is too late: the
        // timer was armed when it started.
        "SELECT set_config('statement_timeout', '0', true), pg_sleep(10)",
    ] {
        let mut source = pg.reader(query);
        source.timeout_ms = Some(500);
        let started = Instant::now();
        let err = exec.execute(&source, &Map::new()).await.unwrap_err();
        assert_eq!(err.code(), "upstream_timeout", "{query}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The server stops it too (statement_timeout), rather than
        // sleeping on after we gave up: within a moment no backend runs
        // it. Each look is a round trip to the server.
        let gone = Instant::now();
        loop {
            let running: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE query LIKE '%pg_sleep(10)' AND state = 'active' \
                     AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if running == 0 {
                break;
            }
            assert!(
                gone.elapsed() < Duration::from_secs(3),
                "{query} still runs on the server"
            );
        }
    }
}

#[tokio::test]
async fn writes_fail_whatever_the_statement() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits::default());
    for query in [
        "INSERT INTO t (id, name) VALUES (9, 'x') RETURNING id",
        "UPDATE t SET name = 'x' RETURNING id",
        "DELETE FROM t RETURNING id",
        "CREATE TABLE evil (x int)",
        "WITH gone AS (DELETE FROM t RETURNING id) SELECT * FROM gone",
        "SELECT set_config('transaction_read_only', 'off', false)",
    ] {
        let err = exec
            .execute(&pg.reader(query), &Map::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "upstream_error", "{query}: {err}");
    }
    // COPY is refused before it reaches the server (which would refuse
    // TO PROGRAM to this role anyway).
    for query in ["COPY t TO PROGRAM 'id'", "COPY t FROM PROGRAM 'id'"] {
        let err = exec
            .execute(&pg.reader(query), &Map::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_query", "{query}: {err}");
    }
    assert_eq!(pg.rows_in_t().await, 3);
}

#[tokio::test]
async fn a_session_setting_does_not_reach_the_next_call() {
    let pg = PgServer::start().await;
    let exec = executor(PgLimits::default());
    // The first call succeeds (it is one statement, and reads nothing),
    // but its connection is closed with it: the next call starts read-only
    // again.
    let source = pg.reader("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE");
    assert_eq!(exec.execute(&source, &Map::new()).await.unwrap(), json!([]));
    let err = exec
        .execute(
            &pg.reader("INSERT INTO t (id, name) VALUES (9, 'x')"),
            &Map::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(pg.rows_in_t().await, 3);
}

#[tokio::test]
async fn a_writer_cannot_write_through_a_source_either() {
    let pg = PgServer::start().await;
    let source = pg.config(
        "writer",
        WRITER_PASSWORD,
        "INSERT INTO t (id, name) VALUES (9, 'x') RETURNING id",
    );
    let err = executor(PgLimits::default())
        .execute(&source, &Map::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsafe_role", "{err}");
    assert_eq!(pg.rows_in_t().await, 3);
}
