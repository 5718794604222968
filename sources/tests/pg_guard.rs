//! A PostgreSQL source dials only what the guard vetted: a host that
//! resolves inward, or to a metadata service, is refused before any
//! connection is attempted.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coform_sources::{Connector, Guard, PgLimits, Policy, Postgres, StaticResolver};
use serde_json::{json, Map};
use tokio::net::TcpStream;

/// Records every address it is asked to dial, and dials none.
#[derive(Default, Clone)]
struct Recorder {
    dialled: Arc<Mutex<Vec<SocketAddr>>>,
}

#[async_trait]
impl Connector for Recorder {
    type Stream = TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.dialled.lock().unwrap().push(addr);
        Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "recorded, not dialled",
        ))
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn inward_and_metadata_hosts_are_never_dialled() {
    let policy = Policy::new()
        .allow(["127.0.0.1/32".parse().unwrap()])
        .unwrap();
    let resolver = StaticResolver::new()
        .with("db.internal.example", [ip("10.0.0.5")])
        .with("metadata.example", [ip("169.254.169.254")])
        .with("mixed.example", [ip("127.0.0.1"), ip("10.0.0.5")]);
    let recorder = Recorder::default();
    let pg = Postgres::new(
        Guard::new(policy, Arc::new(resolver)),
        recorder.clone(),
        PgLimits::default(),
    );
    for host in [
        "db.internal.example",
        "metadata.example",
        "mixed.example",
        "169.254.169.254",
        "0xa000005",
    ] {
        let source = serde_json::from_value(json!({
            "engine": "postgresql", "host": host, "database": "d", "user": "u",
            "password": "p", "query": "SELECT 1", "sslMode": "disable"
        }))
        .unwrap();
        for call in 0..3 {
            let err = match call {
                0 => pg.execute(&source, &Map::new()).await,
                1 => pg.test(&source, &Map::new()).await,
                _ => pg.schema(&source).await,
            }
            .unwrap_err();
            assert_eq!(err.code(), "blocked_address", "{host}: {err}");
        }
    }
    assert_eq!(*recorder.dialled.lock().unwrap(), vec![]);
}
