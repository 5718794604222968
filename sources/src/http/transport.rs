//! One HTTP/1.1 exchange on a connection to an address the guard
//! vetted, and reading its answer within the size limit.
//!
//! hyper speaks the protocol over a stream this module opened; nothing
//! here resolves a name, keeps a pool or follows a redirect.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use url::Url;

use super::request::Header;
use crate::dial::Connector;
use crate::error::SourceError;

/// The answer's head, with its body still to be read. Holds the task
/// that drives the connection, which is aborted when this is dropped
/// (a redirect's body is never read; the connection just closes).
pub(crate) struct Exchange {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    _conn: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The host of an http(s) URL as it is named to TLS and the guard: an
/// IPv6 literal without its brackets.
pub(crate) fn host_of(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Domain(name)) => name.to_owned(),
        None => String::new(),
    }
}

/// Connects to the first of `addrs` (vetted for `host`) that accepts,
/// each given `timeout`.
pub(crate) async fn dial<C: Connector>(
    connector: &C,
    timeout: Duration,
    host: &str,
    addrs: &[SocketAddr],
) -> Result<C::Stream, SourceError> {
    let mut failure = None;
    for &addr in addrs {
        let attempt = tokio::time::timeout(timeout, connector.connect(addr)).await;
        match attempt {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(source)) => failure = Some((addr, source)),
            Err(_) => {
                failure = Some((
                    addr,
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {} ms", timeout.as_millis()),
                    ),
                ))
            }
        }
    }
    Err(match failure {
        Some((addr, source)) => SourceError::Unreachable {
            host: host.to_owned(),
            addr,
            source,
        },
        None => SourceError::NoAddress {
            host: host.to_owned(),
        },
    })
}

/// What one request on the wire is.
pub(crate) struct Outgoing<'a> {
    pub method: &'a hyper::Method,
    pub url: &'a Url,
    pub headers: &'a [Header],
    pub body: Option<Bytes>,
}

/// Sends `out` on `stream` (wrapped in TLS for https, the certificate
/// checked for the URL's host) and reads the answer's head.
pub(crate) async fn exchange<S>(
    stream: S,
    tls: &Arc<ClientConfig>,
    out: Outgoing<'_>,
) -> Result<Exchange, SourceError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let host = host_of(out.url);
    let request = build(&out)?;
    if out.url.scheme() == "https" {
        let name = ServerName::try_from(host.clone()).map_err(|_| SourceError::InvalidHost {
            host: host.clone(),
            reason: "not a name a certificate can be checked for",
        })?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| SourceError::Connection {
                message: format!("TLS with {host:?} failed: {e}"),
            })?;
        on_stream(tls, request).await
    } else {
        on_stream(stream, request).await
    }
}

fn build(out: &Outgoing<'_>) -> Result<hyper::Request<Full<Bytes>>, SourceError> {
    let target = match out.url.query() {
        Some(query) => format!("{}?{}", out.url.path(), query),
        None => out.url.path().to_owned(),
    };
    let authority = match (out.url.host_str(), out.url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    };
    let mut request = hyper::Request::builder()
        .method(out.method.clone())
        .uri(target)
        .body(Full::new(out.body.clone().unwrap_or_default()))
        .map_err(|e| SourceError::InvalidConfig {
            field: "url".to_owned(),
            message: format!("cannot be sent: {e}"),
        })?;
    let headers = request.headers_mut();
    let host = HeaderValue::from_str(&authority).map_err(|_| SourceError::InvalidHost {
        host: authority.clone(),
        reason: "not a valid Host header",
    })?;
    headers.insert(hyper::header::HOST, host);
    headers.insert(
        hyper::header::USER_AGENT,
        HeaderValue::from_static("coform-sources"),
    );
    headers.insert(
        hyper::header::ACCEPT_ENCODING,
        HeaderValue::from_static("gzip, deflate"),
    );
    for header in out.headers {
        headers.insert(header.name.clone(), header.value.clone());
    }
    Ok(request)
}

async fn on_stream<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Exchange, SourceError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(connection)?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        // Its error, if any, is the one `send_request` or the body reports.
        let _ = conn.await;
    }));
    let response = sender.send_request(request).await.map_err(connection)?;
    let (parts, body) = response.into_parts();
    Ok(Exchange {
        status: parts.status,
        headers: parts.headers,
        body,
        _conn: conn,
    })
}

fn connection(e: hyper::Error) -> SourceError {
    SourceError::Connection {
        message: e.to_string(),
    }
}

/// Reads the body of `exchange`, decoded, refusing it as soon as it is
/// known to exceed `limit` bytes: from `Content-Length` before a byte is
/// read, otherwise while it arrives — counted both as received and as
/// decoded, so a small compressed answer cannot expand past the limit.
pub(crate) async fn read_body(exchange: Exchange, limit: u64) -> Result<Vec<u8>, SourceError> {
    let too_large = || SourceError::ResponseTooLarge { limit };
    let declared = exchange
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let encoding = exchange
        .headers
        .get(hyper::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mut decoder = Decoder::new(&encoding, limit)?;
    let mut body = exchange.body;
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(connection)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > limit {
            return Err(too_large());
        }
        decoder.write(&data)?;
    }
    decoder.finish()
}

