//! Configuration: one `clap` struct. Every flag has a `COFORM_*`
//! environment fallback, and its `///` line is its `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use coform_collab::{Limits, RoomConfig};
use coform_storage::Durability;

/// Coform: a real-time collaboration server for form builders, speaking the
/// y-websocket protocol.
#[derive(Parser, Debug)]
#[command(name = "coform", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(Config),
    /// Re-seal every data source's secrets under the first key of
    /// `--secrets-key` (list the old key after it), then exit. Run it
    /// after adding a new key in front; drop the old key afterwards.
    RotateSecrets(Config),
    /// Write a consistent copy of the embedded store's data directory
    /// into one file, while the server runs. With a MongoDB store, use
    /// mongodump instead (see docs/OPERATIONS.md).
    Backup(BackupArgs),
    /// Put a backup file's database (and secrets key) into a data
    /// directory, after checking the whole file. The server must be
    /// stopped.
    Restore(RestoreArgs),
}

impl Cli {
    /// The server configuration, whichever way it was given (`backup` and
    /// `restore` take none: for them, the defaults).
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(config)) | Some(Command::RotateSecrets(config)) => config,
            Some(Command::Backup(_)) | Some(Command::Restore(_)) | None => self.serve,
        }
    }
}

/// `coform backup`.
#[derive(Args, Clone, Debug)]
pub struct BackupArgs {
    /// Data directory of the server to back up (it may be running).
    #[arg(long, env = "COFORM_DATA_DIR", default_value = "./coform-data")]
    pub data_dir: PathBuf,
    /// The server's store: only `embedded` can be backed up this way.
    #[arg(long, env = "COFORM_STORE", default_value = "embedded", value_parser = parse_store, hide_env_values = true)]
    pub store: StoreKind,
    /// File to write (created owner-only; written whole, then renamed into
    /// place).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
    /// Put the data directory's secrets key into the backup too. Off by
    /// default: whoever holds a backup with its key can open every data
    /// source's passwords and tokens, so keep the key apart (a secret
    /// manager) unless the backup is stored as safely as the key itself.
    #[arg(long)]
    pub include_secrets_key: bool,
}

/// `coform restore`.
#[derive(Args, Clone, Debug)]
pub struct RestoreArgs {
    /// Data directory to restore into (created if missing). The server on
    /// it must be stopped.
    #[arg(long, env = "COFORM_DATA_DIR", default_value = "./coform-data")]
    pub data_dir: PathBuf,
    /// The server's store: only `embedded` can be restored this way.
    #[arg(long, env = "COFORM_STORE", default_value = "embedded", value_parser = parse_store, hide_env_values = true)]
    pub store: StoreKind,
    /// The backup file to restore.
    #[arg(long)]
    pub from: PathBuf,
    /// Restore into a data directory that is not empty, replacing its
    /// database (and its secrets key, when one is restored).
    #[arg(long)]
    pub force: bool,
    /// A file holding the secrets key (`id:base64key[,...]`, the content
    /// of a data directory's `secrets-key`) for a backup made without it.
    /// It is checked against the backup's data sources and installed.
    #[arg(long)]
    pub secrets_key_file: Option<PathBuf>,
}

/// Which store keeps the documents and accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite under `--data-dir` (the default; one node).
    Embedded,
    /// Process memory only: everything is lost at exit. For measuring what
    /// durable storage costs, never for real data.
    Memory,
    /// A MongoDB server shared by several replicas (`mongodb://...`).
    MongoDb(String),
}

fn parse_store(s: &str) -> Result<StoreKind, String> {
    match s {
        "embedded" => Ok(StoreKind::Embedded),
        "memory" => Ok(StoreKind::Memory),
        url if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") => {
            Ok(StoreKind::MongoDb(url.to_owned()))
        }
        other => Err(format!(
            "unknown store `{other}`: expected `embedded`, `memory` or a mongodb:// URL"
        )),
    }
}

