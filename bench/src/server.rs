//! The server under test: spawned fresh for each run (pinned to its own
//! cores) or attached to; its CPU time and memory read from `/proc`.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Coform (target/<profile>/coform)
    Coform,
    /// Hocuspocus, default settings, no extensions (bench/node/hocuspocus.mjs)
    Hocuspocus,
    /// The reference y-websocket server (bench/node/ywebsocket.mjs)
    Ywebsocket,
    /// The null relay: pure fan-out, no document (target/<profile>/null-relay)
    Null,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Coform => "coform",
            Kind::Hocuspocus => "hocuspocus",
            Kind::Ywebsocket => "ywebsocket",
            Kind::Null => "null",
        }
    }

    /// Whether the server speaks Hocuspocus framing.
    pub fn hocuspocus_framing(self) -> bool {
        self == Kind::Hocuspocus
    }

    /// The URL path of a document.
    pub fn doc_path(self, doc: &str) -> String {
        match self {
            Kind::Coform => format!("/collab/{doc}"),
            // Hocuspocus takes the document from each message.
            Kind::Hocuspocus => "/".to_string(),
            Kind::Ywebsocket | Kind::Null => format!("/{doc}"),
        }
    }

    /// Whether the server keeps the document (can answer a fresh client
    /// with the whole state).
    pub fn keeps_state(self) -> bool {
        self != Kind::Null
    }
}

/// How to get a server for a run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: Kind,
    /// Overrides the command (run with `sh -c 'exec …'`); it must print a
    /// line with `listening on http://127.0.0.1:PORT`.
    pub cmd: Option<String>,
    /// Attach to a running server instead of spawning one.
    pub attach: Option<(SocketAddr, Option<u32>)>,
    pub coform_bin: PathBuf,
    pub null_bin: PathBuf,
    pub node: String,
    pub node_dir: PathBuf,
    /// Extra arguments for coform (`--store memory`, …).
    pub extra_args: Vec<String>,
    pub cpus: Option<Vec<usize>>,
    /// Other processes of the system under test (more replicas, Redis):
    /// with `attach`, their CPU time counts as the server's, and is also
    /// reported per process.
    pub also: Vec<(String, u32)>,
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub pid: Option<u32>,
    pub addr: SocketAddr,
    pub log: Option<PathBuf>,
    pub started_in: Duration,
    /// See [`Spec::also`].
    pub also: Vec<(String, u32)>,
}

impl Spec {
    /// Starts a server with its data in `data_dir` (used by coform only).
    pub async fn start(&self, data_dir: &Path, extra: &[String]) -> Result<Server> {
        if let Some((addr, pid)) = self.attach {
            return Ok(Server {
                child: None,
                pid,
                addr,
                log: None,
                started_in: Duration::ZERO,
                also: self.also.clone(),
            });
        }
        let mut cmd = match &self.cmd {
            Some(line) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("exec {line}"));
                c
            }
            None => match self.kind {
                Kind::Coform => {
                    let mut c = built(&self.coform_bin, "coform", "coform", "--coform-bin")?;
                    // Load tests open rooms by name, without accounts.
                    c.arg("serve")
                        .args(["--auth", "off"])
                        .arg("--bind")
                        .arg("127.0.0.1:0")
                        .arg("--data-dir")
                        .arg(data_dir.join("coform-data"));
                    c.args(&self.extra_args).args(extra);
                    c
                }
                Kind::Hocuspocus | Kind::Ywebsocket => {
                    let script = self.node_dir.join(format!("{}.mjs", self.kind.name()));
                    if !self.node_dir.join("node_modules").exists() {
                        bail!(
                            "{} has no node_modules: run `npm ci` there first",
                            self.node_dir.display()
                        );
                    }
                    let mut c = Command::new(&self.node);
                    c.arg(script).arg("0").current_dir(&self.node_dir);
                    c
                }
                Kind::Null => {
                    let mut c = built(
                        &self.null_bin,
                        "null-relay",
                        "coform-bench",
                        "--null-relay-bin",
                    )?;
                    c.arg("--bind").arg("127.0.0.1:0");
                    c
                }
            },
        };
        let log = data_dir.join(format!("{}-{}.log", self.kind.name(), unique()));
        let log_file = File::create(&log)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        if let Some(cpus) = self.cpus.clone() {
            // SAFETY: sched_setaffinity is async-signal-safe; nothing else
            // runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    set_affinity(0, &cpus).map_err(std::io::Error::other)?;
                    Ok(())
                });
            }
        }
        let t0 = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting the {} server", self.kind.name()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = parse_ready_line(&line) {
                    return Ok(addr);
                }
            }
            Err(anyhow!("the server exited before printing its address"))
        })
        .await
        .map_err(|_| anyhow!("the server printed no address within 30 s"))?
        .with_context(|| format!("see {}", log.display()))?;
        let started_in = t0.elapsed();
        // Keep draining stdout so the server never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child: Some(child),
            pid,
            addr,
            log: Some(log),
            started_in,
            also: Vec::new(),
        })
    }
}

