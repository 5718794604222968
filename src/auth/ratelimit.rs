//! Fixed-window rate limits keyed by string (`"login:ip:1.2.3.4"`,
//! `"login:acct:a@b.c"`). In memory: each replica limits on its own.

use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Counters per key; entries of past windows are swept as the map grows.
#[derive(Default)]
pub struct RateLimiter {
    windows: DashMap<String, (Instant, u32)>,
}

/// A limit: at most `max` events per `window`.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl RateLimiter {
    /// Counts one event for `key`. `Err(retry_after)` when over the limit
    /// (the event is not counted then).
    pub fn hit(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        let now = Instant::now();
        if self.windows.len() > 100_000 {
            self.windows
                .retain(|_, (start, _)| now.duration_since(*start) < limit.window);
        }
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

    /// Forgets `key` (e.g. after a successful login).
    pub fn reset(&self, key: &str) {
        self.windows.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let rl = RateLimiter::default();
        let limit = Limit {
            max: 2,
            window: Duration::from_secs(60),
        };
        assert!(rl.hit("a", limit).is_ok());
        assert!(rl.hit("a", limit).is_ok());
        let retry = rl.hit("a", limit).unwrap_err();
        assert!(retry > Duration::from_secs(50));
        assert!(rl.hit("b", limit).is_ok());
        rl.reset("a");
        assert!(rl.hit("a", limit).is_ok());
    }
}
