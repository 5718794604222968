//! [`Cidr`]: an address range written `network/prefix`, as operators write
//! allow-lists, and the tables of special ranges in [`address`](crate::address).
//!
//! Parsing is strict on purpose: an allow-list is security configuration,
//! so `10.0.0.1/8` (host bits set) or `010.0.0.0/8` (a leading zero that
//! some tools read as octal) is an error naming the problem, never a
//! silent guess.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A range of IP addresses: a network address and a prefix length.
///
/// The network address never has bits set past the prefix, so two equal
/// ranges compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a range could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Nothing was given.
    #[error("an address range is empty: write e.g. 10.0.0.0/8, fd12:3456::/32 or one address")]
    Empty,
    /// The part before `/` is not an IPv4 or IPv6 address in standard
    /// notation.
    #[error(
        "`{input}` is not an address range: write e.g. 10.0.0.0/8, fd12:3456::/32 or one address"
    )]
    Address { input: String },
    /// The part after `/` is not a number.
    #[error("`{input}`: the prefix length after `/` must be a number")]
    Prefix { input: String },
    /// The prefix is longer than the address (32 bits for IPv4, 128 for
    /// IPv6).
    #[error("`{input}`: the prefix length can be at most {max}")]
    PrefixTooLong { input: String, max: u8 },
    /// The address has bits set past the prefix, so it is not the start
    /// of the range: the operator may have mistyped either part.
    #[error("`{input}` has bits set past its prefix length; did you mean {network}?")]
    HostBits { input: String, network: Cidr },
}

impl Cidr {
    /// The range `addr/prefix`. Refuses a prefix longer than the address
    /// and an address with bits set past the prefix.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(CidrError::PrefixTooLong {
                input: format!("{addr}/{prefix}"),
                max,
            });
        }
        let network = mask(addr, prefix);
        if network != addr {
            return Err(CidrError::HostBits {
                input: format!("{addr}/{prefix}"),
                network: Cidr { network, prefix },
            });
        }
        Ok(Cidr { network, prefix })
    }

    /// The range holding exactly one address.
    pub fn single(addr: IpAddr) -> Self {
        Cidr {
            network: addr,
            prefix: max_prefix(addr),
        }
    }

    /// An IPv4 range for this crate's tables. The tables' own test checks
    /// that no entry has host bits set.
    pub(crate) const fn v4(octets: [u8; 4], prefix: u8) -> Self {
        let [a, b, c, d] = octets;
        Cidr {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    /// An IPv6 range for this crate's tables.
    pub(crate) const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    /// The first address of the range.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// How many leading bits every address of the range shares.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in the range. An IPv4 range holds no IPv6 address
    /// and the other way round: callers unwrap IPv4 addresses embedded in
    /// IPv6 ones first (see [`judged_as`](crate::address::judged_as)).
    pub fn contains(&self, ip: IpAddr) -> bool {
        same_family(self.network, ip) && mask(ip, self.prefix) == self.network
    }

    /// Whether every address of `other` lies in this range.
    pub fn contains_range(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Reads `10.0.0.0/8`, `fd12:3456::/32`, or a single address
    /// (`192.0.2.7`, `2001:db8::7`), which stands for itself alone.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim();
        if text.is_empty() {
            return Err(CidrError::Empty);
        }
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        // The standard library's parser takes only the standard notation
        // (no leading zeros, no shortened IPv4, no zone id): what an
        // operator reads is what the range is.
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Address {
            input: text.to_owned(),
        })?;
        let Some(prefix) = prefix else {
            return Ok(Cidr::single(addr));
        };
        // `u8::from_str` would also take `+8`; only digits are a prefix.
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrError::Prefix {
                input: text.to_owned(),
            });
        }
        let prefix: u8 = prefix.parse().map_err(|_| CidrError::PrefixTooLong {
            input: text.to_owned(),
            max: max_prefix(addr),
        })?;
        Cidr::new(addr, prefix).map_err(|e| match e {
            CidrError::PrefixTooLong { max, .. } => CidrError::PrefixTooLong {
                input: text.to_owned(),
                max,
            },
            CidrError::HostBits { network, .. } => CidrError::HostBits {
                input: text.to_owned(),
                network,
            },
            other => other,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    matches!(
        (a, b),
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
    )
}

/// `addr` with every bit past `prefix` cleared. A prefix of 0 keeps
/// nothing (a shift by the full width would overflow).
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

#[cfg(test)]
mod tests;
