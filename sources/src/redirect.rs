//! Following HTTP redirects: one pure decision per hop, made before
//! anything is sent to the new location.
//!
//! A redirect is the remote server choosing where Coform goes next, so
//! every hop is judged as if a user had typed it: the scheme must be
//! http or https and must not drop from https to http, the chain is
//! short, the new host is vetted again (a literal here, a name by
//! [`Guard::follow`](crate::Guard::follow)), and credentials meant for
//! one origin never travel to another.

use std::net::SocketAddr;

use url::Url;

use crate::error::SourceError;
use crate::guard::{read_host, Host};
use crate::policy::Policy;

/// The most redirects one request follows.
pub const MAX_REDIRECTS: u32 = 5;

/// Headers that carry credentials: sent to the origin they were meant
/// for only.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// One redirect to follow, as [`next_hop`] decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Where to go next: the `Location` resolved against the URL that
    /// redirected. Without user name and password when the origin
    /// changes.
    pub url: Url,
    /// Whether `url` has the origin (scheme, host and port) of the URL
    /// that redirected. Only then may credentials go along.
    pub same_origin: bool,
}

impl Hop {
    /// Whether a request header named `name` may be sent on this hop:
    /// every header on a same-origin hop; on a cross-origin hop, all but
    /// the credential headers (`Authorization`, `Proxy-Authorization`,
    /// `Cookie`).
    ///
    /// A header that carries a source's secret under another name (an API
    /// key header) is a credential too: the caller knows which those are
    /// and drops them whenever [`same_origin`](Hop::same_origin) is false.
    pub fn keeps_header(&self, name: &str) -> bool {
        self.same_origin || !is_credential_header(name)
    }
}

/// Whether `name` is one of the standard credential headers, in any case.
pub fn is_credential_header(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|header| header.eq_ignore_ascii_case(name))
}

/// Decides the redirect from `from` to `location` (a `Location` header's
/// value, absolute or relative), `followed` being how many redirects this
/// request has followed already.
///
/// Refused, in this order: a redirect past [`MAX_REDIRECTS`]
/// (`too_many_redirects`), a location that is not a URL
/// (`invalid_redirect`), a scheme other than http or https
/// (`unsupported_scheme`), https to http (`insecure_redirect`), a host
/// that is not well-formed (`invalid_host`), and a literal address the
/// policy refuses (`blocked_address`). A host name passes here: its
/// addresses are judged when the hop is vetted, which
/// [`Guard::follow`](crate::Guard::follow) does in the same call.
pub fn next_hop(
    policy: &Policy,
    from: &Url,
    location: &str,
    followed: u32,
) -> Result<Hop, SourceError> {
    if followed >= MAX_REDIRECTS {
        return Err(SourceError::TooManyRedirects {
            limit: MAX_REDIRECTS,
        });
    }
    let mut url = from
        .join(location)
        .map_err(|e| SourceError::InvalidRedirect {
            reason: e.to_string(),
        })?;
    check_scheme(&url)?;
    if from.scheme() == "https" && url.scheme() == "http" {
        return Err(SourceError::InsecureRedirect {
            from: from.host_str().unwrap_or_default().to_owned(),
            to: url.host_str().unwrap_or_default().to_owned(),
        });
    }
    target(policy, &url)?;
    let same_origin = from.origin() == url.origin();
    if !same_origin {
        // Only a relative location inherits the user info of the URL
        // that redirected, and that stays on its origin; this drops
        // whatever an absolute location brought along.
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    Ok(Hop { url, same_origin })
}

/// The host and port an http or https URL is dialled at (the scheme's
/// default port when none is written). A literal host is judged here,
/// without a lookup; a name is only checked to be well-formed.
pub(crate) fn target(policy: &Policy, url: &Url) -> Result<(String, u16), SourceError> {
    check_scheme(url)?;
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(url::Host::Domain(name)) => name.to_owned(),
        None => {
            return Err(SourceError::InvalidHost {
                host: String::new(),
                reason: "the URL has no host",
            })
        }
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if url.scheme() == "https" { 443 } else { 80 });
    if let Host::Literal(ip) = read_host(&host)? {
        policy.check(&host, SocketAddr::new(ip, port))?;
    }
    Ok((host, port))
}

fn check_scheme(url: &Url) -> Result<(), SourceError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(SourceError::UnsupportedScheme {
            scheme: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
