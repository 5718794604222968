//! Data sources on the server's side: the one place that opens a source's
//! sealed secrets, dials it through the outbound guard, caches answers
//! and keeps its usage figures.
//!
//! Handlers (`api::datasources`) decide who may do what; this module
//! decides how a call is made:
//!
//! - **Secrets** are opened just before a call and dropped after it;
//!   nothing here logs a config or an upstream's raw answer, and every
//!   error message and answer is scrubbed of the source's secret values
//!   before it leaves (an upstream may echo a header back).
//! - **Every dial goes through the guard** (`coform_sources::Guard`), for
//!   calls, tests, schemas and health checks alike.
//! - **At most [`MAX_CONCURRENT_CALLS`] calls per source run at once**
//!   on this replica; more answer `source_busy`.
//! - **Answers are cached** when the source asks for it, under a key
//!   made of the workspace, the source, its config version and the final
//!   request with its bound parameters; Redis when configured (replicas
//!   share it), this process otherwise.
//! - **Usage figures** (calls, errors, response time, last use, status)
//!   are recorded from every real call, and health from every check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coform_sources::cache::{cache_key, source_prefix, AnswerCache, MemoryCache, RedisCache};
use coform_sources::http::{HttpClient, HttpLimits};
use coform_sources::pg::{PgLimits, Postgres};
use coform_sources::secrets::{self, Keyring};
use coform_sources::{Config as SourceConfig, Guard, Kind, SourceError, TcpConnector};
use coform_storage::{DataSource, DataSourceStore};
use dashmap::DashMap;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::auth::now_ms;

/// Calls of one source that may run at once on one replica.
pub const MAX_CONCURRENT_CALLS: usize = 4;
/// Answers the in-process cache keeps at most (without Redis).
const MEMORY_CACHE_ENTRIES: usize = 10_000;
/// Bytes the in-process cache keeps at most.
const MEMORY_CACHE_BYTES: usize = 64 << 20;
/// Rows (or array items) a test answers with.
pub const SAMPLE_ITEMS: usize = 20;

/// What the server needs to run data sources. Cheap to clone.
#[derive(Clone)]
pub struct DataSources {
    pub store: Arc<dyn DataSourceStore>,
    pub keys: Arc<Keyring>,
    pub guard: Guard,
    http: Arc<HttpClient<TcpConnector>>,
    pg: Arc<Postgres<TcpConnector>>,
    cache: Arc<dyn AnswerCache>,
    running: Arc<DashMap<String, Arc<Semaphore>>>,
}

/// An answer and how it was obtained.
pub struct Answer {
    pub data: Value,
    pub cached: bool,
    pub duration_ms: u64,
}

impl DataSources {
    /// Builds the service; `redis` shares the answer cache between
    /// replicas.
    pub async fn new(
        store: Arc<dyn DataSourceStore>,
        keys: Keyring,
        guard: Guard,
        redis: Option<&str>,
    ) -> anyhow::Result<Self> {
        let cache: Arc<dyn AnswerCache> = match redis {
            Some(url) => Arc::new(RedisCache::new(url)?),
            None => Arc::new(MemoryCache::new(MEMORY_CACHE_ENTRIES, MEMORY_CACHE_BYTES)),
        };
        let connector = TcpConnector {
            timeout: Duration::from_secs(5),
        };
        Ok(DataSources {
            store,
            keys: Arc::new(keys),
            http: Arc::new(HttpClient::new(
                guard.clone(),
                connector,
                HttpLimits::default(),
            )),
            pg: Arc::new(Postgres::new(guard.clone(), connector, PgLimits::default())),
            guard,
            cache,
            running: Arc::new(DashMap::new()),
        })
    }

    /// The clear config of a stored source.
    pub fn open(&self, source: &DataSource) -> Result<SourceConfig, anyhow::Error> {
        let stored: Value = serde_json::from_str(&source.config)?;
        secrets::open_config(&self.keys, &stored, &source.workspace_id, &source.id)
            .map_err(|e| anyhow::anyhow!("data source {}: {e}", source.id))
    }

    /// The stored (sealed) text of a clear config.
    pub fn seal(&self, config: &SourceConfig, workspace_id: &str, source_id: &str) -> String {
        secrets::seal_config(&self.keys, config, workspace_id, source_id).to_string()
    }

    /// Runs one call of `config`, without cache or figures: the raw
    /// answer, scrubbed of the config's secrets.
    pub async fn run(
        &self,
        kind: Kind,
        config: &SourceConfig,
        params: &Map<String, Value>,
    ) -> Result<Value, SourceError> {
        let answer = match kind {
            Kind::Rest | Kind::Graphql => self.http.execute(kind, config, params).await,
            Kind::Database => self.pg.execute(config, params).await,
        };
        scrubbed(config, answer)
    }

