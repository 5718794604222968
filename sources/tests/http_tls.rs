//! HTTPS: the certificate is checked for the host the source names
//! (sent as SNI), an unknown authority or another name is refused, and
//! a redirect from HTTPS to plain HTTP is never followed.
//!
//! The server is a few lines of HTTP/1.1 over rustls, with a
//! certificate authority made for the test.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use coform_sources::http::RootCertStore;
use coform_sources::{Guard, HttpClient, HttpLimits, Kind, Policy, StaticResolver};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// A certificate authority and a certificate it issued for
/// `secure.test`.
struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["secure.test".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca: ca.der().clone(),
        leaf: leaf.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// An HTTPS server: `/json` answers the name the client sent as SNI,
/// `/down` redirects to `location`.
async fn tls_server(pki: &Pki, location: String) -> (SocketAddr, Task) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone(), pki.ca.clone()], pki.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let location = location.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_owned);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let response = if head.starts_with("GET /down ") {
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
                    )
                } else {
                    let body = json!({"sni": sni}).to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, Task(task))
}

fn tls_client(roots: Option<&Pki>) -> (HttpClient<Recording>, Recording) {
    let policy = Policy::new()
        .allow(["127.0.0.1/32".parse().unwrap()])
        .unwrap();
    let resolver = StaticResolver::new()
        .with("secure.test", [ip("127.0.0.1")])
        .with("other.test", [ip("127.0.0.1")]);
    let recording = Recording::default();
    let client = HttpClient::new(
        Guard::new(policy, Arc::new(resolver)),
        recording.clone(),
        HttpLimits::default(),
    );
    let client = match roots {
        Some(pki) => {
            let mut store = RootCertStore::empty();
            store.add(pki.ca.clone()).unwrap();
            client.with_root_certificates(store)
        }
        None => client,
    };
    (client, recording)
}

async fn get(
    client: &HttpClient<Recording>,
    url: String,
) -> Result<Value, coform_sources::SourceError> {
    client
        .execute(Kind::Rest, &config(json!({"url": url})), &params(json!({})))
        .await
}

#[tokio::test]
async fn https_checks_the_certificate_for_the_named_host() {
    let pki = pki();
    let (addr, _task) = tls_server(&pki, String::new()).await;
    let port = addr.port();

    let (client, recording) = tls_client(Some(&pki));
    let answer = get(&client, format!("https://secure.test:{port}/json"))
        .await
        .unwrap();
    assert_eq!(answer, json!({"sni": "secure.test"}));
    assert_eq!(recording.dialled(), vec![addr]);

    // The certificate is not for this name.
    let err = get(&client, format!("https://other.test:{port}/json"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_unreachable", "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");

    // Nor from an authority of the web.
    let (web, _) = tls_client(None);
    let err = get(&web, format!("https://secure.test:{port}/json"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_unreachable", "{err}");
}

#[tokio::test]
async fn a_redirect_from_https_to_http_is_refused_before_dialling() {
    let plain = TestServer::start().await;
    let pki = pki();
    let location = format!("http://secure.test:{}/json", plain.addr.port());
    let (addr, _task) = tls_server(&pki, location).await;

    let (client, recording) = tls_client(Some(&pki));
    let err = get(&client, format!("https://secure.test:{}/down", addr.port()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insecure_redirect", "{err}");
    assert_eq!(recording.dialled(), vec![addr]);
}