/// Who may open which document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Accounts and tokens: `/collab/{templateId}?token=...` opens only the
    /// templates the user's workspace role allows.
    On,
    /// No authentication: any room name is a document. For local
    /// development only; allowed only on a loopback address.
    Off,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `coform serve` needs.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "COFORM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory of the embedded database (created if missing).
    #[arg(long, env = "COFORM_DATA_DIR", default_value = "./coform-data")]
    pub data_dir: PathBuf,
    /// Store: `embedded` (SQLite under --data-dir; one node), `memory`
    /// (volatile, for measurements) or a `mongodb://` URL (several replicas).
    #[arg(long, env = "COFORM_STORE", default_value = "embedded", value_parser = parse_store, hide_env_values = true)]
    pub store: StoreKind,
    /// Redis URL for fan-out between replicas (`redis://host:6379`); the
    /// replicas also share their rate limits and login backoffs there.
    /// Absent: a single node with local fan-out and limits.
    #[arg(long, env = "COFORM_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// Embedded store durability: `full` fsyncs every group commit (survives
    /// power loss); `normal` survives a killed process but not a power cut.
    #[arg(long, env = "COFORM_DURABILITY", default_value = "full", value_parser = parse_durability)]
    pub durability: Durability,
    /// Authentication mode.
    #[arg(long, env = "COFORM_AUTH", value_enum, default_value = "on")]
    pub auth: AuthMode,
    /// Secret that signs tokens (at least 32 bytes). When absent, one is
    /// generated and kept in the data directory (embedded store only).
    #[arg(long, env = "COFORM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens.
    #[arg(long, env = "COFORM_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,
    /// Lifetime of a login session (its refresh tokens).
    #[arg(long, env = "COFORM_REFRESH_TOKEN_TTL", default_value = "720h", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,
    /// Lifetime of document tokens for the WebSocket.
    #[arg(long, env = "COFORM_DOC_TOKEN_TTL", default_value = "5m", value_parser = parse_duration)]
    pub doc_token_ttl: Duration,
    /// Base URL of this server, used in e-mailed links.
    #[arg(long, env = "COFORM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP relay for e-mail (`smtp://user:pass@host:587` or `smtps://...`).
    /// When absent, e-mails are written to `<data-dir>/outbox/`.
    #[arg(long, env = "COFORM_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Take the client address for rate limits from `X-Forwarded-For` (set
    /// this only behind a proxy that overwrites that header, such as the
    /// bundled nginx or an Ingress).
    #[arg(long, env = "COFORM_TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,
    /// Web origins (comma-separated, e.g. `https://app.example.com`) whose
    /// pages may call the REST API from a browser (CORS). Empty: same origin
    /// only.
    #[arg(long, env = "COFORM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Sender address of e-mails.
    #[arg(
        long,
        env = "COFORM_MAIL_FROM",
        default_value = "Coform <no-reply@localhost>"
    )]
    pub mail_from: String,
    /// How long a document stays in memory after its last client leaves.
    #[arg(long, env = "COFORM_ROOM_GRACE", default_value = duration_text(RoomConfig::DEFAULT.grace), value_parser = parse_duration)]
    pub room_grace: Duration,
    /// While a connection is busy, its socket is written at most once per
    /// this interval: updates that arrive in between leave in the same
    /// write. A connection that was quiet for longer is written at once,
    /// so this adds latency only under load (at most this much) and saves
    /// one system call per update then. `0ms` writes every batch at once.
    #[arg(long, env = "COFORM_WRITE_COALESCE", default_value = "2ms", value_parser = parse_duration)]
    pub write_coalesce: Duration,
    /// Check each live edit against the form model and repair what it left
    /// invalid (on by default). `off` exists only to measure what checking
    /// costs: without it, any Yjs client can leave a form invalid.
    #[arg(long, env = "COFORM_SCHEMA_CHECK", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set, hide = true)]
    pub schema_check: bool,
    /// A document's presence (pointers, selections) goes to its other
    /// clients at most once per this window: a change after a quiet window
    /// goes at once, changes within one are merged, latest state per
    /// person, and go together at its end. `0ms` sends every change at
    /// once.
    #[arg(long, env = "COFORM_PRESENCE_WINDOW", default_value = duration_text(RoomConfig::DEFAULT.presence_window), value_parser = parse_duration)]
    pub presence_window: Duration,
    /// How long shutdown waits for rooms and connections to finish.
    #[arg(long, env = "COFORM_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Token that `GET /metrics` requires as `Authorization: Bearer <token>`.
    /// Absent: `/metrics` is open, so keep it off the public network (the
    /// bundled Ingress and nginx do not route it).
    #[arg(long, env = "COFORM_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Log format (also `COFORM_LOG_FORMAT=json`). Levels: `COFORM_LOG`.
    #[arg(long, env = "COFORM_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Address ranges data sources may reach besides public addresses
    /// (`10.20.0.0/16,192.168.5.7/32`): by default loopback, private,
    /// link-local and other inward ranges are refused. Cloud metadata
    /// addresses and Coform's own port stay refused whatever this says;
    /// a range containing a metadata address stops the server at start.
    #[arg(long, env = "COFORM_DATA_SOURCE_ALLOW", value_delimiter = ',')]
    pub data_source_allow: Vec<coform_sources::Cidr>,
    /// Keys sealing data-source secrets at rest: `id:base64key[,id:base64key…]`
    /// (32-byte keys); the first seals, every one opens. Generated into
    /// the data directory when absent (embedded store); required with
    /// `--store mongodb://` so that every replica opens the same secrets.
    #[arg(long, env = "COFORM_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub compaction: CompactionConfig,
    #[command(flatten)]
    pub login: LoginConfig,
    #[command(flatten)]
    pub otlp: OtlpConfig,
}

