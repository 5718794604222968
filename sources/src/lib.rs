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
//! - [`policy`]: [`Policy`], the operator's allow-list and Coform's own
//!   addresses, applied to one resolved address.
//! - [`error`]: [`Refusal`], the verdict on one address.

pub mod address;
pub mod cidr;
pub mod error;
pub mod policy;

pub use address::{classify, Reason, METADATA};
pub use cidr::{Cidr, CidrError};
pub use error::Refusal;
pub use policy::{Policy, PolicyError};
