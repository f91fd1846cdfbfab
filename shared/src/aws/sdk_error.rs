//! SDK errors turned into [`Error`]s, deciding whether a retry can help.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

/// Error codes AWS uses for throttling, overload and eventual consistency. A later attempt can
/// succeed, so the event must be delivered again.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "EC2ThrottledException",
    "SlowDown",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "RequestExpired",
    "IDPCommunicationError",
    // IAM: another writer changed the same entity at the same moment.
    "ConcurrentModification",
    "ConcurrentModificationException",
    // EC2 is eventually consistent: a just-launched instance may not be visible yet.
    "InvalidInstanceID.NotFound",
];

/// Turn an SDK error into an [`Error::Aws`], deciding whether a retry can help.
pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, Response>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (code, message, retryable) = match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service
                .err()
                .code()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let message = service.err().message().unwrap_or_default().to_owned();
            let retryable =
                status >= 500 || status == 429 || RETRYABLE_CODES.contains(&code.as_str());
            (code, message, retryable)
        }
        SdkError::TimeoutError(_) => ("Timeout".into(), source_chain(&err), true),
        SdkError::DispatchFailure(_) => ("DispatchFailure".into(), source_chain(&err), true),
        SdkError::ResponseError(_) => ("ResponseError".into(), source_chain(&err), true),
        SdkError::ConstructionFailure(_) => {
            ("ConstructionFailure".into(), source_chain(&err), false)
        }
        _ => ("Unknown".into(), source_chain(&err), true),
    };
    Error::Aws {
        operation,
        code,
        message,
        retryable,
    }
}

/// The error and its causes on one line, so logs show why a connection failed.
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    parts.join(": ")
}

/// `Ok(None)` where IAM answers NoSuchEntity: the thing asked for is already gone.
pub(crate) fn unless_missing<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, Response>>,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if is_no_such_entity(&e) => Ok(None),
        Err(e) => Err(from_sdk(operation, e)),
    }
}

/// An error on a call about the users' role: NoSuchEntity means the role itself is missing.
pub(crate) fn role_error<E>(
    operation: &'static str,
    role_name: &str,
    e: SdkError<E, Response>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if is_no_such_entity(&e) {
        Error::RoleNotFound {
            role_name: role_name.to_owned(),
        }
    } else {
        from_sdk(operation, e)
    }
}

fn is_no_such_entity<E: ProvideErrorMetadata>(e: &SdkError<E, Response>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity")
}
