//! Rate limits and login backoff, keyed by strings (`"register:ip:1.2.3.4"`).
//!
//! # Layout
//!
//! - this module: the limits ([`Limit`], [`Backoff`], [`LoginLimits`]),
//!   the [`LimitStore`] trait that counts them, and [`RateLimiter`], what
//!   the handlers call.
//! - [`local`]: [`InProcess`], the counters of one process.
//! - [`shared`]: [`RedisLimits`], counters in Redis that every replica
//!   shares (with `--redis`).
//!
//! Each [`LimitStore`] method is one atomic step on one key — count in a
//! window and check it, read a window, count past it, read a backoff,
//! record a failure, clear a backoff — and takes no clock from its caller,
//! so replicas with different clocks agree.
//!
//! # Replicas
//!
//! With one process per deployment the counters live in memory. Behind a
//! load balancer each replica would give every client its own budget (N
//! replicas, N times the attempts), so with `--redis` the counters live in
//! Redis instead. A Redis that does not answer must neither open the doors
//! nor lock everyone out: [`RateLimiter`] then counts that call in its own
//! process, as a single node would, and logs why. Counts made during an
//! outage stay in that process; they are not carried over when Redis is
//! back, which at worst gives a client one more budget per replica for the
//! length of one outage.
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
//!
//! E-mail addresses are hashed into the keys ([`RateLimiter::email_key`])
//! with a secret the replicas share: neither the maps of a process nor
//! Redis hold one in clear, and someone reading Redis cannot even check
//! whether a given address was tried.

pub mod local;
pub mod shared;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub use local::InProcess;
pub use shared::RedisLimits;

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
    pub fn wait(&self, failures: u32) -> Duration {
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

/// Allowed (`Ok`), or `Err(retry_after)`.
pub type Verdict = Result<(), Duration>;

/// A store of limit counters did not answer; the call is counted in
/// process instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Where limits are counted: one process ([`InProcess`]) or every replica
/// together ([`RedisLimits`]). Each method is one atomic step on one key.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one event for `key`; `Err(retry_after)` when over the limit
    /// (the event is not counted then).
    async fn hit(&self, key: &str, limit: Limit) -> Result<Verdict, Unavailable>;

    /// `Err(retry_after)` if `key` has used up `limit` in its current
    /// window; counts nothing.
    async fn check(&self, key: &str, limit: Limit) -> Result<Verdict, Unavailable>;

    /// Counts one event for `key`, over the limit or not.
    async fn count(&self, key: &str, limit: Limit) -> Result<(), Unavailable>;

    /// `Err(wait)` while `key` is backed off.
    async fn backoff_wait(&self, key: &str) -> Result<Verdict, Unavailable>;

    /// Records a failure of `key`; returns the wait it now imposes (zero
    /// while failures are still free).
    async fn backoff_failure(&self, key: &str, policy: Backoff) -> Result<Duration, Unavailable>;

    /// Forgets the failures of `key`: its backoff starts over.
    async fn backoff_clear(&self, key: &str) -> Result<(), Unavailable>;
}

/// What the handlers call: the shared store when there is one, this
/// process's counters when there is none or it does not answer.
#[derive(Default)]
pub struct RateLimiter {
    /// Counters shared by the replicas (`--redis`), if any.
    shared: Option<Arc<dyn LimitStore>>,
    /// This process's counters: the only ones without `--redis`, the
    /// fallback with it.
    local: InProcess,
    /// Mixed into the hash of every e-mail address in a key; the same on
    /// every replica, so they agree on the keys.
    key_secret: Vec<u8>,
}

impl RateLimiter {
    /// Counting in this process only; e-mail addresses in keys are hashed
    /// with `key_secret`.
    pub fn in_process(key_secret: &[u8]) -> RateLimiter {
        RateLimiter {
            shared: None,
            local: InProcess::default(),
            key_secret: key_secret.to_vec(),
        }
    }

    /// Counting in `shared` (every replica's), falling back to this
    /// process's counters when it fails. `key_secret` must be the same on
    /// every replica (the token-signing secret is).
    pub fn shared(shared: Arc<dyn LimitStore>, key_secret: &[u8]) -> RateLimiter {
        RateLimiter {
            shared: Some(shared),
            ..RateLimiter::in_process(key_secret)
        }
    }

