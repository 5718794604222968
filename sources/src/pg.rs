//! [`Postgres`]: running a database source's one query, read-only, and
//! answering its rows as JSON.
//!
//! # What keeps a query harmless
//!
//! A source's query is written by a workspace editor and its parameters
//! come from whoever fills the form, so both are untrusted:
//!
//! - **Parameters are values, never code.** Each `{{name}}` becomes `$n`
//!   ([`sql`]) and its value travels in the Bind message, checked against
//!   the type the server gave the parameter ([`bind`]). A placeholder
//!   inside quotes is refused, since there it would be text.
//! - **One statement.** A `;` followed by anything is refused before a
//!   connection is made; the server would refuse several statements in
//!   one prepared statement too.
//! - **Read-only in depth.** The role must not be able to write at all
//!   (checked on every call, [`SAFETY`]), and the query runs in a
//!   `READ ONLY` transaction that is rolled back. Every call opens a fresh
//!   connection and closes it: a `SET SESSION` in one call cannot reach
//!   the next, and there is no pooled session to poison.
//! - **Bounded.** `statement_timeout` and
//!   `idle_in_transaction_session_timeout` are set for the transaction,
//!   the whole call is bounded by the source's timeout on our side too,
//!   and rows are fetched through a portal with a row limit, so the server
//!   never sends more than [`PgLimits::max_rows`] + 1 rows.
//! - **Only vetted addresses.** The connection is opened by
//!   [`Guard::connect`] and handed to tokio-postgres as a stream
//!   (`connect_raw`): the client never resolves the host itself.
//!
//! # Layout
//!
//! - [`sql`]: placeholders to `$n`, one statement, quotes and comments.
//! - [`bind`]: JSON values as parameters of the types the server says.
//! - [`decode`]: column values as JSON (the table of types is there).
//! - [`tls`]: rustls for `require`, `prefer` and `verify-full`.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Transaction};

use crate::config::{Config, SslMode};
use crate::dial::{Connector, TcpConnector};
use crate::error::SourceError;
use crate::guard::Guard;
use crate::literal::parse_host_literal;

pub mod bind;
pub mod decode;
pub mod sql;
pub mod tls;

/// How many rows [`Postgres::test`] answers.
pub const SAMPLE_ROWS: u64 = 20;

/// The most column rows [`Postgres::schema`] reads (one per column of
/// every readable table).
pub const MAX_SCHEMA_COLUMNS: u64 = 20_000;

/// Limits an operator sets for every database source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgLimits {
    /// The most rows one call may answer; one more is a
    /// [`SourceError::RowLimit`], not a silently shortened answer.
    pub max_rows: u64,
    /// How long connecting, TLS and authentication may take together
    /// (within the source's own timeout).
    pub connect_timeout: Duration,
}

