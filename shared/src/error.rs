//! One error type for every function, each variant mapped to retryable or permanent.
//!
//! The AWS service error code is kept (not flattened into a string) because it is what decides
//! between "EventBridge/Lambda should deliver this again" and "retrying cannot help".

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{operation} failed: {code}: {message}")]
    Aws {
        operation: &'static str,
        code: String,
        message: String,
        retryable: bool,
    },
    #[error("the users' role {role_name} does not exist (IAM GetRole: NoSuchEntity)")]
    RoleNotFound { role_name: String },
    #[error("instances not visible in EC2 yet (eventual consistency): {}", instance_ids.join(", "))]
    InstancesNotYetVisible { instance_ids: Vec<String> },
    #[error("{message}")]
    PolicyBudgetFull { message: String },
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

impl Error {
    /// Whether delivering the same event again can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws { retryable, .. } => *retryable,
            Error::InstancesNotYetVisible { .. } => true,
            Error::RoleNotFound { .. } | Error::PolicyBudgetFull { .. } | Error::Config(_) => false,
        }
    }

    /// `Retryable` or `Permanent`: the Lambda `errorType` and the `replay` output.
    pub fn kind(&self) -> &'static str {
        if self.is_retryable() {
            "Retryable"
        } else {
            "Permanent"
        }
    }

    /// The AWS error code, when the error came from AWS.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Turn an SDK error into an [`Error::Aws`], deciding whether a retry can help.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, Response>) -> Self
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

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.kind().to_owned(),
            error_message: err.to_string(),
        }
    }
}
