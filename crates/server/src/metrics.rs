//! Prometheus metrics: requests and their latency by endpoint and status, and points and
//! segments per collection (read when scraped).

use crate::app::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters keyed by (method, route template, status).
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut map = self.requests.lock();
        let h = map
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The text exposition format.
    pub fn render(&self, collections: &[(String, u64, usize)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP quiver_http_requests_total HTTP requests answered, by endpoint and status.\n",
        );
        out.push_str("# TYPE quiver_http_requests_total counter\n");
        let map = self.requests.lock();
        for ((method, route, status), h) in map.iter() {
            let _ = writeln!(
                out,
                "quiver_http_requests_total{{method=\"{method}\",endpoint=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                h.count
            );
        }
        out.push_str("# HELP quiver_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE quiver_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in map.iter() {
            let labels = format!(
                "method=\"{method}\",endpoint=\"{}\",status=\"{status}\"",
                escape(route)
            );
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "quiver_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "quiver_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "quiver_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "quiver_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        drop(map);
        out.push_str("# HELP quiver_collection_points Live points per collection.\n");
        out.push_str("# TYPE quiver_collection_points gauge\n");
        for (name, points, _) in collections {
            let _ = writeln!(
                out,
                "quiver_collection_points{{collection=\"{}\"}} {points}",
                escape(name)
            );
        }
        out.push_str("# HELP quiver_collection_segments Segments per collection.\n");
        out.push_str("# TYPE quiver_collection_segments gauge\n");
        for (name, _, segments) in collections {
            let _ = writeln!(
                out,
                "quiver_collection_segments{{collection=\"{}\"}} {segments}",
                escape(name)
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records every request under its route template (`/collections/{name}/points/query`), so
/// that collection names and ids do not multiply the series.
pub async fn record(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let response = next.run(req).await;
    app.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
