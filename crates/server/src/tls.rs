//! HTTPS: the certificate and key files, checked at start, and a listener that hands axum
//! connections whose TLS handshake is done.
//!
//! Handshakes run one task per connection, so a client that stalls or fails its handshake
//! never holds up the accept loop: the listener's [`accept`](axum::serve::Listener::accept)
//! only takes finished handshakes from a channel.

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake after this long is dropped. A bound on the
/// resources an idle or hostile client can hold, not a tuned number: a handshake takes two
/// round trips.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections handshaken but not yet taken by the server; past this, handshake tasks wait.
const HANDSHAKEN_BACKLOG: usize = 128;

/// The PEM files of a server's certificate and private key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key of the first certificate: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// Why the certificate or key cannot be used; each names its file, and each message is
/// complete on its own (the underlying error is in it, not chained behind it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read TLS file {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("TLS file {} is not valid PEM: {error}", path.display())]
    Pem { path: PathBuf, error: pem::Error },
    #[error("TLS certificate file {} holds no certificate (a PEM `CERTIFICATE` block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "TLS key file {} holds no private key (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("TLS key file {}: unusable private key: {error}", path.display())]
    BadKey { path: PathBuf, error: rustls::Error },
    #[error("TLS certificate file {}: unusable certificate: {error}", path.display())]
    BadCertificate { path: PathBuf, error: rustls::Error },
    #[error(
        "TLS key file {} does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS setup failed: {0}")]
    Setup(rustls::Error),
}

/// Reads and checks the certificate and key: the rustls settings of a server offering
/// HTTP/1.1 only, with the `ring` provider.
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certificates(&files.cert)?;
    let key = read_key(&files.key)?;
    let certified = certified_key(files, certs, key, &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            path: path.to_owned(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        error => TlsError::Pem {
            path: path.to_owned(),
            error,
        },
    })
}

/// The chain with its signing key, once the key is known to belong to the first certificate.
fn certified_key(
    files: &TlsFiles,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::BadKey {
            path: files.key.clone(),
            error,
        })?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        Err(error) => Err(TlsError::BadCertificate {
            path: files.cert.clone(),
            error,
        }),
    }
}

/// Accepts TCP connections and yields them once their TLS handshake is done.
///
/// A background task accepts and spawns one handshake task per connection; those send
/// finished streams into a channel that [`accept`](axum::serve::Listener::accept) reads.
/// Dropping the listener (axum does at graceful shutdown) stops accepting and closes the
/// socket; handshakes then in flight end with their connection.
pub(crate) struct TlsListener {
    local: SocketAddr,
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; must be called within a tokio runtime.
    pub(crate) fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (sender, handshaken) = mpsc::channel(HANDSHAKEN_BACKLOG);
        let accepting = tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), sender));
        Ok(TlsListener {
            local,
            handshaken,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            None => {
                // Only if the accept task died, which it does not do on its own.
                log::error!("the TLS accept loop stopped; no new connections are taken");
                std::future::pending().await
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(connection) => connection,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let handshaken = handshaken.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // A closed channel means the server stopped: the connection just closes.
                    let _ = handshaken.send((tls, peer)).await;
                }
                Ok(Err(e)) => log::info!("TLS handshake with {peer} failed: {e}"),
                Err(_) => log::info!(
                    "TLS handshake with {peer} unfinished after {} s; dropped",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            }
        });
    }
}

/// What axum's own TCP listener does: a connection that died before it was accepted is
/// skipped; anything else (out of file descriptors) is logged and retried a second later.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    log::error!("accepting a connection failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
