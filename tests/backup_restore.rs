//! `coform backup` and `coform restore`, on the real binary.
//!
//! A server runs on the embedded store with an account, a workspace, a
//! template and a data source whose secret an upstream on 127.0.0.1
//! receives. A backup is taken while a y-websocket client writes; the
//! backup is restored into a fresh data dir, and a server started on it
//! must have every edit acknowledged before the backup began, take the
//! old password and refresh token, and still open the data source's
//! secret. Bad backup files and bad targets are refused, changing nothing.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use coform_storage::embedded::EmbeddedStore;
use coform_storage::{DocStore, Durability};
use serde_json::{json, Value};
use support::upstream::Upstream;
use support::*;
use yrs::updates::decoder::Decode;
use yrs::{Transact, Update};

const CANARY: &str = "canary-backup-5b1e9c";
/// Flags of every server here: the embedded store whatever
/// `COFORM_TEST_STORE` says, and the test upstream reachable.
const SERVER_ARGS: &[&str] = &["--store", "embedded", "--data-source-allow", "127.0.0.1/32"];

/// Runs `coform ARGS` with no `COFORM_*` variable of the test's own
/// environment, bounded in time.
async fn coform(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_coform"));
    cmd.args(args).kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("COFORM_") {
            cmd.env_remove(name);
        }
    }
    let what = format!("coform {}", args.join(" "));
    within(TIMEOUT, &what, cmd.output())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Runs `coform ARGS`, which must succeed; answers its stdout.
#[track_caller]
fn succeeded(args: &[&str], out: &Output) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "coform {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout.into_owned()
}

