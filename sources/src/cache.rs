//! The answer cache: what a source answered, kept for its `caching.ttl`
//! so that a form opened by many people does not call the upstream once
//! per person.
//!
//! Keys come from [`cache_key`]: workspace, source, the version of the
//! source's configuration (an edit starts a fresh set of answers without
//! having to delete the old ones) and the request (its parameters, as the
//! caller digests them). [`AnswerCache::invalidate_prefix`] with
//! [`source_prefix`] drops every answer of one source, for when its
//! upstream data is known to have changed.
//!
//! Two implementations: [`MemoryCache`] for a single server, bounded in
//! entries and bytes; [`RedisCache`] for replicas sharing a Redis, where a
//! put by one is a hit for all and an invalidation by one holds for all.
//! A cache is an optimisation: a Redis that fails makes a miss, never a
//! failed call.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

/// Where answers are kept.
#[async_trait]
pub trait AnswerCache: Send + Sync {
    /// The answer stored under `key`, if there is one and it has not
    /// expired.
    async fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` under `key` for `ttl` (a zero `ttl` stores nothing).
    async fn put(&self, key: &str, value: &[u8], ttl: Duration);
    /// Drops every answer whose key starts with `prefix`. May drop more
    /// (never fewer): a cache that groups keys may drop the whole group.
    async fn invalidate_prefix(&self, prefix: &str);
}

/// What every key of the answer cache starts with.
pub const KEY_PREFIX: &str = "coform:dscache:";

/// An id as it stands in a key: `%` and `:` escaped, so that ids holding
/// a `:` cannot make two sources' keys (or prefixes) alike.
fn key_part(id: &str) -> String {
    id.replace('%', "%25").replace(':', "%3A")
}

/// The key of one answer: `coform:dscache:{workspace}:{source}:{version}:{request}`.
///
/// `request_key` stands last and may hold anything; callers should pass a
/// digest of the request rather than its parameters, which may be
/// personal data and would then sit in the cache's key space.
pub fn cache_key(
    workspace_id: &str,
    source_id: &str,
    config_version: u64,
    request_key: &str,
) -> String {
    format!(
        "{}{config_version}:{request_key}",
        source_prefix(workspace_id, source_id)
    )
}

/// The prefix of every answer of one source:
/// `coform:dscache:{workspace}:{source}:`.
pub fn source_prefix(workspace_id: &str, source_id: &str) -> String {
    format!(
        "{KEY_PREFIX}{}:{}:",
        key_part(workspace_id),
        key_part(source_id)
    )
}

// ---------------------------------------------------------------------
// In memory.

/// An in-process cache, bounded in entries and in bytes (keys and values
/// counted); when full, the entries stored longest ago go first. Expired
/// entries are dropped when read, or when their age makes them the
/// oldest.
pub struct MemoryCache {
    max_entries: usize,
    max_bytes: usize,
    /// Held only for map operations, never across an await.
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    /// Sorted, so that a prefix is a range.
    entries: BTreeMap<String, MemoryEntry>,
    /// Insertion order: sequence number → key. The first is the oldest.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    bytes: usize,
}

struct MemoryEntry {
    value: Vec<u8>,
    expires: Instant,
    seq: u64,
}

impl MemoryState {
    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.seq);
            self.bytes -= key.len() + entry.value.len();
        }
    }
}

impl MemoryCache {
    /// A cache of at most `max_entries` answers and `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> MemoryCache {
        MemoryCache {
            max_entries,
            max_bytes,
            state: Mutex::new(MemoryState::default()),
        }
    }

    /// How many entries are held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes held (keys and values).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock leaves consistent maps (every
        // update is completed before anything that can panic), so the
        // state can be used on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl AnswerCache for MemoryCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut state = self.lock();
        let entry = state.entries.get(key)?;
        if entry.expires > Instant::now() {
            return Some(entry.value.clone());
        }
        state.remove(key);
        None
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        let mut state = self.lock();
        state.remove(key);
        let size = key.len() + value.len();
        if ttl.is_zero() || size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let now = Instant::now();
        // A TTL past what an Instant can hold means "until evicted".
        let expires = now
            .checked_add(ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let seq = state.next_seq;
        state.next_seq += 1;
        state.order.insert(seq, key.to_owned());
        state.entries.insert(
            key.to_owned(),
            MemoryEntry {
                value: value.to_vec(),
                expires,
                seq,
            },
        );
        state.bytes += size;
        while state.entries.len() > self.max_entries || state.bytes > self.max_bytes {
            let Some(oldest) = state.order.first_key_value().map(|(_, key)| key.clone()) else {
                break;
            };
            state.remove(&oldest);
        }
    }

    async fn invalidate_prefix(&self, prefix: &str) {
        let mut state = self.lock();
        let doomed: Vec<String> = state
            .entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            state.remove(&key);
        }
    }
}

// ---------------------------------------------------------------------
// In Redis.

