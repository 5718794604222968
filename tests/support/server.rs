//! The server inside the test process, on a temporary data dir.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use coform::config::Config;

use coform_storage::embedded::EmbeddedStore;

use super::{poll, test_store_url, within, TIMEOUT};

/// The token-signing secret of every server with authentication on, so
/// tests can forge tokens.
pub const JWT_SECRET: &str = "coform-api-tests-secret-0123456789abcdef";

/// The data-source sealing key of every server on a MongoDB store, where
/// it is required (32 bytes of 0x2a, base64).
pub const SECRETS_KEY: &str = "test:KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

type Tweak = Arc<dyn Fn(&mut Config) + Send + Sync>;

/// An in-process server. Dropping it cancels the server and removes the
/// data dir.
pub struct Server {
    pub addr: SocketAddr,
    pub(super) http: reqwest::Client,
    server: Option<coform::server::RunningServer>,
    auth: bool,
    tweak: Tweak,
    /// The MongoDB database this server stores in (kept across restarts),
    /// when an open server runs under `COFORM_TEST_STORE=mongodb`.
    store_url: Option<String>,
    // Declared last: dropped after the server.
    dir: tempfile::TempDir,
}

impl Server {
    /// Authentication on: `Config::for_tests_with_auth` and [`JWT_SECRET`].
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    /// Like [`Server::start`], adjusted by `tweak` (applied again by
    /// [`Server::restart`]).
    pub async fn start_with(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Server {
        Self::launch_new(true, Arc::new(tweak)).await
    }

    /// Authentication off (`Config::for_tests`), storing where
    /// `COFORM_TEST_STORE` says.
    pub async fn open() -> Server {
        Self::open_with(|_| {}).await
    }

    /// Like [`Server::open`], adjusted by `tweak`.
    pub async fn open_with(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Server {
        Self::launch_new(false, Arc::new(tweak)).await
    }

    async fn launch_new(auth: bool, tweak: Tweak) -> Server {
        let dir = tempfile::tempdir().expect("create temp data dir");
        let store_url = if auth { None } else { test_store_url() };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        let mut server = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http,
            server: None,
            auth,
            tweak,
            store_url,
            dir,
        };
        server.start_again().await;
        server
    }

    fn config(&self) -> Config {
        let dir = self.dir.path().to_path_buf();
        let mut config = if self.auth {
            let mut c = Config::for_tests_with_auth(dir);
            c.jwt_secret = Some(JWT_SECRET.into());
            c
        } else {
            Config::for_tests(dir)
        };
        if let Some(url) = &self.store_url {
            config.store = coform::config::StoreKind::MongoDb(url.clone());
            config.secrets_key = Some(SECRETS_KEY.into());
        }
        (self.tweak)(&mut config);
        config
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The application state (for checks of what is stored).
    pub fn state(&self) -> &coform::server::AppState {
        self.server.as_ref().expect("server running").state()
    }

    /// Opens the store this server uses (call after stopping it when it is
    /// the embedded one, which one process at a time may open).
    pub async fn open_store(&self) -> Arc<dyn coform_storage::DocStore> {
        match &self.store_url {
            Some(url) => Arc::new(
                coform_storage::mongo::MongoStore::connect(url)
                    .await
                    .expect("connect to the test MongoDB"),
            ),
            // The stopped server's last tasks may still hold the data
            // dir's lock for a moment after its shutdown returned.
            None => Arc::new(
                poll("the data dir's lock to be released", TIMEOUT, || async {
                    let dir = self.dir.path();
                    match EmbeddedStore::open(dir, coform_storage::Durability::Full) {
                        Err(e) if e.to_string().contains("in use by another") => None,
                        other => Some(other.expect("open the server's embedded store")),
                    }
                })
                .await,
            ),
        }
    }

    /// Graceful shutdown; the data dir is kept.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            within(TIMEOUT, "server shutdown", server.shutdown()).await;
        }
    }

    /// Graceful shutdown, then a new server on the same data dir (new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Starts a server on the data dir after [`Server::stop`].
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "server still running");
        let config = self.config();
        let server = within(TIMEOUT, "server start", coform::server::start(config))
            .await
            .expect("start in-process server");
        self.addr = server.addr;
        self.server = Some(server);
    }
}
