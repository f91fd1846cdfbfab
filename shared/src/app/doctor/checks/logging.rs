//! Check 10: where shell sessions are logged and encrypted.

use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;
use crate::domain::session_documents::{Preferences, SessionDocument};
use crate::domain::session_iam::{SessionKind, ShellSource};
use crate::error::Error;
use crate::ports::KeyState;
use crate::ports::{BucketState, LoggingTargets, SessionDocumentReader};

/// The shell document's preferences in the instance's region, or why there are none to read.
pub(crate) enum ShellPreferences {
    /// The document in use, and its preferences (Session Manager's defaults when the account's
    /// document was never saved).
    Read {
        document: String,
        preferences: Preferences,
        saved: bool,
    },
    Off,
    /// The product's document is missing, or cannot be read.
    Broken {
        document: String,
        why: String,
    },
}

pub(crate) async fn shell_preferences<S: SessionDocumentReader>(
    config: &Config,
    documents_here: &S,
) -> Result<ShellPreferences, Error> {
    let Some(document) = config.session_kinds.document(SessionKind::Shell) else {
        return Ok(ShellPreferences::Off);
    };
    let content = documents_here.session_document(&document).await?;
    Ok(match content {
        None if config.session_kinds.shell == ShellSource::Account => ShellPreferences::Read {
            document,
            preferences: Preferences::default(),
            saved: false,
        },
        None => ShellPreferences::Broken {
            why: format!("{document} does not exist"),
            document,
        },
        Some(content) => match SessionDocument::parse(&content) {
            Ok(parsed) => ShellPreferences::Read {
                document,
                preferences: parsed.preferences,
                saved: true,
            },
            Err(why) => ShellPreferences::Broken { document, why },
        },
    })
}

const NOT_LOGGED: &str = "port forwarding and SSH sessions are never logged by Session Manager (their start and end are in CloudTrail)";

/// What check 10 found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoggingFinding {
    /// The deployment turns shell sessions off.
    NoShell,
    /// The shell document is missing or cannot be read.
    Broken {
        document: String,
        region: String,
        why: String,
    },
    /// Where shell sessions go, what is wrong with those places, and what could not be read.
    Logged {
        document: String,
        region: String,
        preferences: Box<Preferences>,
        saved: bool,
        problems: Vec<TargetProblem>,
        unknown: Vec<String>,
    },
}

/// A logging target that stops sessions or loses their logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetProblem {
    NoBucket(String),
    NoLogGroup(String),
    /// The document requires encrypted logs, and the group has no KMS key.
    UnencryptedLogGroup(String),
    NoKey(String),
    KeyNotEnabled {
        key: String,
        state: KeyState,
    },
}

/// Check 10: where shell sessions are logged, and whether those places and the KMS key are
/// there and usable.
pub(crate) async fn logging<L: LoggingTargets>(
    targets_here: &L,
    region: &str,
    shell: &ShellPreferences,
) -> LoggingFinding {
    let (document, preferences, saved) = match shell {
        ShellPreferences::Off => return LoggingFinding::NoShell,
        ShellPreferences::Broken { document, why } => {
            return LoggingFinding::Broken {
                document: document.clone(),
                region: region.to_owned(),
                why: why.clone(),
            }
        }
        ShellPreferences::Read {
            document,
            preferences,
            saved,
        } => (document, preferences, *saved),
    };
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    if let Some(bucket) = &preferences.s3_bucket {
        match targets_here.bucket(bucket).await {
            Ok(BucketState::Exists) => {}
            Ok(BucketState::Missing) => problems.push(TargetProblem::NoBucket(bucket.clone())),
            Ok(BucketState::Forbidden) => unknown.push(format!(
                "S3 bucket {bucket} exists, but the doctor may not read it"
            )),
            Err(err) => unknown.push(err.in_words()),
        }
    }
    if let Some(group) = &preferences.log_group {
        match targets_here.log_group(group).await {
            Ok(Some(facts)) => {
                if preferences.log_group_must_be_encrypted && facts.kms_key.is_none() {
                    problems.push(TargetProblem::UnencryptedLogGroup(group.clone()));
                }
            }
            Ok(None) => problems.push(TargetProblem::NoLogGroup(group.clone())),
            Err(err) => unknown.push(err.in_words()),
        }
    }
    if let Some(key) = &preferences.kms_key {
        match targets_here.kms_key(key).await {
            Ok(Some(facts)) if facts.state == KeyState::Enabled => {}
            Ok(Some(facts)) => problems.push(TargetProblem::KeyNotEnabled {
                key: key.clone(),
                state: facts.state,
            }),
            Ok(None) => problems.push(TargetProblem::NoKey(key.clone())),
            Err(err) => unknown.push(err.in_words()),
        }
    }
    LoggingFinding::Logged {
        document: document.clone(),
        region: region.to_owned(),
        preferences: Box::new(preferences.clone()),
        saved,
        problems,
        unknown,
    }
}