/// Export of the request, connection and store spans to an OpenTelemetry
/// collector (see docs/OPERATIONS.md). Off unless an endpoint is given.
#[derive(Args, Clone, Debug)]
pub struct OtlpConfig {
    /// Base URL of an OpenTelemetry collector's OTLP/HTTP receiver
    /// (`http://otel-collector:4318`): spans are sent to `<URL>/v1/traces`
    /// as protobuf. Absent: no spans leave the process.
    #[arg(
        long = "otlp-endpoint",
        env = "COFORM_OTLP_ENDPOINT",
        value_name = "URL",
        value_parser = parse_otlp_endpoint
    )]
    pub endpoint: Option<url::Url>,
    /// The `service.name` the exported spans carry.
    #[arg(
        long = "otlp-service-name",
        env = "COFORM_OTLP_SERVICE_NAME",
        value_name = "NAME",
        default_value = "coform"
    )]
    pub service_name: String,
    /// Which spans are exported, in `COFORM_LOG`'s syntax and apart from
    /// it: `info` is every request and WebSocket connection;
    /// `info,coform_collab=debug` adds each store load and append.
    #[arg(
        long = "otlp-filter",
        env = "COFORM_OTLP_FILTER",
        value_name = "DIRECTIVES",
        default_value = "info"
    )]
    pub filter: String,
}

/// The OTLP/HTTP traces URL of a collector's base URL: `/v1/traces` is
/// appended to its path unless it ends with it already.
fn parse_otlp_endpoint(s: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(s.trim())
        .map_err(|e| format!("`{s}` is not a URL like http://otel-collector:4318: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "`{s}` is not an http:// or https:// URL with a host, like http://otel-collector:4318"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the collector URL must not carry credentials: give them as headers in \
             OTEL_EXPORTER_OTLP_HEADERS"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{s}`: the collector URL takes no query or fragment"
        ));
    }
    if !url.path().ends_with("/v1/traces") {
        let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Ok(url)
}

/// Limits that protect the server from any one client.
#[derive(Args, Clone, Debug)]
pub struct LimitsConfig {
    /// Largest WebSocket frame accepted, in bytes; larger ones close the
    /// connection with 1009.
    #[arg(long, env = "COFORM_MAX_FRAME_BYTES", default_value_t = Limits::DEFAULT.max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// Largest stored size of one document, in bytes; an update past it
    /// closes its sender with 1009.
    #[arg(long, env = "COFORM_MAX_DOC_BYTES", default_value_t = Limits::DEFAULT.max_doc_bytes)]
    pub max_doc_bytes: usize,
    /// Sustained messages per second one connection may send (bursts of
    /// twice that are allowed); beyond it, reading from it pauses.
    #[arg(long, env = "COFORM_MAX_MESSAGES_PER_SEC", default_value_t = Limits::DEFAULT.max_messages_per_sec)]
    pub max_messages_per_sec: u32,
    /// Most simultaneous WebSocket connections; more are refused with 503.
    #[arg(long, env = "COFORM_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,
    /// Bytes that may wait to be sent to one connection before it counts as
    /// too slow and is closed with 1013 (its client resyncs).
    #[arg(long, env = "COFORM_PEER_QUEUE_BYTES", default_value_t = Limits::DEFAULT.peer_queue_bytes)]
    pub peer_queue_bytes: usize,
    /// Messages that may wait to be sent to one connection.
    #[arg(long, env = "COFORM_PEER_QUEUE_MESSAGES", default_value_t = Limits::DEFAULT.peer_queue_messages)]
    pub peer_queue_messages: usize,
    /// Presence (awareness) states one connection may own; more closes it
    /// with 1008. A y-websocket client has one.
    #[arg(
        long,
        env = "COFORM_MAX_AWARENESS_STATES_PER_CONNECTION",
        default_value_t = Limits::DEFAULT.max_awareness_states_per_peer
    )]
    pub max_awareness_states_per_connection: usize,
    /// Largest presence state (its JSON) in bytes; larger closes the
    /// connection with 1008.
    #[arg(long, env = "COFORM_MAX_AWARENESS_STATE_BYTES", default_value_t = Limits::DEFAULT.max_awareness_state_bytes)]
    pub max_awareness_state_bytes: usize,
    /// Presence states one document keeps; beyond it new ones are not
    /// relayed.
    #[arg(
        long,
        env = "COFORM_MAX_AWARENESS_STATES_PER_DOC",
        default_value_t = Limits::DEFAULT.max_awareness_states_per_room
    )]
    pub max_awareness_states_per_doc: usize,
    /// Bytes of presence states one document keeps.
    #[arg(long, env = "COFORM_MAX_AWARENESS_BYTES_PER_DOC", default_value_t = Limits::DEFAULT.max_awareness_bytes_per_room)]
    pub max_awareness_bytes_per_doc: usize,
}