impl Default for PgLimits {
    fn default() -> Self {
        PgLimits {
            max_rows: 1000,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The roles a source may not run as, and why: one query, run at the
/// start of every call's transaction. It answers the list of reasons
/// (empty for a safe role).
///
/// A read-only transaction already refuses writes; this refuses the
/// roles for which one mistake (ours or PostgreSQL's) would be enough:
/// role attributes that reach beyond the database, any write privilege
/// on any table or view (column privileges included), `CREATE` on the
/// database or on any schema (`public` included), and membership of the
/// built-in roles that write everything, run programs on the database
/// server, or read and write its files (which lie outside the database
/// the source was given).
pub const SAFETY: &str = r#"
SELECT array_remove(ARRAY[
  CASE WHEN r.rolsuper THEN 'is a superuser' END,
  CASE WHEN r.rolcreaterole THEN 'may create roles (CREATEROLE)' END,
  CASE WHEN r.rolcreatedb THEN 'may create databases (CREATEDB)' END,
  CASE WHEN r.rolreplication THEN 'may replicate (REPLICATION)' END,
  CASE WHEN r.rolbypassrls THEN 'bypasses row-level security (BYPASSRLS)' END,
  CASE WHEN has_database_privilege(current_database(), 'CREATE')
       THEN 'may create schemas in the database' END,
  (SELECT 'may create objects in the schemas ' || string_agg(quote_ident(n.nspname), ', ' ORDER BY n.nspname)
     FROM pg_namespace n
    WHERE n.nspname !~ '^pg_(toast_)?temp_' AND has_schema_privilege(n.oid, 'CREATE')),
  (SELECT 'may write to ' || string_agg(w.name, ', ' ORDER BY w.name) FROM (
     SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname !~ '^pg_(toast_)?temp_'
        AND (has_any_column_privilege(c.oid, 'INSERT') OR has_any_column_privilege(c.oid, 'UPDATE')
             OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))
      ORDER BY 1 LIMIT 10) w),
  (SELECT 'is a member of ' || string_agg(b.rolname, ', ' ORDER BY b.rolname)
     FROM pg_roles b
    WHERE b.rolname IN ('pg_write_server_files', 'pg_execute_server_program',
                        'pg_write_all_data', 'pg_read_server_files')
      AND pg_has_role(r.oid, b.oid, 'MEMBER'))
], NULL)
FROM pg_roles r WHERE r.rolname = current_user
"#;

/// The columns of every table and view the role may read from: one row
/// per column it may `SELECT` (table or column privilege).
const SCHEMA: &str = r#"
SELECT n.nspname::text, c.relname::text, a.attname::text,
       format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_(toast_)?temp_'
   AND n.nspname <> 'pg_toast'
   AND has_column_privilege(c.oid, a.attnum, 'SELECT')
 ORDER BY 1, 2, a.attnum
"#;

/// Runs PostgreSQL sources. Holds no connection: every call opens its
/// own through the guard and closes it.
pub struct Postgres<C: Connector = TcpConnector> {
    guard: Guard,
    connector: C,
    limits: PgLimits,
    tls: tls::TlsConfigs,
}

/// What a call answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every row, up to the limit.
    Execute,
    /// The first rows only, no limit error.
    Sample,
}

impl<C> Postgres<C>
where
    C: Connector,
    C::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// An executor dialling through `guard` with `connector`.
    pub fn new(guard: Guard, connector: C, limits: PgLimits) -> Self {
        Postgres {
            guard,
            connector,
            limits,
            tls: tls::TlsConfigs::new(),
        }
    }

    /// The limits every call keeps.
    pub fn limits(&self) -> PgLimits {
        self.limits
    }

    /// Runs `config.query` with `params` bound; answers a JSON array of
    /// row objects (column name → value, see [`decode`]; of two columns
    /// with one name, the later wins).
    pub async fn execute(
        &self,
        config: &Config,
        params: &Map<String, Value>,
    ) -> Result<Value, SourceError> {
        self.run(config, params, Mode::Execute).await
    }

    /// For the "test" endpoint: checks that the role is safe, then runs
    /// the query and answers its first [`SAMPLE_ROWS`] rows (more rows are
    /// not an error here).
    pub async fn test(
        &self,
        config: &Config,
        params: &Map<String, Value>,
    ) -> Result<Value, SourceError> {
        self.run(config, params, Mode::Sample).await
    }

    /// The tables and columns the role may `SELECT`, outside the system
    /// schemas: `{"tables":[{"schema","name","columns":[{"name","type",
    /// "nullable"}]}]}`.
    pub async fn schema(&self, config: &Config) -> Result<Value, SourceError> {
        let limit = config.timeout();
        bounded(limit, async {
            let deadline = Instant::now() + limit;
            let mut session = self.open(config, deadline).await?;
            let result = async {
                let tx = begin(&mut session.client, deadline).await?;
                let rows = fetch_all(&tx, SCHEMA, MAX_SCHEMA_COLUMNS).await?;
                let _ = tx.rollback().await;
                Ok::<_, tokio_postgres::Error>(rows)
            }
            .await
            .map_err(|e| db_error(e, limit));
            session.close().await;
            let Some(rows) = result? else {
                return Err(SourceError::RowLimit {
                    limit: MAX_SCHEMA_COLUMNS,
                });
            };
            let mut tables: Vec<Value> = Vec::new();
            let mut current: Option<(String, String, Vec<Value>)> = None;
            for row in rows {
                let schema: String = row.get(0);
                let table: String = row.get(1);
                let column = serde_json::json!({
                    "name": row.get::<_, String>(2),
                    "type": row.get::<_, String>(3),
                    "nullable": row.get::<_, bool>(4),
                });
                match &mut current {
                    Some((s, t, columns)) if *s == schema && *t == table => columns.push(column),
                    _ => {
                        if let Some(done) = current.take() {
                            tables.push(table_json(done));
                        }
                        current = Some((schema, table, vec![column]));
                    }
                }
            }
            if let Some(done) = current {
                tables.push(table_json(done));
            }
            Ok(serde_json::json!({ "tables": tables }))
        })
        .await
    }

