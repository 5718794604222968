//! Building the application and running it.
//!
//! # Shutdown sequence
//!
//! 1. The shutdown token is cancelled (SIGTERM, Ctrl-C, or
//!    [`RunningServer::shutdown`]): the listener stops accepting and
//!    `/readyz` answers 503.
//! 2. Every room flushes and closes its peers with 1012 ("service
//!    restart"); their writers send the close frame and end.
//! 3. The connection tasks finish (bounded by the shutdown grace period).
//! 4. The store commits what is queued and closes.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use coform_collab::{Metrics, Registry};
use coform_storage::embedded::EmbeddedStore;
use coform_storage::memory::MemoryStore;
use coform_storage::{AccountStore, DataSourceStore, DocStore, VersionStore};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::mailer::{Mailer, OutboxMailer, SmtpMailer};
use crate::auth::ratelimit::{Backoff, Limit, LoginLimits, RateLimiter, RedisLimits};
use crate::auth::{jwt, AuthService};
use crate::config::{Config, StoreKind};
use crate::error::ApiError;
use crate::telemetry::metrics::{Exporter, HttpMetrics};
use crate::{api, http, telemetry, web, ws};

/// Shared by every handler (`Router::with_state`). Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// Accounts, sessions, workspaces and template listings.
    pub accounts: Arc<dyn AccountStore>,
    /// Template versions and usage figures (same store as `accounts`).
    pub versions: Arc<dyn VersionStore>,
    /// Data sources: their store, sealing keys, outbound guard and cache.
    pub sources: crate::datasources::DataSources,
    pub auth: Arc<AuthService>,
    pub config: Arc<Config>,
    /// One permit per open WebSocket, taken before the upgrade, so the
    /// connection limit holds even under a connect storm.
    pub connections: Arc<Semaphore>,
    /// Cancelled when shutdown begins.
    pub shutdown: CancellationToken,
    /// Every connection task; shutdown waits for them.
    pub tracker: TaskTracker,
    /// HTTP request counts and durations (recorded by a middleware).
    pub http_metrics: HttpMetrics,
    /// What `/metrics` encodes: the relay's metrics, `http_metrics` and
    /// gauges read at scrape time.
    pub exporter: Arc<Exporter>,
}

/// The HTTP router with every route.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.cors_origins);
    let http_metrics = state.http_metrics.clone();
    Router::new()
        .route("/collab/{doc}", get(ws::upgrade))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics))
        .with_state(state.clone())
        .merge(api::router(state))
        .fallback(web::fallback)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(cors)
        .layer(axum::middleware::map_response(security_headers))
        // Outermost last: the id is settled first, the span opened with
        // it, then the request is counted by its matched route.
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            telemetry::metrics::record,
        ))
        .layer(telemetry::request::trace_layer())
        .layer(axum::middleware::from_fn(telemetry::request::assign_id))
}

/// Headers every response carries unless its handler chose its own: no
/// content sniffing, no framing, no referrer, a policy that lets a JSON
/// answer load nothing, and no caching (answers carry tokens and private
/// data; static assets with content hashes set their own).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Cross-origin access for the configured origins only (none by default).
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderValue, Method};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

/// A server that is accepting connections.
pub struct RunningServer {
    /// The address it listens on (the real port when bound to port 0).
    pub addr: SocketAddr,
    state: AppState,
    serve: tokio::task::JoinHandle<()>,
}

/// Opens the store, binds the listener and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    config.validate().map_err(anyhow::Error::msg)?;
    let (store, accounts, versions, source_store) = open_stores(&config).await?;
    let metrics = Arc::new(Metrics::default());
    let registry = match &config.redis {
        Some(url) => Registry::with_redis(store, metrics, config.room_config(), url)
            .map_err(|e| anyhow::anyhow!("--redis: {e}"))?,
        None => Registry::new(store, metrics, config.room_config()),
    };
    // With accounts, a replica that may have missed access changes on the
    // bus asks the records again about every open connection.
    if config.auth == crate::config::AuthMode::On {
        registry.set_access_check(Arc::new(api::access::LiveAccess {
            accounts: accounts.clone(),
        }));
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    let auth = Arc::new(auth_service(&config, addr).await?);
    let sources = data_sources(&config, source_store, addr).await?;
    let http_metrics = HttpMetrics::default();
    let exporter = Arc::new(Exporter::new(&registry, &http_metrics));
    let state = AppState {
        registry,
        http_metrics,
        exporter,
        accounts,
        versions,
        sources,
        auth,
        connections: Arc::new(Semaphore::new(config.limits.max_connections)),
        config: Arc::new(config),
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
    };
    // Small frames must leave at once: no Nagle delay on any socket.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    api::stats::spawn_edit_flusher(&state);
    let app = router(state.clone());
    let token = state.shutdown.clone();
    let serve = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "server stopped with an error");
        }
    });
    let store_name = match &state.config.store {
        StoreKind::Embedded => "embedded",
        StoreKind::Memory => "memory",
        StoreKind::MongoDb(_) => "mongodb",
    };
    tracing::info!(%addr, store = store_name, redis = state.config.redis.is_some(), "coform started");
    Ok(RunningServer { addr, state, serve })
}

