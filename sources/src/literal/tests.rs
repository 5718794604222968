//! Tests of reading hosts as address literals and checking names.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn loopback_is_recognised_in_every_notation() {
    let wrong: Vec<String> = [
        "127.0.0.1",
        "127.0.0.1.",
        "2130706433",
        "2130706433.",
        "0x7f000001",
        "0X7F000001",
        "0x7F.0x0.0x0.0x1",
        "0177.0.0.1",
        "0177.0000.0.01",
        "017700000001",
        "127.1",
        "127.0.1",
        "0x7f.1",
        "0x7f.0.1",
        "0177.1",
        "127.0x0.1",
        "0x00000000000000007f000001",
    ]
    .into_iter()
    .filter(|host| parse_host_literal(host) != Some(ip("127.0.0.1")))
    .map(|host| format!("{host}: {:?}", parse_host_literal(host)))
    .collect();
    assert!(
        wrong.is_empty(),
        "not read as 127.0.0.1:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_last_part_fills_the_bytes_the_others_leave() {
    for (host, expected) in [
        ("10.1", "10.0.0.1"),
        ("10.65535", "10.0.255.255"),
        ("10.16777215", "10.255.255.255"),
        ("10.1.65535", "10.1.255.255"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("0.0x", "0.0.0.0"),
        ("4294967295", "255.255.255.255"),
        ("1.2.3.4", "1.2.3.4"),
    ] {
        assert_eq!(parse_host_literal(host), Some(ip(expected)), "{host}");
    }
}

#[test]
fn ipv6_literals_are_read_bracketed_or_bare_with_zone_ids_dropped() {
    for (host, expected) in [
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[fe80::1%25eth0]", "fe80::1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("fe80::1%2", "fe80::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
        ("[::FFFF:7F00:1]", "::ffff:127.0.0.1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("[64:ff9b::a9fe:a9fe]", "64:ff9b::169.254.169.254"),
    ] {
        assert_eq!(parse_host_literal(host), Some(ip(expected)), "{host}");
    }
}

#[test]
fn hosts_that_are_not_literals_are_left_for_a_lookup() {
    for host in [
        "example.com",
        "localhost",
        "api.example.com.",
        "",
        ".",
        "127.0.0.1..",
        ".127.0.0.1",
        "1..1",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.256.0.1",
        "1.2.256.1",
        "1.2.3.256",
        "1.2.65536",
        "1.16777216",
        "4294967296",
        "0x100000000",
        "99999999999999999999999999",
        "08.0.0.1",
        "0179.0.0.1",
        "0xg",
        "+1",
        "-1",
        "1e3",
        "127.0.0.1 ",
        " 127.0.0.1",
        "127.0.0.1 x",
        "١٢٧.0.0.1",
        "[]",
        "[127.0.0.1]",
        "[::1",
        "::1]",
        "[::1]:80",
        "[fe80::1%]",
        "[fe80::1%eth 0]",
        "fe80::1%",
        "[::ffff:0177.0.0.1]",
        ":::",
    ] {
        assert_eq!(parse_host_literal(host), None, "{host:?}");
    }
}

#[test]
fn names_are_checked_for_what_a_resolver_takes_as_written() {
    for name in [
        "example.com",
        "example.com.",
        "localhost",
        "api-1.internal_zone.example",
        "xn--bcher-kva.example",
        "123.example",
        "0x7f.example",
        "a",
    ] {
        assert_eq!(check_name(name), Ok(()), "{name}");
    }
    let long_label = format!("{}.example", "a".repeat(64));
    let long_name = ["abcdefghi"; 26].join(".");
    for name in [
        "",
        ".",
        "a..b",
        ".example.com",
        "example.com..",
        "exa mple.com",
        "example.com\0",
        "bücher.example",
        "user@example.com",
        "example.com/path",
        "example.com:80",
        "[::1",
        long_label.as_str(),
        long_name.as_str(),
        // Numbers in the last label: what a resolver makes of these
        // differs from what a URL parser makes of them.
        "1.2.3.4.5",
        "256.0.0.1",
        "example.123",
        "0x1g.1",
        "example.0x7f",
        "08.0.0.1",
    ] {
        assert!(check_name(name).is_err(), "{name:?} passed");
    }
}

#[test]
fn numeric_hosts_are_read_as_the_url_parser_reads_them() {
    // Every host of one to four parts drawn from these (and each with a
    // trailing dot): an address to the URL parser is the same address to
    // the guard; anything else is no address to the guard, and what the
    // URL parser refuses the guard refuses too. Disagreement would mean
    // judging one address and dialling another.
    let parts = [
        "0",
        "00",
        "0x",
        "1",
        "08",
        "0x7f",
        "0X7F",
        "127",
        "0177",
        "255",
        "256",
        "0xff",
        "0x100",
        "65535",
        "65536",
        "16777215",
        "16777216",
        "4294967295",
        "4294967296",
        "0x1g",
        "",
    ];
    let mut hosts = Vec::new();
    for a in parts {
        hosts.push(a.to_owned());
        for b in parts {
            hosts.push(format!("{a}.{b}"));
            for c in &parts[..12] {
                hosts.push(format!("{a}.{b}.{c}"));
                for d in &parts[..8] {
                    hosts.push(format!("{a}.{b}.{c}.{d}"));
                }
            }
        }
    }
    let mut checked = 0;
    for host in hosts.iter().flat_map(|h| [h.clone(), format!("{h}.")]) {
        let ours = parse_host_literal(&host);
        match url::Url::parse(&format!("http://{host}/")).map(|u| u.host().map(|h| h.to_owned())) {
            Ok(Some(url::Host::Ipv4(theirs))) => {
                assert_eq!(ours, Some(IpAddr::V4(theirs)), "{host:?}");
            }
            // A name to the URL parser (`0..`): never an address to the
            // guard, which may still refuse it as malformed.
            Ok(Some(url::Host::Domain(name))) => {
                assert_eq!(
                    ours, None,
                    "{host:?} is the name {name:?} to the URL parser"
                );
            }
            Ok(other) => panic!("{host:?}: {other:?}"),
            Err(_) => {
                assert_eq!(ours, None, "{host:?} is not a URL host");
                assert!(check_name(&host).is_err(), "{host:?} is not a URL host");
            }
        }
        checked += 1;
    }
    assert!(checked > 50_000, "{checked}");
}
