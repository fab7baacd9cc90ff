//! The one place an `AuthError` becomes a status and a `{error, error_description}` body.

use lambda_http::http::StatusCode;

use crate::error::AuthError;

pub struct WireError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub retry_after_secs: Option<i64>,
}

pub fn to_wire(err: &AuthError, request_id: &str) -> WireError {
    let (status, error, description) = match err {
        AuthError::InvalidArgument(why) => {
            (StatusCode::BAD_REQUEST, "invalid_argument", why.clone())
        }
        AuthError::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_argument",
            "this method is not allowed on this path".into(),
        ),
        AuthError::BodyTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_argument",
            "the request body is larger than 64 KiB".into(),
        ),
        // 408, not 400: nothing was wrong with what arrived, it arrived too slowly; clients
        // and proxies know 408 as "send it again on a new connection".
        AuthError::RequestTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "invalid_argument",
            "the request was not received in time; send it again".into(),
        ),
        AuthError::InvalidPassword(why) => {
            (StatusCode::BAD_REQUEST, "invalid_password", why.to_string())
        }
        AuthError::InvalidVerificationCode => (
            StatusCode::BAD_REQUEST,
            "invalid_verification_code",
            "the verification code is wrong, expired or used up; request a new one if needed"
                .into(),
        ),
        AuthError::Unauthenticated(why) => {
            (StatusCode::UNAUTHORIZED, "unauthenticated", why.to_string())
        }
        AuthError::InvalidGrant => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the refresh token is invalid, expired or revoked; sign in again".into(),
        ),
        AuthError::InvalidUsernameOrPassword => (
            StatusCode::BAD_REQUEST,
            "invalid_username_or_password",
            "the username or the password is wrong".into(),
        ),
        AuthError::PermissionDenied(why) => {
            (StatusCode::FORBIDDEN, "permission_denied", why.to_string())
        }
        AuthError::NotFound(why) => (StatusCode::NOT_FOUND, "not_found", why.to_string()),
        AuthError::AlreadyExists(why) => (StatusCode::CONFLICT, "already_exists", why.to_string()),
        AuthError::FailedPrecondition(why) => (
            StatusCode::PRECONDITION_FAILED,
            "failed_precondition",
            why.to_string(),
        ),
        AuthError::ResourceExhausted { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            format!("too many requests; retry in {retry_after_secs} seconds"),
        ),
        AuthError::Unavailable(detail) => {
            tracing::warn!(request_id, detail = %detail, "a dependency failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is temporarily unavailable; nothing was changed, try again".into(),
            )
        }
        AuthError::Internal(detail) => {
            tracing::error!(request_id, detail = %detail, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("an internal error occurred; quote request id {request_id}"),
            )
        }
    };
    WireError {
        status,
        error,
        description,
        retry_after_secs: match err {
            AuthError::ResourceExhausted { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        },
    }
}
