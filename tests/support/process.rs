//! The `coform` binary as a child process (authentication off, unless
//! started with [`ProcessServer::start_auth`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{test_store_url, within, TIMEOUT};

const LISTENING_PREFIX: &str = "coform listening on http://";

/// The `coform` binary run as a child process on a temporary data dir.
/// Its stderr is kept (last lines) and printed if the test fails.
pub struct ProcessServer {
    pub addr: SocketAddr,
    /// See [`Server`]: the MongoDB database under `COFORM_TEST_STORE=mongodb`.
    store_url: Option<String>,
    child: Option<tokio::process::Child>,
    args: Vec<String>,
    /// Extra environment variables of the child (`COFORM_LOG=trace`).
    envs: Vec<(String, String)>,
    /// Authentication on: `--auth off` is not passed.
    auth: bool,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Turns true when the child's stderr has been read to its end.
    stderr_done: tokio::sync::watch::Receiver<bool>,
    dir: tempfile::TempDir,
    /// A data dir the test provides (e.g. a size-limited filesystem),
    /// used instead of `dir`.
    data_dir: Option<PathBuf>,
}

/// Lines of stderr kept: enough for a whole short test at `trace`.
const STDERR_LINES: usize = 20_000;

impl ProcessServer {
    /// Spawns `coform serve --bind 127.0.0.1:0 --data-dir DIR ARGS...` and
    /// waits for its listening line.
    pub async fn start(args: &[&str]) -> ProcessServer {
        Self::start_env(args, &[]).await
    }

    /// Like [`ProcessServer::start`], with extra environment variables.
    pub async fn start_env(args: &[&str], envs: &[(&str, &str)]) -> ProcessServer {
        Self::launch(args, envs, false, None).await
    }

    /// Like [`ProcessServer::start`], on the data dir `dir` of the test's
    /// own (kept across restarts, never removed by this server).
    pub async fn start_in(dir: &Path, args: &[&str]) -> ProcessServer {
        Self::launch(args, &[], false, Some(dir.to_path_buf())).await
    }

    /// Authentication on, signing and accepting tokens with
    /// [`super::JWT_SECRET`] (like the in-process [`super::Server`], so
    /// both accept each other's tokens): the replica of a cluster with
    /// accounts. `args` must name a shared `--store` (MongoDB).
    pub async fn start_auth(args: &[&str]) -> ProcessServer {
        let mut all = vec!["--jwt-secret", super::JWT_SECRET];
        all.extend_from_slice(args);
        Self::launch(&all, &[], true, None).await
    }

    /// Authentication on, with no secret given: like a single node in
    /// production, the server generates its token secret and its secrets
    /// key into its data dir.
    pub async fn start_single(args: &[&str]) -> ProcessServer {
        Self::launch(args, &[], true, None).await
    }

    /// Like [`ProcessServer::start_single`], on the data dir `dir` (one
    /// filled beforehand, e.g. by a restore), which it then owns.
    pub async fn start_single_in(dir: tempfile::TempDir, args: &[&str]) -> ProcessServer {
        Self::launch_in(dir, args, &[], true, None).await
    }

    async fn launch(
        args: &[&str],
        envs: &[(&str, &str)],
        auth: bool,
        data_dir: Option<PathBuf>,
    ) -> ProcessServer {
        let dir = tempfile::tempdir().expect("create temp data dir");
        Self::launch_in(dir, args, envs, auth, data_dir).await
    }

    async fn launch_in(
        dir: tempfile::TempDir,
        args: &[&str],
        envs: &[(&str, &str)],
        auth: bool,
        data_dir: Option<PathBuf>,
    ) -> ProcessServer {
        let mut server = ProcessServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store_url: test_store_url().filter(|_| !args.contains(&"--store")),
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            auth,
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            stderr_done: tokio::sync::watch::channel(true).1,
            dir,
            data_dir,
        };
        server.spawn().await;
        server
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_deref().unwrap_or(self.dir.path())
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .expect("server process is not running")
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "server process already running");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_coform"));
        cmd.arg("serve")
            .args(if self.auth {
                &[][..]
            } else {
                &["--auth", "off"][..]
            })
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .args(self.store_url.iter().flat_map(|u| ["--store", u.as_str()]))
            .args(self.secrets_key_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn coform binary");
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = child.stderr.take().expect("child stderr");

        let tail = self.stderr_tail.clone();
        let (done, stderr_done) = tokio::sync::watch::channel(false);
        self.stderr_done = stderr_done;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut tail = tail.lock().unwrap();
                if tail.len() >= STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            done.send_replace(true);
        });

        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Option<String>>();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next_line().await.ok().flatten();
            let _ = first_tx.send(first);
            // Keep draining so the child never blocks on a full pipe.
            while let Ok(Some(_)) = lines.next_line().await {}
        });
        self.child = Some(child);

        let line = within(TIMEOUT, "the server's listening line", first_rx)
            .await
            .ok()
            .flatten();
        let line = match line {
            Some(l) => l,
            None => {
                let status = self.child.as_mut().unwrap().try_wait();
                panic!(
                    "server printed no listening line (exit: {status:?}); stderr:\n{}",
                    self.stderr()
                );
            }
        };
        let rest = line
            .strip_prefix(LISTENING_PREFIX)
            .unwrap_or_else(|| panic!("unexpected first stdout line: {line:?}"));
        self.addr = rest
            .trim()
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("bad address in listening line {line:?}: {e}"));
    }

    /// `--secrets-key` for a MongoDB store, where it is required, unless
    /// the test gives its own.
    fn secrets_key_args(&self) -> Vec<&'static str> {
        let mongo = self.store_url.is_some()
            || self
                .args
                .windows(2)
                .any(|w| w[0] == "--store" && w[1].starts_with("mongodb"));
        if mongo && !self.args.iter().any(|a| a == "--secrets-key") {
            vec!["--secrets-key", super::server::SECRETS_KEY]
        } else {
            Vec::new()
        }
    }

    /// The last lines the server wrote to stderr.
    pub fn stderr(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap();
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits until everything the exited server wrote to stderr has been
    /// read, so [`ProcessServer::stderr`] holds its last lines.
    pub async fn stderr_complete(&self) {
        let mut done = self.stderr_done.clone();
        within(
            TIMEOUT,
            "the end of the server's stderr",
            done.wait_for(|d| *d),
        )
        .await
        .expect("the stderr reader ended");
    }

    /// SIGKILL to this server's own child process, then reaps it.
    pub async fn kill9(&mut self) {
        let status = self.signal(libc::SIGKILL, "killed server to exit").await;
        assert!(!status.success(), "SIGKILLed server reported success");
    }

    /// SIGTERM (graceful shutdown) and waits for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM, "server to exit after SIGTERM")
            .await
    }

    async fn signal(&mut self, signal: libc::c_int, what: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server process is not running");
        let pid = child.id().expect("child already reaped") as libc::pid_t;
        // SAFETY: sending a signal to our own, not yet reaped, child.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({signal}) failed: {}",
            std::io::Error::last_os_error()
        );
        within(TIMEOUT, what, child.wait())
            .await
            .expect("wait for the server process")
    }

    /// Starts the binary again on the same data dir (it gets a new port).
    pub async fn restart(&mut self) {
        self.spawn().await;
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            let all = self.stderr();
            let lines: Vec<&str> = all.lines().collect();
            let tail = lines[lines.len().saturating_sub(200)..].join("\n");
            eprintln!("---- coform server stderr (tail) ----\n{tail}");
        }
    }
}
