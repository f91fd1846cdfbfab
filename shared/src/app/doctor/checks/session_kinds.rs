//! Check 9: each session kind on this instance (shell, port forwarding to a port, SSH as an OS user).

use std::collections::BTreeMap;

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;
use crate::domain::evaluation::{evaluate, Decision, NamedPolicy};
use crate::domain::session_documents::SessionDocument;
use crate::domain::session_iam::{self, SessionKind, SHELL_DOCUMENT};
use crate::error::Error;
use crate::ports::{RolePolicyDocument, SessionDocumentReader};

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
#[expect(
    clippy::too_many_lines,
    reason = "reads and judges each session kind (check 9), every wording in place; its own finding type, tested by value, is left to do"
)]
pub(crate) async fn session_kinds<S: SessionDocumentReader>(
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
