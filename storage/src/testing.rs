//! Test helpers: a throwaway MongoDB-protocol server (SecantusDB).
//!
//! Compiled for this crate's own tests and, with the `testing` feature,
//! for other crates' tests:
//!
//! ```toml
//! [dev-dependencies]
//! coform-storage = { path = "storage", features = ["testing"] }
//! ```
//!
//! ```text
//! let server = coform_storage::testing::MongoServer::shared();
//! let url = server.fresh_database_url(); // mongodb://127.0.0.1:P/coform_test_...
//! let store = coform_storage::mongo::MongoStore::connect(&url).await?;
//! ```
//!
//! The server binary is `secantusd-py` (PyPI `secantusdb`), found through
//! `COFORM_SECANTUSD`, else `<repo>/.venv/bin/secantusd-py`, else `PATH`.
//! When it is missing, [`MongoServer::start`] panics with the command that
//! installs it: tests of the MongoDB backend fail, they are never skipped.
//!
//! Every server runs on a free loopback port, with `--storage-path
//! :memory:` unless it is started with [`MongoServer::start_persistent`]
//! (a data directory that survives [`MongoServer::kill9`] and
//! [`MongoServer::restart`], for crash tests). It is stopped by its own
//! PID: when its [`MongoServer`] is dropped, or for
//! [`MongoServer::shared`] when the test process exits.
//! As a last resort (a test process killed outright), the child gets
//! SIGTERM from the kernel when its parent dies (Linux).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};

pub mod fixtures;

/// Environment variable naming the `secantusd-py` binary.
pub const SECANTUSD_ENV: &str = "COFORM_SECANTUSD";
/// How to install the server, shown when it is missing.
pub const INSTALL_HINT: &str =
    "python3 -m venv .venv && .venv/bin/pip install secantusdb==0.7.0b3 (in the repository root)";

const BINARY: &str = "secantusd-py";
/// How long a server may take to answer its first `ping`.
const START_DEADLINE: Duration = Duration::from_secs(90);
/// How long a stopping server may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
const START_TRIES: usize = 3;

/// A running SecantusDB server; stopped when dropped.
pub struct MongoServer {
    /// `mongodb://127.0.0.1:PORT` (no database: the store's default).
    pub url: String,
    pub port: u16,
    child: Child,
    /// `--storage-path`: `:memory:` or a data directory.
    storage: String,
    /// The child was killed and reaped: its PID is no longer ours.
    reaped: bool,
}

impl MongoServer {
    /// Starts a server on a free port and waits until it answers `ping`.
    ///
    /// # Panics
    ///
    /// If the binary is missing (the message says how to install it) or
    /// the server does not come up.
    pub fn start() -> MongoServer {
        Self::start_on(":memory:")
    }

    /// Like [`MongoServer::start`], keeping its data in `dir` and syncing
    /// its log on every commit, so a SIGKILL loses nothing it acknowledged
    /// (what a journaled `mongod` promises for `j: true` writes).
    pub fn start_persistent(dir: &Path) -> MongoServer {
        Self::start_on(&dir.to_string_lossy())
    }

    fn start_on(storage: &str) -> MongoServer {
        let binary = find_binary().unwrap_or_else(|| {
            panic!(
                "SecantusDB (`{BINARY}`) is needed for the MongoDB backend tests but was not \
                 found: set {SECANTUSD_ENV} to its path, or install it with: {INSTALL_HINT}"
            )
        });
        let mut last_error = String::new();
        for _ in 0..START_TRIES {
            let port = match free_port() {
                Ok(port) => port,
                Err(e) => {
                    last_error = format!("no free port: {e}");
                    continue;
                }
            };
            match try_start(&binary, port, storage) {
                Ok(server) => return server,
                // Most likely the port was taken between probe and bind.
                Err(e) => last_error = e,
            }
        }
        panic!(
            "SecantusDB ({}) did not start: {last_error}",
            binary.display()
        );
    }