/// `coform ARGS` must fail, saying `why` on stderr (and nothing on stdout).
async fn refused(args: &[&str], why: &str) {
    let out = coform(args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "coform {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(why),
        "coform {args:?}: expected `{why}` in the error, got: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "coform {args:?} panicked: {stderr}"
    );
    assert!(out.stdout.is_empty(), "coform {args:?} printed a result");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Every file under `dir` with its bytes and mode: a directory that must
/// not change.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::metadata(&p).unwrap();
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            out.insert(p, (meta.permissions().mode(), Vec::new()));
        } else {
            out.insert(
                p.clone(),
                (meta.permissions().mode(), std::fs::read(&p).unwrap()),
            );
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// REST calls to a server process.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(server: &ProcessServer) -> Api {
        Api {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: format!("http://{}", server.addr),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if !body.is_null() {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = within(TIMEOUT, path, req.send())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let text = within(TIMEOUT, path, resp.text()).await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
        status: u16,
    ) -> Value {
        let (got, answer) = self.call(method, path, token, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }
}

/// A server with one account, workspace, template and data source (a
/// bearer token sealed at rest).
struct World {
    up: Upstream,
    server: ProcessServer,
    api: Api,
    access: String,
    refresh: String,
    ws: String,
    template: String,
    source: String,
}

const EMAIL: &str = "ada@example.com";

async fn world() -> World {
    let up = Upstream::start().await;
    let server = ProcessServer::start_single(SERVER_ARGS).await;
    let api = Api::new(&server);
    let me = api
        .ok(
            "POST",
            "/api/auth/register",
            None,
            json!({"email": EMAIL, "password": PASSWORD, "name": "Ada"}),
            201,
        )
        .await;
    let access = me["accessToken"].as_str().unwrap().to_owned();
    let refresh = me["refreshToken"].as_str().unwrap().to_owned();
    let ws = id_of(
        &api.ok(
            "POST",
            "/api/workspaces",
            Some(&access),
            json!({"name": "Backups"}),
            201,
        )
        .await,
    );
    let template = id_of(
        &api.ok(
            "POST",
            "/api/templates",
            Some(&access),
            json!({"workspaceId": ws, "name": "Intake"}),
            201,
        )
        .await,
    );
    let source = id_of(
        &api.ok(
            "POST",
            "/api/data-sources",
            Some(&access),
            json!({"workspaceId": ws, "name": "Private", "type": "rest", "config": {
                "url": up.url("/echo/private"),
                "authentication": {"type": "bearer", "token": CANARY}}}),
            201,
        )
        .await,
    );
    let world = World {
        up,
        server,
        api,
        access,
        refresh,
        ws,
        template,
        source,
    };
    world.secret_opens(&world.api, &world.access).await;
    world
}

impl World {
    async fn doc_token(&self, api: &Api, access: &str, template: &str) -> String {
        let path = format!("/api/templates/{template}/session");
        api.ok("POST", &path, Some(access), Value::Null, 200).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The data source's call reaches the upstream with its secret.
    async fn secret_opens(&self, api: &Api, access: &str) {
        let before = self.up.hits("/echo/private");
        let path = format!("/api/data-sources/{}/execute", self.source);
        api.ok("POST", &path, Some(access), json!({"params": {}}), 200)
            .await;
        assert_eq!(self.up.hits("/echo/private"), before + 1);
        let sent = self.up.received().pop().unwrap();
        assert!(
            sent.headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == &format!("Bearer {CANARY}")),
            "the upstream did not receive the secret: {:?}",
            sent.headers
        );
    }

    fn key_spec(&self) -> String {
        std::fs::read_to_string(self.server.data_dir().join("secrets-key")).unwrap()
    }
}

/// Logs in on a restored server with the password and the refresh token
/// of before; answers a fresh access token.
async fn sign_in_again(api: &Api, refresh: &str) -> String {
    api.ok(
        "POST",
        "/api/auth/refresh",
        None,
        json!({"refreshToken": refresh}),
        200,
    )
    .await;
    let me = api
        .ok(
            "POST",
            "/api/auth/login",
            None,
            json!({"email": EMAIL, "password": PASSWORD}),
            200,
        )
        .await;
    me["accessToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_backup_taken_while_a_client_writes_restores_every_acknowledged_edit() {
    let w = world().await;
    let token = w.doc_token(&w.api, &w.access, &w.template).await;
    let addr = w.server.addr;

    // Ballast, so that the copy takes a while: 8 documents of 1 MiB of
    // text each.
    let chunk = "x".repeat(256 * 1024);
    let mut ballast = Vec::new();
    for n in 0..8 {
        let name = format!("Ballast {n}");
        let path = "/api/templates";
        let body = json!({"workspaceId": w.ws, "name": name});
        let id = id_of(&w.api.ok("POST", path, Some(&w.access), body, 201).await);
        let token = w.doc_token(&w.api, &w.access, &id).await;
        let client = WsClient::connect_token(addr, &id, &token, &name).await;
        for i in 0..4u32 {
            client
                .insert_text("body", i * chunk.len() as u32, &chunk)
                .await;
        }
        client.round_trip().await;
        assert_eq!(client.text("body").len(), 4 * chunk.len());
        ballast.push((id, client));
    }

    // The writer: one key at a time, acknowledged when another client has
    // it (the server relays an update only once it is stored).
    let writer = WsClient::connect_token(addr, &w.template, &token, "writer").await;
    let watcher = WsClient::connect_token(addr, &w.template, &token, "watcher").await;
    let acked = Arc::new(AtomicU64::new(0));
    let stop = StopFlag::default();
    let editing = tokio::spawn({
        let (acked, stop) = (acked.clone(), stop.clone());
        async move {
            let mut i = 0u64;
            while !stop.is_stopped() && i < 20_000 {
                let key = format!("k{i}");
                writer.set_key("meta", &key, "v").await;
                watcher.wait_key("meta", &key, "v").await;
                i += 1;
                acked.store(i, Ordering::SeqCst);
            }
            (writer, watcher)
        }
    });
    poll("the writer's first edits", TIMEOUT, || async {
        (acked.load(Ordering::SeqCst) >= 20).then_some(())
    })
    .await;

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("coform.backup");
    let before = acked.load(Ordering::SeqCst);
    let started = Instant::now();
    let args = [
        "backup",
        "--data-dir",
        path(w.server.data_dir()),
        "--out",
        path(&file),
        "--include-secrets-key",
    ];
    let report = succeeded(&args, &coform(&args).await);
    let took = started.elapsed();
    let after = acked.load(Ordering::SeqCst);
    stop.stop();
    let (writer, watcher) = within(TIMEOUT, "the writer to stop", editing)
        .await
        .unwrap();
    let written = acked.load(Ordering::SeqCst);
    eprintln!(
        "backup of {} bytes took {took:?}; edits acknowledged: {before} before it, {} during it",
        std::fs::metadata(&file).unwrap().len(),
        after - before
    );
    assert!(
        report.contains("the secrets key is in this backup"),
        "{report}"
    );
    assert!(
        after > before,
        "no edit was acknowledged while the backup ran ({took:?}): the test did not overlap"
    );
    assert_eq!(mode(&file), 0o600, "the backup is for its owner only");
    // The server kept serving: the writer's edits went on after it.
    assert!(written >= after);
    drop((writer, watcher));

    // Restore into a fresh data dir and start a server on it.
    let fresh = tempfile::tempdir().unwrap();
    let args = [
        "restore",
        "--data-dir",
        path(fresh.path()),
        "--from",
        path(&file),
    ];
    let report = succeeded(&args, &coform(&args).await);
    assert!(report.contains("secrets key: from the backup"), "{report}");
    let mut names: Vec<String> = std::fs::read_dir(fresh.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["coform.db", "coform.lock", "secrets-key"]);
    assert_eq!(mode(&fresh.path().join("secrets-key")), 0o600);
    assert_eq!(
        std::fs::read_to_string(fresh.path().join("secrets-key")).unwrap(),
        w.key_spec().trim()
    );
    let restored = ProcessServer::start_single_in(fresh, SERVER_ARGS).await;
    let api = Api::new(&restored);
    let access = sign_in_again(&api, &w.refresh).await;

    // Every acknowledged edit before the backup began is there, and what
    // is there is a prefix of the writer's edits: a consistent copy.
    let token = w.doc_token(&api, &access, &w.template).await;
    let reader = WsClient::connect_token(restored.addr, &w.template, &token, "reader").await;
    let keys = reader.map_keys("meta");
    let count = (0..)
        .take_while(|i| keys.contains(&format!("k{i}")))
        .count() as u64;
    assert!(
        count >= before,
        "the restored document has {count} of the {before} edits acknowledged before the backup"
    );
    assert!(count <= written, "edits that were never made");
    let probe_keys = keys
        .iter()
        .filter(|k| k.len() > 1 && k.starts_with('k') && k[1..].bytes().all(|b| b.is_ascii_digit()))
        .count() as u64;
    assert_eq!(probe_keys, count, "the restored edits have a gap: {keys:?}");
    api.ok(
        "GET",
        &format!("/api/templates/{}", w.template),
        Some(&access),
        Value::Null,
        200,
    )
    .await;

    // The data source's secret opens with the restored key.
    w.secret_opens(&api, &access).await;

    // The large documents are whole, read from the restored store itself.
    let mut restored = restored;
    restored.terminate().await;
    let store = EmbeddedStore::open(restored.data_dir(), Durability::Full).unwrap();
    for (id, _) in &ballast {
        let stored = store.load(id).await.unwrap();
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            let snapshot = stored.snapshot.iter().map(|s| &s.data);
            for update in snapshot.chain(stored.log.iter().map(|e| &e.data)) {
                txn.apply_update(Update::decode_v1(update).unwrap())
                    .unwrap();
            }
        }
        assert_eq!(text_string(&doc, "body").len(), 4 * chunk.len());
    }
    store.close().await;
}

#[tokio::test]
async fn the_secrets_key_stays_out_of_a_backup_unless_asked_for() {
    let w = world().await;
    let spec = w.key_spec();
    let key_b64 = spec.trim().split_once(':').unwrap().1.to_owned();
    let out = tempfile::tempdir().unwrap();
    let data = path(w.server.data_dir());

    let plain = out.path().join("plain.backup");
    let args = ["backup", "--data-dir", data, "--out", path(&plain)];
    let report = succeeded(&args, &coform(&args).await);
    assert!(report.contains("NOT in this backup"), "{report}");
    let bytes = std::fs::read(&plain).unwrap();
    assert!(
        !bytes
            .windows(key_b64.len())
            .any(|w| w == key_b64.as_bytes()),
        "the key is in a backup made without --include-secrets-key"
    );
    assert!(
        !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
        "the secret is in the backup in the clear"
    );
    let with_key = out.path().join("with-key.backup");
    let args = [
        "backup",
        "--data-dir",
        data,
        "--out",
        path(&with_key),
        "--include-secrets-key",
    ];
    succeeded(&args, &coform(&args).await);
    let bytes = std::fs::read(&with_key).unwrap();
    assert!(bytes
        .windows(key_b64.len())
        .any(|w| w == key_b64.as_bytes()));

    // Without the key the secrets would not open: refused, nothing made.
    let target = out.path().join("restored");
    let t = path(&target);
    refused(
        &["restore", "--data-dir", t, "--from", path(&plain)],
        "--secrets-key-file",
    )
    .await;
    assert!(!target.exists(), "a refused restore left {t} behind");
    // A key that is not theirs, refused too.
    let wrong = out.path().join("wrong-key");
    std::fs::write(&wrong, "k1:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=").unwrap();
    refused(
        &[
            "restore",
            "--data-dir",
            t,
            "--from",
            path(&plain),
            "--secrets-key-file",
            path(&wrong),
        ],
        "does not open",
    )
    .await;
    assert!(!target.exists());

    // With the data dir's key file: restored, key installed owner-only.
    let key_file = w.server.data_dir().join("secrets-key");
    let fresh = tempfile::tempdir().unwrap();
    let args = [
        "restore",
        "--data-dir",
        path(fresh.path()),
        "--from",
        path(&plain),
        "--secrets-key-file",
        path(&key_file),
    ];
    let report = succeeded(&args, &coform(&args).await);
    assert!(report.contains("secrets key: from"), "{report}");
    assert_eq!(mode(&fresh.path().join("secrets-key")), 0o600);
    assert_eq!(
        mode(fresh.path()),
        0o700,
        "the data dir is for its owner only"
    );
    let restored = ProcessServer::start_single_in(fresh, SERVER_ARGS).await;
    let api = Api::new(&restored);
    let access = sign_in_again(&api, &w.refresh).await;
    w.secret_opens(&api, &access).await;
}

#[tokio::test]
async fn bad_backups_and_bad_targets_are_refused_and_change_nothing() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.backup");
    let data = path(w.server.data_dir());
    let args = [
        "backup",
        "--data-dir",
        data,
        "--out",
        path(&good),
        "--include-secrets-key",
    ];
    succeeded(&args, &coform(&args).await);
    let bytes = std::fs::read(&good).unwrap();

    // A populated data dir to restore over, and one that must not appear.
    let populated = dir.path().join("populated");
    let args = [
        "restore",
        "--data-dir",
        path(&populated),
        "--from",
        path(&good),
    ];
    succeeded(&args, &coform(&args).await);
    let snapshot = tree(&populated);
    let absent = dir.path().join("absent");

    let write = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let mut wrong_version = bytes.clone();
    wrong_version[8..12].copy_from_slice(&99u32.to_be_bytes());
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"more");
    let cases: Vec<(PathBuf, &str)> = vec![
        (dir.path().join("missing.backup"), "cannot read"),
        (write("empty.backup", b""), "is not a coform backup"),
        (
            write("text.backup", b"hello, this is not a backup"),
            "is not a coform backup",
        ),
        (
            write("half.backup", &bytes[..bytes.len() / 2]),
            "is truncated",
        ),
        (
            write("short.backup", &bytes[..bytes.len() - 1]),
            "is truncated",
        ),
        (write("v99.backup", &wrong_version), "format version 99"),
        (write("flipped.backup", &flipped), "checksum does not match"),
        (write("longer.backup", &longer), "bytes follow its checksum"),
    ];
    for (file, why) in &cases {
        let f = path(file);
        refused(&["restore", "--data-dir", path(&absent), "--from", f], why).await;
        assert!(
            !absent.exists(),
            "restoring {f} left {} behind",
            absent.display()
        );
        refused(
            &[
                "restore",
                "--data-dir",
                path(&populated),
                "--from",
                f,
                "--force",
            ],
            why,
        )
        .await;
        assert!(
            tree(&populated) == snapshot,
            "restoring {f} changed the data dir"
        );
    }

    // A data dir that is not empty needs --force.
    refused(
        &[
            "restore",
            "--data-dir",
            path(&populated),
            "--from",
            path(&good),
        ],
        "is not empty",
    )
    .await;
    assert!(tree(&populated) == snapshot);
    // A running server's data dir, even with --force.
    let before = tree(w.server.data_dir());
    refused(
        &[
            "restore",
            "--data-dir",
            data,
            "--from",
            path(&good),
            "--force",
        ],
        "in use by another coform process",
    )
    .await;
    let (status, _) = http_get(w.server.addr, "/readyz").await;
    assert_eq!(status, 200, "the server stopped serving");
    let after = tree(w.server.data_dir());
    assert_eq!(
        before.get(&w.server.data_dir().join("secrets-key")),
        after.get(&w.server.data_dir().join("secrets-key"))
    );
    assert!(!after
        .keys()
        .any(|p| p.to_string_lossy().contains(".restore-")));
    // With --force and the server stopped, the restore replaces it.
    let args = [
        "restore",
        "--data-dir",
        path(&populated),
        "--from",
        path(&good),
        "--force",
    ];
    succeeded(&args, &coform(&args).await);

    // MongoDB stores have their own tools.
    let mongo = "mongodb://127.0.0.1:9/coform";
    refused(
        &[
            "backup",
            "--store",
            mongo,
            "--data-dir",
            data,
            "--out",
            path(&absent),
        ],
        "mongodump",
    )
    .await;
    refused(
        &[
            "restore",
            "--store",
            mongo,
            "--data-dir",
            path(&absent),
            "--from",
            path(&good),
        ],
        "mongorestore",
    )
    .await;
    assert!(!absent.exists());
    // A backup never overwrites unasked, and needs a database to copy.
    refused(
        &["backup", "--data-dir", data, "--out", path(&good)],
        "already exists",
    )
    .await;
    assert_eq!(std::fs::read(&good).unwrap(), bytes);
    let empty = tempfile::tempdir().unwrap();
    refused(
        &[
            "backup",
            "--data-dir",
            path(empty.path()),
            "--out",
            path(&absent),
        ],
        "no database",
    )
    .await;
    assert!(!absent.exists());
    refused(
        &[
            "backup",
            "--data-dir",
            data,
            "--out",
            path(&absent.join("x.backup")),
        ],
        "does not exist",
    )
    .await;
    assert!(!absent.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