/// How many `:`-ended prefixes of a key carry a generation counter (the
/// empty prefix aside): enough for `coform:dscache:{ws}:{source}:{version}:`.
const SCOPE_DEPTH: usize = 5;

/// The generation counter of the empty prefix.
const GLOBAL_GENERATION: &str = "coform:dscache#gen";

/// A cache in Redis, shared by every replica that points at it.
///
/// # Invalidation by generations
///
/// Deleting every key under a prefix would need `SCAN` (or `KEYS`), slow
/// and not atomic with the puts racing it. Instead every key belongs to
/// scopes — the empty prefix and its first five prefixes that end in
/// `:` (`coform:`, `coform:dscache:`, `coform:dscache:{ws}:`,
/// `coform:dscache:{ws}:{source}:`, and the version's) — and each scope
/// has a counter in Redis, `"{scope}#gen"` (missing = 0). An answer is
/// stored under `"{key}#{g0}.{g1}..."`, the current counters of its
/// scopes. [`invalidate_prefix`](AnswerCache::invalidate_prefix) is one
/// `INCR` of the counter of the longest scope the prefix starts with:
/// from then on every replica reads and writes that scope's keys under
/// the new generation, and the old entries, never read again, expire on
/// their TTL. A prefix that does not end at a `:` is rounded down to the
/// scope that holds it, which may drop more answers than asked, never
/// fewer. A put racing an invalidation lands under the old generation:
/// invalidation wins.
///
/// The counters have no TTL; there is one per scope ever invalidated. If
/// Redis evicts a counter (an `allkeys-*` eviction policy), entries of an
/// older generation may be read again until their TTL ends.
///
/// # Failures
///
/// Every Redis error (down, timeout, refused) is logged at `warn` and
/// taken as a miss (or a put not made); commands time out after a
/// second. The connection is re-established by the [`ConnectionManager`].
#[derive(Clone)]
pub struct RedisCache {
    /// Cheap to clone; one multiplexed connection shared by every call.
    conn: ConnectionManager,
}

impl RedisCache {
    /// A cache at the Redis that `url` (`redis://host:port/db`) names.
    /// Connects lazily: a Redis that is down makes misses until it is
    /// back, and fails nothing here. Fails only for a malformed URL.
    ///
    /// Must be called within a Tokio runtime.
    pub fn new(url: &str) -> Result<RedisCache, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisCache { conn })
    }

    /// A cache on an existing connection manager.
    pub fn with_manager(conn: ConnectionManager) -> RedisCache {
        RedisCache { conn }
    }

    /// The real Redis key of `key` under the current generations.
    async fn versioned(&self, key: &str) -> redis::RedisResult<String> {
        let counters: Vec<String> = scopes(key).into_iter().map(generation_key).collect();
        let generations: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&counters)
            .query_async(&mut self.conn.clone())
            .await?;
        let mut real = String::with_capacity(key.len() + 2 * generations.len() + 1);
        real.push_str(key);
        real.push('#');
        for (i, generation) in generations.iter().enumerate() {
            if i > 0 {
                real.push('.');
            }
            real.push_str(&generation.unwrap_or(0).to_string());
        }
        Ok(real)
    }
}

/// The scopes of `key`: the empty prefix, then its first [`SCOPE_DEPTH`]
/// prefixes ending in `:`.
fn scopes(key: &str) -> Vec<&str> {
    let mut scopes = vec![""];
    scopes.extend(
        key.match_indices(':')
            .take(SCOPE_DEPTH)
            .map(|(i, _)| &key[..=i]),
    );
    scopes
}

/// The counter of a scope. Counters end in `#gen` and answers in
/// `#{digits and dots}`, and neither kind of suffix holds a `#`, so no
/// counter is ever an answer's key and no two answers share one.
fn generation_key(scope: &str) -> String {
    if scope.is_empty() {
        GLOBAL_GENERATION.to_owned()
    } else {
        format!("{scope}#gen")
    }
}

#[async_trait]
impl AnswerCache for RedisCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let result: redis::RedisResult<Option<Vec<u8>>> = async {
            let real = self.versioned(key).await?;
            redis::cmd("GET")
                .arg(real)
                .query_async(&mut self.conn.clone())
                .await
        }
        .await;
        result.unwrap_or_else(|error| {
            tracing::warn!(%error, "answer cache: read failed, taken as a miss");
            None
        })
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let result: redis::RedisResult<()> = async {
            let real = self.versioned(key).await?;
            redis::cmd("SET")
                .arg(real)
                .arg(value)
                .arg("PX")
                .arg(millis)
                .query_async(&mut self.conn.clone())
                .await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "answer cache: write failed, answer not cached");
        }
    }

    async fn invalidate_prefix(&self, prefix: &str) {
        let scope = scopes(prefix).pop().unwrap_or("");
        let result: redis::RedisResult<u64> = redis::cmd("INCR")
            .arg(generation_key(scope))
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(error) = result {
            tracing::warn!(
                %error,
                "answer cache: invalidation failed; stale answers may be served until they expire"
            );
        }
    }
}

#[cfg(test)]
mod tests;
