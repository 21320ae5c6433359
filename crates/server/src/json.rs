//! Request bodies and the response envelope.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Instant;

/// A JSON body of type `T`. A malformed body or a wrong shape is a 400 that gives the
/// location (`points[3].vector: invalid type: string "x", expected f32 at line 1 column 40`);
/// a body over the limit is a 413. An empty body reads as `{}`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, format!("Payload too large: {}", e.body_text()))
            } else {
                ApiError::new(
                    status,
                    format!("Cannot read the request body: {}", e.body_text()),
                )
            }
        })?;
        parse(if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        })
        .map(Body)
    }
}

/// Parses JSON into `T`, naming the path of a wrong member. A body that parses takes the
/// plain path; only a failing one is parsed again with path tracking, for the message.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::bad_request(format!("Format error in JSON body: {at}{inner}"))
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("Format error in JSON body: {e}")))?;
    Ok(value)
}

/// When the handler started, for the envelope's `time`.
pub struct Started(pub Instant);

impl<S: Send + Sync> FromRequestParts<S> for Started {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Started(Instant::now()))
    }
}

/// `{"result": ..., "status": "ok", "time": seconds}`, serialized when the handler answers
/// (straight from the result's own type: no intermediate `serde_json::Value`).
pub struct Reply(Result<Vec<u8>, String>);

impl Reply {
    pub fn ok(started: &Started, result: impl Serialize) -> Reply {
        let envelope = Envelope {
            result,
            status: "ok",
            time: started.0.elapsed().as_secs_f64(),
        };
        // Only a map with non-string keys could fail to serialize; none is built here.
        Reply(serde_json::to_vec(&envelope).map_err(|e| e.to_string()))
    }
}

#[derive(Serialize)]
struct Envelope<T> {
    result: T,
    status: &'static str,
    time: f64,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let bytes = match self.0 {
            Ok(bytes) => bytes,
            Err(e) => {
                return ApiError::internal(format!("Service internal error: {e}")).into_response();
            }
        };
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response()
    }
}
