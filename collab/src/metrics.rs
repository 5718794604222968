//! Process-wide counters, rendered in the Prometheus text format.
//!
//! Plain atomics: updating a counter on the hot path is one relaxed
//! `fetch_add`, and no lock is ever taken.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// A fixed-bucket latency histogram.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    overflow: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        match BUCKETS.iter().position(|b| secs <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Relaxed),
            None => self.overflow.fetch_add(1, Relaxed),
        };
        self.sum_nanos.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.overflow.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Every metric Coform exports. One instance per process, shared by `Arc`.
#[derive(Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicI64,
    /// Rooms (documents) held in memory.
    pub rooms_loaded: AtomicI64,
    /// Document updates accepted from peers (stored and broadcast).
    pub updates_in: AtomicU64,
    /// Update deliveries to peers (one per recipient).
    pub updates_out: AtomicU64,
    /// Bytes of inbound frames.
    pub bytes_in: AtomicU64,
    /// Bytes queued to peers.
    pub bytes_out: AtomicU64,
    /// Awareness messages received.
    pub awareness_in: AtomicU64,
    /// Store append latency (one observation per group of updates).
    pub store_append: Histogram,
    /// Time to load a document from the store into a room.
    pub room_load: Histogram,
    /// Completed compactions.
    pub compactions: AtomicU64,
    /// Failed compactions (retried at the next trigger).
    pub compaction_failures: AtomicU64,
    /// Peers closed because their outbound queue overflowed.
    pub peers_closed_lag: AtomicU64,
    /// Peers closed for a bad or oversized frame or update.
    pub peers_closed_bad_input: AtomicU64,
    /// Store append failures (the room closes its peers; they resync).
    pub store_failures: AtomicU64,
    /// Updates whose application panicked inside yrs; the room reloaded.
    pub update_panics: AtomicU64,
    /// Document updates sent by read-only peers (viewers), dropped.
    pub readonly_updates_dropped: AtomicU64,
    /// Updates refused for nesting deeper than the limit (at the door, or
    /// once applied; the room then rebuilt from the store).
    pub updates_refused_nesting: AtomicU64,
    /// Presence states not relayed because their room's presence was full.
    pub awareness_refused: AtomicU64,
    /// Documents stored before the nesting limit, cut back when loaded.
    pub documents_repaired: AtomicU64,
    /// Connections closed because their sign-in session ended.
    pub peers_closed_session: AtomicU64,
}

impl Metrics {
    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauges: [(&str, &str, i64); 2] = [
            (
                "coform_connections",
                "Open WebSocket connections.",
                self.connections.load(Relaxed),
            ),
            (
                "coform_rooms_loaded",
                "Documents held in memory.",
                self.rooms_loaded.load(Relaxed),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters: [(&str, &str, &AtomicU64); 16] = [
            (
                "coform_updates_in_total",
                "Document updates accepted from peers.",
                &self.updates_in,
            ),
            (
                "coform_updates_out_total",
                "Update deliveries to peers.",
                &self.updates_out,
            ),
            (
                "coform_bytes_in_total",
                "Bytes received in WebSocket frames.",
                &self.bytes_in,
            ),
            (
                "coform_bytes_out_total",
                "Bytes queued to peers.",
                &self.bytes_out,
            ),
            (
                "coform_awareness_in_total",
                "Awareness messages received.",
                &self.awareness_in,
            ),
            (
                "coform_compactions_total",
                "Completed compactions.",
                &self.compactions,
            ),
            (
                "coform_compaction_failures_total",
                "Failed compactions.",
                &self.compaction_failures,
            ),
            (
                "coform_peers_closed_lag_total",
                "Peers closed for a full outbound queue.",
                &self.peers_closed_lag,
            ),
            (
                "coform_peers_closed_bad_input_total",
                "Peers closed for bad or oversized input.",
                &self.peers_closed_bad_input,
            ),
            (
                "coform_store_failures_total",
                "Failed store appends.",
                &self.store_failures,
            ),
            (
                "coform_update_panics_total",
                "Updates that panicked inside the CRDT library.",
                &self.update_panics,
            ),
            (
                "coform_readonly_updates_dropped_total",
                "Document updates from read-only peers, dropped.",
                &self.readonly_updates_dropped,
            ),
            (
                "coform_updates_refused_nesting_total",
                "Document updates refused for nesting too deeply.",
                &self.updates_refused_nesting,
            ),
            (
                "coform_awareness_refused_total",
                "Presence states not relayed because their document's presence was full.",
                &self.awareness_refused,
            ),
            (
                "coform_documents_repaired_total",
                "Documents cut back to the nesting limit when loaded.",
                &self.documents_repaired,
            ),
            (
                "coform_peers_closed_session_total",
                "Connections closed because their sign-in session ended.",
                &self.peers_closed_session,
            ),
        ];
        for (name, help, v) in counters {
            let v = v.load(Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        self.store_append.render(
            &mut out,
            "coform_store_append_seconds",
            "Latency of store appends (one per group commit of a room).",
        );
        self.room_load.render(
            &mut out,
            "coform_room_load_seconds",
            "Time to load a document from the store.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.store_append.observe(Duration::from_micros(50));
        m.store_append.observe(Duration::from_millis(3));
        m.store_append.observe(Duration::from_secs(10));
        let text = m.render();
        assert!(text.contains("coform_store_append_seconds_bucket{le=\"0.0001\"} 1"));
        assert!(text.contains("coform_store_append_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("coform_store_append_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("coform_store_append_seconds_count 3"));
    }
}
