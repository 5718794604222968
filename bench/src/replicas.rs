//! `replicas`: the fanout workload with every document's clients split over
//! two Coform replicas joined by Redis pub/sub: even client indexes on
//! replica A, odd ones on replica B. Deliveries between clients of the
//! same replica and across the replicas are measured apart; the difference
//! of their medians is what the Redis hop adds.
//!
//! The scenario starts its own `redis-server` on a free loopback port (and
//! stops it by its PID) and two coform processes with `--store memory
//! --redis …`: each replica keeps its own updates in memory, so the figure
//! isolates the hop (publish after the local commit, subscribe, apply,
//! broadcast) from the store. Both replicas run on the server cores; CPU
//! and memory figures are replica A's.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::fanout;
use crate::server::{Kind, Spec};
use crate::Window;

/// A throwaway Redis on a free loopback port, killed when dropped.
struct Redis {
    url: String,
    _child: Child,
}

impl Redis {
    async fn start() -> Result<Redis> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow!("cannot start redis-server ({e}): install it (Debian/Ubuntu: apt-get install redis-server)")
            })?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(addr).await.unwrap_or(false) {
                break;
            }
            if Instant::now() > deadline {
                bail!("redis-server on port {port} did not answer PING within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Redis {
            url: format!("redis://127.0.0.1:{port}"),
            _child: child,
        })
    }
}

async fn ping(addr: SocketAddr) -> Result<bool> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).await?;
    Ok(buf[..n].starts_with(b"+PONG"))
}

/// Cross-replica minus same-replica latency, in ms (`None` when either
/// side has no sample).
pub fn hop(cross: &Value, same: &Value) -> Value {
    match (cross.as_f64(), same.as_f64()) {
        (Some(c), Some(s)) => json!(c - s),
        _ => Value::Null,
    }
}

pub async fn run(spec: &Spec, p: &fanout::Params, window: &Window) -> Result<Value> {
    if spec.kind != Kind::Coform || spec.attach.is_some() || spec.cmd.is_some() {
        bail!("replicas starts two coform replicas itself: use --server coform without --attach or --server-cmd");
    }
    if p.clients < 2 {
        bail!("replicas needs at least 2 clients per document (one on each replica)");
    }
    let redis = Redis::start().await?;
    let dir = tempfile::Builder::new()
        .prefix("coform-bench-replicas-")
        .tempdir()?;
    let mut args: Vec<String> = vec![
        "--store".into(),
        "memory".into(),
        "--redis".into(),
        redis.url.clone(),
    ];
    args.extend(p.server_args.iter().cloned());
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a)?;
    std::fs::create_dir_all(&dir_b)?;
    let a = spec.start(&dir_a, &args).await.context("replica A")?;
    let b = match spec.start(&dir_b, &args).await {
        Ok(b) => b,
        Err(e) => {
            let _ = a.stop().await;
            return Err(e.context("replica B"));
        }
    };
    let attached = Spec {
        attach: Some((a.addr, a.pid)),
        ..spec.clone()
    };
    let params = fanout::Params {
        second: Some(b.addr),
        server_args: Vec::new(),
        ..p.clone()
    };
    let result = fanout::run(&attached, &params, window).await;
    let problems_b = b.log_problems();
    let problems_a = a.log_problems();
    let _ = b.stop().await;
    let _ = a.stop().await;
    drop(redis);
    let mut v = result?;
    let get = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let hop_p50 = hop(
        &get("latency_cross_replica_p50_ms"),
        &get("latency_same_replica_p50_ms"),
    );
    let hop_p99 = hop(
        &get("latency_cross_replica_p99_ms"),
        &get("latency_same_replica_p99_ms"),
    );
    if let Some(obj) = v.as_object_mut() {
        obj.insert("redis_hop_p50_ms".into(), hop_p50);
        obj.insert("redis_hop_p99_ms".into(), hop_p99);
        obj.insert(
            "replica_log_problems".into(),
            json!(problems_a.len() + problems_b.len()),
        );
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hop_is_cross_minus_same() {
        assert_eq!(hop(&json!(3.5), &json!(1.0)), json!(2.5));
        assert_eq!(hop(&Value::Null, &json!(1.0)), Value::Null);
    }
}
