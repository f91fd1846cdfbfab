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

/// Check 10: where shell sessions are logged, and whether those places and the KMS key are
/// there and usable.
#[expect(
    clippy::too_many_lines,
    reason = "reads and judges the log group, the bucket and the KMS key of check 10, every wording in place; its own finding type, tested by value, is left to do"
)]
pub(crate) async fn logging<L: LoggingTargets>(
    targets_here: &L,
    region: &str,
    shell: &ShellPreferences,
) -> Check {
    let (document, preferences, saved) = match shell {
        ShellPreferences::Off => {
            return Check::not_run(
                CheckId::Logging,
                format!("no shell sessions (ShellSessions=off); {NOT_LOGGED}"),
                None,
            )
        }
        ShellPreferences::Broken { document, why } => {
            return Check::fail(
                CheckId::Logging,
                format!("{document} in {region}: {why}"),
                format!("deploy the product's documents in {region} (template.yaml at home, forwarder.yaml elsewhere)"),
            )
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
            Ok(BucketState::Missing) => problems.push(format!("S3 bucket {bucket} does not exist")),
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
                    problems.push(format!(
                        "log group {group} has no KMS key, and {document} requires encrypted logs, so sessions fail to start"
                    ));
                }
            }
            Ok(None) => problems.push(format!("log group {group} does not exist in {region}")),
            Err(err) => unknown.push(err.in_words()),
        }
    }
    if let Some(key) = &preferences.kms_key {
        match targets_here.kms_key(key).await {
            Ok(Some(facts)) if facts.state == KeyState::Enabled => {}
            Ok(Some(facts)) => problems.push(format!(
                "KMS key {key} is {}, so sessions fail to start",
                facts.state
            )),
            Ok(None) => problems.push(format!("KMS key {key} does not exist in {region}")),
            Err(err) => unknown.push(err.in_words()),
        }
    }
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
