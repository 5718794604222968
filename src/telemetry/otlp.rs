//! Export of spans to an OpenTelemetry collector over OTLP/HTTP.
//!
//! With `--otlp-endpoint`, a second layer beside the log lines turns the
//! `tracing` spans that `--otlp-filter` lets through into OpenTelemetry
//! spans: each request's `request` span, a WebSocket connection's `ws`
//! span (a child of its upgrade request) and, at debug level, the rooms'
//! `store.load` and `store.append`. They carry the fields the log lines
//! carry, so the route template and never the path or query string.
//!
//! Ending a span only puts it in the batch processor's bounded queue; the
//! processor's own thread sends the queue every few seconds, and on
//! shutdown ([`Pipeline::shutdown`]). A request never waits for the
//! collector: while it is unreachable, batches fail (reported at most once
//! a minute, see [`Exporter`]) and a full queue drops spans.
//!
//! The HTTP exchanges run on the server's tokio runtime, one connection
//! per batch, HTTPS checked against the web's root authorities.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, HOST};
use hyper_util::rt::TokioIo;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

use crate::config::OtlpConfig;

/// The instrumentation scope of every span Coform exports.
const SCOPE: &str = "coform";

/// Bound of one exchange with the collector (connect, send, answer).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Pipeline::shutdown`] waits for the last batch.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a collector's answer that is read (it is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A failing export is reported again after this long.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The tracer provider with its batch processor and exporter.
pub struct Pipeline {
    provider: SdkTracerProvider,
    /// The traces URL, for the log lines.
    endpoint: String,
}

impl Pipeline {
    /// Builds the exporter for `config.endpoint`; its exchanges run on
    /// `runtime`. Nothing is sent before a span ends.
    pub fn new(config: &OtlpConfig, runtime: Handle) -> Result<Pipeline, String> {
        let endpoint = config
            .endpoint
            .as_ref()
            .ok_or("no --otlp-endpoint")?
            .to_string();
        let last_error = Arc::new(Mutex::new(None));
        let client = Client {
            runtime,
            tls: coform_sources::web_tls_config(),
            last_error: last_error.clone(),
        };
        let otlp = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(EXCHANGE_TIMEOUT)
            .with_http_client(client)
            .build()
            .map_err(|e| e.to_string())?;
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(Exporter::new(otlp, endpoint.clone(), last_error))
            .build();
        Ok(Pipeline { provider, endpoint })
    }

    /// The traces URL spans are sent to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The tracer the `tracing` layer records with.
    pub fn tracer(&self) -> SdkTracer {
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        self.provider.tracer_with_scope(scope)
    }

    /// Sends what is queued and stops, within a few seconds whether the
    /// collector answers or not. Call it after the server has stopped
    /// (so the last spans have ended), while the runtime still runs.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!(error = %e, endpoint = %self.endpoint, "the last spans may not have been exported");
        }
    }
}

/// The OTLP exporter with two additions: request spans follow the
/// OpenTelemetry HTTP conventions, and failures are logged sparingly.
#[derive(Debug)]
struct Exporter<E> {
    inner: E,
    endpoint: String,
    /// The last transport error of the [`Client`]; the OTLP exporter
    /// reports only that the network failed, this says how.
    last_error: Arc<Mutex<Option<String>>>,
    /// Since when exports fail, if they do. Only the batch thread
    /// exports, so this lock is never contended; never held across an
    /// await.
    failing: Mutex<Option<Failing>>,
}

/// A run of failed exports.
#[derive(Debug)]
struct Failing {
    /// When a failure was last logged.
    reported: Instant,
    /// Batches failed since then.
    unreported: u64,
}

impl<E> Exporter<E> {
    fn new(inner: E, endpoint: String, last_error: Arc<Mutex<Option<String>>>) -> Self {
        Exporter {
            inner,
            endpoint,
            last_error,
            failing: Mutex::new(None),
        }
    }

    /// Logs the first failure of a run, then at most one line per
    /// [`REPORT_EVERY`] with the number of batches lost meanwhile.
    fn failed(&self, error: &str) {
        let error = self
            .last_error
            .lock()
            .take()
            .unwrap_or_else(|| error.into());
        let mut failing = self.failing.lock();
        match failing.as_mut() {
            None => {
                tracing::warn!(
                    endpoint = %self.endpoint, %error,
                    "span export failed; spans are dropped until the collector answers \
                     (reported again at most once a minute)"
                );
                *failing = Some(Failing {
                    reported: Instant::now(),
                    unreported: 0,
                });
            }
            Some(run) if run.reported.elapsed() >= REPORT_EVERY => {
                tracing::warn!(
                    endpoint = %self.endpoint, %error, failed_batches = run.unreported + 1,
                    "span export still failing"
                );
                run.reported = Instant::now();
                run.unreported = 0;
            }
            Some(run) => run.unreported += 1,
        }
    }

