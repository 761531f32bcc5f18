//! HTTP errors: a status and a JSON message; refusals under load say why and when to retry.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// Why a request was refused without being answered: the label of
/// `snnet_refused_total{reason=...}` and the `reason` of the JSON error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Refusal {
    /// No stitch could answer within the request's deadline (at admission or in the queue).
    DeadlineUnreachable,
    /// The queue held its maximum number of requests.
    QueueFull,
    /// The queue was predicted to drain later than `max_queue_ms`.
    QueueDrain,
    /// The server was shutting down.
    ShuttingDown,
}

impl Refusal {
    /// Every reason, for the metrics.
    pub(super) const ALL: [Refusal; 4] = [
        Refusal::DeadlineUnreachable,
        Refusal::QueueFull,
        Refusal::QueueDrain,
        Refusal::ShuttingDown,
    ];

    /// The reason's name.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Refusal::DeadlineUnreachable => "deadline_unreachable",
            Refusal::QueueFull => "queue_full",
            Refusal::QueueDrain => "queue_drain",
            Refusal::ShuttingDown => "shutting_down",
        }
    }

    /// The 503 answer: `message`, this reason, and `Retry-After` (whole seconds, at least 1)
    /// when `retry_after_s` is given.
    pub(super) fn error(self, message: impl Into<String>, retry_after_s: Option<f64>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            refusal: Some(self),
            // Whole seconds in [1, 3600] (clamped before the cast).
            retry_after_s: retry_after_s.map(|s| {
                let s = s.ceil();
                if s.is_finite() {
                    s.clamp(1.0, 3600.0) as u64
                } else {
                    1
                }
            }),
        }
    }
}

/// An HTTP error: a status and a message, sent as `{"error": message}` (with `"reason"` for
/// a refusal under load).
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) refusal: Option<Refusal>,
    pub(super) retry_after_s: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            refusal: None,
            retry_after_s: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use snnet_core::select::Error as SelectError;
        let status = match &e {
            Error::Input(_)
            | Error::Config(_)
            | Error::InvalidDeadline { .. }
            | Error::StitchNotServed { .. } => StatusCode::BAD_REQUEST,
            Error::UnknownStitch { .. } => StatusCode::NOT_FOUND,
            Error::ForeignProfile { .. } | Error::NoProfile { .. } => StatusCode::CONFLICT,
            Error::Select(
                SelectError::NothingFits { .. }
                | SelectError::InvalidBudget { .. }
                | SelectError::MissingCost { .. }
                | SelectError::CostMismatch { .. },
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::DeadlineUnreachable { fastest_ms, .. } => {
                let fastest = *fastest_ms;
                return Refusal::DeadlineUnreachable.error(e.to_string(), Some(fastest / 1e3));
            }
            Error::Space(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.refusal {
            Some(reason) => json!({ "error": self.message, "reason": reason.as_str() }),
            None => json!({ "error": self.message }),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