/// Every store the server uses, all backed by the one `--store`.
pub type Stores = (
    Arc<dyn DocStore>,
    Arc<dyn AccountStore>,
    Arc<dyn VersionStore>,
    Arc<dyn DataSourceStore>,
);

/// Opens the store of `--store`.
pub async fn open_stores(config: &Config) -> anyhow::Result<Stores> {
    Ok(match &config.store {
        StoreKind::Embedded => {
            let dir = config.data_dir.clone();
            let durability = config.durability;
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir, durability))
                .await?
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
            let store = Arc::new(store);
            (store.clone(), store.clone(), store.clone(), store)
        }
        StoreKind::MongoDb(url) => {
            let store = coform_storage::mongo::MongoStore::connect(url)
                .await
                .context("connecting to MongoDB (--store)")?;
            let store = Arc::new(store);
            (store.clone(), store.clone(), store.clone(), store)
        }
        StoreKind::Memory => {
            tracing::warn!("memory store: documents and accounts are lost when the process exits");
            let store = Arc::new(MemoryStore::new());
            (store.clone(), store.clone(), store.clone(), store)
        }
    })
}

/// The data-source service: the sealing keys (`--secrets-key`, or kept
/// in the data directory), the outbound guard (the allow-list, with
/// Coform's own address refused) and the answer cache.
async fn data_sources(
    config: &Config,
    store: Arc<dyn DataSourceStore>,
    addr: SocketAddr,
) -> anyhow::Result<crate::datasources::DataSources> {
    let keys = secrets_keyring(config).await?;
    let policy = coform_sources::Policy::new()
        .allow(config.data_source_allow.iter().copied())
        .map_err(|e| anyhow::anyhow!("--data-source-allow: {e}"))?
        .refuse_own([addr]);
    let guard = coform_sources::Guard::system(policy);
    crate::datasources::DataSources::new(store, keys, guard, config.redis.as_deref())
        .await
        .context("starting data sources")
}

/// The keys of `--secrets-key`; without it, the key kept in the data
/// directory (embedded store; created once, owner-only) or, for the
/// memory store, a key that lives as long as the process.
pub async fn secrets_keyring(config: &Config) -> anyhow::Result<coform_sources::secrets::Keyring> {
    use coform_sources::secrets::Keyring;
    if let Some(spec) = &config.secrets_key {
        return Keyring::parse(spec).map_err(|e| anyhow::anyhow!("--secrets-key: {e}"));
    }
    match config.store {
        StoreKind::Embedded => {
            let path = config.data_dir.join("secrets-key");
            match tokio::fs::read_to_string(&path).await {
                Ok(spec) => {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                            .await?;
                    }
                    return Keyring::parse(spec.trim())
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            }
            let (keys, spec) = Keyring::generate("k1");
            write_private(&config.data_dir, "secrets-key", spec.as_bytes()).await?;
            Ok(keys)
        }
        StoreKind::Memory => Ok(Keyring::generate("k1").0),
        StoreKind::MongoDb(_) => anyhow::bail!("--secrets-key is required with --store mongodb://"),
    }
}

/// Writes `name` in `dir` readable by the owner only, atomically.
async fn write_private(dir: &std::path::Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!("{name}.tmp"));
    tokio::fs::write(&tmp, bytes).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).await?;
    }
    tokio::fs::rename(&tmp, dir.join(name)).await?;
    Ok(())
}