    /// One server for the whole test process, started on first use and
    /// stopped (by its PID) when the process exits. Tests share it and
    /// keep apart by using a database each ([`Self::fresh_database_url`]).
    pub fn shared() -> &'static MongoServer {
        static SHARED: OnceLock<MongoServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let server = MongoServer::start();
            SHARED_PID.store(server.child.id() as i32, Ordering::SeqCst);
            // SAFETY: registers a plain `extern "C" fn` with no captures.
            unsafe {
                libc::atexit(stop_shared);
            }
            server
        })
    }

    /// URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// URL of a database no other caller in this process gets.
    pub fn fresh_database_url(&self) -> String {
        self.database_url(&unique_database_name())
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reaps the process: a crash, with no chance to flush.
    pub fn kill9(&mut self) {
        assert!(!self.reaped, "SecantusDB is not running");
        // SAFETY: signals our own child, not yet reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Sends `signal` (e.g. SIGSTOP, SIGCONT) to the running server.
    pub fn signal(&self, signal: i32) {
        assert!(!self.reaped, "SecantusDB is not running");
        // SAFETY: signals our own child, not yet reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Starts the server again after [`MongoServer::kill9`], on the same
    /// port and storage path, and waits until it answers `ping`.
    pub fn restart(&mut self) {
        assert!(self.reaped, "SecantusDB is still running");
        let binary = find_binary().expect("SecantusDB binary vanished");
        let mut last_error = String::new();
        // The old process's port may take a moment to be free again.
        for _ in 0..START_TRIES {
            match try_start(&binary, self.port, &self.storage) {
                Ok(mut server) => {
                    std::mem::swap(&mut self.child, &mut server.child);
                    self.reaped = false;
                    // `server` now holds the reaped child: nothing to stop.
                    server.reaped = true;
                    return;
                }
                Err(e) => last_error = e,
            }
        }
        panic!(
            "SecantusDB did not restart on port {}: {last_error}",
            self.port
        );
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // A stopped process gets SIGTERM only once it runs again.
        // SAFETY: signals our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGCONT);
        }
        stop_pid(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

/// A database name unique to this process and call:
/// `coform_test_<pid>_<n>_<time>`.
pub fn unique_database_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("coform_test_{}_{n}_{nanos:x}", std::process::id())
}

/// Drops the database named in `url` (a test's clean-up).
pub async fn drop_database(url: &str) -> mongodb::error::Result<()> {
    let client = mongodb::Client::with_uri_str(url).await?;
    if let Some(db) = client.default_database() {
        db.drop().await?;
    }
    client.shutdown().immediate(true).await;
    Ok(())
}

// ---------------------------------------------------------------- internals

static SHARED_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn stop_shared() {
    let pid = SHARED_PID.swap(0, Ordering::SeqCst);
    if pid > 0 {
        stop_pid(pid);
    }
}

/// SIGTERM (the server cleans up its `:memory:` directory), then SIGKILL
/// after [`STOP_GRACE`]; reaps the child.
fn stop_pid(pid: i32) {
    // SAFETY: signals and waits for our own child by its PID.
    unsafe {
        if libc::kill(pid, libc::SIGTERM) != 0 {
            return;
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            let mut status = 0;
            let r = libc::waitpid(pid, &mut status, libc::WNOHANG);
            if r == pid || r < 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(SECANTUSD_ENV) {
        let path = PathBuf::from(path);
        return is_executable(&path).then_some(path);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let venv = repo.join(".venv").join("bin").join(BINARY);
    if is_executable(&venv) {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(BINARY))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn try_start(binary: &Path, port: u16, storage: &str) -> Result<MongoServer, String> {
    let log = std::env::temp_dir().join(format!("{}.log", unique_database_name()));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = Command::new(binary);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--storage-path", storage, "--log-level", "WARNING"])
        .args((storage != ":memory:").then_some("--sync-on-commit"))
        // A secantusd.toml in the working directory must not apply.
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    let child = spawn_child(cmd).map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let mut server = MongoServer {
        url: format!("mongodb://127.0.0.1:{port}"),
        port,
        child,
        storage: storage.to_owned(),
        reaped: false,
    };
    let deadline = Instant::now() + START_DEADLINE;
    let outcome = loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            break Err(format!(
                "exited with {status} before answering; its log:\n{}",
                log_tail(&log)
            ));
        }
        if ping(port) {
            break Ok(server);
        }
        if Instant::now() >= deadline {
            let tail = log_tail(&log);
            drop(server);
            break Err(format!(
                "no answer to ping within {START_DEADLINE:?}; its log:\n{tail}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The log only serves start-up failures; the server keeps its open
    // file (unlinked) and nothing is left behind.
    let _ = std::fs::remove_file(&log);
    outcome
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Spawns `cmd` from one long-lived thread: on Linux the child gets
/// SIGTERM when that thread (so, the process) ends, even without clean-up.
fn spawn_child(cmd: Command) -> std::io::Result<Child> {
    use std::sync::mpsc;
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<std::sync::Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("secantusd-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_now(&mut cmd));
                }
                // The sender lives in a static: never reached, so this
                // thread (the children's parent) lives as long as the
                // process.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the server spawner thread");
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

fn spawn_now(cmd: &mut Command) -> std::io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Sends `{ping: 1}` as an OP_MSG and checks for `ok: 1`. Blocking, with
/// short timeouts; needs no async runtime.
fn ping(port: u16) -> bool {
    fn try_ping(port: u16) -> std::io::Result<bool> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut body = Vec::new();
        doc! { "ping": 1, "$db": "admin" }
            .to_writer(&mut body)
            .map_err(std::io::Error::other)?;
        const OP_MSG: i32 = 2013;
        let len = (16 + 4 + 1 + body.len()) as i32;
        let mut msg = Vec::with_capacity(len as usize);
        for v in [len, 1, 0, OP_MSG] {
            msg.extend_from_slice(&v.to_le_bytes());
        }
        msg.extend_from_slice(&0u32.to_le_bytes()); // flag bits
        msg.push(0); // section kind 0: body
        msg.extend_from_slice(&body);
        stream.write_all(&msg)?;
        let mut header = [0u8; 16];
        stream.read_exact(&mut header)?;
        let len = i32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let opcode = i32::from_le_bytes(header[12..].try_into().expect("4 bytes"));
        if opcode != OP_MSG || !(21..=48_000_000).contains(&len) {
            return Ok(false);
        }
        let mut rest = vec![0u8; len as usize - 16];
        stream.read_exact(&mut rest)?;
        if rest[4] != 0 {
            return Ok(false);
        }
        let reply = Document::from_reader(&rest[5..]).map_err(std::io::Error::other)?;
        Ok(match reply.get("ok") {
            Some(Bson::Double(v)) => *v == 1.0,
            Some(Bson::Int32(v)) => *v == 1,
            Some(Bson::Int64(v)) => *v == 1,
            _ => false,
        })
    }
    try_ping(port).unwrap_or(false)
}