/// When documents are compacted (snapshot + log folded into a snapshot).
#[derive(Args, Clone, Debug)]
pub struct CompactionConfig {
    /// Compact a document once its log holds this many updates.
    #[arg(
        long = "compact-after-updates",
        env = "COFORM_COMPACT_AFTER_UPDATES",
        default_value_t = RoomConfig::DEFAULT.compact_after_updates
    )]
    pub after_updates: u64,
    /// Compact a document once its log holds this many bytes (whichever
    /// threshold is reached first).
    #[arg(long = "compact-after-bytes", env = "COFORM_COMPACT_AFTER_BYTES", default_value_t = RoomConfig::DEFAULT.compact_after_bytes)]
    pub after_bytes: u64,
}

/// How failed logins slow down whoever makes them. Counted by the e-mail
/// as typed, whether or not an account has it, so the answers never tell
/// which addresses have accounts.
#[derive(Args, Clone, Debug)]
pub struct LoginConfig {
    /// Failed logins one client address may make at one e-mail address
    /// before it must wait; each further failure doubles the wait. Other
    /// client addresses are not affected, and a success starts over.
    #[arg(
        long = "login-backoff-after",
        env = "COFORM_LOGIN_BACKOFF_AFTER",
        default_value_t = 5
    )]
    pub backoff_after: u32,
    /// The first wait of a client address at an e-mail address.
    #[arg(long = "login-backoff-base", env = "COFORM_LOGIN_BACKOFF_BASE", default_value = "1s", value_parser = parse_duration)]
    pub backoff_base: Duration,
    /// The longest wait of a client address at an e-mail address.
    #[arg(long = "login-backoff-max", env = "COFORM_LOGIN_BACKOFF_MAX", default_value = "15m", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// Failed logins at one e-mail address, from all client addresses
    /// together, per 5 minutes; past it every login to that address waits
    /// for the window to end. High, so that no one attacker locks the owner
    /// out; it only stops guessing spread over many client addresses.
    #[arg(
        long = "login-address-failures",
        env = "COFORM_LOGIN_ADDRESS_FAILURES",
        default_value_t = 100
    )]
    pub address_failures: u32,
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

/// A duration as [`parse_duration`] reads it back: whole seconds as
/// `10s`, anything else in milliseconds (for defaults stated elsewhere).
fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `on` or `off`.
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("expected `on` or `off`, not {other:?}")),
    }
}

