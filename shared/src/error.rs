//! One error type for every function, each variant mapped to retryable or permanent.
//!
//! The AWS service error code is kept (not flattened into a string) because it is what decides
//! between "EventBridge/Lambda should deliver this again" and "retrying cannot help". The
//! conversion from SDK errors lives with the adapters (`aws::sdk_error`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{operation} failed: {code}: {message}")]
    Aws {
        operation: &'static str,
        code: String,
        message: String,
        retryable: bool,
    },
    /// AWS answered, but without a field the product needs. Never read as "nothing there".
    #[error("{operation} answered without {missing}")]
    UnreadableAnswer {
        operation: &'static str,
        missing: String,
    },
    /// A region whose instances cannot be read (throttled, disabled, timing out). Never read as
    /// "no instances there": that would revoke the users whose instances live in it.
    #[error("region {region} cannot be read: {cause}")]
    RegionUnreadable { region: String, cause: String },
    #[error("the users' role {role_name} does not exist (IAM GetRole: NoSuchEntity)")]
    RoleNotFound { role_name: String },
    #[error("no IAM Identity Center role for permission set {permission_set} (AWSReservedSSO_{permission_set}_* under /aws-reserved/sso.amazonaws.com/): is the permission set assigned to this account?")]
    PermissionSetRoleNotFound { permission_set: String },
    #[error("permission set {permission_set} matches more than one Identity Center role: {}", roles.join(", "))]
    AmbiguousRole {
        permission_set: String,
        roles: Vec<String>,
    },
    /// A mode the users' role cannot support, with what to do instead.
    #[error("{message}")]
    Unsupported { message: String },
    #[error("instances not visible in EC2 yet (eventual consistency): {}", instance_ids.join(", "))]
    InstancesNotYetVisible { instance_ids: Vec<String> },
    #[error("{message}")]
    PolicyBudgetFull { message: String },
    /// `--stack` named a stack that is not this product's (or not deployed from this version).
    #[error("the stack {stack} has no output {output}: is it an ssm-session-owner stack (template.yaml)?")]
    NotAProductStack { stack: String, output: String },
}

impl Error {
    /// Whether delivering the same event again can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws { retryable, .. } => *retryable,
            Error::InstancesNotYetVisible { .. }
            | Error::UnreadableAnswer { .. }
            | Error::RegionUnreadable { .. } => true,
            Error::RoleNotFound { .. }
            | Error::PolicyBudgetFull { .. }
            | Error::AmbiguousRole { .. }
            | Error::PermissionSetRoleNotFound { .. }
            | Error::NotAProductStack { .. }
            | Error::Unsupported { .. } => false,
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

    /// Whether AWS refused the caller (rather than failing).
    pub fn is_access_denied(&self) -> bool {
        matches!(
            self.aws_code(),
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
        )
    }

    /// Whether the endpoint does not implement the API: it answered with something that is not
    /// an AWS answer (an unparseable body, or a bare HTTP status with no error code), as moto
    /// does for `DescribeInstanceInformation` and `SimulatePrincipalPolicy`.
    pub fn is_unavailable_here(&self) -> bool {
        matches!(self, Error::Aws { code, message, .. }
            if code == "ResponseError" || (code.starts_with("HTTP ") && message.is_empty()))
    }

    /// Why a read failed, in words for a report: an endpoint that does not implement the API
    /// is said plainly rather than as a parser error.
    pub fn in_words(&self) -> String {
        match self {
            Error::Aws {
                operation, code, ..
            } if self.is_unavailable_here() => {
                let answer = if code == "ResponseError" {
                    "an answer that is not AWS's"
                } else {
                    code.as_str()
                };
                format!("{operation} is not available on this endpoint, which gave {answer}")
            }
            other => other.to_string(),
        }
    }

    /// An answer that lacks `missing`.
    pub fn unreadable(operation: &'static str, missing: impl Into<String>) -> Self {
        Error::UnreadableAnswer {
            operation,
            missing: missing.into(),
        }
    }
}
