//! Tests of the answer caches: expiry (on Tokio's paused clock), bounds
//! and invalidation in memory; sharing, invalidation across replicas,
//! TTLs and failure as a miss against a real `redis-server` each test
//! starts on its own port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use super::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn keys_name_workspace_source_version_and_request() {
    assert_eq!(cache_key("w", "s", 3, "r:1"), "coform:dscache:w:s:3:r:1");
    assert!(cache_key("w", "s", 3, "r").starts_with(&source_prefix("w", "s")));
    // Ids holding `:` cannot make two sources alike.
    assert_ne!(source_prefix("a:b", "c"), source_prefix("a", "b:c"));
    assert!(!cache_key("a", "b:c", 1, "r").starts_with(&source_prefix("a", "b")));
}

// ---------------------------------------------------------------------
// MemoryCache.

#[tokio::test(start_paused = true)]
async fn memory_answers_expire_after_their_ttl() {
    let cache = MemoryCache::new(100, 1 << 20);
    cache.put("k", b"answer", MINUTE).await;
    cache.put("long", b"kept", 2 * MINUTE).await;
    assert_eq!(cache.get("k").await.as_deref(), Some(&b"answer"[..]));
    tokio::time::advance(MINUTE - Duration::from_millis(1)).await;
    assert!(cache.get("k").await.is_some());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(cache.get("k").await, None);
    assert_eq!(cache.len(), 1, "the expired entry was dropped when read");
    assert!(cache.get("long").await.is_some());
    // A put replaces, with its own TTL.
    cache.put("long", b"new", Duration::from_secs(1)).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cache.get("long").await, None);
    cache.put("zero", b"x", Duration::ZERO).await;
    assert_eq!(cache.get("zero").await, None);
}

#[tokio::test]
async fn memory_is_bounded_in_entries_oldest_first() {
    let cache = MemoryCache::new(3, 1 << 20);
    for key in ["a", "b", "c", "d"] {
        cache.put(key, key.as_bytes(), MINUTE).await;
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get("a").await, None);
    for key in ["b", "c", "d"] {
        assert_eq!(cache.get(key).await.as_deref(), Some(key.as_bytes()));
    }
    // Replacing "b" makes it the newest: "c" goes next.
    cache.put("b", b"b2", MINUTE).await;
    cache.put("e", b"e", MINUTE).await;
    assert_eq!(cache.get("c").await, None);
    assert_eq!(cache.get("b").await.as_deref(), Some(&b"b2"[..]));
    assert!(cache.get("d").await.is_some() && cache.get("e").await.is_some());
}

#[tokio::test]
async fn memory_is_bounded_in_bytes() {
    // Keys count: each entry below is 1 + 10 = 11 bytes.
    let cache = MemoryCache::new(100, 30);
    for key in ["a", "b", "c"] {
        cache.put(key, &[0u8; 10], MINUTE).await;
    }
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.bytes(), 22);
    assert_eq!(cache.get("a").await, None);
    // One answer larger than the whole cache is not kept, and evicts nothing.
    cache.put("big", &[0u8; 40], MINUTE).await;
    assert_eq!(cache.get("big").await, None);
    assert_eq!(cache.len(), 2);
    // A bigger answer evicts as many old ones as it takes.
    cache.put("z", &[0u8; 25], MINUTE).await;
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.bytes(), 26);
    assert!(cache.get("z").await.is_some());
}

#[tokio::test]
async fn memory_invalidation_drops_exactly_the_prefix() {
    let cache = MemoryCache::new(100, 1 << 20);
    let keys = [
        cache_key("w", "s1", 1, "a"),
        cache_key("w", "s1", 2, "b"),
        cache_key("w", "s10", 1, "a"),
        cache_key("w", "s2", 1, "a"),
        cache_key("w2", "s1", 1, "a"),
    ];
    for key in &keys {
        cache.put(key, b"v", MINUTE).await;
    }
    cache.invalidate_prefix(&source_prefix("w", "s1")).await;
    assert_eq!(cache.get(&keys[0]).await, None);
    assert_eq!(cache.get(&keys[1]).await, None);
    for key in &keys[2..] {
        assert!(cache.get(key).await.is_some(), "{key} was dropped");
    }
    assert_eq!(cache.len(), 3);
    cache.invalidate_prefix("").await;
    assert!(cache.is_empty());
    assert_eq!(cache.bytes(), 0);
}

// ---------------------------------------------------------------------
// RedisCache, against a real server.

