//! [`InProcess`]: the counters of one process, in two maps.
//!
//! Windows and backoffs are measured on this process's monotonic clock;
//! stale entries are swept as the maps grow, so a flood of distinct keys
//! costs bounded memory.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;

use super::{Backoff, Limit, LimitStore, Unavailable, Verdict};

/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 100_000;

/// Fixed windows and backoffs per key; stale entries are swept as the maps
/// grow.
#[derive(Default)]
pub struct InProcess {
    windows: DashMap<String, (Instant, u32)>,
    backoffs: DashMap<String, BackoffState>,
}

/// Failures of one key and until when it must wait.
#[derive(Clone, Copy, Debug)]
struct BackoffState {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
}

impl InProcess {
    /// Counts one event for `key`. `Err(retry_after)` when over the limit
    /// (the event is not counted then).
    pub fn hit(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        self.hit_at(key, limit, Instant::now())
    }

    fn hit_at(&self, key: &str, limit: Limit, now: Instant) -> Result<(), Duration> {
        self.sweep_windows(limit, now);
        let mut entry = self.windows.entry(key.to_owned()).or_insert((now, 0));
        let (start, count) = entry.value_mut();
        if now.duration_since(*start) >= limit.window {
            *start = now;
            *count = 0;
        }
        if *count >= limit.max {
            return Err(limit.window.saturating_sub(now.duration_since(*start)));
        }
        *count += 1;
        Ok(())
    }

    /// `Err(retry_after)` if `key` has used up `limit` in its current
    /// window; counts nothing.
    pub fn check(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        self.check_at(key, limit, Instant::now())
    }

    fn check_at(&self, key: &str, limit: Limit, now: Instant) -> Result<(), Duration> {
        match self.windows.get(key) {
            Some(e) if now.duration_since(e.0) < limit.window && e.1 >= limit.max => {
                Err(limit.window.saturating_sub(now.duration_since(e.0)))
            }
            _ => Ok(()),
        }
    }

    /// Counts one event for `key`, over the limit or not.
    pub fn count(&self, key: &str, limit: Limit) {
        self.count_at(key, limit, Instant::now())
    }

    fn count_at(&self, key: &str, limit: Limit, now: Instant) {
        self.sweep_windows(limit, now);
        let mut entry = self.windows.entry(key.to_owned()).or_insert((now, 0));
        let (start, count) = entry.value_mut();
        if now.duration_since(*start) >= limit.window {
            *start = now;
            *count = 0;
        }
        *count = count.saturating_add(1);
    }

    /// Forgets `key` (its window and its backoff).
    pub fn reset(&self, key: &str) {
        self.windows.remove(key);
        self.backoffs.remove(key);
    }

    /// Forgets the failures of `key`: its backoff starts over.
    pub fn backoff_clear(&self, key: &str) {
        self.backoffs.remove(key);
    }

    /// `Err(wait)` while `key` is backed off.
    pub fn backoff_wait(&self, key: &str) -> Result<(), Duration> {
        self.backoff_wait_at(key, Instant::now())
    }

