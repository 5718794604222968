//! [`RedisLimits`]: limit counters in Redis, shared by every replica.
//!
//! Every key starts with [`PREFIX`], then a letter for its kind, then the
//! limiter's key (whose e-mail addresses are already hashed):
//!
//! - `coform:rl:w:{key}`: a fixed window, an integer counter whose TTL is
//!   what is left of the window (set by the event that opened it);
//! - `coform:rl:f:{key}`: the failures of a backoff, forgotten
//!   `forget_after` after the last one (the TTL is renewed by each);
//! - `coform:rl:b:{key}`: present while the key must wait; its TTL is the
//!   wait left.
//!
//! Each step that reads and writes is one Lua script, so concurrent
//! attempts on several replicas cannot both take the last place in a
//! window. Time is Redis's own (TTLs), never a replica's clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Backoff, Limit, LimitStore, Unavailable, Verdict};

/// What every rate-limit key in Redis starts with.
pub const PREFIX: &str = "coform:rl:";

/// How long one call may wait for Redis before the process counts it
/// itself: logins must not hang on a Redis that does not answer.
const TIMEOUT: Duration = Duration::from_secs(1);

/// After a failure, calls skip Redis this long: during an outage a login
/// (several calls) then pays for at most one failed try, not one each.
const COOL_DOWN: Duration = Duration::from_secs(1);

/// Counts one event unless the window is full. KEYS[1] the window;
/// ARGV[1] the limit, ARGV[2] the window in ms. Returns 0 when counted,
/// else the ms left in the window.
const HIT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return left end
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
  return 0
end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// Reads a window. KEYS[1] the window; ARGV[1] the limit. Returns 0 when
/// there is room, else the ms left in the window.
const CHECK: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then return left end
end
return 0
";

/// Counts one event, over the limit or not. KEYS[1] the window; ARGV[1]
/// the window in ms.
const COUNT: &str = r"
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
";

/// Records a failure and sets the wait it imposes, as [`Backoff::wait`]
/// computes it. KEYS[1] the failures, KEYS[2] the wait; ARGV[1] the free
/// failures, ARGV[2] the first wait in ms, ARGV[3] the longest wait in ms,
/// ARGV[4] how long failures are remembered in ms. Returns the wait in ms.
const FAILURE: &str = r"
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local free, base, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = 0
if failures >= free then
  wait = base
  for _ = 1, failures - free do
    if wait == 0 or wait >= max then break end
    wait = wait * 2
  end
  if wait > max then wait = max end
end
if wait > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', wait)
else
  redis.call('DEL', KEYS[2])
end
return wait
";

/// Counters in the Redis that `--redis` names.
pub struct RedisLimits {
    /// Cheap to clone; one multiplexed connection shared by every call,
    /// reconnected after a failure.
    conn: ConnectionManager,
    /// Until when calls go straight to the fallback, after a failure.
    skip_until: parking_lot::Mutex<Option<Instant>>,
}

impl RedisLimits {
    /// Counters at the Redis that `url` names. Connects lazily: a Redis
    /// that is down at start only makes calls fall back to the process.
    /// Fails only for a malformed URL. Must be called within a Tokio
    /// runtime.
    pub fn new(url: &str) -> Result<RedisLimits, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisLimits {
            conn,
            skip_until: parking_lot::Mutex::new(None),
        })
    }

    /// Runs `cmd`, bounded by [`TIMEOUT`] whatever the connection does.
    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, Unavailable> {
        if let Some(until) = *self.skip_until.lock() {
            if Instant::now() < until {
                return Err(Unavailable("failed less than a second ago".into()));
            }
        }
        let mut conn = self.conn.clone();
        let failed = match tokio::time::timeout(TIMEOUT, cmd.query_async(&mut conn)).await {
            Ok(Ok(v)) => {
                *self.skip_until.lock() = None;
                return Ok(v);
            }
            Ok(Err(e)) => Unavailable(e.to_string()),
            Err(_) => Unavailable(format!("no answer within {TIMEOUT:?}")),
        };
        *self.skip_until.lock() = Some(Instant::now() + COOL_DOWN);
        Err(failed)
    }

    /// Runs a script on `keys` with `args`.
    async fn eval(&self, script: &str, keys: &[String], args: &[u64]) -> Result<u64, Unavailable> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len()).arg(keys).arg(args);
        let answer: i64 = self.run(cmd).await?;
        Ok(answer.max(0) as u64)
    }
}

