//! The one harness of the end-to-end tests, split by job:
//!
//! - [`server`]: the server inside the test process (authentication on or
//!   off), its data dir, stop and restart;
//! - [`process`]: the `coform` binary as a child process;
//! - [`stores`]: the stores the suite starts (SecantusDB through the
//!   storage crate, a `redis-server` of its own);
//! - [`http`]: requests, answers and their assertions, `/metrics`;
//! - [`upstream`]: an HTTP and GraphQL server for data-source tests;
//! - [`accounts`]: accounts, mails, workspaces and templates, forged tokens;
//! - [`fixtures`]: the set-ups many tests share;
//! - [`ws`] and [`ws_reader`]: the y-websocket client, which fails on any
//!   protocol error;
//! - [`docs`]: views of yrs documents.
//!
//! Nothing here sleeps to wait for something to happen: every wait is for a
//! concrete event (a message, a state change, a metric value, a status)
//! and is bounded by a timeout that fails the test with a description of
//! what was awaited.

#![allow(dead_code, unused_imports)]

pub mod accounts;
pub mod docs;
pub mod fixtures;
pub mod http;
pub mod process;
pub mod server;
pub mod stores;
pub mod upstream;
pub mod ws;
pub mod ws_reader;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use accounts::*;
pub use docs::*;
pub use fixtures::*;
pub use http::*;
pub use process::*;
pub use server::*;
pub use stores::*;
pub use ws::*;
pub use ws_reader::{encode_msg, ConnState, Ended, Ws};
pub use yrs::Doc;

/// Bound of any single wait.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Awaits `fut` for at most `timeout`, panicking with `what` if it takes
/// longer.
pub async fn within<T>(timeout: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Polls `probe` until it returns `Some`, at most `timeout`; for state
/// that announces no event (a file, a metric, a row in a store).
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Percent-encodes everything but unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A small deterministic pseudo-random generator (xorshift64*), so tests
/// need no extra crate and failures can be replayed from the seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// A string of `len` lowercase letters.
    pub fn letters(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

/// A flag shared with background edit loops.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
