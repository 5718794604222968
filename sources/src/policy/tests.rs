//! Tests of the allow-list, Coform's own addresses and the order in which
//! a resolved address is judged.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn at(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(s), port)
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn allowing(list: &[&str]) -> Policy {
    Policy::new()
        .allow(cidrs(list))
        .unwrap_or_else(|e| panic!("{list:?}: {e}"))
}

/// The reason code `policy` refuses `addr` with, `None` when it passes.
fn verdict(policy: &Policy, addr: SocketAddr) -> Option<&'static str> {
    policy
        .check("host.test", addr)
        .err()
        .map(|refusal| refusal.reason.code())
}

#[test]
fn the_default_policy_passes_public_addresses_only() {
    let policy = Policy::new();
    assert_eq!(verdict(&policy, at("93.184.216.34", 443)), None);
    assert_eq!(verdict(&policy, at("2606:4700::1", 443)), None);
    assert_eq!(verdict(&policy, at("10.0.0.1", 443)), Some("private"));
    assert_eq!(verdict(&policy, at("127.0.0.1", 443)), Some("loopback"));
    assert_eq!(
        verdict(&policy, at("::ffff:127.0.0.1", 443)),
        Some("loopback")
    );
    assert_eq!(
        verdict(&policy, at("169.254.169.254", 80)),
        Some("metadata")
    );
}

#[test]
fn an_allowed_range_opens_exactly_that_range() {
    let policy = allowing(&["10.20.0.0/16", "fd12:3456::/32", "127.0.0.1"]);
    assert_eq!(verdict(&policy, at("10.20.0.1", 5432)), None);
    assert_eq!(verdict(&policy, at("10.20.255.255", 5432)), None);
    assert_eq!(verdict(&policy, at("10.21.0.1", 5432)), Some("private"));
    assert_eq!(verdict(&policy, at("192.168.1.1", 5432)), Some("private"));
    assert_eq!(verdict(&policy, at("fd12:3456::7", 443)), None);
    assert_eq!(
        verdict(&policy, at("fd12:3457::7", 443)),
        Some("unique_local")
    );
    assert_eq!(verdict(&policy, at("127.0.0.1", 80)), None);
    assert_eq!(verdict(&policy, at("127.0.0.2", 80)), Some("loopback"));
}

#[test]
fn an_allowed_ipv4_range_opens_its_addresses_in_ipv6_dress_too() {
    // A mapped or NAT64 address reaches the IPv4 address it carries, so it
    // is judged as that address, allow-list included.
    let policy = allowing(&["10.20.0.0/16"]);
    assert_eq!(verdict(&policy, at("::ffff:10.20.0.1", 80)), None);
    assert_eq!(verdict(&policy, at("64:ff9b::a14:1", 80)), None);
    assert_eq!(
        verdict(&policy, at("::ffff:10.21.0.1", 80)),
        Some("private")
    );
}

#[test]
fn an_allow_list_containing_a_metadata_address_is_refused_naming_it() {
    for (entry, metadata) in [
        ("169.254.0.0/16", "169.254.169.254"),
        ("169.254.169.254", "169.254.169.254"),
        ("169.254.170.0/24", "169.254.170.2"),
        ("100.64.0.0/10", "100.100.100.200"),
        ("192.0.0.0/24", "192.0.0.192"),
        ("fd00::/8", "fd00:ec2::254"),
        ("fd00:ec2::/32", "fd00:ec2::254"),
        ("168.63.0.0/16", "168.63.129.16"),
        ("0.0.0.0/0", "169.254.169.254"),
        ("::/0", "fd00:ec2::254"),
    ] {
        let err = Policy::new()
            .allow(cidrs(&["10.0.0.0/8", entry]))
            .unwrap_err();
        assert_eq!(
            err,
            PolicyError::Metadata {
                cidr: entry.parse().unwrap(),
                metadata: ip(metadata),
            },
            "{entry}"
        );
        let message = err.to_string();
        assert!(
            message.contains(entry) && message.contains(metadata),
            "{message}"
        );
    }
}

#[test]
fn ranges_next_to_metadata_addresses_can_be_opened() {
    // 169.254.0.0/17 ends at 169.254.127.255, short of 169.254.169.254.
    let policy = allowing(&["169.254.0.0/17", "100.64.0.0/11", "fd00:ec3::/32"]);
    assert_eq!(verdict(&policy, at("169.254.1.1", 80)), None);
    assert_eq!(verdict(&policy, at("100.64.1.1", 80)), None);
    assert_eq!(verdict(&policy, at("fd00:ec3::1", 80)), None);
    assert_eq!(
        verdict(&policy, at("169.254.169.254", 80)),
        Some("metadata")
    );
}

#[test]
fn metadata_stays_refused_whatever_the_allow_list_holds() {
    // `allow` refuses such lists; this proves the check does not rely on
    // that alone.
    let policy = Policy {
        allow: cidrs(&["0.0.0.0/0", "::/0"]),
        own: Vec::new(),
    };
    for addr in METADATA {
        assert_eq!(
            verdict(&policy, SocketAddr::new(addr, 80)),
            Some("metadata"),
            "{addr}"
        );
    }
    for carried in [
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "::169.254.169.254",
        "::ffff:0:100.100.100.200",
    ] {
        assert_eq!(
            verdict(&policy, at(carried, 80)),
            Some("metadata"),
            "{carried}"
        );
    }
    // Everything else is open under such a list.
    assert_eq!(verdict(&policy, at("127.0.0.1", 80)), None);
}

