//! AWS error shapes shared by the SSM (JSON) and STS (query/XML) front ends.

use std::fmt;

/// An error answered to the caller: AWS's error code, message and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: 400,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    pub fn does_not_exist(message: impl Into<String>) -> Self {
        Self::new("DoesNotExistException", message)
    }

    pub fn limit(message: impl Into<String>) -> Self {
        Self::new("ResourceLimitExceededException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    pub fn internal() -> Self {
        Self::new("InternalServerError", "An internal error occurred.").with_status(500)
    }

    pub fn throttling() -> Self {
        Self::new("ThrottlingException", "Rate exceeded")
    }

    /// Whether this counts as a client error (4xx) or a server error (5xx) in the counters.
    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;
