//! What an IP address is, as far as dialling it for a user goes: the
//! special-purpose ranges, the cloud metadata addresses, and the IPv4
//! addresses hidden inside IPv6 ones.
//!
//! Everything here is a fact about addresses, the same on every server;
//! what an operator opens is [`Policy`](crate::Policy)'s business.
//!
//! IPv4 is judged range by range. IPv6 is judged the other way round: an
//! address outside global unicast (`2000::/3`) is refused unless it is one
//! of the forms that carry an IPv4 address, so a range nobody listed is
//! refused rather than let through.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cidr::Cidr;

/// Why an address is not dialled: the class it belongs to.
///
/// [`code`](Reason::code) is the stable name that error responses carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `127.0.0.0/8`, `::1`: this machine.
    Loopback,
    /// `0.0.0.0/8`, `::`: "this host"; Linux dials loopback for it.
    Unspecified,
    /// `10/8`, `172.16/12`, `192.168/16`, and IPv6 site-local `fec0::/10`.
    Private,
    /// `169.254/16`, `fe80::/10`: the local link only.
    LinkLocal,
    /// `100.64/10`: carrier-grade NAT, and the address space of some
    /// overlay networks.
    Cgnat,
    /// `fc00::/7`: IPv6 unique local addresses, the private ranges of IPv6.
    UniqueLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`: for examples only, never in use.
    Documentation,
    /// `198.18/15`, `2001:2::/48`: for network benchmarks in a lab.
    Benchmarking,
    /// Ranges set aside for protocols or the future: `192.0.0/24`,
    /// `192.88.99/24`, `240/4`, `2001::/23`, `100::/64`, and every IPv6
    /// address outside `2000::/3` that no other class names.
    Reserved,
    /// `2001::/32`: a Teredo tunnel, whose real destination is hidden in
    /// the address in a form that cannot be judged safely.
    Teredo,
    /// A cloud provider's instance metadata or credentials service
    /// ([`METADATA`]). Never dialled, whatever the allow-list says.
    Metadata,
    /// The address and port Coform itself listens on. Never dialled, so a
    /// source cannot make the server call its own API.
    OwnAddress,
}

impl Reason {
    /// The stable snake_case name of the class.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Loopback => "loopback",
            Reason::Unspecified => "unspecified",
            Reason::Private => "private",
            Reason::LinkLocal => "link_local",
            Reason::Cgnat => "cgnat",
            Reason::UniqueLocal => "unique_local",
            Reason::Multicast => "multicast",
            Reason::Broadcast => "broadcast",
            Reason::Documentation => "documentation",
            Reason::Benchmarking => "benchmarking",
            Reason::Reserved => "reserved",
            Reason::Teredo => "teredo",
            Reason::Metadata => "metadata",
            Reason::OwnAddress => "own_address",
        }
    }

    /// Whether an operator's allow-list may open addresses of this class.
    ///
    /// Metadata services hold the server's cloud credentials. The others
    /// that stay closed are never a TCP destination worth opening:
    /// "this host" is loopback in disguise, multicast and broadcast carry
    /// no connections, and a Teredo address hides where it leads. Coform's
    /// own address is closed because the allow-list is for other services.
    pub fn can_be_allowed(self) -> bool {
        !matches!(
            self,
            Reason::Metadata
                | Reason::Unspecified
                | Reason::Multicast
                | Reason::Broadcast
                | Reason::Teredo
                | Reason::OwnAddress
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Loopback => "a loopback address",
            Reason::Unspecified => "the unspecified address",
            Reason::Private => "a private address",
            Reason::LinkLocal => "a link-local address",
            Reason::Cgnat => "a carrier-grade NAT address",
            Reason::UniqueLocal => "an IPv6 unique local address",
            Reason::Multicast => "a multicast address",
            Reason::Broadcast => "the broadcast address",
            Reason::Documentation => "a documentation address",
            Reason::Benchmarking => "a benchmarking address",
            Reason::Reserved => "a reserved address",
            Reason::Teredo => "a Teredo tunnel address",
            Reason::Metadata => "a cloud metadata address",
            Reason::OwnAddress => "Coform's own address",
        })
    }
}

/// The cloud metadata and credential services. A request that reaches one
/// of them from the server can read the machine's cloud credentials, so
/// they are refused even when an allow-list opens the range around them,
/// and an allow-list that contains one is refused when it is read.
pub const METADATA: [IpAddr; 8] = [
    // AWS, Google Cloud, Azure, OpenStack, DigitalOcean and most others.
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // AWS instance metadata over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    // AWS ECS task metadata and credentials.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // AWS EKS Pod Identity credentials, IPv4 and IPv6.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
    // Alibaba Cloud.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Oracle Cloud.
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    // Azure's host endpoint (WireServer): a public address that only an
    // Azure machine reaches, and that serves its agent's configuration.
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
];

/// Whether `ip` is one of [`METADATA`], as written (embedded forms are
/// unwrapped by [`judged_as`] first).
pub fn is_metadata(ip: IpAddr) -> bool {
    METADATA.contains(&ip)
}

/// IPv4 special-purpose ranges, first match wins.
const V4_RANGES: &[(Cidr, Reason)] = &[
    (Cidr::v4([255, 255, 255, 255], 32), Reason::Broadcast),
    (Cidr::v4([0, 0, 0, 0], 8), Reason::Unspecified),
    (Cidr::v4([127, 0, 0, 0], 8), Reason::Loopback),
    (Cidr::v4([10, 0, 0, 0], 8), Reason::Private),
    (Cidr::v4([172, 16, 0, 0], 12), Reason::Private),
    (Cidr::v4([192, 168, 0, 0], 16), Reason::Private),
    (Cidr::v4([169, 254, 0, 0], 16), Reason::LinkLocal),
    (Cidr::v4([100, 64, 0, 0], 10), Reason::Cgnat),
    (Cidr::v4([192, 0, 0, 0], 24), Reason::Reserved),
    (Cidr::v4([192, 0, 2, 0], 24), Reason::Documentation),
    (Cidr::v4([198, 51, 100, 0], 24), Reason::Documentation),
    (Cidr::v4([203, 0, 113, 0], 24), Reason::Documentation),
    (Cidr::v4([198, 18, 0, 0], 15), Reason::Benchmarking),
    // The old 6to4 relay anycast: traffic to it is tunnelled onwards.
    (Cidr::v4([192, 88, 99, 0], 24), Reason::Reserved),
    (Cidr::v4([224, 0, 0, 0], 4), Reason::Multicast),
    (Cidr::v4([240, 0, 0, 0], 4), Reason::Reserved),
];

/// IPv6 special-purpose ranges, first match wins; see [`class_of`] for
/// what no entry names. Forms that embed IPv4 never reach this table.
const V6_RANGES: &[(Cidr, Reason)] = &[
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Reason::Unspecified),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Reason::Loopback),
    (
        Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        Reason::Multicast,
    ),
    (
        Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        Reason::LinkLocal,
    ),
    // Site-local: deprecated, but still routed inside some networks.
    (Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Reason::Private),
    (
        Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        Reason::UniqueLocal,
    ),
    (Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Reason::Teredo),
    (
        Cidr::v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        Reason::Benchmarking,
    ),
    (
        Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        Reason::Documentation,
    ),
    (
        Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        Reason::Documentation,
    ),
    // IETF protocol assignments (anycast services, ORCHID, ...): no API
    // a user means lives there.
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        Reason::Reserved,
    ),
    // Discard-only.
    (Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Reason::Reserved),
];

/// Global unicast: the only IPv6 space that is judged public.
const V6_GLOBAL: Cidr = Cidr::v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// The class of an address that carries no other address: `None` when
/// it is public. Metadata addresses are public-range or link-local
/// addresses here; [`classify`] and the policy check them first.
pub(crate) fn class_of(ip: IpAddr) -> Option<Reason> {
    let table = match ip {
        IpAddr::V4(_) => V4_RANGES,
        IpAddr::V6(_) => V6_RANGES,
    };
    if let Some((_, reason)) = table.iter().find(|(range, _)| range.contains(ip)) {
        return Some(*reason);
    }
    match ip {
        IpAddr::V6(_) if !V6_GLOBAL.contains(ip) => Some(Reason::Reserved),
        _ => None,
    }
}

/// The class of `ip` under the default policy (nothing allowed): `None`
/// when it may be dialled. IPv6 addresses that carry an IPv4 address are
/// judged as that address.
pub fn classify(ip: IpAddr) -> Option<Reason> {
    let readings = judged_as(ip);
    if readings.iter().any(|r| is_metadata(*r)) {
        return Some(Reason::Metadata);
    }
    readings.into_iter().find_map(class_of)
}

/// The addresses `ip` is judged as: itself, or the IPv4 address an IPv6
/// address carries, because that is where a connection to it ends up.
///
/// - IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d` and
///   the old IPv4-compatible `::a.b.c.d` (but `::` and `::1` are
///   themselves);
/// - NAT64 `64:ff9b::a.b.c.d`: a translator on the way turns it into the
///   IPv4 address;
/// - 6to4 `2002:aabb:ccdd::/48`: a relay sends it to `a.b.c.d`;
/// - local-use NAT64 `64:ff9b:1::/48`: the IPv4 address sits where the
///   translator's prefix length puts it (96, 64, 56 or 48 bits), which
///   this server cannot know, so every reading is returned and all of them
///   must pass. The bits a longer prefix leaves free are the sender's to
///   choose, so judging one reading only would let an address that is
///   public read one way reach a private one read another. The price: a
///   local-use address passes only when every reading is public.
///
/// Teredo (`2001::/32`) is not unwrapped: it is refused as a class.
pub fn judged_as(ip: IpAddr) -> Vec<IpAddr> {
    let IpAddr::V6(v6) = ip else {
        return vec![ip];
    };
    let s = v6.segments();
    let o = v6.octets();
    let v4 = |a: u8, b: u8, c: u8, d: u8| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let last32 = v4(o[12], o[13], o[14], o[15]);
    if v6.is_unspecified() || v6.is_loopback() {
        return vec![ip];
    }
    match s {
        // IPv4-mapped, IPv4-compatible.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => vec![last32],
        // IPv4-translated (SIIT).
        [0, 0, 0, 0, 0xffff, 0, _, _] => vec![last32],
        // NAT64, well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => vec![last32],
        // NAT64, local-use prefix. The octet at bits 64..71 is skipped by
        // the embedding (RFC 6052).
        // Longest prefix first: /96 is the common layout, so its reading
        // names the class when several are refused.
        [0x64, 0xff9b, 1, ..] => vec![
            last32,
            v4(o[9], o[10], o[11], o[12]),
            v4(o[7], o[9], o[10], o[11]),
            v4(o[6], o[7], o[9], o[10]),
        ],
        // 6to4.
        [0x2002, ..] => vec![v4(o[2], o[3], o[4], o[5])],
        _ => vec![ip],
    }
}

#[cfg(test)]
mod tests;
