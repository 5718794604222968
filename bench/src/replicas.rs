//! `replicas`: the fanout workload over N Coform replicas (`--replicas`,
//! default 2) joined by Redis pub/sub. With `--spread span` every
//! document has clients on every replica (client i on replica i mod N);
//! with `--spread affinity` each document's clients are all on one replica
//! (document d on replica d mod N), as a load balancer with document
//! affinity places them. Deliveries between clients of the same replica
//! and across replicas are measured apart; the difference of their
//! percentiles is what the Redis hop adds.
//!
//! The scenario starts its own `redis-server` on a free loopback port (and
//! stops it by its PID) and the coform processes with `--store memory
//! --redis …`: each replica keeps its own updates in memory, so the figure
//! isolates the hop (publish after the local commit, subscribe, apply,
//! broadcast) from the store. `--replicas 1` runs one replica without
//! Redis: the baseline at the same load. Every replica and Redis run on
//! the server cores; the CPU figures are their sum (and per process in
//! `server_cpu_parts`), memory figures are the first replica's.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::fanout::{self, Spread};
use crate::server::{Kind, Spec};
use crate::Window;

/// A throwaway Redis on a free loopback port, killed when dropped.
pub struct Redis {
    pub url: String,
    pid: Option<u32>,
    _child: Child,
}

impl Redis {
    pub async fn start() -> Result<Redis> {
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
            pid: child.id(),
            _child: child,
        })
    }
}

async fn ping(addr: SocketAddr) -> Result<bool> {
    Ok(redis_cmd(addr, &[b"PING"]).await? == b"PONG")
}

/// One Redis command in RESP on a new connection; the raw reply (a simple
/// string, an integer, or one bulk string), or an error for Redis's own.
pub async fn redis_cmd(addr: SocketAddr, args: &[&[u8]]) -> Result<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    s.write_all(&req).await?;
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("redis closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
            continue;
        };
        match buf[0] {
            b'-' => bail!("redis: {}", String::from_utf8_lossy(&buf[1..eol])),
            b'$' => {
                let len: usize = std::str::from_utf8(&buf[1..eol])?.parse()?;
                if buf.len() >= eol + 2 + len + 2 {
                    return Ok(buf[eol + 2..eol + 2 + len].to_vec());
                }
            }
            _ => return Ok(buf[1..eol].to_vec()),
        }
    }
}

/// Cross-replica minus same-replica latency, in ms (`None` when either
/// side has no sample).
pub fn hop(cross: &Value, same: &Value) -> Value {
    match (cross.as_f64(), same.as_f64()) {
        (Some(c), Some(s)) => json!(c - s),
        _ => Value::Null,
    }
}

pub async fn run(
    spec: &Spec,
    p: &fanout::Params,
    replicas: usize,
    spread: Spread,
    window: &Window,
) -> Result<Value> {
    if spec.kind != Kind::Coform || spec.attach.is_some() || spec.cmd.is_some() {
        bail!("replicas starts its coform replicas itself: use --server coform without --attach or --server-cmd");
    }
    if !(1..=4).contains(&replicas) {
        bail!("--replicas takes 1 to 4");
    }
    if replicas > 1 && spread == Spread::Span && p.clients < replicas {
        bail!("spanning {replicas} replicas needs at least {replicas} clients per document");
    }
    let redis = match replicas {
        1 => None,
        _ => Some(Redis::start().await?),
    };
    let dir = tempfile::Builder::new()
        .prefix("coform-bench-replicas-")
        .tempdir()?;
    let mut args: Vec<String> = vec!["--store".into(), "memory".into()];
    if let Some(redis) = &redis {
        args.extend(["--redis".into(), redis.url.clone()]);
    }
    args.extend(p.server_args.iter().cloned());
    let mut servers = Vec::with_capacity(replicas);
    for i in 0..replicas {
        let data = dir.path().join(format!("replica-{}", i + 1));
        std::fs::create_dir_all(&data)?;
        match spec.start(&data, &args).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                for s in servers.into_iter().rev() {
                    let _ = s.stop().await;
                }
                return Err(e.context(format!("replica {}", i + 1)));
            }
        }
    }
    let mut also: Vec<(String, u32)> = servers[1..]
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((format!("replica-{}", i + 2), s.pid?)))
        .collect();
    if let Some(pid) = redis.as_ref().and_then(|r| r.pid) {
        also.push(("redis".into(), pid));
    }
    let attached = Spec {
        attach: Some((servers[0].addr, servers[0].pid)),
        also,
        ..spec.clone()
    };
    let params = fanout::Params {
        others: servers[1..].iter().map(|s| s.addr).collect(),
        spread,
        server_args: Vec::new(),
        ..p.clone()
    };
    let result = fanout::run(&attached, &params, window).await;
    let problems: usize = servers.iter().map(|s| s.log_problems().len()).sum();
    for s in servers.into_iter().rev() {
        let _ = s.stop().await;
    }
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
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    // CPU of every replica and Redis per delivery, and Redis's per update
    // published (each update is published once, by its replica).
    let per_delivery = match (f("server_cpu_util"), f("deliveries_per_s")) {
        (Some(cpu), Some(d)) if d > 0.0 => json!(cpu / d * 1e6),
        _ => Value::Null,
    };
    let redis_cpu = v
        .get("server_cpu_parts")
        .and_then(|parts| parts.get("redis"))
        .and_then(Value::as_f64);
    let per_publish = match (redis_cpu, f("updates_per_s")) {
        (Some(cpu), Some(u)) if u > 0.0 => {
            json!(cpu / (u * p.duration.as_secs_f64()) * 1e6)
        }
        _ => Value::Null,
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("replicas".into(), json!(replicas));
        obj.insert("spread".into(), json!(spread.name()));
        obj.insert("redis_hop_p50_ms".into(), hop_p50);
        obj.insert("redis_hop_p99_ms".into(), hop_p99);
        obj.insert("server_cpu_us_per_delivery".into(), per_delivery);
        obj.insert("redis_cpu_us_per_update".into(), per_publish);
        obj.insert("replica_log_problems".into(), json!(problems));
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
