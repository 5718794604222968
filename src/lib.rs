//! # coform (server)
//!
//! The `coform` binary: configuration, HTTP routes, the WebSocket endpoint,
//! startup and shutdown. The collaboration logic lives in `coform-collab`,
//! storage in `coform-storage`; this crate wires them to the network.
//!
//! # Layout
//!
//! - [`api`]: the REST API under `/api` and its OpenAPI document, one
//!   module per resource (`/api/auth/*` split by job: accounts, sessions,
//!   e-mail verification, password reset).
//! - [`auth`]: passwords, tokens, rate limits, e-mail.
//! - [`backup`]: `coform backup` and `coform restore` (the embedded
//!   store's data directory in one checked file, and back).
//! - [`config`]: the one `clap` configuration, with `COFORM_*` fallbacks.
//! - [`datasources`]: how data-source calls are made: secrets opened for
//!   the call only, every dial through the outbound guard, the answer
//!   cache, per-source concurrency and usage figures.
//! - [`server`]: [`server::start`] builds the app state and serves it;
//!   [`server::RunningServer::shutdown`] runs the shutdown sequence.
//! - [`ws`]: `GET /collab/{doc}`: upgrade, the reader and writer of one
//!   connection, rate limiting and keepalive.
//! - [`http`]: health, readiness and metrics routes.
//! - [`error`]: the error table ([`error::Code`]: code, status, meaning;
//!   listed in `docs/ERRORS.md`), [`error::ApiError`] (why a request
//!   failed, and how store and room failures map to answers) and the
//!   WebSocket close codes.
//! - [`web`]: the browser designer (`web/dist`, embedded at build time)
//!   at `/` and its client routes.
//! - [`telemetry`]: logging, request ids and spans, metrics, and the
//!   optional export of spans to an OpenTelemetry collector.

pub mod api;
pub mod auth;
pub mod backup;
pub mod config;
pub mod datasources;
pub mod error;
pub mod http;
pub mod server;
pub mod telemetry;
pub mod web;
pub mod ws;

pub use config::Config;
