//! Checks 9 to 11: each session kind on this instance (shell, port forwarding to a port, SSH as
//! an OS user), where shell sessions are logged and encrypted, and whether per-user run-as can
//! work for the role.

use std::collections::BTreeMap;

use super::checks::failure;
use super::{Check, CheckId, Subject};
use crate::config::Config;
use crate::domain::evaluation::{evaluate, Decision, NamedPolicy};
use crate::domain::session_documents::{trust_allows_session_tags, Preferences, SessionDocument};
use crate::domain::session_iam::{self, SessionKind, ShellSource, SHELL_DOCUMENT};
use crate::error::Error;
use crate::ports::{BucketState, LoggingTargets, RolePolicyDocument, SessionDocumentReader};

/// What the operator asked about beyond a shell: a port to forward, an OS user to SSH as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindQuestion {
    pub port: Option<u16>,
    pub os_user: Option<String>,
}

/// The template parameter that turns `kind` on, its value when off, and the doctor's variable.
fn parameter(kind: SessionKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        SessionKind::Shell => ("ShellSessions", "off", "SHELL_SESSIONS"),
        SessionKind::PortForwarding => ("PortForwarding", "false", "PORT_FORWARDING"),
        SessionKind::Ssh => ("SshSessions", "false", "SSH_SESSIONS"),
    }
}

/// The product's evaluation of `requests` together: allowed when each is; otherwise the first
/// refusal, with the statements behind it; None when it cannot evaluate.
fn decide(
    policies: &[NamedPolicy],
    requests: &[crate::domain::evaluation::Request],
) -> Result<(Decision, Vec<String>), String> {
    let mut by = Vec::new();
    for request in requests {
        let found = evaluate(policies, request).map_err(|e| e.to_string())?;
        if !found.decision.is_allowed() {
            return Ok((found.decision, found.by));
        }
        by.extend(found.by);
    }
    Ok((Decision::Allowed, by))
}

/// One kind's line and, when it fails, its fix.
struct KindLine {
    text: String,
    fix: Option<String>,
}

/// Check 9: may the user open each kind of session the deployment turns on, on this instance?
pub(super) async fn session_kinds<S: SessionDocumentReader>(
    config: &Config,
    documents_here: &S,
    subject: &Subject,
    tags: &BTreeMap<String, String>,
    policies: &[RolePolicyDocument],
    question: &KindQuestion,
) -> Result<Check, Error> {
    let policies: Vec<NamedPolicy> = policies.iter().map(RolePolicyDocument::named).collect();
    let kinds = &config.session_kinds;
    let caller = subject.caller();
    let instance = subject.arns.instance(&subject.instance_id);
    // The instance first: when it is not theirs, no kind of session is, whatever the document.
    let on_instance =
        session_iam::start_session_with(&instance, Some("document"), &caller, tags).remove(0);
    match decide(&policies, std::slice::from_ref(&on_instance)) {
        Ok((Decision::Allowed, _)) | Err(_) => {}
        Ok((_, by)) => {
            let by = if by.is_empty() {
                "no statement allows it".to_owned()
            } else {
                format!("denied by {}", by.join(", "))
            };
            return Ok(Check::fail(
                CheckId::Kinds,
                format!("no kind of session: ssm:StartSession on the instance is {by}"),
                "see checks 3 and 4: the instance's user-id tag decides who may connect, whatever the session kind",
            ));
        }
    }
    let mut lines = Vec::new();
    for kind in SessionKind::ALL {
        let (parameter, off, variable) = parameter(kind);
        let Some(name) = kinds.document(kind) else {
            lines.push(KindLine {
                text: format!("{}: off ({parameter}={off})", kind.label()),
                fix: None,
            });
            continue;
        };
        let what = match kind {
            SessionKind::PortForwarding => match question.port {
                Some(port) => format!("port forwarding to port {port}"),
                None => "port forwarding".to_owned(),
            },
            SessionKind::Ssh => format!(
                "SSH as {}",
                question
                    .os_user
                    .as_deref()
                    .or(kinds.ssh_os_users.first().map(String::as_str))
                    .unwrap_or("ec2-user")
            ),
            SessionKind::Shell => "shell".to_owned(),
        };
        let mut requests = session_iam::start_session_with(
            &instance,
            Some(&subject.arns.document(&name)),
            &caller,
            tags,
        );
        if kind == SessionKind::Ssh {
            let os_user = question
                .os_user
                .clone()
                .or_else(|| kinds.ssh_os_users.first().cloned())
                .unwrap_or_else(|| "ec2-user".into());
            requests.push(session_iam::send_ssh_public_key(
                &instance, &caller, &os_user, tags,
            ));
        }
        let line = match decide(&policies, &requests) {
            Err(why) => KindLine {
                text: format!("{what}: cannot be evaluated here ({why})"),
                fix: None,
            },
            Ok((Decision::Allowed, _)) => {
                document_line(documents_here, subject, kind, &name, &what, question).await?
            }
            Ok((decision, by)) => {
                let denied = if decision == Decision::ExplicitDeny {
                    format!("explicitly denied by {}", by.join(", "))
                } else {
                    "not allowed by any statement".to_owned()
                };
                let fix = match kind {
                    SessionKind::Ssh => format!(
                        "the end-user policy allows {name} and EC2 Instance Connect keys for the OS users {} only: redeploy with SshSessions=true, and ask as one of them (--os-user), or add the OS user to SshOsUsers",
                        kinds.ssh_os_users.join(", ")
                    ),
                    _ => format!(
                        "redeploy the template with {parameter} on (its end-user policy allows exactly the documents of the kinds that are on), or set the doctor's {variable} to what the stack has"
                    ),
                };
                KindLine {
                    text: format!("{what} with {name}: {denied}"),
                    fix: Some(fix),
                }
            }
        };
        lines.push(line);
    }
    let detail = lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let fixes: Vec<&str> = lines.iter().filter_map(|l| l.fix.as_deref()).collect();
    Ok(if fixes.is_empty() {
        Check::pass(CheckId::Kinds, detail)
    } else {
        Check::fail(CheckId::Kinds, detail, fixes.join("; "))
    })
}