    /// A test of an unsaved or changed config: a database role is checked
    /// to be read-only, then the call is made; the sample is its first
    /// [`SAMPLE_ITEMS`] items.
    pub async fn test(
        &self,
        kind: Kind,
        config: &SourceConfig,
        params: &Map<String, Value>,
    ) -> Result<(Value, u64), SourceError> {
        let started = Instant::now();
        let answer = match kind {
            Kind::Rest | Kind::Graphql => self.http.execute(kind, config, params).await,
            Kind::Database => self.pg.test(config, params).await,
        };
        let answer = scrubbed(config, answer)?;
        Ok((sample(answer), elapsed_ms(started)))
    }

    /// Executes a saved source: from the cache when it is on and holds
    /// the answer, else by a call whose outcome is recorded.
    pub async fn execute(
        &self,
        source: &DataSource,
        params: &Map<String, Value>,
    ) -> Result<Answer, ExecError> {
        let started = Instant::now();
        let kind = kind_of(source).map_err(ExecError::Internal)?;
        let config = self.open(source).map_err(ExecError::Internal)?;
        let key = if config.caching.enabled {
            let request = match kind {
                Kind::Rest | Kind::Graphql => {
                    coform_sources::http::request_key(kind, &config, params)
                }
                Kind::Database => coform_sources::pg::request_key(&config, params),
            }
            .map_err(ExecError::Source)?;
            let key = cache_key(
                &source.workspace_id,
                &source.id,
                source.config_version,
                &request,
            );
            if let Some(bytes) = self.cache.get(&key).await {
                if let Ok(data) = serde_json::from_slice(&bytes) {
                    return Ok(Answer {
                        data,
                        cached: true,
                        duration_ms: elapsed_ms(started),
                    });
                }
            }
            Some(key)
        } else {
            None
        };
        let _permit = self.permit(&source.id)?;
        let outcome = self.run(kind, &config, params).await;
        let duration_ms = elapsed_ms(started);
        let recorded = self
            .store
            .record_call(
                &source.id,
                outcome.is_ok(),
                duration_ms,
                outcome.as_ref().err().map(|e| e.code()),
                now_ms(),
            )
            .await;
        if let Err(e) = recorded {
            tracing::warn!(source = %source.id, error = %e, "could not record a data source call");
        }
        if let Err(e) = &outcome {
            // The message names hosts and limits and is scrubbed of the
            // source's secrets; the config itself is never logged.
            tracing::info!(source = %source.id, code = e.code(), error = %e, duration_ms,
                "data source call failed");
        }
        let data = outcome.map_err(ExecError::Source)?;
        if let Some(key) = key {
            if let Ok(bytes) = serde_json::to_vec(&data) {
                let ttl = Duration::from_secs(u64::from(config.caching.ttl));
                self.cache.put(&key, &bytes, ttl).await;
            }
        }
        Ok(Answer {
            data,
            cached: false,
            duration_ms,
        })
    }

    /// The source's schema: inferred from a sample (REST), introspected
    /// (GraphQL) or read from the catalog (PostgreSQL).
    pub async fn schema(
        &self,
        source: &DataSource,
        params: &Map<String, Value>,
    ) -> Result<Value, ExecError> {
        let kind = kind_of(source).map_err(ExecError::Internal)?;
        let config = self.open(source).map_err(ExecError::Internal)?;
        let _permit = self.permit(&source.id)?;
        let answer = match kind {
            Kind::Rest | Kind::Graphql => self.http.schema(kind, &config, params).await,
            Kind::Database => self.pg.schema(&config).await,
        };
        scrubbed(&config, answer).map_err(ExecError::Source)
    }

    /// A health check: the call itself when it needs no parameters,
    /// otherwise a connection to its host through the guard. Recorded
    /// with the alerts the source's figures raise.
    pub async fn health(&self, source: &DataSource) -> Result<Health, ExecError> {
        let kind = kind_of(source).map_err(ExecError::Internal)?;
        let config = self.open(source).map_err(ExecError::Internal)?;
        let started = Instant::now();
        let outcome = if needs_params(&config) {
            self.reach(kind, &config).await
        } else {
            let _permit = self.permit(&source.id)?;
            self.run(kind, &config, &Map::new()).await.map(|_| ())
        };
        let duration_ms = elapsed_ms(started);
        let mut alerts = figures_alerts(source);
        if let Err(e) = &outcome {
            alerts.insert(0, format!("health check failed: {}", e.code()));
        }
        let health = if outcome.is_ok() {
            "healthy"
        } else {
            "unhealthy"
        };
        let at = now_ms();
        if let Err(e) = self
            .store
            .record_health(&source.id, health, &alerts, at)
            .await
        {
            tracing::warn!(source = %source.id, error = %e, "could not record a health check");
        }
        Ok(Health {
            health,
            checked_at: at,
            duration_ms,
            alerts,
            error: outcome.err(),
        })
    }

