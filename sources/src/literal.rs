//! Reading a host as the address it spells, in every notation a resolver
//! or a browser accepts, and telling names from malformed hosts.
//!
//! `http://2130706433/`, `http://0x7f.1/` and `http://127.1/` all reach
//! 127.0.0.1: the C library's `inet_aton`, which `getaddrinfo` and
//! database drivers fall back on, reads decimal, octal and hexadecimal
//! parts and lets the last part fill the remaining bytes; the WHATWG URL
//! standard reads the same forms. A guard that only knew dotted quads
//! would take these for names, and whatever resolved them would dial
//! loopback. So a host is first read as a literal here, the same way
//! those readers do, and judged without any lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address `host` spells, or `None` when it is not an address
/// literal (a name that needs a lookup, or not a valid host at all: see
/// `check_name`).
///
/// IPv4 follows `inet_aton`: one to four parts separated by dots, each
/// decimal, octal (leading `0`) or hexadecimal (leading `0x`); all but the
/// last are one byte, the last fills the remaining bytes (`127.1` is
/// 127.0.0.1, `2130706433` too). One trailing dot is allowed, as in a
/// fully qualified name (`127.0.0.1.`).
///
/// IPv6 may be bracketed as in a URL (`[::1]`) or bare (`::1`), in the
/// standard notation including an IPv4 tail (`::ffff:127.0.0.1`), with an
/// optional zone id (`fe80::1%eth0`, or `%25eth0` as a URL writes it),
/// which is dropped: the zone picks an interface, not an address.
pub fn parse_host_literal(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[') {
        return parse_ipv6(inner.strip_suffix(']')?).map(IpAddr::V6);
    }
    if host.contains(':') {
        return parse_ipv6(host).map(IpAddr::V6);
    }
    parse_ipv4(host).map(IpAddr::V4)
}

/// An IPv6 address without brackets, with an optional zone id.
fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    let addr = match text.split_once('%') {
        Some((addr, zone)) => {
            let zone_ok = !zone.is_empty()
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !zone_ok {
                return None;
            }
            addr
        }
        None => text,
    };
    addr.parse().ok()
}

/// An IPv4 address in any `inet_aton` notation.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let text = host.strip_suffix('.').unwrap_or(host);
    if text.is_empty() {
        return None;
    }
    let mut parts = [0u64; 4];
    let mut count = 0;
    for part in text.split('.') {
        if count == parts.len() {
            return None;
        }
        parts[count] = parse_ipv4_number(part)?;
        count += 1;
    }
    let (leading, last) = parts[..count].split_at(count - 1);
    if leading.iter().any(|&byte| byte > 0xff) {
        return None;
    }
    // The last part fills the bytes the others left: 4 bytes after none,
    // 3 after one, 2 after two, 1 after three.
    let last_bits = 8 * (5 - count as u32);
    if last[0] >> last_bits != 0 {
        return None;
    }
    let high = leading
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, &byte)| acc | (byte << (24 - 8 * i as u32)));
    Some(Ipv4Addr::from((high | last[0]) as u32))
}

/// One part of an IPv4 literal: `0x…` hexadecimal, `0…` octal, otherwise
/// decimal. `0x` alone is zero, as both `inet_aton` and the URL standard
/// read it. Values too large for an address are `None`.
fn parse_ipv4_number(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            if hex.is_empty() {
                return Some(0);
            }
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    // `from_str_radix` would also take a sign; a part is digits only.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Overflow means far more than 32 bits: not an address either way.
    u64::from_str_radix(digits, radix).ok()
}

/// Whether `label` reads as a number to an IPv4 parser: only digits, or
/// `0x` and hexadecimal digits. The URL standard treats a host whose last
/// label is such a number as an IPv4 address or as invalid, never as a
/// name.
fn is_numeric_label(label: &str) -> bool {
    if let Some(hex) = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
    {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// Checks that `host`, which is not an address literal, is a DNS name a
/// resolver will look up as written: ASCII letters, digits, `-` and `_`
/// in dot-separated labels of 1 to 63 bytes, at most 253 bytes, one
/// trailing dot allowed. Names in other scripts must arrive in their
/// ASCII (punycode) form, as the URL parser produces it.
///
/// A host whose last label is a number but that is not a valid literal
/// (`1.2.3.4.5`, `256.1.1.1`, `0x1g.1`) is refused: resolvers and URL
/// parsers disagree about such hosts, and a guard must never judge a
/// different host from the one that is dialled.
pub(crate) fn check_name(host: &str) -> Result<(), &'static str> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err("the host is empty");
    }
    if name.len() > 253 {
        return Err("the host name is longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the host name has an empty label");
        }
        if label.len() > 63 {
            return Err("a label of the host name is longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("the host name has a character that is not a letter, digit, `-` or `_`");
        }
    }
    if name.rsplit('.').next().is_some_and(is_numeric_label) {
        return Err("the host ends in a number but is not a valid IP address");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