/// IAM allows the kind: is its document there, in the instance's region, and does it do what
/// it should (the asked port; never another host)?
async fn document_line<S: SessionDocumentReader>(
    documents_here: &S,
    subject: &Subject,
    kind: SessionKind,
    name: &str,
    what: &str,
    question: &KindQuestion,
) -> Result<KindLine, Error> {
    let region = &subject.region;
    let allowed = format!("{what}: allowed with {name}");
    let Some(content) = documents_here.session_document(name).await? else {
        if name == SHELL_DOCUMENT {
            return Ok(KindLine {
                text: format!(
                    "{allowed} (not saved in {region}: Session Manager's default preferences apply)"
                ),
                fix: None,
            });
        }
        return Ok(KindLine {
            text: format!("{what}: {name} does not exist in {region}"),
            fix: Some(format!(
                "deploy forwarder.yaml in {region} with the same session parameters as template.yaml (it creates the product's documents there)"
            )),
        });
    };
    let document = match SessionDocument::parse(&content) {
        Ok(document) => document,
        Err(why) => {
            return Ok(KindLine {
                text: format!("{what}: {name} in {region} cannot be read: {why}"),
                fix: Some("redeploy the stack that creates it".into()),
            })
        }
    };
    if document.reaches_other_hosts {
        return Ok(KindLine {
            text: format!("{what}: {name} in {region} forwards to other hosts"),
            fix: Some(format!(
                "{name} was changed: redeploy the stack that creates it (the product's documents reach only the instance itself)"
            )),
        });
    }
    match (kind, question.port) {
        (SessionKind::PortForwarding, Some(port)) => match document.accepts_port(port) {
            Ok(true) => Ok(KindLine {
                text: format!("{allowed}, which accepts {}", document.ports()),
                fix: None,
            }),
            Ok(false) => Ok(KindLine {
                text: format!(
                    "{what}: {name} does not accept port {port}; it accepts {}",
                    document.ports()
                ),
                fix: Some(format!(
                    "forward one of those ports, or add {port} to the template's ForwardedPorts"
                )),
            }),
            Err(why) => Ok(KindLine {
                text: format!("{what}: {name} in {region}: {why}"),
                fix: Some("redeploy the stack that creates it".into()),
            }),
        },
        (SessionKind::PortForwarding, None) => Ok(KindLine {
            text: format!(
                "{allowed}, which accepts {} (ask about one with --port)",
                document.ports()
            ),
            fix: None,
        }),
        _ => Ok(KindLine {
            text: allowed,
            fix: None,
        }),
    }
}

/// The shell document's preferences in the instance's region, or why there are none to read.
pub(super) enum ShellPreferences {
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

pub(super) async fn shell_preferences<S: SessionDocumentReader>(
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
pub(super) async fn logging<L: LoggingTargets>(
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
            Err(err) => unknown.push(failure(&err)),
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
            Err(err) => unknown.push(failure(&err)),
        }
    }
    if let Some(key) = &preferences.kms_key {
        match targets_here.kms_key(key).await {
            Ok(Some(facts)) if facts.state == "Enabled" => {}
            Ok(Some(facts)) => problems.push(format!(
                "KMS key {key} is {}, so sessions fail to start",
                facts.state
            )),
            Ok(None) => problems.push(format!("KMS key {key} does not exist in {region}")),
            Err(err) => unknown.push(failure(&err)),
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

/// Check 11: whether shell sessions run as the user, and whether per-user run-as can work for
/// this role (the identity provider must pass `SSMSessionRunAs`, which needs `sts:TagSession`
/// in the trust policy).
pub(super) fn run_as(shell: &ShellPreferences, trust_policy: Option<&str>) -> Check {
    let ShellPreferences::Read {
        document,
        preferences,
        ..
    } = shell
    else {
        return Check::not_run(CheckId::RunAs, "no shell document to read", None);
    };
    if !preferences.run_as_enabled {
        return Check::pass(
            CheckId::RunAs,
            format!("{document} runs shells as ssm-user (run-as is off; ShellSessions=product with RunAsEnabled=true turns it on)"),
        );
    }
    let fallback = match &preferences.run_as_default_user {
        Some(user) => format!("as {user}"),
        None => "nowhere: with no default user, sessions fail to start".to_owned(),
    };
    let Some(trust) = trust_policy else {
        return Check::not_run(
            CheckId::RunAs,
            "the role's trust policy could not be read",
            None,
        );
    };
    match trust_allows_session_tags(trust) {
        Err(why) => Check::not_run(CheckId::RunAs, why, None),
        Ok(true) => Check::pass(
            CheckId::RunAs,
            format!(
                "{document} runs each shell as the user's SSMSessionRunAs session tag, else {fallback}; the trust policy lets the identity provider pass it (sts:TagSession)"
            ),
        ),
        Ok(false) => Check::fail(
            CheckId::RunAs,
            format!(
                "{document} runs shells as the user's SSMSessionRunAs session tag, but the trust policy does not allow sts:TagSession for the identity provider, so nobody carries one: every shell runs {fallback}"
            ),
            "add sts:TagSession to the trust policy's statement for the SAML provider, and have the identity provider pass the attribute https://aws.amazon.com/SAML/Attributes/PrincipalTag:SSMSessionRunAs (Identity Center: an attribute for access control named SSMSessionRunAs)",
        ),
    }
}
