//! HTTPS over a real socket: a certificate made at test time, a rustls client trusting it,
//! and the clients that must not disturb the others (plain HTTP, a stalled handshake).

#![allow(clippy::unwrap_used, reason = "tests")]

use quiver_engine::{Database, DatabaseOptions};
use quiver_server::{Server, ServerError, ServerOptions, TlsFiles, router};
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
struct Certificate {
    dir: tempfile::TempDir,
    files: TlsFiles,
    der: CertificateDer<'static>,
}

fn certificate() -> Certificate {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, made.cert.pem()).unwrap();
    std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
    Certificate {
        dir,
        files,
        der: made.cert.der().clone(),
    }
}

/// A server on a free port, serving until `stop` is called.
struct Running {
    addr: SocketAddr,
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
    _data: tempfile::TempDir,
}

async fn start(tls: &TlsFiles) -> Running {
    let data = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(data.path(), DatabaseOptions::default()).unwrap());
    let options = ServerOptions {
        port: 0,
        tls: Some(tls.clone()),
        ..ServerOptions::default()
    };
    let server = Server::bind(&options).await.unwrap();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let addr = server.local_addr();
    let url = server.url();
    let task = tokio::spawn(server.serve(router(db, &options), async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        url,
        shutdown: Some(shutdown),
        task,
        _data: data,
    }
}

impl Running {
    async fn stop(mut self) -> Result<(), ServerError> {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops within 10 s of the shutdown signal")
            .unwrap()
    }
}

fn connector(trusted: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// An HTTP/1.1 GET over TLS: the status code, the body and the ALPN protocol agreed.
async fn https_get(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    path: &str,
) -> (u16, String, Option<Vec<u8>>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector(trusted).connect(name, tcp).await.unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // A peer may close without TLS's close_notify once the response is complete.
    if let Err(e) = tls.read_to_end(&mut response).await {
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {head}"));
    (status.parse().unwrap(), body.to_string(), alpn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_probes_and_collections_over_http1() {
    let cert = certificate();
    let server = start(&cert.files).await;
    assert_eq!(server.url, format!("https://{}", server.addr));

    let (status, _, alpn) = https_get(server.addr, &cert.der, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(
        alpn.as_deref(),
        Some(&b"http/1.1"[..]),
        "ALPN offers HTTP/1.1 only"
    );

    let (status, body, _) = https_get(server.addr, &cert.der, "/collections").await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["result"]["collections"],
        serde_json::json!([]),
        "{body}"
    );

    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_fails_and_the_next_https_request_works() {
    let cert = certificate();
    let server = start(&cert.files).await;

    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("the server closes a plain-HTTP connection instead of waiting");
    // Either a TLS alert then EOF, or a reset: never an HTTP response.
    if read.is_ok() {
        assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    }

    let (status, _, _) = https_get(server.addr, &cert.der, "/readyz").await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_does_not_hold_up_other_clients() {
    let cert = certificate();
    let server = start(&cert.files).await;

    // Connected, but never sends its ClientHello: the server waits up to 10 s for it.
    let _stalled = TcpStream::connect(server.addr).await.unwrap();
    let _half = {
        let mut half = TcpStream::connect(server.addr).await.unwrap();
        half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
            .await
            .unwrap(); // a record header only
        half
    };
    let (status, _, _) = tokio::time::timeout(
        Duration::from_secs(3),
        https_get(server.addr, &cert.der, "/readyz"),
    )
    .await
    .expect("a client whose handshake stalls does not delay the next one");
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_the_tls_port() {
    let cert = certificate();
    let server = start(&cert.files).await;
    let addr = server.addr;
    let (status, _, _) = https_get(addr, &cert.der, "/readyz").await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();

    // The accept task is aborted when axum drops the listener; allow it a moment.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "{addr} still accepts connections after shutdown");
}

/// `Server::bind`'s error for these files, which must name `names`.
async fn bind_error(files: &TlsFiles, names: &[&Path]) -> String {
    let options = ServerOptions {
        port: 0,
        tls: Some(files.clone()),
        ..ServerOptions::default()
    };
    let Err(e) = Server::bind(&options).await else {
        panic!("{files:?} accepted");
    };
    let message = e.to_string();
    for path in names {
        assert!(
            message.contains(&path.display().to_string()),
            "`{message}` does not name {}",
            path.display()
        );
    }
    message
}

#[tokio::test]
async fn unusable_tls_files_are_errors_naming_the_file() {
    let cert = certificate();
    let dir = cert.dir.path();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let garbage = write("garbage-key.pem", "not a key\n");
    let message = bind_error(
        &TlsFiles {
            key: garbage.clone(),
            ..cert.files.clone()
        },
        &[&garbage],
    )
    .await;
    assert!(message.contains("no private key"), "{message}");

    let broken = write(
        "broken-key.pem",
        "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
    );
    let message = bind_error(
        &TlsFiles {
            key: broken.clone(),
            ..cert.files.clone()
        },
        &[&broken],
    )
    .await;
    assert!(message.contains("not valid PEM"), "{message}");

    let missing = dir.join("missing-cert.pem");
    let message = bind_error(
        &TlsFiles {
            cert: missing.clone(),
            ..cert.files.clone()
        },
        &[&missing],
    )
    .await;
    assert!(message.contains("cannot read"), "{message}");

    // The key file given as the certificate: PEM, but no certificate in it.
    let message = bind_error(
        &TlsFiles {
            cert: cert.files.key.clone(),
            key: cert.files.key.clone(),
        },
        &[&cert.files.key],
    )
    .await;
    assert!(message.contains("no certificate"), "{message}");

    let other = certificate();
    let message = bind_error(
        &TlsFiles {
            cert: cert.files.cert.clone(),
            key: other.files.key.clone(),
        },
        &[&cert.files.cert, &other.files.key],
    )
    .await;
    assert!(message.contains("does not match"), "{message}");
}