impl Server {
    /// Stops a spawned server with SIGTERM (SIGKILL after 20 s); returns how
    /// long it took.
    pub async fn stop(mut self) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let t0 = Instant::now();
        if let Some(pid) = child.id() {
            // SAFETY: plain syscall on our own child's pid.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                child.kill().await?;
                bail!("the server did not stop within 20 s of SIGTERM; killed");
            }
        }
        Ok(t0.elapsed())
    }

    /// Seconds the server's threads waited for a CPU so far.
    pub fn runqueue_wait(&self) -> Option<f64> {
        runqueue_wait_seconds(self.pid?)
    }

    /// CPU seconds (user + system, all threads) used so far by the server
    /// itself (`server`) and by each process in [`Server::also`].
    pub fn cpu_parts(&self) -> Option<Vec<(String, f64)>> {
        let mut parts = vec![("server".to_owned(), cpu_seconds(self.pid?).ok()?)];
        for (name, pid) in &self.also {
            parts.push((name.clone(), cpu_seconds(*pid).ok()?));
        }
        Some(parts)
    }

    /// (current RSS, peak RSS) in bytes.
    pub fn rss(&self) -> Option<(u64, u64)> {
        rss(self.pid?).ok()
    }

    /// Counters from coform's `/metrics` (name → value), if it has them.
    pub async fn metrics(&self) -> Option<Vec<(String, f64)>> {
        let text = http_get(self.addr, "/metrics").await.ok()?;
        Some(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// Lines of the server's log that look like warnings or errors.
    pub fn log_problems(&self) -> Vec<String> {
        let Some(log) = &self.log else {
            return Vec::new();
        };
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                let u = l.to_ascii_uppercase();
                u.contains("WARN") || u.contains("ERROR") || u.contains("PANIC")
            })
            .map(str::to_string)
            .collect()
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Finds `127.0.0.1:PORT` after `listening on http://` in a ready line.
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.parse().ok()
}

pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut body)).await??;
    let text = String::from_utf8_lossy(&body).into_owned();
    let start = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    Ok(text[start..].to_string())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').ok_or_else(|| anyhow!("bad stat"))? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).ok_or_else(|| anyhow!("bad stat"))?.parse()?;
    let stime: f64 = fields.get(12).ok_or_else(|| anyhow!("bad stat"))?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

/// Seconds the threads of a process spent runnable but waiting for a CPU
/// (the second field of each thread's `schedstat`): time lost to other
/// processes on the same core.
pub fn runqueue_wait_seconds(pid: u32) -> Option<f64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total as f64 / 1e9)
}

/// This process's CPU seconds.
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// (VmRSS, VmHWM) of a process, in bytes.
pub fn rss(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Ok((field("VmRSS:").unwrap_or(0), field("VmHWM:").unwrap_or(0)))
}

/// Busy CPU seconds of each listed core since boot (from /proc/stat).
pub fn core_busy_seconds(cpus: &[usize]) -> Vec<f64> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks = clock_ticks();
    cpus.iter()
        .map(|cpu| {
            let name = format!("cpu{cpu} ");
            stat.lines()
                .find(|l| l.starts_with(&name))
                .map(|l| {
                    let v: Vec<f64> = l
                        .split_whitespace()
                        .skip(1)
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    // user nice system idle iowait irq softirq steal
                    let busy: f64 = v.iter().take(8).sum::<f64>()
                        - v.get(3).copied().unwrap_or(0.0)
                        - v.get(4).copied().unwrap_or(0.0);
                    busy / ticks
                })
                .unwrap_or(0.0)
        })
        .collect()
}

/// Pins a process (0: this one) to the given cores.
pub fn set_affinity(pid: i32, cpus: &[usize]) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays in bounds for the
    // core numbers checked below.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            if c >= libc::CPU_SETSIZE as usize {
                return Err(format!("no such core {c}"));
            }
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity({cpus:?}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Raises the open-file limit to its hard maximum (idle-connection runs
/// need one descriptor per connection).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A command running the binary at `path`, or why it cannot: the error
/// says how to build it (package `package`) or point `flag` elsewhere.
fn built(path: &Path, what: &str, package: &str, flag: &str) -> Result<Command> {
    if !path.exists() {
        bail!(
            "no {what} binary at {}: build it (cargo build --release -p {package}) or pass {flag}",
            path.display()
        );
    }
    Ok(Command::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_of_every_server() {
        let want: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        for line in [
            "coform listening on http://127.0.0.1:4321",
            "hocuspocus listening on http://127.0.0.1:4321",
            "null-relay listening on http://127.0.0.1:4321",
            "x listening on http://127.0.0.1:4321/ now",
        ] {
            assert_eq!(parse_ready_line(line), Some(want), "{line}");
        }
        assert_eq!(parse_ready_line("starting"), None);
    }

    #[test]
    fn own_process_stats() {
        assert!(cpu_seconds(std::process::id()).is_ok());
        let (rss, hwm) = rss(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
