//! # coform-sources
//!
//! The outbound guard for data sources. A workspace keeps connections to
//! REST APIs, GraphQL endpoints and PostgreSQL databases, and the server
//! dials them on its users' behalf. This crate decides where the server
//! may go; it knows nothing of HTTP handlers, storage or the protocols
//! spoken once connected.
//!
//! # Layout
//!
//! - [`cidr`]: [`Cidr`], an address range, read strictly from operator
//!   configuration.
//! - [`address`]: facts about addresses — the refused classes
//!   ([`Reason`]), the [`METADATA`] services, and the IPv4 address an
//!   IPv6 address carries ([`judged_as`](address::judged_as)).
//! - [`literal`]: reading a host as an address in every notation;
//!   checking that anything else is a well-formed name.
//! - [`policy`]: [`Policy`], the operator's allow-list and Coform's own
//!   addresses, applied to one resolved address.
//! - [`resolve`]: the [`Resolver`] trait, the system resolver and a fixed
//!   table for tests.
//! - [`dial`]: the [`Connector`] trait and plain TCP.
//! - [`guard`]: [`Guard`], which resolves once, judges every answer and
//!   hands out (or dials) only vetted addresses.
//! - [`redirect`]: the decision for each redirect hop.
//! - [`error`]: [`SourceError`] with stable codes, and [`Refusal`].

pub mod address;
pub mod cidr;
pub mod dial;
pub mod error;
pub mod guard;
pub mod literal;
pub mod policy;
pub mod redirect;
pub mod resolve;

pub use address::{classify, Reason, METADATA};
pub use cidr::{Cidr, CidrError};
pub use dial::{Connector, TcpConnector};
pub use error::{Refusal, SourceError};
pub use guard::Guard;
pub use literal::parse_host_literal;
pub use policy::{Policy, PolicyError};
pub use redirect::{next_hop, Hop, MAX_REDIRECTS};
pub use resolve::{Resolver, StaticResolver, SystemResolver};
