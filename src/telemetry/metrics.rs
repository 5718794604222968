//! What `/metrics` exports: the relay's own metrics, HTTP requests by
//! route, and gauges read at scrape time, in one `prometheus-client`
//! registry encoded in the Prometheus text format.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use coform_collab::metrics::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the HTTP request duration buckets: from a
/// cached read to a slow upstream data-source call.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request that matched no route (the designer's
/// static files and client routes, unknown paths).
const OTHER_ROUTE: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// Requests by route template (never the raw path, so ids and query
/// strings neither leak into labels nor multiply the series), method and
/// status, and their durations.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(http_histogram as fn() -> Histogram),
        }
    }
}

impl HttpMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "coform_http_requests",
            "HTTP requests answered, by method, route template and status.",
            self.requests.clone(),
        );
        registry.register(
            "coform_http_request_duration_seconds",
            "Time to answer an HTTP request (to its response head), by method and route template.",
            self.duration.clone(),
        );
    }
}

/// Middleware: counts and times every request by its matched route.
pub async fn record(State(http): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(OTHER_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_str().to_owned();
    let route_labels = RouteLabels { method, route };
    http.duration
        .get_or_create(&route_labels)
        .observe(started.elapsed());
    let RouteLabels { method, route } = route_labels;
    http.requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status,
        })
        .inc();
    response
}

/// Gauges whose value is read when scraped.
struct LiveGauges {
    registry: coform_collab::Registry,
}

impl std::fmt::Debug for LiveGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveGauges")
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let gauge = ConstGauge::new(value);
    let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    gauge.encode(metric)
}

impl Collector for LiveGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Only a replica configured with Redis has a bus to report on.
        if let Some(connected) = self.registry.bus_connected() {
            gauge(
                &mut encoder,
                "coform_redis_connected",
                "1 while this replica's Redis bus is connected, 0 while it is not.",
                i64::from(connected),
            )?;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tasks = runtime.metrics().num_alive_tasks();
            gauge(
                &mut encoder,
                "coform_tasks",
                "Tasks alive on the async runtime (connections, rooms, timers).",
                i64::try_from(tasks).unwrap_or(i64::MAX),
            )?;
        }
        gauge(
            &mut encoder,
            "coform_compactions_queued",
            "Documents whose compaction after unload is queued or running (at most one each).",
            i64::try_from(self.registry.unload_compactions_queued()).unwrap_or(i64::MAX),
        )?;
        if let Some(heap) = heap_figures() {
            gauge(
                &mut encoder,
                "coform_heap_allocated_bytes",
                "Memory the allocator has handed out and not had back: what the process holds, \
                 without the freed memory the allocator keeps for reuse.",
                heap.allocated,
            )?;
            gauge(
                &mut encoder,
                "coform_heap_free_bytes",
                "Freed memory the allocator keeps for reuse (part of the resident memory).",
                heap.free,
            )?;
        }
        let process = process_figures();
        if let Some(rss) = process.resident_bytes {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory of the process.",
                rss,
            )?;
        }
        if let Some(fds) = process.open_fds {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors (sockets, database files).",
                fds,
            )?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct ProcessFigures {
    resident_bytes: Option<i64>,
    open_fds: Option<i64>,
}

/// The process's resident memory and open descriptors, from `/proc` where
/// there is one (nothing elsewhere).
fn process_figures() -> ProcessFigures {
    let resident_bytes = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map(|pages| pages * page_size());
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| i64::try_from(dir.count()).unwrap_or(i64::MAX));
    ProcessFigures {
        resident_bytes,
        open_fds,
    }
}

/// The allocator's own account of the heap.
struct HeapFigures {
    allocated: i64,
    free: i64,
}

/// The C allocator's figures, where it is glibc's (`mallinfo2` walks every
/// arena's free lists under their locks: cheap at scrape intervals, not
/// for a hot path). Resident memory alone cannot tell a leak from freed
/// memory the allocator keeps: this can.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_figures() -> Option<HeapFigures> {
    // SAFETY: mallinfo2 has no preconditions; it returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    let bytes = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Some(HeapFigures {
        allocated: bytes(info.uordblks.saturating_add(info.hblkhd)),
        free: bytes(info.fordblks),
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_figures() -> Option<HeapFigures> {
    None
}

fn page_size() -> i64 {
    // SAFETY: sysconf reads a constant of the system and has no
    // preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        // `c_long` is narrower than `i64` on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        i64::from(size)
    } else {
        4096
    }
}

/// The one registry `/metrics` encodes.
pub struct Exporter {
    registry: Registry,
}

impl Exporter {
    pub fn new(relay: &coform_collab::Registry, http: &HttpMetrics) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "coform_build",
            "The running Coform version.",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        relay.metrics().register(&mut registry);
        http.register(&mut registry);
        registry.register_collector(Box::new(LiveGauges {
            registry: relay.clone(),
        }));
        Exporter { registry }
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The `Content-Type` of [`Exporter::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