    async fn run(
        &self,
        config: &Config,
        params: &Map<String, Value>,
        mode: Mode,
    ) -> Result<Value, SourceError> {
        let query = config
            .query
            .as_deref()
            .ok_or_else(|| SourceError::InvalidQuery {
                reason: "the source has no query".into(),
            })?;
        let rewritten = sql::rewrite(query)?;
        let values = bound_values(&rewritten.names, params)?;
        let limit = config.timeout();
        bounded(limit, async {
            let deadline = Instant::now() + limit;
            let mut session = self.open(config, deadline).await?;
            let result = self
                .query(
                    &mut session.client,
                    config,
                    &rewritten,
                    &values,
                    mode,
                    deadline,
                )
                .await;
            session.close().await;
            result
        })
        .await
    }

    /// The call itself, on an open connection.
    async fn query(
        &self,
        client: &mut Client,
        config: &Config,
        rewritten: &sql::Rewritten,
        values: &[&Value],
        mode: Mode,
        deadline: Instant,
    ) -> Result<Value, SourceError> {
        let limit = config.timeout();
        let db = |e| db_error(e, limit);
        let tx = begin(client, deadline).await.map_err(db)?;

        let reasons: Vec<String> = tx.query_one(SAFETY, &[]).await.map_err(db)?.get(0);
        if !reasons.is_empty() {
            let user = config.user.as_deref().unwrap_or("");
            return Err(SourceError::UnsafeRole {
                reason: format!(
                    "the role {user:?} {}; a source needs a role that can only read",
                    reasons.join("; ")
                ),
            });
        }

        let statement = tx.prepare(&rewritten.sql).await.map_err(db)?;
        for column in statement.columns() {
            if !decode::supported(column.type_()) {
                return Err(SourceError::InvalidQuery {
                    reason: format!(
                        "the column {:?} has the type {}, which has no JSON form; cast it in the query (for example {}::text)",
                        column.name(),
                        column.type_().name(),
                        column.name()
                    ),
                });
            }
        }
        let mut bound = Vec::with_capacity(values.len());
        for ((name, value), ty) in rewritten.names.iter().zip(values).zip(statement.params()) {
            bound.push(bind::bind(name, value, ty)?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|b| b as &(dyn ToSql + Sync)).collect();

        let wanted = match mode {
            Mode::Execute => self.limits.max_rows.saturating_add(1),
            Mode::Sample => SAMPLE_ROWS,
        };
        let portal = tx.bind(&statement, &refs).await.map_err(db)?;
        let rows = collect(&tx, &portal, wanted).await.map_err(db)?;
        let _ = tx.rollback().await;

        if mode == Mode::Execute && rows.len() as u64 > self.limits.max_rows {
            return Err(SourceError::RowLimit {
                limit: self.limits.max_rows,
            });
        }
        let mut answer = Vec::with_capacity(rows.len());
        for row in rows {
            let mut object = Map::new();
            for (i, column) in row.columns().iter().enumerate() {
                let cell: decode::Cell =
                    row.try_get(i).map_err(|e| SourceError::InvalidResponse {
                        message: format!("the column {:?}: {e}", column.name()),
                    })?;
                object.insert(column.name().to_owned(), cell.0);
            }
            answer.push(Value::Object(object));
        }
        Ok(Value::Array(answer))
    }

    /// Dials through the guard and logs in, within the connect timeout.
    async fn open(&self, config: &Config, deadline: Instant) -> Result<Session, SourceError> {
        let host = config.host.as_deref().unwrap_or("");
        let port = config.port.unwrap_or(5432);
        let connect_limit = self
            .limits
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let connecting = async {
            let stream = self.guard.connect(host, port, &self.connector).await?;
            let mut pg = tokio_postgres::Config::new();
            pg.user(config.user.as_deref().unwrap_or(""))
                .dbname(config.database.as_deref().unwrap_or(""))
                .application_name("coform");
            if let Some(password) = &config.password {
                pg.password(password);
            }
            let mode = config.ssl_mode.unwrap_or_default();
            let (config, ssl) = match mode {
                SslMode::Disable => (
                    self.tls.unverified.clone(),
                    tokio_postgres::config::SslMode::Disable,
                ),
                SslMode::Prefer => (
                    self.tls.unverified.clone(),
                    tokio_postgres::config::SslMode::Prefer,
                ),
                SslMode::Require => (
                    self.tls.unverified.clone(),
                    tokio_postgres::config::SslMode::Require,
                ),
                SslMode::VerifyFull => (
                    self.tls.verified.clone(),
                    tokio_postgres::config::SslMode::Require,
                ),
            };
            pg.ssl_mode(ssl);
            let handshake = tls::Handshake {
                config,
                server_name: server_name(host)?,
            };
            let (client, connection) = pg
                .connect_raw(stream, handshake)
                .await
                .map_err(|e| db_error(e, connect_limit))?;
            // The connection drives the socket; it ends when the client is
            // dropped (or is aborted with the session).
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Session {
                client,
                task: Some(task),
            })
        };
        match tokio::time::timeout(connect_limit, connecting).await {
            Ok(session) => session,
            Err(_) => Err(SourceError::UpstreamTimeout {
                limit_ms: connect_limit.as_millis() as u64,
            }),
        }
    }
}

