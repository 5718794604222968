//! Tests of reading, printing and matching address ranges.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn ranges_and_single_addresses_are_read_and_printed_back() {
    for (input, printed) in [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("fd00::/8", "fd00::/8"),
        ("fd12:3456::/32", "fd12:3456::/32"),
        ("192.0.2.7", "192.0.2.7/32"),
        ("2001:db8::7", "2001:db8::7/128"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("  172.16.0.0/12 ", "172.16.0.0/12"),
        ("10.1.2.3/32", "10.1.2.3/32"),
    ] {
        assert_eq!(cidr(input).to_string(), printed, "{input}");
    }
}

#[test]
fn a_range_holds_exactly_its_addresses() {
    let private = cidr("172.16.0.0/12");
    assert!(private.contains(ip("172.16.0.0")));
    assert!(private.contains(ip("172.31.255.255")));
    assert!(!private.contains(ip("172.15.255.255")));
    assert!(!private.contains(ip("172.32.0.0")));

    let ula = cidr("fd00::/8");
    assert!(ula.contains(ip("fd00::1")));
    assert!(ula.contains(ip("fdff:ffff::1")));
    assert!(!ula.contains(ip("fc00::1")));
    assert!(!ula.contains(ip("fe00::")));

    let one = cidr("192.0.2.7");
    assert!(one.contains(ip("192.0.2.7")));
    assert!(!one.contains(ip("192.0.2.6")));
    assert!(!one.contains(ip("192.0.2.8")));
}

#[test]
fn a_zero_prefix_holds_its_whole_family_and_nothing_else() {
    let all_v4 = cidr("0.0.0.0/0");
    assert!(all_v4.contains(ip("255.255.255.255")));
    assert!(all_v4.contains(ip("0.0.0.0")));
    assert!(!all_v4.contains(ip("::ffff:1.2.3.4")));
    let all_v6 = cidr("::/0");
    assert!(all_v6.contains(ip("ffff::1")));
    assert!(!all_v6.contains(ip("1.2.3.4")));
}

#[test]
fn an_ipv4_range_never_holds_an_ipv6_address_that_embeds_it() {
    // Unwrapping is the policy's job; the range itself compares bits of
    // one family only.
    assert!(!cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
    assert!(!cidr("::ffff:0:0/96").contains(ip("127.0.0.1")));
}

#[test]
fn a_range_inside_another_is_recognised() {
    let outer = cidr("10.0.0.0/8");
    assert!(outer.contains_range(&cidr("10.20.0.0/16")));
    assert!(outer.contains_range(&outer));
    assert!(!outer.contains_range(&cidr("0.0.0.0/0")));
    assert!(!outer.contains_range(&cidr("11.0.0.0/16")));
    assert!(!outer.contains_range(&cidr("::/0")));
}

#[test]
fn malformed_ranges_are_refused_with_what_is_wrong() {
    for (input, expected) in [
        ("", CidrError::Empty),
        ("   ", CidrError::Empty),
        (
            "10.0.0.0/",
            CidrError::Prefix {
                input: "10.0.0.0/".into(),
            },
        ),
        (
            "10.0.0.0/+8",
            CidrError::Prefix {
                input: "10.0.0.0/+8".into(),
            },
        ),
        (
            "10.0.0.0/8/8",
            CidrError::Prefix {
                input: "10.0.0.0/8/8".into(),
            },
        ),
        (
            "10.0.0.0/ 8",
            CidrError::Prefix {
                input: "10.0.0.0/ 8".into(),
            },
        ),
        (
            "10.0.0.0/33",
            CidrError::PrefixTooLong {
                input: "10.0.0.0/33".into(),
                max: 32,
            },
        ),
        (
            "10.0.0.0/999",
            CidrError::PrefixTooLong {
                input: "10.0.0.0/999".into(),
                max: 32,
            },
        ),
        (
            "fd00::/129",
            CidrError::PrefixTooLong {
                input: "fd00::/129".into(),
                max: 128,
            },
        ),
        ("/8", CidrError::Address { input: "/8".into() }),
        (
            "10.0.0/8",
            CidrError::Address {
                input: "10.0.0/8".into(),
            },
        ),
        (
            "010.0.0.0/8",
            CidrError::Address {
                input: "010.0.0.0/8".into(),
            },
        ),
        (
            "0x0a.0.0.0/8",
            CidrError::Address {
                input: "0x0a.0.0.0/8".into(),
            },
        ),
        (
            "[fd00::]/8",
            CidrError::Address {
                input: "[fd00::]/8".into(),
            },
        ),
        (
            "fe80::1%eth0",
            CidrError::Address {
                input: "fe80::1%eth0".into(),
            },
        ),
        (
            "example.com/8",
            CidrError::Address {
                input: "example.com/8".into(),
            },
        ),
    ] {
        assert_eq!(input.parse::<Cidr>(), Err(expected), "{input:?}");
    }
}

#[test]
fn host_bits_past_the_prefix_are_an_error_that_suggests_the_range() {
    let err = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
    assert_eq!(
        err,
        CidrError::HostBits {
            input: "10.0.0.1/8".into(),
            network: cidr("10.0.0.0/8"),
        }
    );
    assert!(
        err.to_string().contains("did you mean 10.0.0.0/8?"),
        "{err}"
    );

    let err = "fd00::1/8".parse::<Cidr>().unwrap_err();
    assert!(err.to_string().contains("did you mean fd00::/8?"), "{err}");
}