    fn backoff_wait_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.backoffs.get(key) {
            Some(s) if s.blocked_until > now => Err(s.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Records a failure of `key`; returns the wait it now imposes (zero
    /// while failures are still free).
    pub fn backoff_failure(&self, key: &str, policy: Backoff) -> Duration {
        self.backoff_failure_at(key, policy, Instant::now())
    }

    fn backoff_failure_at(&self, key: &str, policy: Backoff, now: Instant) -> Duration {
        self.sweep_backoffs(policy, now);
        let mut entry = self.backoffs.entry(key.to_owned()).or_insert(BackoffState {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        let s = entry.value_mut();
        if now.duration_since(s.last_failure) >= policy.forget_after {
            s.failures = 0;
        }
        s.failures = s.failures.saturating_add(1);
        s.last_failure = now;
        let wait = policy.wait(s.failures);
        s.blocked_until = now + wait;
        wait
    }

    fn sweep_windows(&self, limit: Limit, now: Instant) {
        if self.windows.len() > SWEEP_AT {
            self.windows
                .retain(|_, (start, _)| now.duration_since(*start) < limit.window);
        }
    }

    /// Drops forgotten backoffs; if the map is still too big (failures
    /// sprayed over many keys), also those that impose no wait yet: that
    /// only gives those keys their free failures again.
    fn sweep_backoffs(&self, policy: Backoff, now: Instant) {
        if self.backoffs.len() > SWEEP_AT {
            self.backoffs
                .retain(|_, s| now.duration_since(s.last_failure) < policy.forget_after);
        }
        if self.backoffs.len() > SWEEP_AT {
            self.backoffs.retain(|_, s| s.blocked_until > now);
        }
    }
}

/// Never unavailable: the fallback of every shared store.
#[async_trait]
impl LimitStore for InProcess {
    async fn hit(&self, key: &str, limit: Limit) -> Result<Verdict, Unavailable> {
        Ok(InProcess::hit(self, key, limit))
    }

    async fn check(&self, key: &str, limit: Limit) -> Result<Verdict, Unavailable> {
        Ok(InProcess::check(self, key, limit))
    }

    async fn count(&self, key: &str, limit: Limit) -> Result<(), Unavailable> {
        InProcess::count(self, key, limit);
        Ok(())
    }

    async fn backoff_wait(&self, key: &str) -> Result<Verdict, Unavailable> {
        Ok(InProcess::backoff_wait(self, key))
    }

    async fn backoff_failure(&self, key: &str, policy: Backoff) -> Result<Duration, Unavailable> {
        Ok(InProcess::backoff_failure(self, key, policy))
    }

    async fn backoff_clear(&self, key: &str) -> Result<(), Unavailable> {
        InProcess::backoff_clear(self, key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        free_failures: 5,
        base: Duration::from_secs(1),
        max: Duration::from_secs(15 * 60),
        forget_after: Duration::from_secs(24 * 3600),
    };

    const TWO_PER_MINUTE: Limit = Limit {
        max: 2,
        window: Duration::from_secs(60),
    };

    #[test]
    fn limits_per_key() {
        let rl = InProcess::default();
        let limit = TWO_PER_MINUTE;
        assert!(rl.hit("a", limit).is_ok());
        assert!(rl.hit("a", limit).is_ok());
        let retry = rl.hit("a", limit).unwrap_err();
        assert!(retry > Duration::from_secs(50));
        assert!(rl.hit("b", limit).is_ok());
        rl.reset("a");
        assert!(rl.hit("a", limit).is_ok());
    }

    #[test]
    fn check_reads_and_count_counts_past_the_limit() {
        let rl = InProcess::default();
        let limit = TWO_PER_MINUTE;
        let t0 = Instant::now();
        assert!(rl.check_at("a", limit, t0).is_ok());
        rl.count_at("a", limit, t0);
        assert!(
            rl.check_at("a", limit, t0).is_ok(),
            "checking counts nothing"
        );
        rl.count_at("a", limit, t0);
        rl.count_at("a", limit, t0);
        let wait = rl
            .check_at("a", limit, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // A new window starts afresh.
        assert!(rl
            .check_at("a", limit, t0 + Duration::from_secs(60))
            .is_ok());
    }

    #[test]
    fn a_backed_off_key_waits_and_others_do_not() {
        let rl = InProcess::default();
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(
                rl.backoff_failure_at("a", POLICY, t0),
                Duration::ZERO,
                "{i}"
            );
            assert!(rl.backoff_wait_at("a", t0).is_ok());
        }
        assert_eq!(
            rl.backoff_failure_at("a", POLICY, t0),
            Duration::from_secs(1)
        );
        assert_eq!(
            rl.backoff_wait_at("a", t0),
            Err(Duration::from_secs(1)),
            "the fifth failure imposes the first wait"
        );
        assert!(rl.backoff_wait_at("b", t0).is_ok());
        let t1 = t0 + Duration::from_secs(1);
        assert!(rl.backoff_wait_at("a", t1).is_ok(), "the wait ends");
        assert_eq!(
            rl.backoff_failure_at("a", POLICY, t1),
            Duration::from_secs(2)
        );
        assert_eq!(rl.backoff_wait_at("a", t1), Err(Duration::from_secs(2)));
        // A day without failures: forgotten.
        let later = t1 + POLICY.forget_after;
        assert_eq!(rl.backoff_failure_at("a", POLICY, later), Duration::ZERO);
    }
}