fn window_key(key: &str) -> String {
    format!("{PREFIX}w:{key}")
}

fn failures_key(key: &str) -> String {
    format!("{PREFIX}f:{key}")
}

fn wait_key(key: &str) -> String {
    format!("{PREFIX}b:{key}")
}

/// Whole milliseconds, at least 1: Redis refuses a zero expiry.
fn ms(d: Duration) -> u64 {
    millis(d).max(1)
}

/// Whole milliseconds (a wait of zero stays zero).
fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// `Ok` for 0, else `Err` of that many milliseconds.
fn verdict(left_ms: u64) -> Verdict {
    match left_ms {
        0 => Ok(()),
        left => Err(Duration::from_millis(left)),
    }
}

#[async_trait]
impl LimitStore for RedisLimits {
    async fn hit(&self, key: &str, limit: Limit) -> Result<Verdict, Unavailable> {
        let left = self
            .eval(
                HIT,
                &[window_key(key)],
                &[limit.max.into(), ms(limit.window)],
            )
            .await?;
        Ok(verdict(left))
    }

    async fn check(&self, key: &str, limit: Limit) -> Result<Verdict, Unavailable> {
        let left = self
            .eval(CHECK, &[window_key(key)], &[limit.max.into()])
            .await?;
        Ok(verdict(left))
    }

    async fn count(&self, key: &str, limit: Limit) -> Result<(), Unavailable> {
        self.eval(COUNT, &[window_key(key)], &[ms(limit.window)])
            .await?;
        Ok(())
    }

    async fn backoff_wait(&self, key: &str) -> Result<Verdict, Unavailable> {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(wait_key(key));
        // -2: no wait; -1 (no TTL) cannot happen, and would mean none.
        let left: i64 = self.run(cmd).await?;
        Ok(verdict(left.max(0) as u64))
    }

    async fn backoff_failure(&self, key: &str, policy: Backoff) -> Result<Duration, Unavailable> {
        let wait = self
            .eval(
                FAILURE,
                &[failures_key(key), wait_key(key)],
                &[
                    policy.free_failures.into(),
                    millis(policy.base),
                    millis(policy.max),
                    ms(policy.forget_after),
                ],
            )
            .await?;
        Ok(Duration::from_millis(wait))
    }

    async fn backoff_clear(&self, key: &str) -> Result<(), Unavailable> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(failures_key(key)).arg(wait_key(key));
        let _: i64 = self.run(cmd).await?;
        Ok(())
    }
}

/// Milliseconds since the epoch of the last warning, so that an outage
/// under a flood of logins logs once per [`WARN_EVERY`], not per call.
static LAST_WARNING: AtomicU64 = AtomicU64::new(0);
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Logs that a call was counted in process because the shared store did
/// not answer: at warn at most once per [`WARN_EVERY`], at debug between.
pub(super) fn warn_unavailable(op: &'static str, error: &Unavailable) {
    let now = crate::auth::now_ms().max(0) as u64;
    let last = LAST_WARNING.load(Ordering::Relaxed);
    let due = now.saturating_sub(last) >= ms(WARN_EVERY);
    if due
        && LAST_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(op, %error, "rate limits: Redis did not answer; counting in this process");
    } else {
        tracing::debug!(op, %error, "rate limits: Redis did not answer; counting in this process");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_kinds_never_share_one() {
        let keys = [window_key("k"), failures_key("k"), wait_key("k")];
        for key in &keys {
            assert!(key.starts_with("coform:rl:"), "{key}");
        }
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
        assert_ne!(keys[0], keys[2]);
    }

    #[test]
    fn expiries_are_never_zero() {
        assert_eq!(ms(Duration::ZERO), 1);
        assert_eq!(ms(Duration::from_micros(1500)), 1);
        assert_eq!(ms(Duration::from_secs(2)), 2000);
    }
}
