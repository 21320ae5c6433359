//! `quiver serve`: an HTTP server speaking Qdrant's REST dialect over a Quiver database, so
//! that Qdrant's clients (and the libraries built on them) work unchanged.
//!
//! The engine is synchronous: handlers parse and check a request on the async runtime, then
//! run the engine call on tokio's blocking pool ([`app::App::blocking`]). Every request and
//! response shape follows Qdrant's OpenAPI; `docs/server.md` lists what is supported and how
//! Qdrant's settings map onto Quiver's.

mod app;
mod auth;
mod bm25;
mod convert;
mod dashboard;
mod error;
mod json;
mod metrics;
mod routes;
mod tls;
mod updates;

pub use auth::Keys;
pub use routes::service::QDRANT_API_VERSION;
pub use tls::{TlsError, TlsFiles};

use app::{App, AppState};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use error::ApiError;
use quiver_embed_api::TextEmbedder;
use quiver_engine::Database;
use routes::{aliases, collections, inspect, points, query, scroll, service};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Settings of a server.
#[derive(Clone)]
pub struct ServerOptions {
    pub host: String,
    pub port: u16,
    pub keys: Keys,
    /// Largest request body accepted; larger ones get a 413.
    pub body_limit: usize,
    /// A request still running after this long is answered with a 408 (its engine work, if
    /// it started, completes).
    pub request_timeout: Duration,
    /// Embeds `Document` texts (the built-in model in the `quiver` binary).
    pub embedder: Option<Arc<dyn TextEmbedder>>,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            host: "127.0.0.1".into(),
            port: 6333,
            keys: Keys::default(),
            body_limit: 32 << 20,
            request_timeout: Duration::from_secs(60),
            embedder: None,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Engine(#[from] quiver_engine::Error),
}

/// The OpenAPI document's header; the paths and schemas come from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Quiver (Qdrant REST dialect)",
        description = "Quiver's HTTP API: Qdrant's REST API for everything Quiver implements. See docs/server.md."
    ),
    tags(
        (name = "service", description = "Version, probes, metrics"),
        (name = "collections", description = "Collections and payload indexes"),
        (name = "aliases", description = "Collection aliases"),
        (name = "points", description = "Writes, retrieval, scroll and count"),
        (name = "search", description = "Nearest-neighbour queries"),
        (name = "quiver", description = "Quiver's own read-only endpoints: segments, explain, key access"),
    )
)]
struct ApiDoc;

/// The router with every endpoint and layer, for a database already open.
pub fn router(db: Arc<Database>, options: &ServerOptions) -> Router {
    let app: AppState = Arc::new(App {
        db,
        embedder: options.embedder.clone(),
        keys: options.keys.clone(),
        metrics: metrics::Metrics::default(),
    });
    let (routes, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(service::root))
        .routes(routes!(service::healthz))
        .routes(routes!(service::livez))
        .routes(routes!(service::readyz))
        .routes(routes!(service::metrics))
        .routes(routes!(collections::list))
        .routes(routes!(aliases::update))
        .routes(routes!(aliases::list))
        .routes(routes!(aliases::of_collection))
        .routes(routes!(
            collections::get,
            collections::create,
            collections::update,
            collections::delete
        ))
        .routes(routes!(collections::exists))
        .routes(routes!(collections::create_index))
        .routes(routes!(collections::delete_index))
        .routes(routes!(points::upsert, points::retrieve))
        .routes(routes!(points::get_point))
        .routes(routes!(points::delete))
        .routes(routes!(points::set_payload, points::overwrite_payload))
        .routes(routes!(points::delete_payload_keys))
        .routes(routes!(points::clear_payload))
        .routes(routes!(points::put_vectors))
        .routes(routes!(points::delete_vectors_route))
        .routes(routes!(points::batch))
        .routes(routes!(scroll::scroll))
        .routes(routes!(scroll::count))
        .routes(routes!(query::search))
        .routes(routes!(query::search_batch))
        .routes(routes!(query::query))
        .routes(routes!(query::query_batch))
        .routes(routes!(inspect::collection))
        .routes(routes!(inspect::explain))
        .routes(routes!(inspect::access))
        .split_for_parts();
    let api = Arc::new(serde_json::to_value(&api).unwrap_or_default());
    routes
        .route(
            "/openapi.json",
            get(move || {
                let api = Arc::clone(&api);
                async move { axum::Json(api.as_ref().clone()) }
            }),
        )
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::record,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn_with_state(
            options.request_timeout,
            deadline,
        ))
        .layer(DefaultBodyLimit::max(options.body_limit))
        .with_state(app)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("Not found: no endpoint {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method not allowed: {method} {}", uri.path()),
    )
}

