//! Errors as Qdrant's clients expect them: an HTTP status and
//! `{"status": {"error": "..."}, "time": ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quiver_engine::Error as EngineError;

/// An error answered to the client. The message says what and where; 5xx are also logged.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A request the server understood but cannot accept: a wrong shape, value or reference.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        use EngineError as E;
        let status = match &e {
            E::CollectionNotFound { .. } | E::PointNotFound { .. } | E::AliasNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            E::CollectionExists { .. }
            | E::AliasExists { .. }
            | E::InvalidName { .. }
            | E::InvalidSchema { .. }
            | E::DimensionMismatch { .. }
            | E::NonFinite { .. }
            | E::InvalidSparseVector { .. }
            | E::UnknownVector { .. }
            | E::MissingVector { .. }
            | E::InvalidRequest { .. }
            | E::TextModelMismatch { .. }
            | E::NoTextEmbedder { .. } => StatusCode::BAD_REQUEST,
            E::Unavailable { .. } | E::CollectionDamaged { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match status {
            StatusCode::NOT_FOUND => format!("Not found: {e}"),
            StatusCode::BAD_REQUEST => format!("Wrong input: {e}"),
            _ => format!("Service internal error: {e}"),
        };
        ApiError::new(status, message)
    }
}

impl From<quiver_filter::Error> for ApiError {
    fn from(e: quiver_filter::Error) -> ApiError {
        ApiError::bad_request(format!("Wrong input: filter: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            log::error!("{} {}", self.status, self.message);
        }
        let body = serde_json::json!({
            "status": {"error": self.message},
            "time": 0.0,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