/// Parses `250ms`, `10s`, `5m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 10s or 2m"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit in `{s}`: use ms, s, m or h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Config {
    /// Checks what clap cannot. Called once at start.
    pub fn validate(&self) -> Result<(), String> {
        if self.auth == AuthMode::Off && !self.bind.ip().is_loopback() {
            return Err(format!(
                "--auth off lets anyone open any document, so it is only allowed on a loopback \
                 address (127.0.0.1 or ::1); {} is not one",
                self.bind.ip()
            ));
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 32 {
                return Err("--jwt-secret must be at least 32 bytes long".into());
            }
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err("--metrics-token must be at least 16 characters long".into());
        }
        if matches!(self.store, StoreKind::MongoDb(_))
            && self.auth == AuthMode::On
            && self.jwt_secret.is_none()
        {
            return Err(
                "--jwt-secret is required with --store mongodb://: every replica must sign and \
                        accept the same tokens"
                    .into(),
            );
        }
        if matches!(self.store, StoreKind::MongoDb(_)) && self.secrets_key.is_none() {
            return Err(
                "--secrets-key is required with --store mongodb://: every replica must open the \
                 data sources' secrets with the same keys"
                    .into(),
            );
        }
        if let Some(spec) = &self.secrets_key {
            coform_sources::secrets::Keyring::parse(spec)
                .map_err(|e| format!("--secrets-key: {e}"))?;
        }
        coform_sources::Policy::new()
            .allow(self.data_source_allow.iter().copied())
            .map_err(|e| format!("--data-source-allow: {e}"))?;
        for origin in &self.cors_origins {
            if !(origin.starts_with("https://") || origin.starts_with("http://"))
                || origin.ends_with('/')
                || origin.contains('*')
                || axum::http::HeaderValue::from_str(origin).is_err()
            {
                return Err(format!(
                    "--cors-origins: `{origin}` is not an origin like https://app.example.com"
                ));
            }
        }
        let l = &self.limits;
        for (name, v) in [
            ("--max-frame-bytes", l.max_frame_bytes),
            ("--max-doc-bytes", l.max_doc_bytes),
            ("--max-connections", l.max_connections),
            ("--peer-queue-bytes", l.peer_queue_bytes),
            ("--peer-queue-messages", l.peer_queue_messages),
            (
                "--max-awareness-states-per-connection",
                l.max_awareness_states_per_connection,
            ),
            ("--max-awareness-state-bytes", l.max_awareness_state_bytes),
            (
                "--max-awareness-states-per-doc",
                l.max_awareness_states_per_doc,
            ),
            (
                "--max-awareness-bytes-per-doc",
                l.max_awareness_bytes_per_doc,
            ),
        ] {
            if v == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if l.max_messages_per_sec == 0 {
            return Err("--max-messages-per-sec must be greater than 0".into());
        }
        if self.compaction.after_updates == 0 || self.compaction.after_bytes == 0 {
            return Err("compaction thresholds must be greater than 0".into());
        }
        let login = &self.login;
        if login.backoff_after == 0 || login.address_failures == 0 {
            return Err(
                "--login-backoff-after and --login-address-failures must be greater than 0".into(),
            );
        }
        if login.backoff_base.is_zero() || login.backoff_max < login.backoff_base {
            return Err(
                "--login-backoff-base must be greater than 0 and at most --login-backoff-max"
                    .into(),
            );
        }
        if self.otlp.service_name.trim().is_empty() {
            return Err("--otlp-service-name must not be empty".into());
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(&self.otlp.filter)
            .map_err(|e| format!("--otlp-filter: `{}`: {e}", self.otlp.filter))?;
        Ok(())
    }

    /// A configuration for tests: loopback on an ephemeral port, auth off,
    /// the given data dir, a short room grace period.
    pub fn for_tests(data_dir: PathBuf) -> Config {
        let mut config = Cli::parse_from(["coform"]).into_config();
        config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = data_dir;
        config.room_grace = Duration::from_millis(200);
        config.durability = Durability::Normal;
        config.auth = AuthMode::Off;
        config
    }

    /// Like [`Config::for_tests`] with authentication on.
    pub fn for_tests_with_auth(data_dir: PathBuf) -> Config {
        let mut config = Self::for_tests(data_dir);
        config.auth = AuthMode::On;
        config
    }

    /// The room settings derived from this configuration.
    pub fn room_config(&self) -> RoomConfig {
        let l = &self.limits;
        RoomConfig {
            limits: Limits {
                max_frame_bytes: l.max_frame_bytes,
                max_doc_bytes: l.max_doc_bytes,
                max_messages_per_sec: l.max_messages_per_sec,
                peer_queue_bytes: l.peer_queue_bytes,
                peer_queue_messages: l.peer_queue_messages,
                max_awareness_states_per_peer: l.max_awareness_states_per_connection,
                max_awareness_state_bytes: l.max_awareness_state_bytes,
                max_awareness_states_per_room: l.max_awareness_states_per_doc,
                max_awareness_bytes_per_room: l.max_awareness_bytes_per_doc,
                ..Limits::default()
            },
            grace: self.room_grace,
            compact_after_updates: self.compaction.after_updates,
            compact_after_bytes: self.compaction.after_bytes,
            check_schema: self.schema_check,
            presence_window: self.presence_window,
            ..RoomConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn schema_check_and_presence_window_take_values() {
        let on = Cli::parse_from(["coform"]).into_config().room_config();
        assert!(on.check_schema);
        assert_eq!(on.presence_window, Duration::from_millis(10));
        let off = Cli::try_parse_from(["coform", "--schema-check", "off"]).unwrap();
        assert!(!off.into_config().room_config().check_schema);
        let on = Cli::try_parse_from(["coform", "serve", "--schema-check", "on"]).unwrap();
        assert!(on.into_config().room_config().check_schema);
        assert!(Cli::try_parse_from(["coform", "--schema-check", "no"]).is_err());
        let zero = Cli::try_parse_from(["coform", "--presence-window", "0ms"]).unwrap();
        assert_eq!(
            zero.into_config().room_config().presence_window,
            Duration::ZERO
        );
    }

    #[test]
    fn auth_off_is_refused_on_a_public_address() {
        let mut c = Config::for_tests(PathBuf::from("x"));
        assert!(c.validate().is_ok());
        c.bind = "0.0.0.0:8080".parse().unwrap();
        c.auth = AuthMode::On;
        assert!(c.validate().is_ok());
        c.auth = AuthMode::Off;
        let err = c.validate().unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        c.bind = "[::1]:8080".parse().unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn login_backoff_settings_are_checked() {
        let c = Cli::parse_from(["coform"]).into_config();
        assert_eq!(c.login.backoff_after, 5);
        assert_eq!(c.login.backoff_base, Duration::from_secs(1));
        assert_eq!(c.login.backoff_max, Duration::from_secs(15 * 60));
        assert_eq!(c.login.address_failures, 100);
        for args in [
            ["coform", "--login-backoff-after", "0"],
            ["coform", "--login-address-failures", "0"],
            ["coform", "--login-backoff-base", "0s"],
            ["coform", "--login-backoff-max", "500ms"],
        ] {
            let c = Cli::parse_from(args).into_config();
            assert!(c.validate().is_err(), "{args:?} accepted");
        }
    }

    /// The flags' defaults are the rooms' defaults: stated once, in
    /// `coform-collab`, so the two cannot drift apart.
    #[test]
    fn default_flags_give_the_default_room_config() {
        let c = Cli::parse_from(["coform"]).into_config();
        assert_eq!(c.room_config(), RoomConfig::default());
        assert_eq!(c.room_config().limits, Limits::default());
        for d in [Duration::from_secs(10), Duration::from_millis(2500)] {
            assert_eq!(parse_duration(&duration_text(d)), Ok(d));
        }
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn otlp_endpoints_are_checked_and_given_the_traces_path() {
        let off = Cli::parse_from(["coform"]).into_config();
        assert_eq!(off.otlp.endpoint, None);
        assert_eq!(off.otlp.service_name, "coform");
        assert_eq!(off.otlp.filter, "info");
        for (given, used) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://otel:4318/", "http://otel:4318/v1/traces"),
            (
                "https://otel.example.com/otlp",
                "https://otel.example.com/otlp/v1/traces",
            ),
            ("http://[::1]:4318/v1/traces", "http://[::1]:4318/v1/traces"),
        ] {
            assert_eq!(parse_otlp_endpoint(given).unwrap().as_str(), used);
        }
        for bad in [
            "otel:4318",
            "127.0.0.1:4318",
            "ftp://otel:21",
            "grpc://otel:4317",
            "http://",
            "http://user:pw@otel:4318",
            "http://otel:4318/?token=x",
            "not a url",
        ] {
            assert!(parse_otlp_endpoint(bad).is_err(), "{bad} accepted");
        }
        let c = Cli::try_parse_from(["coform", "--otlp-endpoint", "http://otel:4318"]).unwrap();
        assert!(c.into_config().validate().is_ok());
        assert!(Cli::try_parse_from(["coform", "--otlp-endpoint", "otel:4318"]).is_err());
        for args in [
            ["coform", "--otlp-filter", "info,coform=loud"],
            ["coform", "--otlp-service-name", " "],
        ] {
            let c = Cli::parse_from(args).into_config();
            assert!(c.validate().is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn serve_subcommand_and_bare_flags_are_the_same() {
        let a = Cli::parse_from(["coform", "serve", "--bind", "127.0.0.1:9"]).into_config();
        let b = Cli::parse_from(["coform", "--bind", "127.0.0.1:9"]).into_config();
        assert_eq!(a.bind, b.bind);
        assert_eq!(a.limits.max_frame_bytes, 16 << 20);
        assert_eq!(a.write_coalesce, Duration::from_millis(2));
        let off = Cli::parse_from(["coform", "--write-coalesce", "0ms"]).into_config();
        assert_eq!(off.write_coalesce, Duration::ZERO);
    }
}