/// Answers a request that runs past `limit` with a 408 in Qdrant's error shape. Engine work
/// it started on the blocking pool still completes.
async fn deadline(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "Timeout: the request did not finish within {:.1} s (a write it started may still complete)",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    log::error!("a request handler panicked: {what}");
    ApiError::internal("Service internal error: the request failed unexpectedly; it was logged")
        .into_response()
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight, makes every
/// collection's writes durable and closes the database.
pub fn serve(db: Database, options: ServerOptions) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quiver-http")
        .build()?;
    let db = Arc::new(db);
    let result = runtime.block_on(serve_async(Arc::clone(&db), options));
    runtime.shutdown_timeout(Duration::from_secs(30));
    for name in db.list_collections() {
        if let Ok(c) = db.collection(&name)
            && let Err(e) = c.sync()
        {
            log::error!("flushing collection `{name}` at shutdown failed: {e}");
        }
    }
    result
}

async fn serve_async(db: Arc<Database>, options: ServerOptions) -> Result<(), ServerError> {
    let server = Server::bind(&options).await?;
    log::info!("quiver serve: listening on {}", server.url());
    eprintln!("quiver serve: listening on {}", server.url());
    server
        .serve(router(db, &options), shutdown_signal())
        .await?;
    eprintln!("quiver serve: shutting down");
    Ok(())
}

/// A server bound to its address and not yet serving: [`serve`] in two steps, for callers
/// that need the address first (port 0) or their own shutdown signal.
pub struct Server {
    listener: Listener,
    local: SocketAddr,
}

enum Listener {
    Plain(tokio::net::TcpListener),
    Tls(tls::TlsListener),
}

impl Server {
    /// Loads and checks the TLS files if `options.tls` names them (an error names the file
    /// at fault, and nothing listens), then listens on `options.host:options.port`.
    pub async fn bind(options: &ServerOptions) -> Result<Server, ServerError> {
        let tls = options.tls.as_ref().map(tls::server_config).transpose()?;
        let addr = format!("{}:{}", options.host, options.port);
        let tcp = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local = tcp.local_addr()?;
        let listener = match tls {
            Some(config) => Listener::Tls(tls::TlsListener::new(tcp, config)?),
            None => Listener::Plain(tcp),
        };
        Ok(Server { listener, local })
    }

    /// The address listened on (with the port chosen when `options.port` was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// `https://` or `http://` and the address.
    pub fn url(&self) -> String {
        let scheme = match self.listener {
            Listener::Plain(_) => "http",
            Listener::Tls(_) => "https",
        };
        format!("{scheme}://{}", self.local)
    }

    /// Serves `app` until `shutdown` completes, then stops accepting and returns once the
    /// requests in flight are answered.
    pub async fn serve<F>(self, app: Router, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.listener {
            Listener::Plain(tcp) => {
                axum::serve(tcp, app)
                    .with_graceful_shutdown(shutdown)
                    .await?
            }
            Listener::Tls(tls) => {
                axum::serve(tls, app)
                    .with_graceful_shutdown(shutdown)
                    .await?
            }
        }
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            log::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                log::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
