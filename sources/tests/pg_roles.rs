//! A source runs only as a role that can do nothing but read: `test`
//! (and every call) refuses superusers and roles with write privileges,
//! and says why.

mod support;

use coform_sources::PgLimits;
use serde_json::{json, Map};
use support::postgres::{executor, PgServer, SUPERUSER, SUPER_PASSWORD, WRITER_PASSWORD};

#[tokio::test]
async fn a_reader_passes_the_test() {
    let pg = PgServer::start().await;
    let sample = executor(PgLimits::default())
        .test(&pg.reader("SELECT id FROM t ORDER BY id"), &Map::new())
        .await
        .unwrap();
    assert_eq!(sample, json!([{"id": 1}, {"id": 2}, {"id": 3}]));
}

#[tokio::test]
async fn a_superuser_is_refused() {
    let pg = PgServer::start().await;
    let err = executor(PgLimits::default())
        .test(
            &pg.config(SUPERUSER, SUPER_PASSWORD, "SELECT 1"),
            &Map::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsafe_role");
    assert!(err.to_string().contains("is a superuser"), "{err}");
}

#[tokio::test]
async fn a_role_that_may_insert_is_refused() {
    let pg = PgServer::start().await;
    let err = executor(PgLimits::default())
        .test(
            &pg.config("writer", WRITER_PASSWORD, "SELECT 1"),
            &Map::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsafe_role");
    assert!(err.to_string().contains("may write to public.t"), "{err}");
}

#[tokio::test]
async fn create_on_a_schema_or_a_risky_membership_is_refused() {
    let pg = PgServer::start().await;
    let admin = pg.client(SUPERUSER, SUPER_PASSWORD).await;
    let exec = executor(PgLimits::default());
    let source = pg.reader("SELECT 1");
    exec.test(&source, &Map::new()).await.unwrap();

    admin
        .batch_execute("GRANT CREATE ON SCHEMA public TO reader")
        .await
        .unwrap();
    let err = exec.test(&source, &Map::new()).await.unwrap_err();
    assert_eq!(err.code(), "unsafe_role");
    assert!(err.to_string().contains("schemas public"), "{err}");
    admin
        .batch_execute("REVOKE CREATE ON SCHEMA public FROM reader")
        .await
        .unwrap();

    admin
        .batch_execute("GRANT pg_write_server_files TO reader")
        .await
        .unwrap();
    let err = exec.execute(&source, &Map::new()).await.unwrap_err();
    assert_eq!(err.code(), "unsafe_role", "execute checks the role too");
    assert!(err.to_string().contains("pg_write_server_files"), "{err}");
    admin
        .batch_execute("REVOKE pg_write_server_files FROM reader")
        .await
        .unwrap();

    admin
        .batch_execute("ALTER ROLE reader CREATEROLE")
        .await
        .unwrap();
    let err = exec.test(&source, &Map::new()).await.unwrap_err();
    assert!(err.to_string().contains("CREATEROLE"), "{err}");
    admin
        .batch_execute("ALTER ROLE reader NOCREATEROLE")
        .await
        .unwrap();

    // A column-level UPDATE privilege is a write privilege too.
    admin
        .batch_execute("GRANT UPDATE (name) ON t TO reader")
        .await
        .unwrap();
    let err = exec.test(&source, &Map::new()).await.unwrap_err();
    assert!(err.to_string().contains("may write to public.t"), "{err}");
}