/// A `redis-server` of the test's own, on a free loopback port, without
/// persistence, in a temporary directory; killed when dropped.
struct RedisServer {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("pick a free port")
            .port();
        RedisServer::start_on(port)
    }

    fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
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
        let mut server = RedisServer {
            port,
            child,
            _dir: dir,
        };
        if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
            server.stop();
            panic!("redis-server did not get ready on port {port}");
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A plain connection, to look at what the cache stored.
async fn inspect(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn replicas_share_answers_and_invalidations() {
    let server = RedisServer::start();
    let one = RedisCache::new(&server.url()).unwrap();
    let two = RedisCache::new(&server.url()).unwrap();
    let s1 = cache_key("w", "s1", 4, "req");
    let s1_other = cache_key("w", "s1", 4, "other");
    let s10 = cache_key("w", "s10", 4, "req");
    let s2 = cache_key("w", "s2", 4, "req");

    assert_eq!(two.get(&s1).await, None);
    one.put(&s1, b"answer one", MINUTE).await;
    one.put(&s1_other, b"other", MINUTE).await;
    two.put(&s10, b"s10", MINUTE).await;
    two.put(&s2, b"s2", MINUTE).await;
    assert_eq!(two.get(&s1).await.as_deref(), Some(&b"answer one"[..]));
    assert_eq!(one.get(&s2).await.as_deref(), Some(&b"s2"[..]));

    // One replica invalidates a source; both stop seeing its answers, and
    // only its answers.
    two.invalidate_prefix(&source_prefix("w", "s1")).await;
    for cache in [&one, &two] {
        assert_eq!(cache.get(&s1).await, None);
        assert_eq!(cache.get(&s1_other).await, None);
        assert_eq!(cache.get(&s10).await.as_deref(), Some(&b"s10"[..]));
        assert_eq!(cache.get(&s2).await.as_deref(), Some(&b"s2"[..]));
    }
    // New answers of the source are cached again, for both.
    one.put(&s1, b"answer two", MINUTE).await;
    assert_eq!(two.get(&s1).await.as_deref(), Some(&b"answer two"[..]));

    // A whole workspace at once.
    one.invalidate_prefix("coform:dscache:w:").await;
    for key in [&s1, &s10, &s2] {
        assert_eq!(two.get(key).await, None, "{key}");
    }
}

#[tokio::test]
async fn a_prefix_between_colons_drops_at_least_its_keys() {
    let server = RedisServer::start();
    let cache = RedisCache::new(&server.url()).unwrap();
    let s1 = cache_key("w", "s1", 1, "r");
    let s10 = cache_key("w", "s10", 1, "r");
    let other = cache_key("x", "s1", 1, "r");
    for key in [&s1, &s10, &other] {
        cache.put(key, b"v", MINUTE).await;
    }
    // "…:w:s1" is not at a `:`: rounded down to the workspace.
    cache.invalidate_prefix("coform:dscache:w:s1").await;
    assert_eq!(cache.get(&s1).await, None);
    assert_eq!(cache.get(&s10).await, None);
    assert!(cache.get(&other).await.is_some());
}

#[tokio::test]
async fn redis_answers_carry_their_ttl_and_invalidation_is_one_counter() {
    let server = RedisServer::start();
    let cache = RedisCache::new(&server.url()).unwrap();
    let mut conn = inspect(&server).await;
    let key = cache_key("w", "s", 1, "r");
    cache.put(&key, b"v", Duration::from_secs(30)).await;
    let stored: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, [format!("{key}#0.0.0.0.0.0")]);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&stored[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=30_000).contains(&ttl), "PTTL {ttl}");

    cache.invalidate_prefix(&source_prefix("w", "s")).await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "coform:dscache:w:s:#gen".to_owned(),
            format!("{key}#0.0.0.0.0.0")
        ],
        "an invalidation deletes nothing and writes one counter"
    );
    cache.put(&key, b"v2", MINUTE).await;
    assert!(redis::cmd("EXISTS")
        .arg(format!("{key}#0.0.0.0.1.0"))
        .query_async::<bool>(&mut conn)
        .await
        .unwrap());
    assert_eq!(cache.get(&key).await.as_deref(), Some(&b"v2"[..]));
}

#[tokio::test]
async fn a_redis_that_is_down_makes_misses_and_recovers() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("pick a free port")
        .port();
    let cache = RedisCache::new(&format!("redis://127.0.0.1:{port}")).unwrap();
    let key = cache_key("w", "s", 1, "r");
    // Nothing listens: every call returns, as a miss.
    cache.put(&key, b"v", MINUTE).await;
    assert_eq!(cache.get(&key).await, None);
    cache.invalidate_prefix(&source_prefix("w", "s")).await;

    // Once Redis is there, the cache works again (the manager reconnects
    // on its own; a call may still fail while it does).
    let _server = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        cache.put(&key, b"v", MINUTE).await;
        if cache.get(&key).await.as_deref() == Some(&b"v"[..]) {
            break;
        }
        assert!(Instant::now() < deadline, "the cache did not reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
