//! Tests of vetting and dialling: a refused address is never dialled,
//! the addresses dialled are the ones vetted, and a name is looked up
//! once. Only the last test opens a socket, on 127.0.0.1.

use std::io;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::address::Reason;
use crate::cidr::Cidr;
use crate::dial::TcpConnector;
use crate::resolve::StaticResolver;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn at(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(s), port)
}

/// A connector that opens nothing: it records every address it is asked
/// to dial, and fails the addresses it was told to fail.
#[derive(Default)]
struct Recorder {
    dialled: Mutex<Vec<SocketAddr>>,
    failing: Vec<SocketAddr>,
}

impl Recorder {
    fn failing(addrs: &[SocketAddr]) -> Self {
        Recorder {
            dialled: Mutex::default(),
            failing: addrs.to_vec(),
        }
    }

    fn dialled(&self) -> Vec<SocketAddr> {
        self.dialled.lock().unwrap().clone()
    }
}

#[async_trait]
impl Connector for Recorder {
    /// The address the "connection" went to.
    type Stream = SocketAddr;

    async fn connect(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        self.dialled.lock().unwrap().push(addr);
        if self.failing.contains(&addr) {
            Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"))
        } else {
            Ok(addr)
        }
    }
}

/// A guard over `resolver` under `policy`, keeping the resolver to count
/// its lookups.
fn guard_with(policy: Policy, resolver: StaticResolver) -> (Guard, Arc<StaticResolver>) {
    let resolver = Arc::new(resolver);
    (Guard::new(policy, resolver.clone()), resolver)
}

fn table() -> StaticResolver {
    StaticResolver::new()
        .with("api.example.com", [ip("93.184.216.34")])
        .with(
            "dual.example.com",
            [ip("93.184.216.34"), ip("2606:2800:220:1::1")],
        )
        .with("inward.example.com", [ip("10.0.0.7")])
        .with("loopback.example.com", [ip("127.0.0.1")])
        .with(
            "rebind.example.com",
            [ip("93.184.216.34"), ip("169.254.169.254")],
        )
        .with(
            "mixed.example.com",
            [ip("93.184.216.34"), ip("::ffff:192.168.0.1")],
        )
        .with(
            "twice.example.com",
            [ip("93.184.216.34"), ip("93.184.216.34")],
        )
        .with("empty.example.com", [])
        .with("db.internal", [ip("10.20.0.5"), ip("10.20.0.6")])
}

#[tokio::test]
async fn a_public_name_is_vetted_to_its_addresses_with_the_port() {
    let (guard, resolver) = guard_with(Policy::new(), table());
    assert_eq!(
        guard.vet("dual.example.com", 8443).await.unwrap(),
        vec![at("93.184.216.34", 8443), at("2606:2800:220:1::1", 8443)]
    );
    assert_eq!(
        guard.vet("twice.example.com", 443).await.unwrap(),
        vec![at("93.184.216.34", 443)]
    );
    assert_eq!(
        resolver.lookups(),
        ["dual.example.com", "twice.example.com"]
    );
}

#[tokio::test]
async fn one_refused_answer_refuses_the_whole_name_and_nothing_is_dialled() {
    for (host, addr, reason) in [
        (
            "rebind.example.com",
            at("169.254.169.254", 443),
            Reason::Metadata,
        ),
        (
            "mixed.example.com",
            at("::ffff:192.168.0.1", 443),
            Reason::Private,
        ),
        ("inward.example.com", at("10.0.0.7", 443), Reason::Private),
        (
            "loopback.example.com",
            at("127.0.0.1", 443),
            Reason::Loopback,
        ),
    ] {
        let (guard, _) = guard_with(Policy::new(), table());
        let recorder = Recorder::default();
        let err = guard.connect(host, 443, &recorder).await.unwrap_err();
        let refusal = err.refusal().unwrap_or_else(|| panic!("{host}: {err}"));
        assert_eq!(
            (refusal.host.as_str(), refusal.addr, refusal.reason),
            (host, addr, reason)
        );
        assert_eq!(err.code(), "blocked_address");
        assert!(
            recorder.dialled().is_empty(),
            "{host}: dialled {:?}",
            recorder.dialled()
        );
    }
}

