//! The one error type of the operations. `http::error` maps it to the wire in one place.

use crate::domain::InvalidInput;
use crate::ports::DependencyError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("request body too large")]
    BodyTooLarge,
    /// The client did not finish sending its request in time (a trickling body).
    #[error("request not received in time")]
    RequestTimeout,
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    #[error("invalid verification code")]
    InvalidVerificationCode,
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    #[error("invalid grant")]
    InvalidGrant,
    #[error("invalid username or password")]
    InvalidUsernameOrPassword,
    #[error("permission denied: {0}")]
    PermissionDenied(&'static str),
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("already exists: {0}")]
    AlreadyExists(&'static str),
    #[error("failed precondition: {0}")]
    FailedPrecondition(&'static str),
    #[error("rate limited for {retry_after_secs} s")]
    ResourceExhausted { retry_after_secs: i64 },
    /// A dependency failed; the text goes to the log only.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug; the text goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<InvalidInput> for AuthError {
    fn from(err: InvalidInput) -> Self {
        AuthError::InvalidArgument(err.to_string())
    }
}

impl From<DependencyError> for AuthError {
    fn from(err: DependencyError) -> Self {
        AuthError::Unavailable(err.0)
    }
}

pub type AuthResult<T> = Result<T, AuthError>;