/// A sink that refuses to hold more than `limit` bytes.
struct Limited {
    buf: Vec<u8>,
    limit: u64,
    exceeded: bool,
}

impl Write for Limited {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("over the size limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decodes a body as it arrives into a [`Limited`] sink.
enum Decoder {
    Identity(Limited),
    Gzip(GzDecoder<Limited>),
    Zlib(ZlibDecoder<Limited>),
    Deflate(DeflateDecoder<Limited>),
    /// `deflate` is zlib-wrapped by the standard and raw in the wild;
    /// the first two bytes tell which.
    Undecided(Vec<u8>, u64),
}

impl Decoder {
    fn new(encoding: &str, limit: u64) -> Result<Self, SourceError> {
        let sink = Limited {
            buf: Vec::new(),
            limit,
            exceeded: false,
        };
        Ok(match encoding {
            "" | "identity" => Decoder::Identity(sink),
            "gzip" | "x-gzip" => Decoder::Gzip(GzDecoder::new(sink)),
            "deflate" => Decoder::Undecided(Vec::new(), limit),
            _ => {
                return Err(SourceError::InvalidResponse {
                    message: "the answer uses a content encoding other than gzip or deflate"
                        .to_owned(),
                })
            }
        })
    }

    fn sink(&self) -> Option<&Limited> {
        match self {
            Decoder::Identity(sink) => Some(sink),
            Decoder::Gzip(d) => Some(d.get_ref()),
            Decoder::Zlib(d) => Some(d.get_ref()),
            Decoder::Deflate(d) => Some(d.get_ref()),
            Decoder::Undecided(..) => None,
        }
    }

    fn failed(&self, limit: u64) -> SourceError {
        if self.sink().is_some_and(|sink| sink.exceeded) {
            SourceError::ResponseTooLarge { limit }
        } else {
            SourceError::InvalidResponse {
                message: "the answer's compressed body is broken".to_owned(),
            }
        }
    }

    fn limit(&self) -> u64 {
        match self {
            Decoder::Undecided(_, limit) => *limit,
            other => other.sink().map(|s| s.limit).unwrap_or_default(),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), SourceError> {
        if let Decoder::Undecided(head, limit) = self {
            head.extend_from_slice(data);
            if head.len() < 2 {
                return Ok(());
            }
            let head = std::mem::take(head);
            *self = Decoder::decided(&head, *limit);
            return self.write(&head);
        }
        let limit = self.limit();
        let written = match self {
            Decoder::Identity(sink) => sink.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Zlib(d) => d.write_all(data),
            Decoder::Deflate(d) => d.write_all(data),
            Decoder::Undecided(..) => Ok(()),
        };
        written.map_err(|_| self.failed(limit))
    }

    fn decided(head: &[u8], limit: u64) -> Decoder {
        let sink = Limited {
            buf: Vec::new(),
            limit,
            exceeded: false,
        };
        let zlib = head.len() >= 2
            && head[0] & 0x0f == 8
            && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
        if zlib {
            Decoder::Zlib(ZlibDecoder::new(sink))
        } else {
            Decoder::Deflate(DeflateDecoder::new(sink))
        }
    }

    fn finish(mut self) -> Result<Vec<u8>, SourceError> {
        let limit = self.limit();
        if let Decoder::Undecided(head, limit) = &self {
            if head.is_empty() {
                return Ok(Vec::new());
            }
            let head = head.clone();
            self = Decoder::decided(&head, *limit);
            self.write(&head)?;
        }
        let finished = match &mut self {
            Decoder::Identity(_) | Decoder::Undecided(..) => Ok(()),
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
            Decoder::Deflate(d) => d.try_finish(),
        };
        if finished.is_err() {
            return Err(self.failed(limit));
        }
        let sink = match self {
            Decoder::Identity(sink) => sink,
            Decoder::Gzip(d) => d.finish().map_err(|_| broken())?,
            Decoder::Zlib(d) => d.finish().map_err(|_| broken())?,
            Decoder::Deflate(d) => d.finish().map_err(|_| broken())?,
            Decoder::Undecided(..) => return Ok(Vec::new()),
        };
        Ok(sink.buf)
    }
}

fn broken() -> SourceError {
    SourceError::InvalidResponse {
        message: "the answer's compressed body is broken".to_owned(),
    }
}

/// Decodes `data` as `encoding` within `limit` bytes: for tests.
#[cfg(test)]
pub(crate) fn decode_all(encoding: &str, data: &[u8], limit: u64) -> Result<Vec<u8>, SourceError> {
    let mut decoder = Decoder::new(encoding, limit)?;
    for chunk in data.chunks(7) {
        decoder.write(chunk)?;
    }
    decoder.finish()
}
