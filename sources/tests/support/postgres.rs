//! A real PostgreSQL server for one test: `initdb` once per build into a
//! template cluster, then for every [`PgServer`] a copy of it in a
//! temporary directory, started with `pg_ctl` on 127.0.0.1 and stopped
//! (`pg_ctl stop -m fast`) when the server is dropped.
//!
//! The binaries are looked for on `PATH`, then in
//! `/usr/lib/postgresql/<version>/bin`; without them the test fails and
//! says to install PostgreSQL. PostgreSQL refuses to run as root, so a
//! root test process runs `initdb`, `pg_ctl` and the server as the
//! `postgres` user (which the Debian package creates).
//!
//! Roles and objects made by [`PgServer::start`]:
//!
//! - `super` (password [`SUPER_PASSWORD`]): the bootstrap superuser;
//! - `reader`: `SELECT` on `t` and `big` only;
//! - `writer`: `SELECT` and `INSERT` on `t`;
//! - `t(id, name, score numeric, born date, seen timestamptz, tags text[],
//!   doc jsonb, blob bytea, uid uuid, ok bool, ratio float8)` with three
//!   rows; `big(n)` with 50 rows; `hidden(x)`, which `reader` may not
//!   read.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use coform_sources::{Config, Guard, PgLimits, Policy, Postgres, StaticResolver, TcpConnector};
use serde_json::json;
use tempfile::TempDir;

pub const SUPERUSER: &str = "super";
pub const SUPER_PASSWORD: &str = "super-secret";
pub const READER_PASSWORD: &str = "reader-secret";
pub const WRITER_PASSWORD: &str = "writer-secret";

const SETUP: &str = r#"
CREATE ROLE reader LOGIN PASSWORD 'reader-secret';
CREATE ROLE writer LOGIN PASSWORD 'writer-secret';
CREATE TABLE t (
  id int PRIMARY KEY, name text NOT NULL, score numeric(10, 2), born date,
  seen timestamptz, tags text[], doc jsonb, blob bytea, uid uuid, ok boolean,
  ratio float8
);
INSERT INTO t VALUES
  (1, 'ada', 12.50, '1815-12-10', '2024-01-02 03:04:05.5+00', '{a,b}',
   '{"k": [1, 2]}', '\x00ff', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', true, 0.25),
  (2, 'grace', NULL, NULL, NULL, '{}', NULL, NULL, NULL, false, NULL),
  (3, 'it''s', 0.01, NULL, NULL, NULL, '[]', NULL, NULL, NULL, NULL);
CREATE TABLE big AS SELECT g AS n FROM generate_series(1, 50) g;
CREATE TABLE hidden (x int);
GRANT SELECT ON t, big TO reader;
GRANT SELECT, INSERT ON t TO writer;
"#;

/// A running server; stopped and removed on drop.
pub struct PgServer {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<(u32, u32)>,
    /// Holds the cluster's directory; removed after the server stops.
    _dir: TempDir,
}

impl PgServer {
    /// Starts a server with the roles and tables above, without TLS.
    pub async fn start() -> PgServer {
        PgServer::launch(false).await
    }

    /// The same, also offering TLS with a fresh self-signed certificate
    /// for `127.0.0.1` (which no root vouches for).
    pub async fn start_with_tls() -> PgServer {
        PgServer::launch(true).await
    }

    async fn launch(tls: bool) -> PgServer {
        let server = tokio::task::spawn_blocking(move || PgServer::start_blocking(tls))
            .await
            .expect("starting PostgreSQL panicked");
        let client = server.client(SUPERUSER, SUPER_PASSWORD).await;
        client
            .batch_execute(SETUP)
            .await
            .expect("setting up the test database");
        server
    }

    fn start_blocking(tls: bool) -> PgServer {
        let bin = find_bin();
        let run_as = run_as();
        // The build's own scratch directory, unless PostgreSQL runs as
        // another user, who may not be able to reach into the checkout.
        let tmp = match run_as {
            None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            Some(_) => std::env::temp_dir(),
        };
        let tmp = tmp.as_path();
        let template = template(&bin, run_as, tmp);
        let dir = tempfile::Builder::new()
            .prefix("coform-pg-")
            .tempdir_in(tmp)
            .expect("a temporary directory");
        give(dir.path(), run_as);
        let data = dir.path().join("data");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&data)
            .status()
            .expect("running cp");
        assert!(copied.success(), "copying the template cluster failed");
        let mut options = String::from("-c fsync=off");
        if tls {
            let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
                .expect("a self-signed certificate");
            let cert = data.join("server.crt");
            let key = data.join("server.key");
            fs::write(&cert, certified.cert.pem()).expect("writing the certificate");
            fs::write(&key, certified.key_pair.serialize_pem()).expect("writing the key");
            // The server refuses a key others may read.
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
            give(&cert, run_as);
            give(&key, run_as);
            options.push_str(" -c ssl=on");
        }
        let log = dir.path().join("log");
        // The OS picks a free port; PostgreSQL cannot listen on port 0, so
        // it is released and handed over, and another is tried in the rare
        // case someone took it in between.
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let out = run(
                Command::new(bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(&log)
                    .arg("-w")
                    .arg("-o")
                    .arg(format!(
                        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' {options}"
                    ))
                    .arg("start"),
                run_as,
            );
            if out.status.success() {
                return PgServer {
                    port,
                    bin,
                    data,
                    run_as,
                    _dir: dir,
                };
            }
            let log_text = fs::read_to_string(&log).unwrap_or_default();
            if !log_text.contains("could not bind") && !log_text.contains("in use") {
                panic!(
                    "pg_ctl start failed: {}\n{}\n{log_text}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        panic!("no free port for PostgreSQL after 10 tries");
    }

    /// A client for `user`, for setting up and checking the database
    /// behind the executor's back.
    pub async fn client(&self, user: &str, password: &str) -> tokio_postgres::Client {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connecting to the test server");
        let (client, connection) = tokio_postgres::Config::new()
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect_raw(stream, tokio_postgres::NoTls)
            .await
            .expect("logging in to the test server");
        tokio::spawn(connection);
        client
    }

    /// A database source for `user` running `query`.
    pub fn config(&self, user: &str, password: &str, query: &str) -> Config {
        serde_json::from_value(json!({
            "engine": "postgresql",
            "host": "127.0.0.1",
            "port": self.port,
            "database": "postgres",
            "user": user,
            "password": password,
            "query": query,
            "sslMode": "disable",
        }))
        .expect("a valid source configuration")
    }

    pub fn reader(&self, query: &str) -> Config {
        self.config("reader", READER_PASSWORD, query)
    }

    /// The number of rows in `t`, counted by the superuser.
    pub async fn rows_in_t(&self) -> i64 {
        self.client(SUPERUSER, SUPER_PASSWORD)
            .await
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .expect("counting t")
            .get(0)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = run(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-m")
                .arg("fast")
                .arg("-w")
                .arg("stop"),
            self.run_as,
        );
    }
}

/// An executor whose policy opens 127.0.0.1 only, with `limits`.
pub fn executor(limits: PgLimits) -> Postgres {
    let policy = Policy::new()
        .allow(["127.0.0.1/32".parse().expect("a range")])
        .expect("a valid policy");
    let guard = Guard::new(policy, Arc::new(StaticResolver::new()));
    Postgres::new(guard, TcpConnector::default(), limits)
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin() -> PathBuf {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir)) {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, dir)) => dir,
        None => panic!(
            "PostgreSQL's initdb and pg_ctl were not found on PATH or in /usr/lib/postgresql/*/bin: \
             install PostgreSQL (for example `apt-get install postgresql`) to run these tests"
        ),
    }
}

