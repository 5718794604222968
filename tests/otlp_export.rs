//! Span export (`--otlp-endpoint`) as an OpenTelemetry collector sees it:
//! what arrives, what never does, and a server that keeps serving while
//! the collector is away.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use support::*;

/// One POST the collector received.
struct Posted {
    content_type: String,
    body: Bytes,
}

/// An OTLP/HTTP receiver on 127.0.0.1: keeps every body POSTed to
/// `/v1/traces` and answers as a collector does (an empty protobuf
/// `ExportTraceServiceResponse`).
struct Collector {
    addr: SocketAddr,
    posted: mpsc::UnboundedReceiver<Posted>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        let (tx, posted) = mpsc::unbounded_channel();
        let app = Router::new().route(
            "/v1/traces",
            post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    let content_type = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    // Kept before the answer leaves: once the exporter has
                    // its answer, the body is here.
                    let _ = tx.send(Posted { content_type, body });
                    (
                        [(header::CONTENT_TYPE, "application/x-protobuf")],
                        Bytes::new(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("collector serves");
        });
        Collector { addr, posted, task }
    }

    /// Everything received so far.
    fn received(&mut self) -> Vec<Posted> {
        let mut all = Vec::new();
        while let Ok(p) = self.posted.try_recv() {
            all.push(p);
        }
        all
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A span with the resource it came with.
struct Exported {
    resource: HashMap<String, String>,
    span: Span,
}

impl Exported {
    fn attr(&self, key: &str) -> Option<String> {
        attrs(&self.span.attributes).remove(key)
    }
}

fn attrs(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .filter_map(|kv| {
            let text = match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => s.clone(),
                Value::IntValue(i) => i.to_string(),
                Value::BoolValue(b) => b.to_string(),
                Value::DoubleValue(d) => d.to_string(),
                other => format!("{other:?}"),
            };
            Some((kv.key.clone(), text))
        })
        .collect()
}

fn decode(posted: &[Posted]) -> Vec<Exported> {
    let mut spans = Vec::new();
    for p in posted {
        assert_eq!(p.content_type, "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(p.body.clone())
            .expect("an OTLP protobuf ExportTraceServiceRequest");
        for rs in request.resource_spans {
            let resource = rs
                .resource
                .map(|r| attrs(&r.attributes))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    spans.push(Exported {
                        resource: resource.clone(),
                        span,
                    });
                }
            }
        }
    }
    spans
}

fn names(spans: &[Exported]) -> Vec<&str> {
    spans.iter().map(|s| s.span.name.as_str()).collect()
}

