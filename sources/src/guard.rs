//! [`Guard`]: resolve once, judge every answer, hand out only vetted
//! addresses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use url::Url;

use crate::dial::Connector;
use crate::error::SourceError;
use crate::literal::{check_name, parse_host_literal};
use crate::policy::Policy;
use crate::redirect::{self, Hop};
use crate::resolve::{Resolver, SystemResolver};

/// The one way out to a source. It resolves a host once, judges every
/// address under its [`Policy`], and gives back the addresses to dial;
/// [`connect`](Guard::connect) dials exactly those.
///
/// Cheap to clone: the policy and resolver are shared.
#[derive(Clone)]
pub struct Guard {
    policy: Arc<Policy>,
    resolver: Arc<dyn Resolver>,
}

/// A host as the guard sees it before any lookup.
pub(crate) enum Host<'a> {
    /// An address literal in any notation: judged without a lookup.
    Literal(IpAddr),
    /// A well-formed DNS name.
    Name(&'a str),
}

/// Reads `host` as a literal or a name; anything else is refused before
/// a resolver sees it.
pub(crate) fn read_host(host: &str) -> Result<Host<'_>, SourceError> {
    if let Some(ip) = parse_host_literal(host) {
        return Ok(Host::Literal(ip));
    }
    check_name(host).map_err(|reason| SourceError::InvalidHost {
        host: host.to_owned(),
        reason,
    })?;
    Ok(Host::Name(host))
}

impl Guard {
    /// A guard applying `policy` to what `resolver` answers.
    pub fn new(policy: Policy, resolver: Arc<dyn Resolver>) -> Self {
        Guard {
            policy: Arc::new(policy),
            resolver,
        }
    }

    /// A guard using the operating system's resolver.
    pub fn system(policy: Policy) -> Self {
        Guard::new(policy, Arc::new(SystemResolver))
    }

    /// The policy this guard applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The addresses to dial for `host:port`, in the resolver's order,
    /// without duplicates.
    ///
    /// A literal (in any notation, see
    /// [`parse_host_literal`]) is judged
    /// without a lookup. A name is resolved once; if any of its addresses
    /// is refused, the whole call is refused. Picking the good answers
    /// would let a name that also points inward keep working, and make
    /// the outcome depend on which answer a later step happens to use.
    pub async fn vet(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, SourceError> {
        let name = match read_host(host)? {
            Host::Literal(ip) => {
                let addr = SocketAddr::new(ip, port);
                self.policy.check(host, addr)?;
                return Ok(vec![addr]);
            }
            Host::Name(name) => name,
        };
        let ips = self.resolver.resolve(name, port).await.map_err(|source| {
            SourceError::Unresolvable {
                host: host.to_owned(),
                source,
            }
        })?;
        let mut addrs: Vec<SocketAddr> = Vec::with_capacity(ips.len());
        for ip in ips {
            let addr = SocketAddr::new(ip, port);
            self.policy.check(host, addr)?;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(SourceError::NoAddress {
                host: host.to_owned(),
            });
        }
        Ok(addrs)
    }

    /// Vets the host and port of an `http` or `https` URL (the scheme's
    /// default port when none is written).
    pub async fn vet_url(&self, url: &Url) -> Result<Vec<SocketAddr>, SourceError> {
        let (host, port) = redirect::target(&self.policy, url)?;
        self.vet(&host, port).await
    }

    /// Vets `host:port`, then connects to the vetted addresses in order
    /// until one accepts. The connector is handed those addresses and
    /// nothing else: the host is never resolved again between the check
    /// and the connection.
    pub async fn connect<C: Connector>(
        &self,
        host: &str,
        port: u16,
        connector: &C,
    ) -> Result<C::Stream, SourceError> {
        let mut failure = None;
        for addr in self.vet(host, port).await? {
            match connector.connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(source) => failure = Some((addr, source)),
            }
        }
        Err(match failure {
            Some((addr, source)) => SourceError::Unreachable {
                host: host.to_owned(),
                addr,
                source,
            },
            // `vet` never hands out an empty list; answer as it would.
            None => SourceError::NoAddress {
                host: host.to_owned(),
            },
        })
    }

    /// Decides a redirect from `from` to `location` with
    /// [`redirect::next_hop`], then vets the new host: the hop is only
    /// returned together with the addresses it may be dialled at.
    /// `followed` counts the redirects already followed in this chain.
    pub async fn follow(
        &self,
        from: &Url,
        location: &str,
        followed: u32,
    ) -> Result<(Hop, Vec<SocketAddr>), SourceError> {
        let hop = redirect::next_hop(&self.policy, from, location, followed)?;
        let addrs = self.vet_url(&hop.url).await?;
        Ok((hop, addrs))
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
