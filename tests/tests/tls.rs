//! HTTPS: with `--tls-cert`/`--tls-key` the HTTP face is served over TLS (browsers need a
//! secure context for cameras anywhere but localhost), WHIP/WHEP and the page included.

use std::sync::Arc;

use huddle_server::Config;
use huddle_tests::{start_with, str0m_offer};
use str0m::media::Direction;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// One HTTP/1.1 request over TLS to `addr`, trusting only `ca`; the whole response.
async fn https(addr: std::net::SocketAddr, ca: &CertificateDer<'static>, request: &str) -> String {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the server's certificate");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // The request says `Connection: close`: read to the end.
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_health_the_page_and_whep() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("huddle-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    let server = start_with(Config {
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..Config::ephemeral()
    })
    .await;
    assert!(
        server.base_url().starts_with("https://"),
        "{}",
        server.base_url()
    );
    let addr = server.http_addr;
    let ca = key.cert.der().clone();

    let health = https(
        addr,
        &ca,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let page = https(
        addr,
        &ca,
        "GET /room/demo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("<html"),
        "{page}"
    );
    let offer = str0m_offer(Direction::RecvOnly);
    let whep = https(
        addr,
        &ca,
        &format!(
            "POST /whep/demo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{offer}",
            offer.len()
        ),
    )
    .await;
    assert!(whep.starts_with("HTTP/1.1 201"), "{whep}");
    assert!(whep.to_ascii_lowercase().contains("location: /whep/demo/"));
    assert!(whep.contains("a=fingerprint:"), "an SDP answer");

    // Plain HTTP on the TLS port gets no answer as HTTP.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!out.starts_with(b"HTTP/1.1 200"));
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
