//! The redirect decision, case by case.

use super::*;

/// What [`next_hop`] should decide.
#[derive(Debug)]
enum Expect {
    /// Follow to this URL; the flag says whether credentials go along.
    Follow(&'static str, bool),
    /// Refuse with this error code.
    Refuse(&'static str),
}

use Expect::{Follow, Refuse};

const SAME: bool = true;
const CROSS: bool = false;

#[test]
fn each_hop_is_decided_by_the_table() {
    let cases: &[(&str, &str, u32, Expect)] = &[
        // Relative and absolute locations on the same origin.
        (
            "https://api.example.com/a/b",
            "c",
            0,
            Follow("https://api.example.com/a/c", SAME),
        ),
        (
            "https://api.example.com/a/b",
            "/x?y=1",
            0,
            Follow("https://api.example.com/x?y=1", SAME),
        ),
        (
            "https://api.example.com/a",
            "https://api.example.com/b",
            0,
            Follow("https://api.example.com/b", SAME),
        ),
        (
            "https://api.example.com/a",
            "//api.example.com/b",
            0,
            Follow("https://api.example.com/b", SAME),
        ),
        (
            "https://api.example.com/a",
            "https://api.example.com:443/b",
            0,
            Follow("https://api.example.com/b", SAME),
        ),
        (
            "https://API.Example.com/a",
            "https://api.example.com/b",
            0,
            Follow("https://api.example.com/b", SAME),
        ),
        // Up to five redirects; the sixth is refused.
        (
            "https://api.example.com/a",
            "/b",
            4,
            Follow("https://api.example.com/b", SAME),
        ),
        (
            "https://api.example.com/a",
            "/b",
            5,
            Refuse("too_many_redirects"),
        ),
        (
            "https://api.example.com/a",
            "/b",
            50,
            Refuse("too_many_redirects"),
        ),
        // Origin is scheme, host and port: any change is cross-origin.
        (
            "https://api.example.com/a",
            "https://other.example.com/b",
            0,
            Follow("https://other.example.com/b", CROSS),
        ),
        (
            "https://api.example.com/a",
            "https://api.example.com:8443/b",
            0,
            Follow("https://api.example.com:8443/b", CROSS),
        ),
        (
            "https://api.example.com/a",
            "https://sub.api.example.com/b",
            0,
            Follow("https://sub.api.example.com/b", CROSS),
        ),
        (
            "https://api.example.com/a",
            "https://api.example.com./b",
            0,
            Follow("https://api.example.com./b", CROSS),
        ),
        (
            "http://api.example.com/a",
            "https://api.example.com/b",
            0,
            Follow("https://api.example.com/b", CROSS),
        ),
        (
            "http://api.example.com/a",
            "http://api.example.com:80/b",
            0,
            Follow("http://api.example.com/b", SAME),
        ),
        // Never from https to http, not even on the same host.
        (
            "https://api.example.com/a",
            "http://api.example.com/b",
            0,
            Refuse("insecure_redirect"),
        ),
        (
            "https://api.example.com/a",
            "http://other.example.com/b",
            0,
            Refuse("insecure_redirect"),
        ),
        (
            "https://api.example.com/a",
            "http://api.example.com:443/b",
            0,
            Refuse("insecure_redirect"),
        ),
        // Only http and https.
        (
            "https://api.example.com/a",
            "file:///etc/passwd",
            0,
            Refuse("unsupported_scheme"),
        ),
        (
            "https://api.example.com/a",
            "ftp://api.example.com/",
            0,
            Refuse("unsupported_scheme"),
        ),
        (
            "https://api.example.com/a",
            "gopher://api.example.com:6379/_",
            0,
            Refuse("unsupported_scheme"),
        ),
        (
            "https://api.example.com/a",
            "javascript:alert(1)",
            0,
            Refuse("unsupported_scheme"),
        ),
        (
            "https://api.example.com/a",
            "data:text/plain,hi",
            0,
            Refuse("unsupported_scheme"),
        ),
        // Not a URL at all.
        (
            "https://api.example.com/a",
            "https://[::1",
            0,
            Refuse("invalid_redirect"),
        ),
        (
            "https://api.example.com/a",
            "https://exa mple.com/",
            0,
            Refuse("invalid_redirect"),
        ),
        (
            "https://api.example.com/a",
            "http://1.2.3.4.5/",
            0,
            Refuse("invalid_redirect"),
        ),
        (
            "https://api.example.com/a",
            "https://",
            0,
            Refuse("invalid_redirect"),
        ),
        // The new host is judged again: literals here, in every notation.
        (
            "https://api.example.com/a",
            "https://127.0.0.1/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://0x7f.1/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://2130706433/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://0177.0.0.1/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://[::1]/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://[::ffff:7f00:1]/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://169.254.169.254/latest/meta-data/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://[fd00:ec2::254]/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://10.0.0.1/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "http://api.example.com/a",
            "http://192.168.1.1:8080/",
            0,
            Refuse("blocked_address"),
        ),
        (
            "https://api.example.com/a",
            "https://93.184.216.34/",
            0,
            Follow("https://93.184.216.34/", CROSS),
        ),
        // A name passes here; its addresses are judged when it is vetted.
        (
            "https://api.example.com/a",
            "https://localhost/",
            0,
            Follow("https://localhost/", CROSS),
        ),
        // User info never crosses origins; on the same origin it stays.
        (
            "https://api.example.com/a",
            "https://user:pw@other.example.com/",
            0,
            Follow("https://other.example.com/", CROSS),
        ),
        (
            "https://user:pw@api.example.com/a",
            "https://other.example.com/",
            0,
            Follow("https://other.example.com/", CROSS),
        ),
        (
            "https://user:pw@api.example.com/a",
            "/b",
            0,
            Follow("https://user:pw@api.example.com/b", SAME),
        ),
    ];
    let policy = Policy::new();
    let mut wrong = Vec::new();
    for (from, location, followed, expect) in cases {
        let from_url = Url::parse(from).unwrap();
        let got = next_hop(&policy, &from_url, location, *followed);
        let ok = match (expect, &got) {
            (Follow(url, same), Ok(hop)) => hop.url.as_str() == *url && hop.same_origin == *same,
            (Refuse(code), Err(err)) => err.code() == *code,
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{from} -> {location} ({followed}): expected {expect:?}, got {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn an_allow_list_opens_redirect_targets_as_it_opens_sources() {
    let policy = Policy::new()
        .allow(["10.20.0.0/16".parse().unwrap()])
        .unwrap();
    let from = Url::parse("http://api.example.com/").unwrap();
    assert!(next_hop(&policy, &from, "http://10.20.0.5/", 0).is_ok());
    let err = next_hop(&policy, &from, "http://10.21.0.5/", 0).unwrap_err();
    assert_eq!(err.refusal().map(|r| r.reason.code()), Some("private"));
}

#[test]
fn credential_headers_stay_on_their_origin() {
    let policy = Policy::new();
    let from = Url::parse("https://api.example.com/a").unwrap();
    let same = next_hop(&policy, &from, "/b", 0).unwrap();
    let cross = next_hop(&policy, &from, "https://other.example.com/", 0).unwrap();
    for header in [
        "Authorization",
        "authorization",
        "COOKIE",
        "Proxy-Authorization",
    ] {
        assert!(is_credential_header(header), "{header}");
        assert!(same.keeps_header(header), "{header}");
        assert!(!cross.keeps_header(header), "{header}");
    }
    for header in [
        "Accept",
        "Content-Type",
        "User-Agent",
        "X-Authorization-Mode",
        "Set-Cookie",
    ] {
        assert!(!is_credential_header(header), "{header}");
        assert!(cross.keeps_header(header), "{header}");
    }
}

#[test]
fn redirect_errors_name_hosts_never_paths_or_queries() {
    let policy = Policy::new();
    let from = Url::parse("https://api.example.com/v1?token=s3cret").unwrap();
    for location in [
        "http://api.example.com/v1?token=s3cret",
        "https://10.0.0.1/x?token=s3cret",
    ] {
        let err = next_hop(&policy, &from, location, 0).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
