//! Tests of the address classes, the metadata list and the unwrapping of
//! IPv4 addresses carried in IPv6 ones.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `(address, expected class code or None for public)`; asserts each and
/// reports every mismatch at once.
fn assert_classes(cases: &[(&str, Option<&str>)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(addr, expected)| {
            let got = classify(ip(addr)).map(Reason::code);
            (got != *expected).then(|| format!("{addr}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn ipv4_special_ranges_are_refused_up_to_their_edges() {
    assert_classes(&[
        ("127.0.0.1", Some("loopback")),
        ("127.255.255.254", Some("loopback")),
        ("126.255.255.255", None),
        ("128.0.0.0", None),
        ("0.0.0.0", Some("unspecified")),
        ("0.255.255.255", Some("unspecified")),
        ("1.0.0.0", None),
        ("10.0.0.0", Some("private")),
        ("10.255.255.255", Some("private")),
        ("9.255.255.255", None),
        ("11.0.0.0", None),
        ("172.15.255.255", None),
        ("172.16.0.0", Some("private")),
        ("172.31.255.255", Some("private")),
        ("172.32.0.0", None),
        ("192.167.255.255", None),
        ("192.168.0.0", Some("private")),
        ("192.168.255.255", Some("private")),
        ("192.169.0.0", None),
        ("169.254.0.1", Some("link_local")),
        ("169.254.255.255", Some("link_local")),
        ("169.253.255.255", None),
        ("169.255.0.0", None),
        ("100.63.255.255", None),
        ("100.64.0.0", Some("cgnat")),
        ("100.127.255.255", Some("cgnat")),
        ("100.128.0.0", None),
        ("224.0.0.1", Some("multicast")),
        ("239.255.255.255", Some("multicast")),
        ("223.255.255.255", None),
        ("255.255.255.255", Some("broadcast")),
        ("255.255.255.254", Some("reserved")),
        ("240.0.0.1", Some("reserved")),
        ("192.0.0.1", Some("reserved")),
        ("192.0.0.255", Some("reserved")),
        ("192.0.1.0", None),
        ("192.0.2.1", Some("documentation")),
        ("198.51.100.1", Some("documentation")),
        ("203.0.113.255", Some("documentation")),
        ("203.0.114.0", None),
        ("198.17.255.255", None),
        ("198.18.0.0", Some("benchmarking")),
        ("198.19.255.255", Some("benchmarking")),
        ("198.20.0.0", None),
        ("192.88.99.1", Some("reserved")),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("93.184.216.34", None),
    ]);
}

#[test]
fn ipv6_special_ranges_are_refused_and_unlisted_space_outside_global_unicast_too() {
    assert_classes(&[
        ("::1", Some("loopback")),
        ("::", Some("unspecified")),
        ("fe80::1", Some("link_local")),
        ("febf:ffff::1", Some("link_local")),
        ("fec0::1", Some("private")),
        ("fc00::1", Some("unique_local")),
        ("fdff:ffff::1", Some("unique_local")),
        ("fbff:ffff::1", Some("reserved")),
        ("ff02::1", Some("multicast")),
        ("ff0e::1", Some("multicast")),
        ("2001:db8::1", Some("documentation")),
        ("2001:db8:ffff::1", Some("documentation")),
        ("3fff::1", Some("documentation")),
        ("2001:2::1", Some("benchmarking")),
        ("2001::1", Some("teredo")),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("teredo")),
        ("2001:10::1", Some("reserved")),
        ("100::1", Some("reserved")),
        ("4000::1", Some("reserved")),
        ("1fff:ffff::1", Some("reserved")),
        ("64:ff9b:0:0:1::1", Some("reserved")),
        ("2001:200::1", None),
        ("2606:4700:4700::1111", None),
        ("2a00:1450:4001::200e", None),
        ("3ffe::1", None),
    ]);
}

#[test]
fn every_metadata_address_is_metadata_before_its_range() {
    for addr in METADATA {
        assert_eq!(classify(addr), Some(Reason::Metadata), "{addr}");
        assert!(!Reason::Metadata.can_be_allowed());
    }
    // The ranges around them are judged by their own class.
    assert_classes(&[
        ("169.254.169.253", Some("link_local")),
        ("169.254.170.3", Some("link_local")),
        ("100.100.100.201", Some("cgnat")),
        ("192.0.0.191", Some("reserved")),
        ("fd00:ec2::253", Some("unique_local")),
        ("168.63.129.17", None),
    ]);
}

#[test]
fn ipv6_forms_that_carry_ipv4_are_judged_as_the_ipv4_address() {
    assert_classes(&[
        // IPv4-mapped, in both notations.
        ("::ffff:127.0.0.1", Some("loopback")),
        ("::ffff:7f00:1", Some("loopback")),
        ("::ffff:10.0.0.1", Some("private")),
        ("::ffff:169.254.169.254", Some("metadata")),
        ("::ffff:8.8.8.8", None),
        // IPv4-translated.
        ("::ffff:0:127.0.0.1", Some("loopback")),
        ("::ffff:0:8.8.8.8", None),
        // IPv4-compatible.
        ("::127.0.0.1", Some("loopback")),
        ("::7f00:1", Some("loopback")),
        ("::0.0.0.2", Some("unspecified")),
        ("::8.8.8.8", None),
        // NAT64, well-known prefix.
        ("64:ff9b::7f00:1", Some("loopback")),
        ("64:ff9b::a9fe:a9fe", Some("metadata")),
        ("64:ff9b::192.168.1.1", Some("private")),
        ("64:ff9b::808:808", None),
        // 6to4: the address sits right after 2002.
        ("2002:7f00:1::", Some("loopback")),
        ("2002:a9fe:a9fe::1", Some("metadata")),
        ("2002:c0a8:101::1", Some("private")),
        ("2002:808:808::1", None),
    ]);
}

#[test]
fn local_nat64_is_refused_when_any_prefix_length_reads_a_refused_address() {
    // 127.0.0.1 placed as a /96 prefix places it: the last 32 bits.
    let as_96 = ip("64:ff9b:1::7f00:1");
    assert!(judged_as(as_96).contains(&ip("127.0.0.1")));
    assert_eq!(classify(as_96).map(Reason::code), Some("loopback"));

    // 169.254.169.254 placed as a /48 prefix places it: bits 48..63 and
    // 72..87, skipping the octet at 64..71.
    let as_48 = ip("64:ff9b:1:a9fe:00a9:fe00::");
    assert!(judged_as(as_48).contains(&ip("169.254.169.254")));
    assert_eq!(classify(as_48).map(Reason::code), Some("metadata"));

    // 10.1.2.3 placed as a /64 prefix places it: bits 72..103.
    let as_64 = ip("64:ff9b:1:0:000a:0102:0300::");
    assert!(judged_as(as_64).contains(&ip("10.1.2.3")));
    assert_eq!(classify(as_64).map(Reason::code), Some("private"));

    // 8.8.8.8 as /96, and every other reading public too: dialled.
    let public = ip("64:ff9b:1:808:8:808:808:808");
    assert!(judged_as(public).iter().all(|a| classify(*a).is_none()));
    assert_eq!(classify(public), None);
}

#[test]
fn addresses_that_carry_nothing_are_judged_as_themselves() {
    for addr in ["8.8.8.8", "::1", "::", "2001::1", "2606:4700::1", "fe80::1"] {
        assert_eq!(judged_as(ip(addr)), vec![ip(addr)], "{addr}");
    }
}

#[test]
fn the_tables_hold_network_addresses() {
    // A table entry with host bits set would match nothing at all.
    for (range, _) in V4_RANGES.iter().chain(V6_RANGES) {
        assert_eq!(
            Cidr::new(range.network(), range.prefix_len()),
            Ok(*range),
            "{range}"
        );
    }
}

#[test]
fn codes_are_distinct_and_snake_case() {
    let all = [
        Reason::Loopback,
        Reason::Unspecified,
        Reason::Private,
        Reason::LinkLocal,
        Reason::Cgnat,
        Reason::UniqueLocal,
        Reason::Multicast,
        Reason::Broadcast,
        Reason::Documentation,
        Reason::Benchmarking,
        Reason::Reserved,
        Reason::Teredo,
        Reason::Metadata,
        Reason::OwnAddress,
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), all.len());
    for code in codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
}
