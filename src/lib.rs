//! # coform (server)
//!
//! The `coform` binary: configuration, HTTP routes, the WebSocket endpoint,
//! startup and shutdown. The collaboration logic lives in `coform-collab`,
//! storage in `coform-storage`; this crate wires them to the network.
//!
//! # Layout
//!
//! - [`api`]: the REST API under `/api` and its OpenAPI document.
//! - [`auth`]: passwords, tokens, rate limits, e-mail.
//! - [`config`]: the one `clap` configuration, with `COFORM_*` fallbacks.
//! - [`server`]: [`server::start`] builds the app state and serves it;
//!   [`server::RunningServer::shutdown`] runs the shutdown sequence.
//! - [`ws`]: `GET /collab/{doc}`: upgrade, the reader and writer of one
//!   connection, rate limiting and keepalive.
//! - [`http`]: health, readiness and metrics routes.
//! - [`error`]: [`error::ApiError`] (the one HTTP error mapping) and the
//!   WebSocket close codes.
//! - [`telemetry`]: logging setup.

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod server;
pub mod telemetry;
pub mod ws;

pub use config::Config;