    fn succeeded(&self) {
        if self.failing.lock().take().is_some() {
            tracing::info!(endpoint = %self.endpoint, "span export works again");
        }
    }
}

impl<E: SpanExporter> SpanExporter for Exporter<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        batch.iter_mut().for_each(http_conventions);
        // Only this export's transport errors explain its failure.
        self.last_error.lock().take();
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.succeeded(),
            Err(e) => self.failed(&e.to_string()),
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn shutdown(&self) -> OTelSdkResult {
        self.inner.shutdown()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A request span as a server span named `GET /api/templates/{id}`, its
/// method and route under the conventional `http.request.method` and
/// `http.route` (the log lines keep the short `method` and `route`).
fn http_conventions(span: &mut SpanData) {
    if span.name != "request" || span.instrumentation_scope.name() != SCOPE {
        return;
    }
    let (mut method, mut route) = (None, None);
    for attribute in &mut span.attributes {
        let key = match attribute.key.as_str() {
            "method" => {
                method = Some(attribute.value.clone());
                "http.request.method"
            }
            "route" => {
                route = Some(attribute.value.clone());
                "http.route"
            }
            _ => continue,
        };
        attribute.key = key.into();
    }
    if let (Some(method), Some(route)) = (method, route) {
        span.name = format!("{} {}", method.as_str(), route.as_str()).into();
    }
    span.span_kind = SpanKind::Server;
}

/// POSTs each batch over a connection of its own, opened on the server's
/// runtime (the batch processor's thread has none).
struct Client {
    runtime: Handle,
    tls: Arc<ClientConfig>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

#[async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let tls = self.tls.clone();
        let exchange = self.runtime.spawn(async move {
            match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(request, tls)).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {EXCHANGE_TIMEOUT:?}").into()),
            }
        });
        let result = match exchange.await {
            Ok(result) => result,
            Err(e) => Err(format!("the runtime dropped the export: {e}").into()),
        };
        if let Err(e) = &result {
            *self.last_error.lock() = Some(e.to_string());
        }
        result
    }
}

/// One POST: connect (TLS for https), send, read the answer.
async fn exchange(
    request: Request<Bytes>,
    tls: Arc<ClientConfig>,
) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri().clone();
    let host = uri.host().ok_or("the collector URL has no host")?;
    // `[::1]` in a URL, `::1` to connect to.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    tcp.set_nodelay(true)?;
    if https {
        let name = ServerName::try_from(host.clone())
            .map_err(|_| format!("`{host}` is not a TLS server name"))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        post(stream, request).await
    } else {
        post(tcp, request).await
    }
}

/// Sends `request` over `stream` with HTTP/1.1 and reads the answer.
async fn post<S>(stream: S, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (parts, body) = request.into_parts();
    let mut request = Request::from_parts(parts, Full::new(body));
    // HTTP/1.1 wants the path in the request line and the host apart.
    let authority = request
        .uri()
        .authority()
        .ok_or("the collector URL has no host")?;
    let host = HeaderValue::from_str(authority.as_str())?;
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()?;
    request.headers_mut().insert(HOST, host);
    *request.uri_mut() = path;

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let answer = async move {
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await?
            .to_bytes();
        // Dropping the sender lets the connection end.
        drop(sender);
        Ok::<_, HttpError>(Response::from_parts(parts, body))
    };
    // The connection is driven until the answer is read and the sender
    // gone; if it fails first, the answer fails with it.
    let (answer, _) = tokio::join!(answer, connection);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, Status};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    fn span(name: &'static str, scope: &'static str, attributes: Vec<KeyValue>) -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder(scope).build(),
        }
    }

    #[test]
    fn request_spans_follow_the_http_conventions() {
        let mut request = span(
            "request",
            SCOPE,
            vec![
                KeyValue::new("request_id", "r-1"),
                KeyValue::new("method", "PUT"),
                KeyValue::new("route", "/api/templates/{id}"),
            ],
        );
        http_conventions(&mut request);
        assert_eq!(request.name, "PUT /api/templates/{id}");
        assert_eq!(request.span_kind, SpanKind::Server);
        let keys: Vec<&str> = request.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["request_id", "http.request.method", "http.route"]);

        let ws = span("ws", SCOPE, vec![KeyValue::new("doc", "d")]);
        let mut shaped = ws.clone();
        http_conventions(&mut shaped);
        assert_eq!(shaped.name, ws.name);
        assert_eq!(shaped.span_kind, SpanKind::Internal);
        let mut foreign = span("request", "other", vec![KeyValue::new("method", "GET")]);
        http_conventions(&mut foreign);
        assert_eq!(foreign.attributes[0].key.as_str(), "method");
    }
}