/// Requests, a WebSocket connection and store spans reach the collector
/// as server and child spans with route templates, and no token or raw
/// path does; the last of them leave during the graceful shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_without_paths_or_tokens() {
    let mut collector = Collector::start().await;
    let endpoint = format!("http://{}", collector.addr);
    let mut server = ProcessServer::start(&[
        "--otlp-endpoint",
        &endpoint,
        "--otlp-filter",
        "info,coform_collab=debug",
    ])
    .await;

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .get(format!(
            "http://{}/api/templates/tpl-raw-77?token=secret-xyz",
            server.addr
        ))
        .header("x-request-id", "test-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "test-id-123");

    let a = WsClient::connect_token(server.addr, "otel-room", "secret-xyz", "a").await;
    let b = WsClient::connect(server.addr, "otel-room", "b").await;
    // Relayed only once stored: the append has happened.
    a.set_key_seen_by(&b, "fields", "name", "text").await;
    a.close().await;

    // SIGTERM: the server stops, then sends what is still queued.
    let status = server.terminate().await;
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    let posted = collector.received();
    assert!(
        !posted.is_empty(),
        "the collector received nothing; stderr:\n{}",
        server.stderr()
    );
    let spans = decode(&posted);

    let rest = spans
        .iter()
        .find(|s| s.attr("request_id").as_deref() == Some("test-id-123"))
        .unwrap_or_else(|| panic!("no span with the request id among {:?}", names(&spans)));
    assert_eq!(rest.span.name, "GET /api/templates/{id}");
    assert_eq!(rest.span.kind, SpanKind::Server as i32);
    assert_eq!(
        rest.attr("http.route").as_deref(),
        Some("/api/templates/{id}")
    );
    assert_eq!(rest.attr("http.request.method").as_deref(), Some("GET"));
    assert_eq!(
        rest.resource.get("service.name").map(String::as_str),
        Some("coform")
    );
    assert_eq!(
        rest.resource.get("service.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );

    // The connection's span is a child of its upgrade request's.
    let ws = spans
        .iter()
        .find(|s| s.span.name == "ws")
        .unwrap_or_else(|| panic!("no ws span among {:?}", names(&spans)));
    assert_eq!(ws.attr("doc").as_deref(), Some("otel-room"));
    let upgrade = spans
        .iter()
        .find(|s| s.span.span_id == ws.span.parent_span_id)
        .unwrap_or_else(|| panic!("the ws span's parent is missing: {:?}", names(&spans)));
    assert_eq!(upgrade.span.name, "GET /collab/{doc}");
    assert_eq!(upgrade.span.trace_id, ws.span.trace_id);

    // Debug spans, which this filter lets through.
    let stored: Vec<&str> = names(&spans)
        .into_iter()
        .filter(|n| n.starts_with("store."))
        .collect();
    assert!(stored.contains(&"store.load"), "{:?}", names(&spans));
    assert!(stored.contains(&"store.append"), "{:?}", names(&spans));

    let all: Vec<u8> = posted.iter().flat_map(|p| p.body.to_vec()).collect();
    let text = String::from_utf8_lossy(&all);
    for secret in ["secret-xyz", "token=", "tpl-raw-77"] {
        assert!(!text.contains(secret), "`{secret}` was exported");
    }
}

/// With the collector down, requests are answered as ever, the failure
/// is logged once for many failed batches, and shutdown is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_logged_once_and_costs_no_request() {
    // A port nothing listens on any more: connections are refused.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{gone}");
    let mut server = ProcessServer::start_env(
        &["--otlp-endpoint", &endpoint],
        // Batches every 20 ms rather than every 5 s.
        &[("OTEL_BSP_SCHEDULE_DELAY", "20")],
    )
    .await;
    let failure = "span export failed";
    for _ in 0..20 {
        assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    }
    poll("the export failure in the log", TIMEOUT, || {
        let seen = server.stderr().contains(failure);
        async move { seen.then_some(()) }
    })
    .await;
    // More batches fail, the last one during shutdown.
    for _ in 0..20 {
        assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    }
    let status = server.terminate().await;
    server.stderr_complete().await;
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    let log = server.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(failure)).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains(&gone.to_string()), "{}", lines[0]);
    assert!(!log.contains("still failing"), "{log}");
}

/// An https:// collector must show a certificate of a public authority:
/// the exporter speaks TLS to it, refuses one it cannot verify, sends no
/// spans, and the log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_collector_with_an_unknown_certificate_gets_no_spans() {
    let self_signed = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        self_signed.key_pair.serialize_der(),
    ));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self_signed.cert.der().clone()], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut handshakes) = mpsc::unbounded_channel();
    let collector = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let result = acceptor.accept(socket).await.map(drop);
            let _ = tx.send(result.map_err(|e| e.to_string()));
        }
    });

    let server = ProcessServer::start_env(
        &["--otlp-endpoint", &format!("https://{addr}")],
        &[("OTEL_BSP_SCHEDULE_DELAY", "20")],
    )
    .await;
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    let handshake = within(
        TIMEOUT,
        "a TLS handshake from the exporter",
        handshakes.recv(),
    )
    .await
    .expect("the collector runs");
    // The client hello came, and the client refused the certificate.
    let error = handshake.expect_err("the exporter accepted a self-signed certificate");
    assert!(error.contains("fatal alert"), "{error}");
    poll("the certificate error in the log", TIMEOUT, || {
        let log = server.stderr();
        let seen = log
            .lines()
            .any(|l| l.contains("span export failed") && l.contains("invalid peer certificate"));
        async move { seen.then_some(()) }
    })
    .await;
    collector.abort();
}
