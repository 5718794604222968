//! Health, readiness and the Prometheus metrics, as an operator sees them.

mod support;

use support::*;

const METRICS: &[&str] = &[
    "coform_connections",
    "coform_rooms_loaded",
    "coform_updates_in_total",
    "coform_updates_out_total",
    "coform_store_append_seconds_count",
    "coform_store_append_seconds_sum",
    "coform_store_append_seconds_bucket",
    "coform_compactions_total",
    "coform_peers_closed_lag_total",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let server = Server::open().await;
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    assert_eq!(http_get(server.addr, "/readyz").await.0, 200);

    let m = metrics(server.addr).await;
    for name in METRICS {
        assert!(m.has(name), "metric `{name}` missing:\n{}", m.raw);
    }
    assert!(
        m.raw
            .contains("# TYPE coform_store_append_seconds histogram"),
        "coform_store_append_seconds is not declared a histogram:\n{}",
        m.raw
    );
    assert_eq!(m.get("coform_connections"), 0.0);
    assert_eq!(m.get("coform_rooms_loaded"), 0.0);

    let room = "metrics";
    let [a, b, c] = connect_all(server.addr, room, ["a", "b", "c"]).await;
    for n in 0..10 {
        a.set_key("map", &format!("k{n}"), "v").await;
    }
    for peer in [&b, &c] {
        peer.wait_map_len("map", 10).await;
    }
    let m = metrics(server.addr).await;
    assert_eq!(m.get("coform_connections"), 3.0);
    assert_eq!(m.get("coform_rooms_loaded"), 1.0);
    assert!(
        m.get("coform_updates_in_total") >= 10.0,
        "{}",
        m.get("coform_updates_in_total")
    );
    // Each of the 10 updates went to the two other peers.
    assert!(
        m.get("coform_updates_out_total") >= 20.0,
        "{}",
        m.get("coform_updates_out_total")
    );
    assert!(m.get("coform_store_append_seconds_count") >= 1.0);

    // When everyone leaves, the room unloads after its grace period.
    drop((a, b, c));
    wait_metric(server.addr, "coform_connections", TIMEOUT, |v| v == 0.0).await;
    wait_metric(server.addr, "coform_rooms_loaded", TIMEOUT, |v| v == 0.0).await;
    // And loads again, with its content, on the next join.
    let d = WsClient::connect(server.addr, room, "d").await;
    assert_eq!(d.map_keys("map").len(), 10);
    // A room whose store holds only a snapshot serves joins from it while
    // it builds the document, and counts itself loaded once built: await
    // that instead of racing it.
    wait_metric(server.addr, "coform_rooms_loaded", TIMEOUT, |v| v == 1.0).await;
}