    /// Connects to the source's host through the guard and hangs up.
    async fn reach(&self, kind: Kind, config: &SourceConfig) -> Result<(), SourceError> {
        let (host, port) = endpoint(kind, config).ok_or_else(|| SourceError::InvalidHost {
            host: String::new(),
            reason: "the source names no host",
        })?;
        let connector = TcpConnector {
            timeout: config.timeout(),
        };
        self.guard.connect(&host, port, &connector).await.map(drop)
    }

    /// Checks a literal host against the guard without a lookup or a
    /// dial: a name is judged when it is dialled.
    pub fn check_literal_host(&self, kind: Kind, config: &SourceConfig) -> Result<(), SourceError> {
        let token_url = config
            .authentication
            .as_ref()
            .and_then(|auth| auth.credentials.token_url.as_deref())
            .and_then(url_endpoint);
        for (host, port) in endpoint(kind, config).into_iter().chain(token_url) {
            if let Some(ip) = coform_sources::parse_host_literal(&host) {
                self.guard
                    .policy()
                    .check(&host, std::net::SocketAddr::new(ip, port))?;
            }
        }
        Ok(())
    }

    /// Drops every cached answer of a source.
    pub async fn invalidate(&self, source: &DataSource) {
        let prefix = source_prefix(&source.workspace_id, &source.id);
        self.cache.invalidate_prefix(&prefix).await;
    }

    fn permit(&self, source_id: &str) -> Result<tokio::sync::OwnedSemaphorePermit, ExecError> {
        let semaphore = self
            .running
            .entry(source_id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS)))
            .clone();
        semaphore.try_acquire_owned().map_err(|_| {
            ExecError::Source(SourceError::Busy {
                limit: MAX_CONCURRENT_CALLS,
            })
        })
    }
}

/// A health check's outcome.
pub struct Health {
    pub health: &'static str,
    pub checked_at: i64,
    pub duration_ms: u64,
    pub alerts: Vec<String>,
    pub error: Option<SourceError>,
}

/// Why a call of a saved source failed: the source's fault (an answer
/// with its code) or ours (a stored config that cannot be opened).
#[derive(Debug)]
pub enum ExecError {
    Source(SourceError),
    Internal(anyhow::Error),
}

/// The kind a stored source names; an unknown one is damaged data.
pub fn kind_of(source: &DataSource) -> Result<Kind, anyhow::Error> {
    serde_json::from_value(Value::String(source.kind.clone()))
        .map_err(|_| anyhow::anyhow!("data source {} has an unknown kind", source.id))
}

/// The host and port a source dials first: its URL's, or its database's.
fn endpoint(kind: Kind, config: &SourceConfig) -> Option<(String, u16)> {
    match kind {
        Kind::Database => Some((config.host.clone()?, config.port.unwrap_or(5432))),
        Kind::Rest | Kind::Graphql => url_endpoint(config.url.as_deref()?),
    }
}

/// The host (without IPv6 brackets) and port of an http(s) URL.
fn url_endpoint(url: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(url).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    Some((host.to_owned(), url.port_or_known_default()?))
}

/// Whether the source's request holds placeholders.
pub fn needs_params(config: &SourceConfig) -> bool {
    let mut texts: Vec<String> = Vec::new();
    texts.extend(config.url.clone());
    texts.extend(config.query.clone());
    texts.extend(config.headers.values().cloned());
    texts.extend(config.query_params.values().cloned());
    texts.extend(config.body.as_ref().map(Value::to_string));
    texts.extend(config.variables.as_ref().map(Value::to_string));
    texts
        .iter()
        .any(|t| !coform_sources::config::placeholders(t).is_empty())
}