impl TargetProblem {
    fn in_words(&self, document: &str, region: &str) -> String {
        match self {
            Self::NoBucket(bucket) => format!("S3 bucket {bucket} does not exist"),
            Self::NoLogGroup(group) => format!("log group {group} does not exist in {region}"),
            Self::UnencryptedLogGroup(group) => format!(
                "log group {group} has no KMS key, and {document} requires encrypted logs, so sessions fail to start"
            ),
            Self::NoKey(key) => format!("KMS key {key} does not exist in {region}"),
            Self::KeyNotEnabled { key, state } => {
                format!("KMS key {key} is {state}, so sessions fail to start")
            }
        }
    }
}

/// The wording of check 10.
impl From<LoggingFinding> for Check {
    fn from(finding: LoggingFinding) -> Self {
        let (document, region, preferences, saved, problems, unknown) = match finding {
            LoggingFinding::NoShell => {
                return Check::not_run(
                    CheckId::Logging,
                    format!("no shell sessions (ShellSessions=off); {NOT_LOGGED}"),
                    None,
                )
            }
            LoggingFinding::Broken {
                document,
                region,
                why,
            } => {
                return Check::fail(
                    CheckId::Logging,
                    format!("{document} in {region}: {why}"),
                    format!("deploy the product's documents in {region} (template.yaml at home, forwarder.yaml elsewhere)"),
                )
            }
            LoggingFinding::Logged {
                document,
                region,
                preferences,
                saved,
                problems,
                unknown,
            } => (document, region, preferences, saved, problems, unknown),
        };
        let source = if saved {
            format!("{document} in {region}")
        } else {
            format!("{document} (never saved in {region}: Session Manager's defaults)")
        };
        let encryption = match &preferences.kms_key {
            Some(key) => format!("encrypted with KMS key {key}"),
            None => "encrypted by TLS only (no KMS key)".to_owned(),
        };
        let detail = format!(
            "shell sessions with {source} are logged {}, {encryption}, idle timeout {} min, maximum duration {}; {NOT_LOGGED}",
            preferences.destinations(),
            preferences.idle_timeout_minutes.as_deref().unwrap_or("20"),
            preferences
                .max_duration_minutes
                .as_deref()
                .map(|m| format!("{m} min"))
                .unwrap_or_else(|| "none".into())
        );
        if !problems.is_empty() {
            let problems: Vec<String> = problems
                .iter()
                .map(|problem| problem.in_words(&document, &region))
                .collect();
            return Check::fail(
                CheckId::Logging,
                format!("{detail}; but {}", problems.join("; ")),
                "create them, or redeploy with SessionLogBucket, SessionLogGroup and SessionKmsKeyArn naming ones that exist",
            );
        }
        if !unknown.is_empty() {
            return Check::not_run(
                CheckId::Logging,
                format!("{detail}; not checked: {}", unknown.join("; ")),
                Some("attach the template's DoctorPolicy (s3:ListBucket, logs:DescribeLogGroups, kms:DescribeKey)".into()),
            );
        }
        Check::pass(CheckId::Logging, detail)
    }
}
