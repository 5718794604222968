//! # coform-sources
//!
//! The outbound guard for data sources, and the executors that call
//! them. A workspace keeps connections to REST APIs, GraphQL endpoints
//! and PostgreSQL databases, and the server dials them on its users'
//! behalf. This crate decides where the server may go and how a call is
//! made once there ([`http`] for REST and GraphQL, [`pg`] for
//! PostgreSQL), how their secrets are sealed at rest ([`secrets`]) and how
//! their answers are cached ([`cache`]); it knows nothing of the server's
//! HTTP handlers or of storage.
//!
//! # Threat model
//!
//! Whoever can add or edit a source chooses a host, and whoever runs that
//! host chooses its DNS answers and its redirects. Without a guard they
//! can make the server reach what only the server can reach — its cloud
//! metadata service (and the machine's credentials), databases and admin
//! panels on the private network, Coform's own API — and read the answer
//! back through the source (server-side request forgery). So:
//!
//! - **The address is judged, not the name**, after resolution: loopback,
//!   private, link-local, carrier-grade NAT, unique local, multicast,
//!   documentation and reserved ranges are refused ([`address`]). IPv6
//!   forms that carry an IPv4 address are judged as that address.
//! - **Every notation of a literal is understood** (`2130706433`,
//!   `0x7f.1`, `[::ffff:7f00:1]` ...) and judged without a lookup
//!   ([`parse_host_literal`]); a host that looks numeric but is not a
//!   valid address is refused, since resolvers and parsers disagree on it.
//! - **One lookup, every answer judged, only vetted addresses dialled**:
//!   if any address of a name is refused the call is; a [`Connector`] is
//!   handed socket addresses, never names, so a second lookup cannot
//!   answer differently (DNS rebinding).
//! - **Every redirect hop is vetted again**, at most five are followed,
//!   never from https to http, and credentials stay with their origin
//!   ([`redirect`]).
//! - **Operators open ranges deliberately** with an allow-list
//!   ([`Policy::allow`]); cloud metadata addresses and Coform's own
//!   listening address stay closed whatever it says, and an allow-list
//!   that contains a metadata address is refused when it is read.
//!
//! # Using it
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use std::sync::Arc;
//! use coform_sources::{Guard, Policy, Reason, StaticResolver};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let ip = |s: &str| s.parse::<IpAddr>().unwrap();
//! let policy = Policy::new()
//!     .allow(["10.20.0.0/16".parse().unwrap()])
//!     .unwrap();
//! let resolver = StaticResolver::new()
//!     .with("api.example.com", [ip("93.184.216.34")])
//!     .with("db.internal", [ip("10.20.0.5")])
//!     .with("rebind.example", [ip("93.184.216.34"), ip("127.0.0.1")]);
//! let guard = Guard::new(policy, Arc::new(resolver));
//!
//! // A public API, and a database in the range the operator opened.
//! let addrs = guard.vet("api.example.com", 443).await.unwrap();
//! assert_eq!(addrs, vec![SocketAddr::new(ip("93.184.216.34"), 443)]);
//! assert!(guard.vet("db.internal", 5432).await.is_ok());
//!
//! // One inward answer refuses the whole name; so does loopback in hex.
//! let err = guard.vet("rebind.example", 443).await.unwrap_err();
//! assert_eq!(err.code(), "blocked_address");
//! assert_eq!(err.refusal().unwrap().reason, Reason::Loopback);
//! let err = guard.vet("0x7f.1", 80).await.unwrap_err();
//! assert_eq!(err.refusal().unwrap().reason, Reason::Loopback);
//! # }
//! ```
//!
//! [`Guard::connect`] vets and connects in one call; an HTTP or database
//! client that resolves names itself must instead be given the addresses
//! [`Guard::vet`] returned, and must be kept from following redirects on
//! its own: each one goes through [`Guard::follow`].
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
//! - [`http`]: [`HttpClient`], which calls REST and GraphQL sources
//!   through the guard: parameters bound as values, redirects re-vetted,
//!   the whole call under the source's timeout and a size limit.
//! - [`error`]: [`SourceError`] with stable codes, and [`Refusal`].
//! - [`secrets`]: sealing a source's secrets at rest under a rotating
//!   [`Keyring`], masking them for display, and the edit rule that keeps
//!   them only while they go where they went.
//! - [`cache`]: the [`AnswerCache`] of upstream answers, in memory or in
//!   a Redis shared by replicas.
//! - [`pg`]: [`Postgres`], which runs a database source's query
//!   read-only over a connection the guard opened.

pub mod address;
pub mod cache;
pub mod cidr;
pub mod config;
pub mod dial;
pub mod error;
pub mod guard;
pub mod http;
pub mod literal;
pub mod pg;
pub mod policy;
pub mod redirect;
pub mod resolve;
pub mod secrets;

pub use address::{classify, Reason, METADATA};
pub use cache::{cache_key, source_prefix, AnswerCache, MemoryCache, RedisCache};
pub use cidr::{Cidr, CidrError};
pub use config::{AuthType, Config, ConfigError, Kind, Method};
pub use dial::{Connector, TcpConnector};
pub use error::{Refusal, SourceError};
pub use guard::Guard;
pub use http::{infer_schema, web_tls_config, HttpClient, HttpLimits};
pub use literal::parse_host_literal;
pub use pg::{PgLimits, Postgres};
pub use policy::{Policy, PolicyError};
pub use redirect::{next_hop, Hop, MAX_REDIRECTS};
pub use resolve::{Resolver, StaticResolver, SystemResolver};
pub use secrets::{
    masked_config, merge_config, open_config, reseal, seal_config, secret_paths, Aad, Keyring,
    KeyringError, MergeError, SealError, Sealed, MASK,
};