/// An open connection: the client, and the task that drives its socket.
struct Session {
    client: Client,
    /// Aborted on drop, so a call cut short by its timeout leaves no task
    /// (and no socket) behind.
    task: Option<JoinHandle<()>>,
}

impl Session {
    /// Lets the connection say goodbye (Terminate) and end.
    async fn close(mut self) {
        let task = self.task.take();
        // Dropping the client tells the connection to end.
        drop(self);
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts the read-only transaction and its time limits (the time left
/// until `deadline`, at least 1 ms).
async fn begin(
    client: &mut Client,
    deadline: Instant,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    let tx = client.build_transaction().read_only(true).start().await?;
    let ms = deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        .max(1);
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {ms}; SET LOCAL idle_in_transaction_session_timeout = {ms}"
    ))
    .await?;
    Ok(tx)
}

/// Up to `wanted` rows of an executed portal.
async fn collect(
    tx: &Transaction<'_>,
    portal: &tokio_postgres::Portal,
    wanted: u64,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    use futures_util::TryStreamExt;
    let wanted = i32::try_from(wanted).unwrap_or(i32::MAX);
    let stream = tx.query_portal_raw(portal, wanted).await?;
    futures_util::pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.try_next().await? {
        rows.push(row);
    }
    Ok(rows)
}

/// All rows of a fixed query, or `None` when there are more than `max`.
async fn fetch_all(
    tx: &Transaction<'_>,
    query: &str,
    max: u64,
) -> Result<Option<Vec<tokio_postgres::Row>>, tokio_postgres::Error> {
    let statement = tx.prepare(query).await?;
    let portal = tx.bind(&statement, &[]).await?;
    let rows = collect(tx, &portal, max + 1).await?;
    Ok((rows.len() as u64 <= max).then_some(rows))
}

fn table_json((schema, name, columns): (String, String, Vec<Value>)) -> Value {
    serde_json::json!({ "schema": schema, "name": name, "columns": columns })
}

/// Bounds a whole call by the source's timeout.
async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(SourceError::UpstreamTimeout {
            limit_ms: limit.as_millis() as u64,
        }),
    }
}

/// The value of each placeholder, in `$n` order; a missing one is
/// refused before anything is dialled.
fn bound_values<'a>(
    names: &[String],
    params: &'a Map<String, Value>,
) -> Result<Vec<&'a Value>, SourceError> {
    names
        .iter()
        .map(|name| {
            params
                .get(name)
                .ok_or_else(|| SourceError::ParameterRefused {
                    name: name.clone(),
                    reason: "is required by the query and was not given".into(),
                })
        })
        .collect()
}

/// The name TLS checks and sends: the host as the source wrote it, or the
/// address it spells.
fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, SourceError> {
    if let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_owned()) {
        return Ok(name);
    }
    match parse_host_literal(host) {
        Some(ip) => Ok(rustls::pki_types::ServerName::IpAddress(ip.into())),
        None => Err(SourceError::InvalidHost {
            host: host.to_owned(),
            reason: "not a name TLS can check",
        }),
    }
}

