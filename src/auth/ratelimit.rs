//! Rate limits and login backoff, keyed by strings (`"register:ip:1.2.3.4"`).
//!
//! In memory: each replica limits on its own. Every public method is one
//! atomic step on one key — count in a window and check it, read a window,
//! read a backoff, record a failure, forget a key — and takes no clock or
//! in-process type from its caller, so a store shared by the replicas
//! (Redis: `INCR` + `PEXPIRE` for windows, a short script for a backoff)
//! can take this one's place without changing the handlers.
//!
//! # Logins
//!
//! [`RateLimiter::login_check`] and friends keep three counters per attempt,
//! all keyed by the e-mail string as typed (lower-cased), whether or not an
//! account has it — so the answers never tell which addresses have
//! accounts:
//!
//! 1. per source (client IP), any address: a fixed window;
//! 2. per source *and* address: an exponential backoff. After
//!    `free_failures` failed attempts that source must wait `base`, then
//!    twice as long after each further failure, up to `max`; a successful
//!    login resets it. Another source (the owner on their own network) is
//!    not affected, so nobody can lock an owner out from one place;
//! 3. per address, all sources together: a loose window on failures, the
//!    last guard against guessing spread over many sources. The trade-off:
//!    an attacker with enough sources can still make logins to one address
//!    wait until the window ends (sessions already open are untouched); a
//!    lower budget stops distributed guessing sooner but is easier to hit.

use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 100_000;

/// Fixed windows and backoffs per key; stale entries are swept as the maps
/// grow.
#[derive(Default)]
pub struct RateLimiter {
    windows: DashMap<String, (Instant, u32)>,
    backoffs: DashMap<String, BackoffState>,
}

/// A limit: at most `max` events per `window`.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    /// At most `max` per hour.
    pub const fn per_hour(max: u32) -> Limit {
        Limit {
            max,
            window: Duration::from_secs(3600),
        }
    }
}

/// Exponential backoff after repeated failures of one key.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Failures allowed before the first wait.
    pub free_failures: u32,
    /// The first wait; each further failure doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Failures are forgotten this long after the last one.
    pub forget_after: Duration,
}

impl Backoff {
    /// The wait imposed after `failures` failures.
    fn wait(&self, failures: u32) -> Duration {
        let Some(extra) = failures.checked_sub(self.free_failures) else {
            return Duration::ZERO;
        };
        if failures == 0 {
            return Duration::ZERO;
        }
        self.base
            .checked_mul(1u32.checked_shl(extra.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// Failures of one key and until when it must wait.
#[derive(Clone, Copy, Debug)]
struct BackoffState {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
}

/// How logins are throttled (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Attempts from one source, any address.
    pub per_source: Limit,
    /// Backoff of one source at one address.
    pub backoff: Backoff,
    /// Failed attempts at one address from all sources together.
    pub per_address_failures: Limit,
}

impl RateLimiter {
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

    // ---- logins

    /// Whether a login to `email` from `source` may be tried now;
    /// `Err(retry_after)` if not. Counts the attempt against the source.
    /// The answer depends on the e-mail string only, never on whether an
    /// account has it.
    pub fn login_check(
        &self,
        limits: &LoginLimits,
        email: &str,
        source: &str,
    ) -> Result<(), Duration> {
        self.hit(&format!("login:src:{source}"), limits.per_source)?;
        self.backoff_wait(&pair_key(email, source))?;
        self.check(&address_key(email), limits.per_address_failures)
    }

    /// Records a failed login (wrong password, or no such account).
    pub fn login_failed(&self, limits: &LoginLimits, email: &str, source: &str) {
        self.backoff_failure(&pair_key(email, source), limits.backoff);
        self.count(&address_key(email), limits.per_address_failures);
    }

    /// Records a successful login: the source's backoff at this address
    /// starts over.
    pub fn login_succeeded(&self, email: &str, source: &str) {
        self.backoffs.remove(&pair_key(email, source));
    }
}

/// Key of one source at one address. The address is hashed: keys stay
/// short whatever was typed, and the maps hold no addresses.
fn pair_key(email: &str, source: &str) -> String {
    format!(
        "login:pair:{source}:{}",
        crate::auth::secret::hash_token(email)
    )
}

fn address_key(email: &str) -> String {
    format!("login:addr:{}", crate::auth::secret::hash_token(email))
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
        let rl = RateLimiter::default();
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
        let rl = RateLimiter::default();
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
    fn backoff_doubles_after_the_free_failures_up_to_the_cap() {
        let waits: Vec<u64> = (1..=16).map(|f| POLICY.wait(f).as_secs()).collect();
        assert_eq!(
            waits,
            [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
        );
        assert_eq!(POLICY.wait(u32::MAX), POLICY.max);
    }

    #[test]
    fn a_backed_off_key_waits_and_others_do_not() {
        let rl = RateLimiter::default();
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

    #[test]
    fn logins_back_off_per_source_and_address() {
        let rl = RateLimiter::default();
        let limits = LoginLimits {
            per_source: Limit {
                max: 1000,
                window: Duration::from_secs(300),
            },
            backoff: POLICY,
            per_address_failures: Limit {
                max: 12,
                window: Duration::from_secs(300),
            },
        };
        for _ in 0..5 {
            rl.login_check(&limits, "ada@x.io", "10.0.0.1").unwrap();
            rl.login_failed(&limits, "ada@x.io", "10.0.0.1");
        }
        assert!(rl.login_check(&limits, "ada@x.io", "10.0.0.1").is_err());
        // Another source, or another address from the same source: free.
        rl.login_check(&limits, "ada@x.io", "10.0.0.2").unwrap();
        rl.login_check(&limits, "bob@x.io", "10.0.0.1").unwrap();
        // A success resets the source's backoff at that address only.
        rl.login_succeeded("ada@x.io", "10.0.0.2");
        assert!(rl.login_check(&limits, "ada@x.io", "10.0.0.1").is_err());
        rl.login_succeeded("ada@x.io", "10.0.0.1");
        rl.login_check(&limits, "ada@x.io", "10.0.0.1").unwrap();
        // Failures from many sources add up to the address's budget.
        for i in 0..7 {
            rl.login_failed(&limits, "ada@x.io", &format!("10.0.1.{i}"));
        }
        assert!(rl.login_check(&limits, "ada@x.io", "10.0.9.9").is_err());
        rl.login_check(&limits, "bob@x.io", "10.0.9.9").unwrap();
    }
}
