//! Logging, request ids and spans, metrics, and span export.
//!
//! Logs are `tracing` events to stderr, text or JSON lines; the level
//! filter comes from `COFORM_LOG` (e.g. `info`, `coform_collab=debug`).
//! Each line written while answering a request names the request's span
//! (id, method, route): see [`request`]. [`metrics`] is what `/metrics`
//! exports. With `--otlp-endpoint`, [`otlp`] sends the spans to an
//! OpenTelemetry collector too, filtered by `--otlp-filter` apart from
//! the log lines.

pub mod metrics;
pub mod otlp;
pub mod request;

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// What [`init`] started that must be stopped before the process exits.
#[must_use = "call shutdown so that the last spans are exported"]
pub struct Telemetry {
    spans: Option<otlp::Pipeline>,
}

impl Telemetry {
    /// Exports the spans still queued, if spans are exported, within a
    /// few seconds. Call it once the server has stopped, while the async
    /// runtime still runs.
    pub fn shutdown(self) {
        if let Some(spans) = self.spans {
            spans.shutdown();
        }
    }
}

/// Installs the global subscriber: log lines, and spans to a collector
/// when `spans` is given (with its `--otlp-filter`). Call once, before
/// anything logs.
pub fn init(format: LogFormat, spans: Option<(otlp::Pipeline, &str)>) -> Telemetry {
    let filter = EnvFilter::try_from_env("COFORM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logs = match format {
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
        LogFormat::Text => logs.with_filter(filter).boxed(),
    };
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![logs];
    let mut pipeline = None;
    if let Some((spans, directives)) = spans {
        // Checked by `Config::validate`; nothing is exported otherwise.
        let filter = EnvFilter::builder()
            .parse(directives)
            .unwrap_or_else(|_| EnvFilter::new("off"));
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(spans.tracer())
                .with_location(false)
                .with_threads(false)
                // Nothing here reads the OpenTelemetry context; the span
                // tree is `tracing`'s.
                .with_context_activation(false)
                .with_filter(filter)
                .boxed(),
        );
        pipeline = Some(spans);
    }
    if let Err(e) = tracing_subscriber::registry().with(layers).try_init() {
        eprintln!("logging was already set up: {e}");
    }
    if let Some(spans) = &pipeline {
        tracing::info!(endpoint = spans.endpoint(), "exporting spans over OTLP");
    }
    Telemetry { spans: pipeline }
}
