//! [`Refusal`], the guard's verdict on one address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::address::Reason;

/// An address the guard will not dial: which host led there, the address,
/// and the class that closed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The host as the source named it.
    pub host: String,
    /// The address it resolved to (or spelled), with the port.
    pub addr: SocketAddr,
    /// The address that was judged: `addr`'s IP, or the IPv4 address an
    /// IPv6 address carries (`::ffff:127.0.0.1` is judged as 127.0.0.1).
    pub judged: IpAddr,
    /// The class that closed it.
    pub reason: Reason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} leads to {}", self.host, self.addr.ip())?;
        if self.judged != self.addr.ip() {
            write!(f, " (carrying {})", self.judged)?;
        }
        write!(f, ", {}, which is not dialled", self.reason)
    }
}

impl std::error::Error for Refusal {}
