//! Process-wide metrics, exported through `prometheus-client`.
//!
//! Counters and gauges are `prometheus-client`'s atomic types and the
//! latency histogram is a fixed set of atomic buckets, so updating any of
//! them on the relay's hot path is a relaxed atomic add: no lock is taken.
//! [`Metrics::register`] adds them to the registry the server encodes at
//! `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the store and load latency buckets.
pub const STORE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// A fixed-bucket latency histogram of atomics. Clones share the counts.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// One count per bound, then one for observations above the last.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram with these (ascending) upper bounds in seconds.
    pub fn new(bounds: &'static [f64]) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram(Arc::new(Buckets {
            bounds,
            counts,
            sum_nanos: AtomicU64::new(0),
        }))
    }

    pub fn observe(&self, d: Duration) {
        let b = &self.0;
        let secs = d.as_secs_f64();
        let i = b
            .bounds
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(b.bounds.len());
        b.counts[i].fetch_add(1, Relaxed);
        b.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(STORE_BUCKETS)
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let b = &self.0;
        // Read the counts first: a concurrent observation then lands in
        // the sum at worst, never in `count` without its bucket.
        let mut buckets: Vec<(f64, u64)> = b
            .bounds
            .iter()
            .zip(b.counts.iter())
            .map(|(bound, c)| (*bound, c.load(Relaxed)))
            .collect();
        buckets.push((f64::INFINITY, b.counts[b.bounds.len()].load(Relaxed)));
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = b.sum_nanos.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Declares [`Metrics`]: each field with its exported name and help, so
/// the struct and its registration cannot drift apart.
macro_rules! metrics {
    ($($(#[$doc:meta])* $field:ident: $ty:ty = $name:literal, $help:literal;)*) => {
        /// Every relay metric. One instance per process, shared by `Arc`.
        #[derive(Default, Debug)]
        pub struct Metrics {
            $($(#[$doc])* pub $field: $ty,)*
        }

        impl Metrics {
            /// Adds every metric to `registry` (clones share the values).
            pub fn register(&self, registry: &mut Registry) {
                $(registry.register($name, $help, self.$field.clone());)*
            }
        }
    };
}

metrics! {
    /// Open WebSocket connections.
    connections: Gauge = "coform_connections", "Open WebSocket connections.";
    /// Rooms (documents) held in memory.
    rooms_loaded: Gauge = "coform_rooms_loaded", "Documents held in memory.";
    /// Document updates accepted from peers (stored and broadcast).
    updates_in: Counter = "coform_updates_in", "Document updates accepted from peers.";
    /// Update deliveries to peers (one per recipient).
    updates_out: Counter = "coform_updates_out", "Update deliveries to peers.";
    /// Bytes of inbound frames.
    bytes_in: Counter = "coform_bytes_in", "Bytes received in WebSocket frames.";
    /// Bytes queued to peers.
    bytes_out: Counter = "coform_bytes_out", "Bytes queued to peers.";
    /// Awareness messages received.
    awareness_in: Counter = "coform_awareness_in", "Awareness messages received.";
    /// Completed compactions.
    compactions: Counter = "coform_compactions", "Completed compactions.";
    /// Failed compactions (retried at the next trigger).
    compaction_failures: Counter = "coform_compaction_failures", "Failed compactions.";
    /// Peers closed because their outbound queue overflowed.
    peers_closed_lag: Counter = "coform_peers_closed_lag", "Peers closed for a full outbound queue.";
    /// Peers closed for a bad or oversized frame or update.
    peers_closed_bad_input: Counter =
        "coform_peers_closed_bad_input", "Peers closed for bad or oversized input.";
    /// Store append failures (the room closes its peers; they resync).
    store_failures: Counter = "coform_store_failures", "Failed store appends.";
    /// Updates whose application panicked inside yrs; the room reloaded.
    update_panics: Counter =
        "coform_update_panics", "Updates that panicked inside the CRDT library.";
    /// Document updates sent by read-only peers (viewers), dropped.
    readonly_updates_dropped: Counter =
        "coform_readonly_updates_dropped", "Document updates from read-only peers, dropped.";
    /// Updates refused for nesting deeper than the limit (at the door, or
    /// once applied; the room then rebuilt from the store).
    updates_refused_nesting: Counter =
        "coform_updates_refused_nesting", "Document updates refused for nesting too deeply.";
    /// Presence states not relayed because their room's presence was full.
    awareness_refused: Counter = "coform_awareness_refused",
        "Presence states not relayed because their document's presence was full.";
    /// Presence messages replaced, while still queued to a peer, by a
    /// newer one of the same awareness clients (never sent: stale).
    awareness_coalesced: Counter = "coform_awareness_coalesced",
        "Presence messages replaced in a peer's queue by a newer state of the same clients.";
    /// Documents stored before the nesting limit, cut back when loaded.
    documents_repaired: Counter =
        "coform_documents_repaired", "Documents cut back to the nesting limit when loaded.";
    /// Connections closed because their sign-in session ended.
    peers_closed_session: Counter =
        "coform_peers_closed_session", "Connections closed because their sign-in session ended.";
    /// Updates after which the server repaired the document (the form
    /// they left was invalid).
    schema_repaired_updates: Counter = "coform_schema_repaired_updates",
        "Updates after which the server repaired the form they left invalid.";
    /// Repairs made, by what was done (`restored`, `defaulted`,
    /// `removed`, `reparented`, `id_fixed`, `dropped`).
    schema_repairs: Family<[(&'static str, &'static str); 1], Counter> = "coform_schema_repairs",
        "Fields and components repaired after live edits, by action.";
    /// Heals of a document after bus messages may have been missed, by
    /// how: `exchange` (answered by the replica that sent them) or `store`.
    bus_heals: Family<[(&'static str, &'static str); 1], Counter> = "coform_bus_heals",
        "Heals after bus messages may have been missed, by how (exchange or store).";
    /// Bytes a heal brought in: the answer of an exchange, or everything
    /// read from the store.
    bus_heal_bytes: Family<[(&'static str, &'static str); 1], Counter> = "coform_bus_heal_bytes",
        "Bytes read to heal after bus messages may have been missed, by how.";
    /// From a heal's first request to the answer applied.
    heal_exchange: Histogram = "coform_bus_heal_exchange_seconds",
        "Time to heal a document by asking the replica whose messages were missed.";
    /// A heal from the store, from its start to the difference sent.
    heal_store: Histogram = "coform_bus_heal_store_seconds",
        "Time to heal a document from the store.";
    /// Store append latency (one observation per group of updates).
    store_append: Histogram = "coform_store_append_seconds",
        "Latency of store appends (one per group commit of a room).";
    /// Time to load a document from the store into a room.
    room_load: Histogram = "coform_room_load_seconds", "Time to load a document from the store.";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(m: &Metrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.store_append.observe(Duration::from_micros(50));
        m.store_append.observe(Duration::from_millis(3));
        m.store_append.observe(Duration::from_secs(10));
        let text = render(&m);
        assert!(text.contains("coform_store_append_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("coform_store_append_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("coform_store_append_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("coform_store_append_seconds_count 3\n"));
        assert_eq!(m.store_append.count(), 3);
    }

    #[test]
    fn counters_keep_their_exported_names() {
        let m = Metrics::default();
        m.updates_in.inc_by(7);
        m.connections.inc();
        m.connections.inc();
        m.connections.dec();
        let text = render(&m);
        assert!(
            text.contains("# TYPE coform_updates_in_total counter\n"),
            "{text}"
        );
        assert!(text.contains("\ncoform_updates_in_total 7\n"), "{text}");
        assert!(text.contains("\ncoform_connections 1\n"), "{text}");
        assert!(
            text.contains("# TYPE coform_room_load_seconds histogram\n"),
            "{text}"
        );
    }
}
