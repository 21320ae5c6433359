//! `quiver serve`: the HTTP server (Qdrant's REST dialect) over a data directory.

use anyhow::{Context, Result, bail};
use quiver_engine::{Database, DatabaseOptions};
use quiver_server::{Keys, ServerOptions, TlsFiles};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; 127.0.0.1 serves this machine only, 0.0.0.0 every interface.
    #[arg(long, env = "QUIVER_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (Qdrant's REST port by default); 0 picks a free one.
    #[arg(long, env = "QUIVER_PORT", default_value_t = 6333)]
    port: u16,
    /// Key that every request must carry (header `api-key` or `Authorization: Bearer`).
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Key that may only read (search, scroll, count, retrieve, info).
    #[arg(long, env = "QUIVER_READ_ONLY_API_KEY", hide_env_values = true)]
    read_only_api_key: Option<String>,
    /// Largest request body accepted, in MiB (larger ones get HTTP 413).
    #[arg(long, default_value_t = 32)]
    max_request_mb: usize,
    /// Seconds after which a request is answered with HTTP 408.
    #[arg(long, default_value_t = 60)]
    request_timeout_secs: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "QUIVER_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "QUIVER_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

pub fn run(data: &Path, a: ServeArgs) -> Result<()> {
    let tls = match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            bail!("--tls-cert needs --tls-key (or QUIVER_TLS_KEY): the certificate's private key")
        }
        (None, Some(_)) => {
            bail!("--tls-key needs --tls-cert (or QUIVER_TLS_CERT): the certificate it belongs to")
        }
    };
    let embedder = Arc::new(quiver_embed::LazyEmbedder::default());
    let db = Database::open(
        data,
        DatabaseOptions {
            text_embedder: Some(embedder.clone()),
            ..DatabaseOptions::default()
        },
    )
    .with_context(|| format!("cannot open data directory {}", data.display()))?;
    for (name, reason) in db.damaged_collections() {
        eprintln!(
            "quiver serve: collection `{name}` cannot be opened ({reason}); it is not served"
        );
    }
    let options = ServerOptions {
        host: a.host,
        port: a.port,
        keys: Keys {
            read_write: a.api_key.filter(|k| !k.is_empty()),
            read_only: a.read_only_api_key.filter(|k| !k.is_empty()),
        },
        body_limit: a
            .max_request_mb
            .checked_mul(1 << 20)
            .context("--max-request-mb is too large")?,
        request_timeout: Duration::from_secs(a.request_timeout_secs.max(1)),
        embedder: Some(embedder),
        tls,
    };
    eprintln!(
        "quiver serve: data directory {} ({} collections)",
        data.display(),
        db.list_collections().len()
    );
    quiver_server::serve(db, options)?;
    Ok(())
}