#[tokio::test]
async fn literal_hosts_are_judged_without_a_lookup_in_every_notation() {
    let (guard, resolver) = guard_with(Policy::new(), table());
    let recorder = Recorder::default();
    for host in [
        "127.0.0.1",
        "127.0.0.1.",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "127.0.1",
        "0x7f.1",
        "[::1]",
        "::1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
    ] {
        let err = guard.connect(host, 80, &recorder).await.unwrap_err();
        assert_eq!(
            err.refusal().map(|r| r.reason),
            Some(Reason::Loopback),
            "{host}: {err}"
        );
    }
    for (host, reason) in [
        ("0xa9fea9fe", Reason::Metadata),
        ("169.254.43518", Reason::Metadata),
        ("[::ffff:a9fe:a9fe]", Reason::Metadata),
        ("[fd00:ec2::254]", Reason::Metadata),
        ("[fe80::1%25eth0]", Reason::LinkLocal),
        ("0", Reason::Unspecified),
        ("012.0.0.1", Reason::Private),
    ] {
        let err = guard.connect(host, 80, &recorder).await.unwrap_err();
        assert_eq!(
            err.refusal().map(|r| r.reason),
            Some(reason),
            "{host}: {err}"
        );
    }
    assert!(
        resolver.lookups().is_empty(),
        "looked up {:?}",
        resolver.lookups()
    );
    assert!(
        recorder.dialled().is_empty(),
        "dialled {:?}",
        recorder.dialled()
    );

    // A public literal is handed out as it is, still without a lookup.
    assert_eq!(
        guard.vet("0x5db8d822", 443).await.unwrap(),
        vec![at("93.184.216.34", 443)]
    );
    assert_eq!(
        guard.vet("[2606:4700::1]", 443).await.unwrap(),
        vec![at("2606:4700::1", 443)]
    );
    assert!(resolver.lookups().is_empty());
}

#[tokio::test]
async fn malformed_hosts_are_refused_before_any_lookup() {
    let (guard, resolver) = guard_with(Policy::new(), table());
    for host in [
        "",
        "1.2.3.4.5",
        "256.0.0.1",
        "example.123",
        "0x1g.1",
        "exa mple.com",
        "api.example.com\0",
        "api.example.com:80",
        "user@api.example.com",
        "[::1",
        "[::1]:80",
        "a..b",
        "bücher.example",
    ] {
        let err = guard.vet(host, 443).await.unwrap_err();
        assert_eq!(err.code(), "invalid_host", "{host:?}: {err}");
    }
    assert!(
        resolver.lookups().is_empty(),
        "looked up {:?}",
        resolver.lookups()
    );
}

#[tokio::test]
async fn the_addresses_dialled_are_the_ones_vetted_after_a_single_lookup() {
    let policy = Policy::new()
        .allow(["10.20.0.0/16".parse::<Cidr>().unwrap()])
        .unwrap();
    let (guard, resolver) = guard_with(policy, table());
    let vetted = guard.vet("db.internal", 5432).await.unwrap();
    assert_eq!(vetted, vec![at("10.20.0.5", 5432), at("10.20.0.6", 5432)]);

    // The first address fails: the next vetted one is tried, and nothing
    // else. The name is resolved once for the whole call.
    let recorder = Recorder::failing(&[at("10.20.0.5", 5432)]);
    let connected = guard.connect("db.internal", 5432, &recorder).await.unwrap();
    assert_eq!(connected, at("10.20.0.6", 5432));
    assert_eq!(recorder.dialled(), vetted);
    assert_eq!(resolver.lookups(), ["db.internal", "db.internal"]);
}

#[tokio::test]
async fn when_every_vetted_address_fails_the_last_failure_is_reported() {
    let (guard, _) = guard_with(Policy::new(), table());
    let both = [at("93.184.216.34", 443), at("2606:2800:220:1::1", 443)];
    let recorder = Recorder::failing(&both);
    let err = guard
        .connect("dual.example.com", 443, &recorder)
        .await
        .unwrap_err();
    match err {
        SourceError::Unreachable { ref host, addr, .. } => {
            assert_eq!((host.as_str(), addr), ("dual.example.com", both[1]))
        }
        ref other => panic!("{other}"),
    }
    assert_eq!(err.code(), "upstream_unreachable");
    assert_eq!(recorder.dialled(), both);
}

