//! The stores the suite starts itself: a fresh SecantusDB database (the
//! MongoDB backend) and a `redis-server` on a free loopback port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

pub use coform_storage::testing::MongoServer;

use super::TIMEOUT;

/// With `COFORM_TEST_STORE=mongodb` the servers of the suite store in a
/// fresh database of the shared SecantusDB server instead of the embedded
/// store, so the same tests exercise the MongoDB backend.
pub fn test_store_url() -> Option<String> {
    match std::env::var("COFORM_TEST_STORE").as_deref() {
        Ok("mongodb") => Some(MongoServer::shared().fresh_database_url()),
        Ok("embedded") | Err(_) => None,
        Ok(other) => panic!("COFORM_TEST_STORE must be `embedded` or `mongodb`, not `{other}`"),
    }
}

/// A `redis-server` of our own on a free port, without persistence.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("pick a free port")
            .port();
        let mut redis = Redis { port, child: None };
        redis.spawn();
        redis
    }

    /// Starts `redis-server` on this port and waits for the line in which
    /// it says it accepts connections.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let port = self.port.to_string();
        let mut child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--loglevel", "notice"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it, e.g. `apt-get install redis-server`")
            });
        let stdout = child.stdout.take().expect("redis-server stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            // Keep draining so redis-server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        self.child = Some(child);
        ready_rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("redis-server did not get ready on port {}", self.port));
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills redis-server and reaps it (its port is closed then).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
