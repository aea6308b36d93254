//! The one place errors become HTTP: `application/problem+json` (RFC 9457) with a stable `code`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;

/// An error response. `code` is stable and meant for programs; `detail` is for people.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `urn:switchboard:problem:<code>`
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `not_found`, `invalid_parameter`.
    pub code: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:switchboard:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// A JSON body that could not be read: too large (413), or not what the route takes (400).
pub fn json_body(e: axum::extract::rejection::JsonRejection) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge(e.body_text())
    } else {
        Error::invalid("body", e.body_text())
    }
}

pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
        Error::SafetyLimit(_) | Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::Csrf => StatusCode::FORBIDDEN,
        Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
        Error::Unavailable(_) | Error::IndexLocked | Error::Overloaded | Error::Timeout(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::Directory { .. } | Error::DirectoryAuth { .. } => StatusCode::BAD_GATEWAY,
        // A file sent to be imported that is not a directory export at all.
        Error::Input { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Config(_)
        | Error::EmbeddedDb(_)
        | Error::Database(_)
        | Error::Migration(_)
        | Error::Index(_)
        | Error::Io(_)
        | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        // Internal details go to the log, not to the client.
        let detail = if status.is_server_error()
            && !matches!(
                self,
                Error::Unavailable(_) | Error::IndexLocked | Error::Overloaded | Error::Timeout(_)
            ) {
            tracing::error!(error = %self, code = self.code(), "request failed");
            "an internal error occurred; it has been logged".to_string()
        } else {
            self.to_string()
        };
        let retry_after = match &self {
            Error::TooManyRequests { retry_after, .. } => Some(*retry_after),
            Error::Overloaded => Some(1),
            Error::Unavailable(_) | Error::IndexLocked => Some(2),
            _ => None,
        };
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let mut response = Problem::new(status, self.code(), detail).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"switchboard\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_status_and_code() {
        let cases = [
            (Error::NotFound { what: "person" }, 404, "not_found"),
            (Error::invalid("limit", "too big"), 400, "invalid_parameter"),
            (Error::Unavailable("db".into()), 503, "unavailable"),
            (Error::Internal(anyhow::anyhow!("boom")), 500, "internal"),
            (Error::Unauthorized("who".into()), 401, "unauthorized"),
            (Error::Forbidden("no".into()), 403, "forbidden"),
            (Error::Csrf, 403, "csrf_failed"),
            (
                Error::TooManyRequests {
                    retry_after: 3,
                    what: "sign-ins".into(),
                },
                429,
                "rate_limited",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(status_of(&error).as_u16(), status);
            assert_eq!(error.code(), code);
        }
    }
}