/// The user and group to run PostgreSQL as when the tests run as root.
fn run_as() -> Option<(u32, u32)> {
    let me = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1);
    if me != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() > 3 && fields[0] == "postgres")
        .unwrap_or_else(|| {
            panic!(
                "the tests run as root, which PostgreSQL refuses; they run it as the user \
                 `postgres`, which does not exist: install PostgreSQL's package (it creates the \
                 user) or run the tests as another user"
            )
        });
    let id = |s: &str| s.parse::<u32>().expect("a numeric id in /etc/passwd");
    Some((id(entry[2]), id(entry[3])))
}

/// Hands `path` to the user PostgreSQL runs as.
fn give(path: &Path, run_as: Option<(u32, u32)>) {
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

fn run(command: &mut Command, run_as: Option<(u32, u32)>) -> Output {
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
    }
    command
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// The template cluster for these binaries (by path and version), made
/// once per scratch directory. Made aside and renamed into place, so that test binaries
/// running at once never see half of one.
fn template(bin: &Path, run_as: Option<(u32, u32)>, tmp: &Path) -> PathBuf {
    let version = Command::new(bin.join("pg_ctl"))
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let name: String = format!("{}-{}", bin.display(), version.trim())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let template = tmp.join(format!("coform-pg-template{name}"));
    if template.join("PG_VERSION").is_file() {
        return template;
    }
    let work = tempfile::Builder::new()
        .prefix("coform-pg-initdb-")
        .tempdir_in(tmp)
        .expect("a temporary directory");
    give(work.path(), run_as);
    let pwfile = work.path().join("pw");
    fs::write(&pwfile, SUPER_PASSWORD).expect("writing the password file");
    give(&pwfile, run_as);
    let data = work.path().join("data");
    let out = run(
        Command::new(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .arg("-U")
            .arg(SUPERUSER)
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("--auth=scram-sha-256")
            .arg("--encoding=UTF8")
            .arg("--locale=C")
            .arg("--no-sync"),
        run_as,
    );
    assert!(
        out.status.success(),
        "initdb failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Another test binary may have won the race; its template is as good.
    if fs::rename(&data, &template).is_err() && !template.join("PG_VERSION").is_file() {
        panic!("could not move the template cluster into place");
    }
    template
}