#[tokio::test]
async fn names_that_do_not_resolve_are_errors_of_their_own() {
    let (guard, _) = guard_with(Policy::new(), table());
    let recorder = Recorder::default();
    let err = guard
        .connect("nowhere.example.com", 443, &recorder)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Unresolvable { .. }), "{err}");
    assert_eq!(err.code(), "unresolvable_host");
    let err = guard
        .connect("empty.example.com", 443, &recorder)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::NoAddress { .. }), "{err}");
    assert_eq!(err.code(), "unresolvable_host");
    assert!(recorder.dialled().is_empty());
}

#[tokio::test]
async fn a_url_is_vetted_at_its_scheme_default_port() {
    let (guard, _) = guard_with(Policy::new(), table());
    let url = |s: &str| Url::parse(s).unwrap();
    assert_eq!(
        guard
            .vet_url(&url("https://api.example.com/v1?key=secret"))
            .await
            .unwrap(),
        vec![at("93.184.216.34", 443)]
    );
    assert_eq!(
        guard
            .vet_url(&url("http://api.example.com/"))
            .await
            .unwrap(),
        vec![at("93.184.216.34", 80)]
    );
    assert_eq!(
        guard
            .vet_url(&url("http://api.example.com:8080/"))
            .await
            .unwrap(),
        vec![at("93.184.216.34", 8080)]
    );
    // The URL parser reads numeric hosts itself; the guard judges what it read.
    let err = guard.vet_url(&url("http://0x7f.1/")).await.unwrap_err();
    assert_eq!(err.refusal().map(|r| r.reason), Some(Reason::Loopback));
    let err = guard
        .vet_url(&url("http://[::ffff:169.254.169.254]/"))
        .await
        .unwrap_err();
    assert_eq!(err.refusal().map(|r| r.reason), Some(Reason::Metadata));
    let err = guard
        .vet_url(&url("ftp://api.example.com/"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsupported_scheme");
}

#[tokio::test]
async fn every_redirect_hop_is_resolved_and_judged() {
    let (guard, resolver) = guard_with(Policy::new(), table());
    let from = Url::parse("https://api.example.com/start").unwrap();

    let (hop, addrs) = guard
        .follow(&from, "https://dual.example.com/next", 0)
        .await
        .unwrap();
    assert_eq!(hop.url.as_str(), "https://dual.example.com/next");
    assert_eq!(
        addrs,
        vec![at("93.184.216.34", 443), at("2606:2800:220:1::1", 443)]
    );

    let err = guard
        .follow(&from, "https://rebind.example.com/", 1)
        .await
        .unwrap_err();
    assert_eq!(err.refusal().map(|r| r.reason), Some(Reason::Metadata));
    assert_eq!(
        resolver.lookups(),
        ["dual.example.com", "rebind.example.com"]
    );

    // A refused literal or a refused hop is decided without a lookup.
    let err = guard
        .follow(&from, "https://127.0.0.1/", 1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "blocked_address");
    let err = guard
        .follow(&from, "https://api.example.com/", 5)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "too_many_redirects");
    assert_eq!(resolver.lookups().len(), 2);
}

#[tokio::test]
async fn tcp_reaches_an_allowed_loopback_listener_and_never_coforms_own() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resolver = || StaticResolver::new().with("local.test", [addr.ip()]);
    let allow = || Policy::new().allow([Cidr::single(addr.ip())]).unwrap();

    // Refused by default; opened by the allow-list.
    let (closed, _) = guard_with(Policy::new(), resolver());
    let err = closed
        .connect("local.test", addr.port(), &TcpConnector::default())
        .await
        .unwrap_err();
    assert_eq!(err.refusal().map(|r| r.reason), Some(Reason::Loopback));

    let (open, _) = guard_with(allow(), resolver());
    let stream = open
        .connect("local.test", addr.port(), &TcpConnector::default())
        .await
        .unwrap();
    let (accepted, peer) = listener.accept().await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
    assert_eq!(peer, stream.local_addr().unwrap());
    drop((stream, accepted));

    // The same listener as Coform's own address: refused before dialling.
    let (own, _) = guard_with(allow().refuse_own([addr]), resolver());
    let err = own
        .connect("local.test", addr.port(), &TcpConnector::default())
        .await
        .unwrap_err();
    assert_eq!(err.refusal().map(|r| r.reason), Some(Reason::OwnAddress));
}
