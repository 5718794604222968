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

/// The labels of one series, e.g. `method="GET",route="/healthz"`, as a map.
fn labels(raw: &str) -> std::collections::BTreeMap<String, String> {
    raw.split("\",")
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once("=\"").expect("label=\"value\"");
            (k.to_owned(), v.trim_end_matches('"').to_owned())
        })
        .collect()
}

/// The value of the series `name` whose labels include every pair given.
fn series(m: &Metrics, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    m.series
        .iter()
        .filter(|(n, l, _)| {
            let l = labels(l);
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .reduce(|a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_are_counted_by_route_template_and_status() {
    let server = Server::start().await;
    for _ in 0..3 {
        server.get("/healthz", None).await.expect(200);
    }
    server
        .get("/api/templates/tpl-private-7c1", None)
        .await
        .expect_error(401, "unauthorized");
    server.get("/no/such/page", None).await;
    let m = metrics(server.addr).await;
    let healthz = [("method", "GET"), ("route", "/healthz"), ("status", "200")];
    assert_eq!(
        series(&m, "coform_http_requests_total", &healthz),
        Some(3.0),
        "{}",
        m.raw
    );
    let template = [
        ("method", "GET"),
        ("route", "/api/templates/{id}"),
        ("status", "401"),
    ];
    assert_eq!(
        series(&m, "coform_http_requests_total", &template),
        Some(1.0)
    );
    // What no route matched is one series, whatever the path.
    assert_eq!(
        series(&m, "coform_http_requests_total", &[("route", "other")]),
        Some(1.0),
        "{}",
        m.raw
    );
    // Paths never become labels: an id in a path would leak and multiply
    // the series.
    assert!(!m.raw.contains("tpl-private-7c1"), "{}", m.raw);
    assert!(!m.raw.contains("/no/such/page"), "{}", m.raw);
    let count = series(
        &m,
        "coform_http_request_duration_seconds_count",
        &[("method", "GET"), ("route", "/healthz")],
    );
    assert_eq!(count, Some(3.0), "{}", m.raw);
    assert!(m
        .raw
        .contains("# TYPE coform_http_request_duration_seconds histogram"));
    // The figures a soak run watches stay flat.
    for name in [
        "coform_tasks",
        "process_resident_memory_bytes",
        "process_open_fds",
        "coform_heap_allocated_bytes",
    ] {
        assert!(m.get(name) > 0.0, "{name}:\n{}", m.raw);
    }
    // The live heap is part of the resident memory, and nothing has
    // unloaded yet, so no compaction after unload is queued.
    assert!(m.get("coform_heap_allocated_bytes") < m.get("process_resident_memory_bytes"));
    assert!(m.has("coform_heap_free_bytes"), "{}", m.raw);
    assert_eq!(m.get("coform_compactions_queued"), 0.0, "{}", m.raw);
    // Without --redis there is no bus to report on.
    assert!(!m.has("coform_redis_connected"), "{}", m.raw);
    assert_eq!(
        series(
            &m,
            "coform_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id() {
    let server = Server::start().await;
    // The caller's id is kept when it is a short plain token…
    let r = server
        .request(
            "GET",
            "/healthz",
            None,
            &[("x-request-id", "lb-3f2a.77")],
            Body::None,
        )
        .await;
    assert_eq!(r.header("x-request-id").as_deref(), Some("lb-3f2a.77"));
    // …and replaced otherwise, as it is when there is none.
    let mut seen = std::collections::HashSet::new();
    let long = "x".repeat(65);
    for given in [Some("has space"), Some(long.as_str()), None] {
        let headers: Vec<(&str, &str)> = given.map(|g| ("x-request-id", g)).into_iter().collect();
        let r = server
            .request("GET", "/api/auth/me", None, &headers, Body::None)
            .await;
        r.expect_error(401, "unauthorized");
        let id = r
            .header("x-request-id")
            .expect("an id on an error answer too");
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert!(seen.insert(id), "ids repeat");
    }
}

/// The log lines written while answering a request carry its id and its
/// route template, never its path or query string (a WebSocket's token
/// travels in the query).
#[tokio::test]
async fn log_lines_carry_the_request_id_and_no_path() {
    let server = ProcessServer::start_env(
        &["--log-format", "json"],
        &[("COFORM_LOG", "info,tower_http=debug")],
    )
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!(
        "http://{}/collab/room-9d2?token=canary-token-51e",
        server.addr
    );
    let r = http
        .get(url)
        .header("x-request-id", "trace-me-0042")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-0042");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let lines = loop {
        let lines: Vec<String> = server
            .stderr()
            .lines()
            .filter(|l| l.contains("trace-me-0042"))
            .map(str::to_owned)
            .collect();
        // The trace layer logs the start and the end of the request.
        if lines.len() >= 2 || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(lines.len() >= 2, "{}", server.stderr());
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert_eq!(v["span"]["request_id"], "trace-me-0042", "{line}");
        assert_eq!(v["span"]["route"], "/collab/{doc}", "{line}");
    }
    let all = server.stderr();
    assert!(!all.contains("canary-token-51e"), "{all}");
    assert!(!all.contains("room-9d2?"), "{all}");
}