/// `coform rotate-secrets`: re-seals every data source's secrets under
/// the first key of `--secrets-key`. Answers how many sources were
/// re-sealed. A source changed meanwhile is read again.
pub async fn rotate_secrets(config: &Config) -> anyhow::Result<u64> {
    let (store, _, _, sources) = open_stores(config).await?;
    let keys = secrets_keyring(config).await?;
    let mut after: Option<String> = None;
    let mut resealed = 0;
    loop {
        let page = sources.data_sources_after(after.as_deref(), 100).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for mut source in page {
            loop {
                let stored: serde_json::Value = serde_json::from_str(&source.config)?;
                let sealed = coform_sources::secrets::reseal(
                    &keys,
                    &stored,
                    &source.workspace_id,
                    &source.id,
                )
                .map_err(|e| anyhow::anyhow!("data source {}: {e}", source.id))?;
                if sources
                    .reseal_data_source(&source.id, &sealed.to_string(), source.config_version)
                    .await?
                {
                    resealed += 1;
                    break;
                }
                match sources.data_source(&source.id).await? {
                    Some(fresh) => source = fresh,
                    None => break,
                }
            }
        }
    }
    store.close().await;
    Ok(resealed)
}

/// The login throttle of `--login-*`, with a fixed limit per client
/// address (30 attempts per 5 minutes, any e-mail).
fn login_limits(c: &crate::config::LoginConfig) -> LoginLimits {
    let five_minutes = std::time::Duration::from_secs(300);
    LoginLimits {
        per_source: Limit {
            max: 30,
            window: five_minutes,
        },
        backoff: Backoff {
            free_failures: c.backoff_after,
            base: c.backoff_base,
            max: c.backoff_max,
            forget_after: std::time::Duration::from_secs(24 * 3600),
        },
        per_address_failures: Limit {
            max: c.address_failures,
            window: five_minutes,
        },
    }
}

/// Builds the token keys, rate limiter and mailer.
async fn auth_service(config: &Config, addr: SocketAddr) -> anyhow::Result<AuthService> {
    let secret = match &config.jwt_secret {
        Some(s) => s.as_bytes().to_vec(),
        None if config.store == StoreKind::Embedded => {
            load_or_create_secret(&config.data_dir).await?
        }
        None => crate::auth::secret::new_token().into_bytes(),
    };
    let mailer: Arc<dyn Mailer> = match &config.smtp_url {
        Some(url) => Arc::new(SmtpMailer::new(url, &config.mail_from).context("configuring SMTP")?),
        None => Arc::new(OutboxMailer::new(config.data_dir.join("outbox"))),
    };
    // With replicas, attempts count on all of them together.
    let limiter = match &config.redis {
        Some(url) => RateLimiter::shared(
            Arc::new(RedisLimits::new(url).map_err(|e| anyhow::anyhow!("--redis: {e}"))?),
            &secret,
        ),
        None => RateLimiter::in_process(&secret),
    };
    Ok(AuthService {
        keys: jwt::Keys::new(&secret),
        access_ttl: config.access_token_ttl,
        refresh_ttl: config.refresh_token_ttl,
        doc_ttl: config.doc_token_ttl,
        limiter,
        login_limits: login_limits(&config.login),
        mailer,
        public_url: config.public_url.clone().unwrap_or_else(|| {
            // The address clients reach: a wildcard bind means "this host".
            let host = if addr.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                addr.ip().to_string()
            };
            let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
                format!("[{host}]")
            } else {
                host
            };
            format!("http://{host}:{}", addr.port())
        }),
    })
}

/// The token-signing secret kept in the data directory (created once,
/// readable by the owner only).
async fn load_or_create_secret(dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join("jwt-secret");
    match tokio::fs::read(&path).await {
        Ok(bytes) if bytes.len() >= 32 => {
            // Private, whatever an older version or a copy left behind.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).await?;
            }
            return Ok(bytes);
        }
        Ok(_) => anyhow::bail!(
            "{} is shorter than 32 bytes; remove it to generate a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let secret = crate::auth::secret::new_token();
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join("jwt-secret.tmp");
    tokio::fs::write(&tmp, secret.as_bytes()).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).await?;
    }
    tokio::fs::rename(&tmp, &path).await?;
    Ok(secret.into_bytes())
}

impl RunningServer {
    /// The application state (for in-process tests and tools).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs the shutdown sequence (see the module docs) and returns when
    /// everything is closed.
    pub async fn shutdown(mut self) {
        let grace = self.state.config.shutdown_grace;
        self.state.shutdown.cancel();
        self.state.registry.shutdown(grace).await;
        self.state.tracker.close();
        if tokio::time::timeout(grace, self.state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections did not close within the shutdown grace period");
        }
        let _ = tokio::time::timeout(grace, &mut self.serve).await;
        self.state.registry.store().close().await;
        tracing::info!("coform stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Without an orderly shutdown, at least stop accepting and let
        // the rooms close their peers.
        self.state.shutdown.cancel();
        self.state.registry.begin_shutdown();
    }
}
