//! Logging, request ids and spans, and metrics.
//!
//! Logs are `tracing` events to stderr, text or JSON lines; the level
//! filter comes from `COFORM_LOG` (e.g. `info`, `coform_collab=debug`).
//! Each line written while answering a request names the request's span
//! (id, method, route): see [`request`]. [`metrics`] is what `/metrics`
//! exports.

pub mod metrics;
pub mod request;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("COFORM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging was already set up: {e}");
    }
}