/// Alerts raised by a source's usage figures.
fn figures_alerts(source: &DataSource) -> Vec<String> {
    let mut alerts = Vec::new();
    if source.call_count >= 5 && source.error_count * 2 > source.call_count {
        alerts.push(format!(
            "{} of the last {} calls failed",
            source.error_count, source.call_count
        ));
    }
    if source.call_count > 0 && source.total_duration_ms / source.call_count > 2_000 {
        alerts.push(format!(
            "average response time {} ms",
            source.total_duration_ms / source.call_count
        ));
    }
    if source.status == "failing" {
        if let Some(code) = &source.last_error {
            alerts.push(format!("the last call failed: {code}"));
        }
    }
    alerts
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The first [`SAMPLE_ITEMS`] items of an array; anything else whole.
fn sample(answer: Value) -> Value {
    match answer {
        Value::Array(mut items) => {
            items.truncate(SAMPLE_ITEMS);
            Value::Array(items)
        }
        other => other,
    }
}

/// The secret values of a config, longest first (so that a secret
/// containing another is masked whole).
fn secret_values(config: &SourceConfig) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    if let Some(auth) = &config.authentication {
        values.extend(auth.token.clone());
        values.extend(auth.credentials.password.clone());
        values.extend(auth.credentials.client_secret.clone());
        values.extend(auth.credentials.value.clone());
    }
    values.extend(config.password.clone());
    for (name, value) in &config.headers {
        if config.is_secret_header(name) {
            values.push(value.clone());
            // `Bearer abc`: the credential without its scheme too.
            if let Some((_, credential)) = value.split_once(' ') {
                values.push(credential.to_owned());
            }
        }
    }
    if let Some(url) = config.url.as_deref().and_then(|u| url::Url::parse(u).ok()) {
        values.extend(url.password().map(str::to_owned));
    }
    // Short values would mask ordinary words; they are not secrets worth
    // the name, but they are still never stored in the clear.
    values.retain(|v| v.len() >= 4);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
}

/// The answer or error with every secret value of `config` masked.
fn scrubbed(
    config: &SourceConfig,
    answer: Result<Value, SourceError>,
) -> Result<Value, SourceError> {
    let secrets = secret_values(config);
    if secrets.is_empty() {
        return answer;
    }
    match answer {
        Ok(mut value) => {
            scrub_value(&mut value, &secrets);
            Ok(value)
        }
        Err(SourceError::Upstream { status, message }) => Err(SourceError::Upstream {
            status,
            message: scrub_text(&message, &secrets),
        }),
        Err(SourceError::ParameterRefused { name, reason }) => Err(SourceError::ParameterRefused {
            name,
            reason: scrub_text(&reason, &secrets),
        }),
        Err(SourceError::Connection { message }) => Err(SourceError::Connection {
            message: scrub_text(&message, &secrets),
        }),
        Err(SourceError::InvalidResponse { message }) => Err(SourceError::InvalidResponse {
            message: scrub_text(&message, &secrets),
        }),
        Err(SourceError::UnsafeRole { reason }) => Err(SourceError::UnsafeRole {
            reason: scrub_text(&reason, &secrets),
        }),
        Err(other) => Err(other),
    }
}

use coform_sources::secrets::MASK;

fn scrub_text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

fn scrub_value(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(s) if secrets.iter().any(|secret| s.contains(secret.as_str())) => {
            *s = scrub_text(s, secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_value(v, secrets)),
        Value::Object(map) => {
            // Keys too: an upstream may echo headers as an object.
            let keys: Vec<String> = map
                .keys()
                .filter(|k| secrets.iter().any(|secret| k.contains(secret.as_str())))
                .cloned()
                .collect();
            for key in keys {
                if let Some(v) = map.remove(&key) {
                    map.insert(scrub_text(&key, secrets), v);
                }
            }
            map.values_mut().for_each(|v| scrub_value(v, secrets));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_scrubbed_from_answers_and_errors() {
        let config: SourceConfig = serde_json::from_value(json!({
            "url": "https://api.example.com/x",
            "headers": {"Authorization": "Bearer canary-token-123"},
        }))
        .unwrap();
        let answer = scrubbed(
            &config,
            Ok(json!({"echo": {"authorization": "Bearer canary-token-123"},
                      "canary-token-123": 1})),
        )
        .unwrap();
        assert!(!answer.to_string().contains("canary-token-123"), "{answer}");
        let err = scrubbed(
            &config,
            Err(SourceError::Upstream {
                status: Some(401),
                message: "bad token canary-token-123".into(),
            }),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("canary-token-123"));
    }

    #[test]
    fn a_sample_keeps_the_first_items() {
        let items: Vec<Value> = (0..50).map(Value::from).collect();
        assert_eq!(
            sample(Value::Array(items)).as_array().unwrap().len(),
            SAMPLE_ITEMS
        );
        assert_eq!(sample(json!({"a": 1})), json!({"a": 1}));
    }
}
