//! [`Policy`]: what an operator opens and what stays closed on every
//! server, applied to one resolved address.

use std::net::{IpAddr, SocketAddr};

use crate::address::{class_of, is_metadata, judged_as, Reason, METADATA};
use crate::cidr::Cidr;
use crate::error::Refusal;

/// Which addresses the server may dial for a user.
///
/// By default only public addresses: every class of [`Reason`] is
/// refused. An operator's allow-list opens chosen ranges, for sources on
/// the same private network as the server. Metadata services and the
/// server's own listening addresses stay refused whatever it says.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Ranges the operator opened; checked to hold no metadata address.
    allow: Vec<Cidr>,
    /// Where Coform itself listens. An unspecified address (`0.0.0.0`,
    /// `::`) stands for that port on every address that is not public.
    own: Vec<SocketAddr>,
}

/// Why an allow-list was refused when it was read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The range contains a cloud metadata address. Opening it would hand
    /// the server's cloud credentials to anyone who can add a source.
    #[error(
        "the allowed range {cidr} contains the cloud metadata address {metadata}, \
         which is never dialled: allow narrower ranges that leave it out"
    )]
    Metadata { cidr: Cidr, metadata: IpAddr },
    /// Every address of the range is refused whatever the allow-list
    /// says, or judged as another address: listing it would open nothing,
    /// which is never what the operator meant.
    #[error("the allowed range {cidr} would open nothing: {why}")]
    OpensNothing { cidr: Cidr, why: &'static str },
}

/// Ranges an allow-list entry cannot open, and why: an entry entirely
/// inside one of them is refused. (IPv4-compatible `::/96` is handled
/// apart: it holds `::1`, which may be opened.)
const OPENS_NOTHING: &[(Cidr, &str)] = &[
    (
        Cidr::v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
        "IPv4-mapped addresses are judged as the IPv4 address they carry: allow that",
    ),
    (
        Cidr::v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
        "IPv4-translated addresses are judged as the IPv4 address they carry: allow that",
    ),
    (
        Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        "NAT64 addresses are judged as the IPv4 address they carry: allow that",
    ),
    (
        Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "NAT64 addresses are judged as the IPv4 address they carry: allow that",
    ),
    (
        Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        "6to4 addresses are judged as the IPv4 address they carry: allow that",
    ),
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        "Teredo addresses are always refused",
    ),
    (
        Cidr::v4([0, 0, 0, 0], 8),
        "\"this host\" addresses are always refused; allow 127.0.0.1 for loopback",
    ),
    (
        Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
        "the unspecified address is always refused; allow ::1 for loopback",
    ),
    (
        Cidr::v4([224, 0, 0, 0], 4),
        "multicast addresses are always refused",
    ),
    (
        Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        "multicast addresses are always refused",
    ),
    (
        Cidr::v4([255, 255, 255, 255], 32),
        "the broadcast address is always refused",
    ),
];

const IPV4_COMPATIBLE: Cidr = Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 96);
const IPV6_LOOPBACK: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);

impl Policy {
    /// The default policy: public addresses only.
    pub fn new() -> Self {
        Policy::default()
    }

    /// Opens `ranges` besides the public addresses.
    ///
    /// Refuses a range that contains a cloud metadata address
    /// ([`PolicyError::Metadata`], naming the first such entry and the
    /// address) and one that could open nothing
    /// ([`PolicyError::OpensNothing`]).
    pub fn allow(mut self, ranges: impl IntoIterator<Item = Cidr>) -> Result<Self, PolicyError> {
        for cidr in ranges {
            if let Some(&metadata) = METADATA.iter().find(|m| cidr.contains(**m)) {
                return Err(PolicyError::Metadata { cidr, metadata });
            }
            if let Some((_, why)) = OPENS_NOTHING.iter().find(|(r, _)| r.contains_range(&cidr)) {
                return Err(PolicyError::OpensNothing { cidr, why });
            }
            if IPV4_COMPATIBLE.contains_range(&cidr) && !cidr.contains(IPV6_LOOPBACK) {
                return Err(PolicyError::OpensNothing {
                    cidr,
                    why: "IPv4-compatible addresses are judged as the IPv4 address they carry: allow that",
                });
            }
            self.allow.push(cidr);
        }
        Ok(self)
    }

    /// Refuses `addrs` — where Coform itself listens — even when the
    /// allow-list opens their range, so that a source cannot make the
    /// server call its own API with the server's standing. An unspecified
    /// address (`0.0.0.0:8080`, `[::]:8080`) refuses its port on every
    /// address that is not public (the server listens on all of its
    /// interfaces); list a public address of the server explicitly to
    /// refuse it too.
    pub fn refuse_own(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.own.extend(
            addrs
                .into_iter()
                .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port())),
        );
        self
    }

    /// The ranges the allow-list opens.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allow
    }

    /// Judges one resolved address of `host`: `Ok` when it may be dialled.
    ///
    /// An IPv6 address that carries an IPv4 address is judged as that
    /// address, and must pass under every reading
    /// ([`judged_as`]). Metadata is checked
    /// first, then Coform's own addresses, then the classes, which the
    /// allow-list may open.
    pub fn check(&self, host: &str, addr: SocketAddr) -> Result<(), Refusal> {
        let readings = judged_as(addr.ip());
        let refuse = |judged: IpAddr, reason: Reason| Refusal {
            host: host.to_owned(),
            addr,
            judged,
            reason,
        };
        if let Some(&judged) = readings.iter().find(|r| is_metadata(**r)) {
            return Err(refuse(judged, Reason::Metadata));
        }
        for judged in readings {
            let class = class_of(judged);
            if self.is_own(judged, addr.port(), class.is_some()) {
                return Err(refuse(judged, Reason::OwnAddress));
            }
            if let Some(reason) = class {
                if !(reason.can_be_allowed() && self.opens(judged)) {
                    return Err(refuse(judged, reason));
                }
            }
        }
        Ok(())
    }

    fn opens(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|range| range.contains(ip))
    }

    fn is_own(&self, ip: IpAddr, port: u16, not_public: bool) -> bool {
        self.own.iter().any(|own| {
            own.port() == port && (own.ip() == ip || (own.ip().is_unspecified() && not_public))
        })
    }
}

#[cfg(test)]
mod tests;
