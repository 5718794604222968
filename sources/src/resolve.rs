//! [`Resolver`]: turning a name into addresses, behind a trait so that the
//! guard can be tested without a network.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;

use async_trait::async_trait;

/// Looks a host name up. The guard calls it once per vetting and judges
/// every address it returns; it never calls it for address literals.
///
/// A trait object, so the server can choose the system resolver or a
/// fixed table at start without every type that holds a
/// [`Guard`](crate::Guard) becoming generic.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// Every address `host` resolves to. `port` is passed on for
    /// resolvers that need it (`getaddrinfo` does); it does not change
    /// the addresses.
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`, on tokio's blocking
/// pool), which reads `/etc/hosts` and the system's DNS configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, port)).await?;
        Ok(addrs.map(|addr| addr.ip()).collect())
    }
}

/// A fixed table of names, for tests and for operators who pin names:
/// answers only the names it was given, and remembers every lookup so
/// that tests can count them.
#[derive(Debug, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
    /// Every name looked up, in order. A `Mutex` because lookups take
    /// `&self` and may come from several tasks.
    lookups: Mutex<Vec<String>>,
}

impl StaticResolver {
    /// An empty table: every lookup fails.
    pub fn new() -> Self {
        StaticResolver::default()
    }

    /// Answers `host` with `addrs` (an empty list answers with no
    /// address). Names compare without case and without a trailing dot,
    /// as DNS compares them.
    pub fn with(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.table
            .insert(table_key(host), addrs.into_iter().collect());
        self
    }

    /// The names looked up so far, as they were asked.
    pub fn lookups(&self) -> Vec<String> {
        self.lookups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str, _port: u16) -> io::Result<Vec<IpAddr>> {
        self.lookups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(host.to_owned());
        self.table
            .get(&table_key(host))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in the resolver's table"))
    }
}

fn table_key(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}
