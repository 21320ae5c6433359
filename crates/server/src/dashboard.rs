//! The web dashboard at `/dashboard`: a page and its script and style sheet, compiled into
//! the binary from `crates/server/dashboard/` (plain HTML, CSS and JavaScript: nothing to
//! build, nothing fetched from elsewhere). They need no key and hold no data: the page calls
//! the public REST API with the key the user types, kept in the browser's session storage.

use crate::app::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// A file of the dashboard: its name under `/dashboard/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../dashboard/index.html"),
};

const ASSETS: [Asset; 4] = [
    INDEX,
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../dashboard/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../dashboard/style.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../dashboard/icon.svg"),
    },
];

/// Only this origin's files run or load, so a payload value shown on a page can never
/// pull in a script; no inline script or style is used.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(|| async { serve(&INDEX) }))
        .route("/dashboard/", get(|| async { serve(&INDEX) }))
        .route("/dashboard/{file}", get(file))
}

async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset),
        None => ApiError::not_found(format!(
            "Not found: the dashboard has no file `{name}`; open /dashboard"
        ))
        .into_response(),
    }
}

fn serve(asset: &Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // The files change with the binary; a browser asks again rather than run a stale
            // script against a newer server.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served() {
        let page = std::str::from_utf8(INDEX.body).unwrap_or_default();
        for asset in &ASSETS[1..] {
            assert!(
                page.contains(&format!("\"/dashboard/{}\"", asset.name)),
                "index.html does not reference {}",
                asset.name
            );
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "the page loads nothing from elsewhere"
        );
    }
}
