//! Errors of the SSM edge, classified so the runtime can pick a condition reason and a
//! requeue delay without reading AWS error codes itself.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;

/// What went wrong, coarsely: what the runtime needs to decide what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// AWS refused the caller: AssumeRole denied (wrong role or ExternalId), a missing
    /// permission, an unknown or expired key. The account is unreachable until fixed.
    AccessDenied,
    /// No credentials could be obtained for other reasons (provider misconfigured, STS
    /// unreachable).
    Credentials,
    /// The credentials work but belong to another account than the SystemAccount says.
    IdentityMismatch,
    /// Still throttled after the SDK's retries.
    Throttled,
    /// An SSM quota is reached (ResourceLimitExceededException and friends).
    QuotaExceeded,
    /// SSM refused the request as invalid: a bug or bad input; the message says which.
    Validation,
    /// The object is gone (deleted by hand between observe and apply).
    NotFound,
    /// The state changed under us (already exists, in use, idempotency token reused):
    /// the next observe and plan resolve it.
    Conflict,
    /// The request did not complete: connection, timeout, unreadable response.
    Transport,
    /// Anything else, such as an internal error that outlasted the retries.
    Other,
}

impl ErrorKind {
    /// CamelCase reason for status conditions and events.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::Credentials => "CredentialsUnavailable",
            ErrorKind::IdentityMismatch => "AccountMismatch",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::QuotaExceeded => "QuotaExceeded",
            ErrorKind::Validation => "InvalidRequest",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Transport => "AwsUnreachable",
            ErrorKind::Other => "AwsError",
        }
    }

    /// Whether the whole account is unusable (as opposed to one call failing).
    pub fn is_account_unreachable(self) -> bool {
        matches!(
            self,
            ErrorKind::AccessDenied | ErrorKind::Credentials | ErrorKind::IdentityMismatch
        )
    }

    /// Whether trying again soon, unchanged, may succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled
                | ErrorKind::Transport
                | ErrorKind::Conflict
                | ErrorKind::NotFound
                | ErrorKind::Other
        )
    }
}

/// Where a call was made: the account and, for SSM calls, the region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub account: String,
    pub account_id: String,
    pub region: Option<String>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.account, self.account_id)?;
        if let Some(region) = &self.region {
            write!(f, " {region}")?;
        }
        Ok(())
    }
}

/// A failed AWS call (or identity check) with its account-region context.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation} in {scope}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct EdgeError {
    pub kind: ErrorKind,
    /// Shared with the client it came from: keeps the error small.
    pub scope: Arc<Scope>,
    /// The AWS operation, such as CreatePatchBaseline or AssumeRole.
    pub operation: &'static str,
    /// AWS's error code when AWS answered one.
    pub code: Option<String>,
    /// AWS's message (SSM's validation messages name the member at fault).
    pub message: String,
}

impl EdgeError {
    pub fn new(
        kind: ErrorKind,
        scope: &Arc<Scope>,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        EdgeError {
            kind,
            scope: Arc::clone(scope),
            operation,
            code: None,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// CamelCase reason for status conditions and events.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// Classifies an SDK error of any AWS operation.
    pub(crate) fn from_sdk<E, R>(
        err: SdkError<E, R>,
        scope: &Arc<Scope>,
        operation: &'static str,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: fmt::Debug + 'static,
    {
        let (kind, code, message) = match &err {
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code().map(str::to_owned);
                let message = ctx
                    .err()
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
                (classify_code(code.as_deref()), code, message)
            }
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => (
                ErrorKind::Transport,
                None,
                DisplayErrorContext(&err).to_string(),
            ),
            _ => classify_credentials(&err).unwrap_or_else(|| {
                (
                    ErrorKind::Transport,
                    None,
                    DisplayErrorContext(&err).to_string(),
                )
            }),
        };
        EdgeError {
            kind,
            scope: Arc::clone(scope),
            operation,
            code,
            message,
        }
    }

    /// Whether the object an operation acted on no longer exists, which is success for
    /// deregistrations and deletions.
    pub(crate) fn is_gone(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

/// The SSM and STS error codes, by what they mean for the runtime. Codes from the SSM
/// API reference's Errors sections and AWS's common errors
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html>).
pub(crate) fn classify_code(code: Option<&str>) -> ErrorKind {
    match code.unwrap_or_default() {
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignature"
        | "NotAuthorized" => ErrorKind::AccessDenied,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "TooManyUpdates" => ErrorKind::Throttled,
        "ResourceLimitExceededException" | "TooManyTagsError" | "LimitExceededException" => {
            ErrorKind::QuotaExceeded
        }
        "DoesNotExistException" | "InvalidResourceId" => ErrorKind::NotFound,
        "AlreadyExistsException"
        | "ResourceInUseException"
        | "TargetInUseException"
        | "IdempotentParameterMismatch"
        | "FeatureNotAvailableException" => ErrorKind::Conflict,
        "ValidationException"
        | "ValidationError"
        | "InvalidParameters"
        | "InvalidParameterValue"
        | "SerializationException"
        | "InvalidFilter"
        | "InvalidFilterKey"
        | "InvalidFilterValue"
        | "InvalidResourceType"
        | "InvalidNextToken"
        | "UnsupportedOperatingSystem"
        | "CustomSchemaValidation" => ErrorKind::Validation,
        _ => ErrorKind::Other,
    }
}

/// A call that failed before reaching AWS because its credentials could not be
/// resolved: the SDK reports it as a dispatch or construction failure whose source
/// chain holds the STS AssumeRole error, when there was one.
fn classify_credentials(
    err: &(dyn StdError + 'static),
) -> Option<(ErrorKind, Option<String>, String)> {
    let text = DisplayErrorContext(err).to_string();
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(assume) = e.downcast_ref::<AssumeRoleError>() {
            let code = assume.code().map(str::to_owned);
            let kind = match classify_code(code.as_deref()) {
                ErrorKind::AccessDenied => ErrorKind::AccessDenied,
                ErrorKind::Throttled => ErrorKind::Throttled,
                _ => ErrorKind::Credentials,
            };
            let message = assume.message().map(str::to_owned).unwrap_or(text);
            return Some((kind, code, format!("AssumeRole failed: {message}")));
        }
        source = e.source();
    }
    text.to_ascii_lowercase()
        .contains("credential")
        .then_some((ErrorKind::Credentials, None, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify() {
        assert_eq!(
            classify_code(Some("ThrottlingException")),
            ErrorKind::Throttled
        );
        assert_eq!(
            classify_code(Some("ResourceLimitExceededException")),
            ErrorKind::QuotaExceeded
        );
        assert_eq!(
            classify_code(Some("DoesNotExistException")),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify_code(Some("ValidationException")),
            ErrorKind::Validation
        );
        assert_eq!(
            classify_code(Some("AccessDeniedException")),
            ErrorKind::AccessDenied
        );
        assert_eq!(classify_code(Some("InternalServerError")), ErrorKind::Other);
        assert_eq!(classify_code(None), ErrorKind::Other);
    }

    #[test]
    fn display_names_operation_scope_and_code() {
        let scope = Arc::new(Scope {
            account: "customer-a".into(),
            account_id: "111111111111".into(),
            region: Some("eu-west-1".into()),
        });
        let mut err = EdgeError::new(ErrorKind::Validation, &scope, "CreatePatchBaseline", "bad");
        err.code = Some("ValidationException".into());
        assert_eq!(
            err.to_string(),
            "CreatePatchBaseline in customer-a (111111111111) eu-west-1: ValidationException: bad"
        );
        assert_eq!(err.reason(), "InvalidRequest");
    }
}
