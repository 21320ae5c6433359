//! API keys, as in Qdrant: the `api-key` header or `Authorization: Bearer <key>`. With a
//! read-write key configured every request needs a key (health probes excepted); the
//! read-only key may only read. The dashboard's static files need no key: they hold no data,
//! and the page sends the key the user types with each API call.

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub read_write: Option<String>,
    pub read_only: Option<String>,
}

/// What a request may do; the check leaves it in the request's extensions for handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

impl Keys {
    fn access(&self, presented: &str) -> Option<Access> {
        if self
            .read_write
            .as_deref()
            .is_some_and(|k| same(k, presented))
        {
            Some(Access::ReadWrite)
        } else if self
            .read_only
            .as_deref()
            .is_some_and(|k| same(k, presented))
        {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }

    pub fn enabled(&self) -> bool {
        self.read_write.is_some() || self.read_only.is_some()
    }
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Paths anyone may call, as in Qdrant: orchestrators probe them, and clients read the
/// version at `/`, without credentials.
fn is_probe(path: &str) -> bool {
    matches!(path, "/" | "/healthz" | "/livez" | "/readyz")
}

/// The dashboard's page and static files (`crate::dashboard`).
fn is_dashboard(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// Whether a request only reads. Reads that take a body are POSTs in Qdrant's API.
pub fn is_read(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    if method != Method::POST {
        return false;
    }
    if let Some(rest) = path.strip_prefix("/quiver/collections/") {
        return rest
            .split_once('/')
            .is_some_and(|(_, tail)| tail == "explain");
    }
    let Some(rest) = path.strip_prefix("/collections/") else {
        return false;
    };
    let Some((_, tail)) = rest.split_once('/') else {
        return false;
    };
    matches!(
        tail,
        "points"
            | "points/search"
            | "points/search/batch"
            | "points/query"
            | "points/query/batch"
            | "points/scroll"
            | "points/count"
    )
}

pub async fn check(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    if !app.keys.enabled() || is_probe(req.uri().path()) || is_dashboard(req.uri().path()) {
        req.extensions_mut().insert(Access::ReadWrite);
        return next.run(req).await;
    }
    let headers = req.headers();
    let presented = headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: this server requires an API key (header `api-key` or `Authorization: Bearer`)",
        )
        .into_response();
    };
    match app.keys.access(presented.trim()) {
        None => {
            ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized: invalid API key").into_response()
        }
        Some(Access::ReadOnly) if !is_read(req.method(), req.uri().path()) => ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden: the read-only API key cannot {} {}",
                req.method(),
                req.uri().path()
            ),
        )
        .into_response(),
        Some(access) => {
            req.extensions_mut().insert(access);
            next.run(req).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_told_apart() {
        assert!(is_read(&Method::GET, "/collections/a"));
        assert!(is_read(&Method::POST, "/collections/a/points/query"));
        assert!(is_read(&Method::POST, "/collections/a/points"));
        assert!(!is_read(&Method::PUT, "/collections/a/points"));
        assert!(!is_read(&Method::POST, "/collections/a/points/delete"));
        assert!(!is_read(&Method::POST, "/collections/a/points/payload"));
        assert!(!is_read(&Method::POST, "/collections/aliases"));
        assert!(!is_read(&Method::DELETE, "/collections/a"));
        assert!(is_read(&Method::POST, "/quiver/collections/a/explain"));
        assert!(!is_read(&Method::POST, "/quiver/collections/a/b/explain"));
        assert!(!is_read(&Method::DELETE, "/quiver/collections/a"));
    }

    #[test]
    fn keys_compare_whole() {
        let keys = Keys {
            read_write: Some("secret".into()),
            read_only: Some("reader".into()),
        };
        assert_eq!(keys.access("secret"), Some(Access::ReadWrite));
        assert_eq!(keys.access("reader"), Some(Access::ReadOnly));
        assert_eq!(keys.access("secre"), None);
        assert_eq!(keys.access("secrets"), None);
    }
}