    /// An e-mail address as it may appear in a key: a hash keyed with the
    /// limiter's secret, so keys stay short whatever was typed and no
    /// counter store holds an address or a plain hash of one.
    pub fn email_key(&self, email: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"coform rate-limit key\0");
        h.update((self.key_secret.len() as u64).to_be_bytes());
        h.update(&self.key_secret);
        h.update(email.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Key of one source at one address.
    fn pair_key(&self, email: &str, source: &str) -> String {
        format!("login:pair:{source}:{}", self.email_key(email))
    }

    fn address_key(&self, email: &str) -> String {
        format!("login:addr:{}", self.email_key(email))
    }

    /// The answer of the shared store if it gives one, else of `local`.
    async fn either<T>(
        &self,
        op: &'static str,
        shared: Option<impl Future<Output = Result<T, Unavailable>>>,
        local: impl FnOnce(&InProcess) -> T,
    ) -> T {
        if let Some(answer) = shared {
            match answer.await {
                Ok(v) => return v,
                Err(e) => shared::warn_unavailable(op, &e),
            }
        }
        local(&self.local)
    }

    /// Counts one event for `key`. `Err(retry_after)` when over the limit
    /// (the event is not counted then).
    pub async fn hit(&self, key: &str, limit: Limit) -> Verdict {
        let shared = self.shared.as_ref().map(|s| s.hit(key, limit));
        self.either("hit", shared, |l| l.hit(key, limit)).await
    }

    /// `Err(retry_after)` if `key` has used up `limit` in its current
    /// window; counts nothing.
    pub async fn check(&self, key: &str, limit: Limit) -> Verdict {
        let shared = self.shared.as_ref().map(|s| s.check(key, limit));
        self.either("check", shared, |l| l.check(key, limit)).await
    }

    /// Counts one event for `key`, over the limit or not.
    pub async fn count(&self, key: &str, limit: Limit) {
        let shared = self.shared.as_ref().map(|s| s.count(key, limit));
        self.either("count", shared, |l| l.count(key, limit)).await
    }

    /// `Err(wait)` while `key` is backed off.
    pub async fn backoff_wait(&self, key: &str) -> Verdict {
        let shared = self.shared.as_ref().map(|s| s.backoff_wait(key));
        self.either("backoff_wait", shared, |l| l.backoff_wait(key))
            .await
    }

    /// Records a failure of `key`; returns the wait it now imposes.
    pub async fn backoff_failure(&self, key: &str, policy: Backoff) -> Duration {
        let shared = self.shared.as_ref().map(|s| s.backoff_failure(key, policy));
        self.either("backoff_failure", shared, |l| {
            l.backoff_failure(key, policy)
        })
        .await
    }

    /// Forgets the failures of `key`.
    pub async fn backoff_clear(&self, key: &str) {
        let shared = self.shared.as_ref().map(|s| s.backoff_clear(key));
        self.either("backoff_clear", shared, |l| l.backoff_clear(key))
            .await
    }

    // ---- logins

    /// Whether a login to `email` from `source` may be tried now;
    /// `Err(retry_after)` if not. Counts the attempt against the source.
    /// The answer depends on the e-mail string only, never on whether an
    /// account has it.
    pub async fn login_check(&self, limits: &LoginLimits, email: &str, source: &str) -> Verdict {
        self.hit(&format!("login:src:{source}"), limits.per_source)
            .await?;
        self.backoff_wait(&self.pair_key(email, source)).await?;
        self.check(&self.address_key(email), limits.per_address_failures)
            .await
    }

    /// Records a failed login (wrong password, or no such account).
    pub async fn login_failed(&self, limits: &LoginLimits, email: &str, source: &str) {
        self.backoff_failure(&self.pair_key(email, source), limits.backoff)
            .await;
        self.count(&self.address_key(email), limits.per_address_failures)
            .await;
    }

    /// Records a successful login: the source's backoff at this address
    /// starts over.
    pub async fn login_succeeded(&self, email: &str, source: &str) {
        self.backoff_clear(&self.pair_key(email, source)).await;
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
    fn keys_hold_no_address_nor_a_plain_hash_of_one() {
        let rl = RateLimiter::in_process(b"secret");
        let plain = crate::auth::secret::hash_token("ada@x.io");
        for key in [
            rl.pair_key("ada@x.io", "10.0.0.1"),
            rl.address_key("ada@x.io"),
        ] {
            assert!(!key.contains("ada") && !key.contains(&plain), "{key}");
        }
        assert_ne!(rl.address_key("ada@x.io"), rl.address_key("bob@x.io"));
        // Replicas with the same secret agree; another secret, other keys.
        let same = RateLimiter::in_process(b"secret");
        let other = RateLimiter::in_process(b"other");
        assert_eq!(rl.email_key("ada@x.io"), same.email_key("ada@x.io"));
        assert_ne!(rl.email_key("ada@x.io"), other.email_key("ada@x.io"));
    }

    #[tokio::test]
    async fn logins_back_off_per_source_and_address() {
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
            rl.login_check(&limits, "ada@x.io", "10.0.0.1")
                .await
                .unwrap();
            rl.login_failed(&limits, "ada@x.io", "10.0.0.1").await;
        }
        assert!(rl
            .login_check(&limits, "ada@x.io", "10.0.0.1")
            .await
            .is_err());
        // Another source, or another address from the same source: free.
        rl.login_check(&limits, "ada@x.io", "10.0.0.2")
            .await
            .unwrap();
        rl.login_check(&limits, "bob@x.io", "10.0.0.1")
            .await
            .unwrap();
        // A success resets the source's backoff at that address only.
        rl.login_succeeded("ada@x.io", "10.0.0.2").await;
        assert!(rl
            .login_check(&limits, "ada@x.io", "10.0.0.1")
            .await
            .is_err());
        rl.login_succeeded("ada@x.io", "10.0.0.1").await;
        rl.login_check(&limits, "ada@x.io", "10.0.0.1")
            .await
            .unwrap();
        // Failures from many sources add up to the address's budget.
        for i in 0..7 {
            rl.login_failed(&limits, "ada@x.io", &format!("10.0.1.{i}"))
                .await;
        }
        assert!(rl
            .login_check(&limits, "ada@x.io", "10.0.9.9")
            .await
            .is_err());
        rl.login_check(&limits, "bob@x.io", "10.0.9.9")
            .await
            .unwrap();
    }
}