/// A database or connection error as a source error. Server messages
/// name objects and values of the user's own database, never the
/// password.
fn db_error(e: tokio_postgres::Error, limit: Duration) -> SourceError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::QUERY_CANCELED {
            return SourceError::UpstreamTimeout {
                limit_ms: limit.as_millis() as u64,
            };
        }
        if *code == SqlState::SYNTAX_ERROR && db.message().contains("multiple commands") {
            return SourceError::InvalidQuery {
                reason: "the query holds more than one statement; a source runs exactly one".into(),
            };
        }
        return SourceError::Upstream {
            status: None,
            message: format!("{} (SQLSTATE {})", db.message(), code.code()),
        };
    }
    // tokio-postgres says what it was doing; the cause (a refused
    // certificate, a reset) is in the chain.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    SourceError::Connection { message }
}

/// The cache key of one call: SHA-256, in hex, of the host, port,
/// database, user, query text and the values bound to its placeholders,
/// written as canonical JSON (object keys sorted at every depth). The
/// password is not part of it. Refuses a missing parameter as
/// [`Postgres::execute`] would.
pub fn request_key(config: &Config, params: &Map<String, Value>) -> Result<String, SourceError> {
    let query = config.query.as_deref().unwrap_or("");
    let rewritten = sql::rewrite(query)?;
    let values = bound_values(&rewritten.names, params)?;
    let bound: Vec<Value> = rewritten
        .names
        .iter()
        .zip(values)
        .map(|(name, value)| Value::Array(vec![Value::String(name.clone()), value.clone()]))
        .collect();
    let key = serde_json::json!([
        config.host.as_deref().unwrap_or(""),
        config.port.unwrap_or(5432),
        config.database.as_deref().unwrap_or(""),
        config.user.as_deref().unwrap_or(""),
        query,
        bound,
    ]);
    let mut text = String::new();
    canonical(&key, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// JSON with object keys sorted, whatever order the map keeps.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(query: &str) -> Config {
        serde_json::from_value(json!({
            "engine": "postgresql", "host": "db.example.com", "database": "app",
            "user": "reader", "password": "hunter2", "query": query
        }))
        .unwrap()
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    /// The calls can run on a multi-threaded runtime (in an axum
    /// handler): their futures are `Send`. Checked when this compiles.
    #[allow(dead_code)]
    fn calls_are_send(pg: &Postgres, c: &Config, p: &Map<String, Value>) {
        fn send<T: Send>(_: T) {}
        send(pg.execute(c, p));
        send(pg.test(c, p));
        send(pg.schema(c));
    }

    #[test]
    fn the_request_key_follows_what_is_bound() {
        let c = config("SELECT * FROM t WHERE id = {{id}}");
        let a = request_key(&c, &map(json!({"id": 1, "unused": 2}))).unwrap();
        let b = request_key(&c, &map(json!({"id": 1}))).unwrap();
        assert_eq!(a, b, "parameters the query does not use do not count");
        assert_eq!(a.len(), 64);
        assert_ne!(a, request_key(&c, &map(json!({"id": 2}))).unwrap());
        let mut other_user = c.clone();
        other_user.user = Some("writer".into());
        assert_ne!(a, request_key(&other_user, &map(json!({"id": 1}))).unwrap());
        let mut other_password = c.clone();
        other_password.password = Some("other".into());
        assert_eq!(
            a,
            request_key(&other_password, &map(json!({"id": 1}))).unwrap()
        );
        let err = request_key(&c, &map(json!({}))).unwrap_err();
        assert_eq!(err.code(), "parameter_refused");
    }

    #[test]
    fn the_request_key_does_not_depend_on_key_order() {
        let c = config("SELECT {{doc}}::jsonb");
        let a = request_key(&c, &map(json!({"doc": {"a": 1, "b": [{"y": 1, "x": 2}]}}))).unwrap();
        let mut doc = Map::new();
        doc.insert("b".into(), json!([{"x": 2, "y": 1}]));
        doc.insert("a".into(), json!(1));
        let mut params = Map::new();
        params.insert("doc".into(), Value::Object(doc));
        assert_eq!(a, request_key(&c, &params).unwrap());
    }
}