#[test]
fn classes_that_carry_no_connection_stay_refused_whatever_the_allow_list_holds() {
    let policy = Policy {
        allow: cidrs(&["0.0.0.0/0", "::/0"]),
        own: Vec::new(),
    };
    for (addr, code) in [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("2001::1", "teredo"),
    ] {
        assert_eq!(verdict(&policy, at(addr, 80)), Some(code), "{addr}");
    }
}

#[test]
fn allow_list_entries_that_would_open_nothing_are_refused() {
    for entry in [
        "::ffff:10.0.0.0/104",
        "::ffff:0:0/96",
        "::ffff:0:10.0.0.0/104",
        "::10.0.0.0/104",
        "64:ff9b::a00:0/104",
        "64:ff9b:1::/48",
        "2002:a00::/24",
        "2001::/32",
        "0.0.0.0/8",
        "0.0.0.0",
        "::",
        "224.0.0.0/4",
        "239.1.2.3",
        "ff00::/8",
        "255.255.255.255",
    ] {
        match Policy::new().allow(cidrs(&[entry])) {
            Err(PolicyError::OpensNothing { cidr, .. }) => {
                assert_eq!(cidr, entry.parse().unwrap())
            }
            other => panic!("{entry}: {other:?}"),
        }
    }
    // Loopback in IPv6 lies inside the IPv4-compatible range but is its
    // own address, and may be opened, also by a range around it.
    let policy = allowing(&["::1"]);
    assert_eq!(verdict(&policy, at("::1", 80)), None);
    let policy = allowing(&["::/96"]);
    assert_eq!(verdict(&policy, at("::1", 80)), None);
    assert_eq!(verdict(&policy, at("::10.0.0.1", 80)), Some("private"));
}

#[test]
fn coforms_own_address_stays_refused_when_its_range_is_allowed() {
    let policy = allowing(&["127.0.0.0/8", "10.0.0.0/8"])
        .refuse_own([at("127.0.0.1", 8080), at("10.0.0.5", 8080)]);
    assert_eq!(verdict(&policy, at("127.0.0.1", 8080)), Some("own_address"));
    assert_eq!(
        verdict(&policy, at("::ffff:127.0.0.1", 8080)),
        Some("own_address")
    );
    assert_eq!(verdict(&policy, at("10.0.0.5", 8080)), Some("own_address"));
    // Other ports and other hosts of the range stay open.
    assert_eq!(verdict(&policy, at("127.0.0.1", 9090)), None);
    assert_eq!(verdict(&policy, at("127.0.0.2", 8080)), None);
    assert_eq!(verdict(&policy, at("10.0.0.6", 8080)), None);
}

#[test]
fn an_own_address_given_in_ipv6_dress_is_the_ipv4_address() {
    let policy = allowing(&["10.0.0.0/8"]).refuse_own([at("::ffff:10.0.0.5", 8080)]);
    assert_eq!(verdict(&policy, at("10.0.0.5", 8080)), Some("own_address"));
}

#[test]
fn an_own_wildcard_address_refuses_its_port_on_every_address_that_is_not_public() {
    let policy = allowing(&["10.0.0.0/8", "127.0.0.0/8", "fd12:3456::/32"])
        .refuse_own([at("0.0.0.0", 8080)]);
    assert_eq!(verdict(&policy, at("10.1.2.3", 8080)), Some("own_address"));
    assert_eq!(verdict(&policy, at("127.0.0.1", 8080)), Some("own_address"));
    assert_eq!(
        verdict(&policy, at("fd12:3456::1", 8080)),
        Some("own_address")
    );
    assert_eq!(verdict(&policy, at("10.1.2.3", 8081)), None);
    // A public API that happens to use the same port is someone else.
    assert_eq!(verdict(&policy, at("93.184.216.34", 8080)), None);

    let policy = allowing(&["10.0.0.0/8"]).refuse_own([at("::", 8080)]);
    assert_eq!(verdict(&policy, at("10.1.2.3", 8080)), Some("own_address"));
}

#[test]
fn an_own_public_address_is_refused_when_listed() {
    let policy = Policy::new().refuse_own([at("93.184.216.34", 443)]);
    assert_eq!(
        verdict(&policy, at("93.184.216.34", 443)),
        Some("own_address")
    );
    assert_eq!(verdict(&policy, at("93.184.216.34", 80)), None);
}

#[test]
fn a_refusal_names_the_host_the_address_and_what_was_judged() {
    let refusal = Policy::new()
        .check("evil.example", at("::ffff:10.0.0.1", 443))
        .unwrap_err();
    assert_eq!(
        refusal,
        Refusal {
            host: "evil.example".into(),
            addr: at("::ffff:10.0.0.1", 443),
            judged: ip("10.0.0.1"),
            reason: Reason::Private,
        }
    );
    let message = refusal.to_string();
    assert!(message.contains("\"evil.example\""), "{message}");
    assert!(message.contains("::ffff:10.0.0.1"), "{message}");
    assert!(message.contains("carrying 10.0.0.1"), "{message}");
    assert!(message.contains("a private address"), "{message}");
}
