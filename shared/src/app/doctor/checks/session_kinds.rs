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

/// What check 9 found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionKindsFinding {
    /// `ssm:StartSession` on the instance itself is refused: no kind of session is possible.
    NotOnInstance { by: Vec<String> },
    /// Each kind, in `SessionKind::ALL`'s order.
    Kinds {
        region: String,
        ssh_os_users: Vec<String>,
        kinds: Vec<KindFinding>,
    },
}

/// One kind of session: what was asked ("SSH as ubuntu") and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KindFinding {
    pub kind: SessionKind,
    pub what: String,
    pub state: KindState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KindState {
    /// The deployment turns the kind off.
    Off,
    /// The product cannot evaluate the role's policies for it.
    Unevaluable { why: String },
    /// IAM refuses the kind's document (or the SSH key push).
    Refused {
        document: String,
        decision: Decision,
        by: Vec<String>,
    },
    /// IAM allows it; what the document in the instance's region says.
    Allowed {
        document: String,
        found: DocumentFound,
    },
}

/// The kind's session document in the instance's region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DocumentFound {
    /// The account's shell document is not saved: Session Manager's defaults apply.
    DefaultShell,
    Missing,
    Unreadable {
        why: String,
    },
    /// It forwards to hosts other than the instance.
    ReachesOtherHosts,
    /// A port forwarding document: the ports it accepts, and whether it accepts the asked one.
    Ports {
        accepts: String,
        asked: Option<(u16, Result<bool, String>)>,
    },
    Fine,
}

/// Check 9: may the user open each kind of session the deployment turns on, on this instance?
pub(crate) async fn session_kinds<S: SessionDocumentReader>(
    config: &Config,
    documents_here: &S,
    subject: &Subject,
    tags: &BTreeMap<String, String>,
    policies: &[RolePolicyDocument],
    question: &KindQuestion,
) -> Result<SessionKindsFinding, Error> {
    let policies: Vec<NamedPolicy> = policies.iter().map(RolePolicyDocument::named).collect();
    let kinds = &config.session_kinds;
    let caller = subject.caller();
    let instance = subject.arns.instance(&subject.instance_id);
    // The instance first: when it is not theirs, no kind of session is, whatever the document.
    let on_instance =
        session_iam::start_session_with(&instance, Some("document"), &caller, tags).remove(0);
    if let Ok((decision, by)) = decide(&policies, std::slice::from_ref(&on_instance)) {
        if decision != Decision::Allowed {
            return Ok(SessionKindsFinding::NotOnInstance { by });
        }
    }
    let os_user = question
        .os_user
        .clone()
        .or_else(|| kinds.ssh_os_users.first().cloned())
        .unwrap_or_else(|| "ec2-user".into());
    let mut found = Vec::new();
    for kind in SessionKind::ALL {
        let what = match kind {
            SessionKind::PortForwarding => match question.port {
                Some(port) => format!("port forwarding to port {port}"),
                None => "port forwarding".to_owned(),
            },
            SessionKind::Ssh => format!("SSH as {os_user}"),
            SessionKind::Shell => "shell".to_owned(),
        };
        let state = match kinds.document(kind) {
            None => KindState::Off,
            Some(document) => {
                let mut requests = session_iam::start_session_with(
                    &instance,
                    Some(&subject.arns.document(&document)),
                    &caller,
                    tags,
                );
                if kind == SessionKind::Ssh {
                    requests.push(session_iam::send_ssh_public_key(
                        &instance, &caller, &os_user, tags,
                    ));
                }
                match decide(&policies, &requests) {
                    Err(why) => KindState::Unevaluable { why },
                    Ok((Decision::Allowed, _)) => {
                        let found =
                            document_found(documents_here, kind, &document, question).await?;
                        KindState::Allowed { document, found }
                    }
                    Ok((decision, by)) => KindState::Refused {
                        document,
                        decision,
                        by,
                    },
                }
            }
        };
        found.push(KindFinding { kind, what, state });
    }
    Ok(SessionKindsFinding::Kinds {
        region: subject.region.clone(),
        ssh_os_users: kinds.ssh_os_users.clone(),
        kinds: found,
    })
}

/// IAM allows the kind: is its document there, in the instance's region, and does it do what
/// it should (the asked port; never another host)?
async fn document_found<S: SessionDocumentReader>(
    documents_here: &S,
    kind: SessionKind,
    name: &str,
    question: &KindQuestion,
) -> Result<DocumentFound, Error> {
    let Some(content) = documents_here.session_document(name).await? else {
        return Ok(if name == SHELL_DOCUMENT {
            DocumentFound::DefaultShell
        } else {
            DocumentFound::Missing
        });
    };
    let document = match SessionDocument::parse(&content) {
        Ok(document) => document,
        Err(why) => {
            return Ok(DocumentFound::Unreadable {
                why: why.to_string(),
            })
        }
    };
    Ok(if document.reaches_other_hosts {
        DocumentFound::ReachesOtherHosts
    } else if kind == SessionKind::PortForwarding {
        DocumentFound::Ports {
            accepts: document.ports(),
            asked: question
                .port
                .map(|port| (port, document.accepts_port(port))),
        }
    } else {
        DocumentFound::Fine
    })
}

/// One kind's line and, when it fails, its fix.
struct KindLine {
    text: String,
    fix: Option<String>,
}

impl KindLine {
    fn ok(text: String) -> Self {
        Self { text, fix: None }
    }

    fn fix(text: String, fix: impl Into<String>) -> Self {
        Self {
            text,
            fix: Some(fix.into()),
        }
    }
}

/// The wording of check 9.
impl From<SessionKindsFinding> for Check {
    fn from(finding: SessionKindsFinding) -> Self {
        let (region, ssh_os_users, kinds) = match finding {
            SessionKindsFinding::NotOnInstance { by } => {
                let by = if by.is_empty() {
                    "not allowed by any statement".to_owned()
                } else {
                    format!("denied by {}", by.join(", "))
                };
                return Check::fail(
                    CheckId::Kinds,
                    format!("no kind of session: ssm:StartSession on the instance is {by}"),
                    "see checks 3 and 4: the instance's user-id tag decides who may connect, whatever the session kind",
                );
            }
            SessionKindsFinding::Kinds {
                region,
                ssh_os_users,
                kinds,
            } => (region, ssh_os_users, kinds),
        };
        let lines: Vec<KindLine> = kinds
            .into_iter()
            .map(|found| kind_line(found, &region, &ssh_os_users))
            .collect();
        let detail = lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let fixes: Vec<&str> = lines.iter().filter_map(|l| l.fix.as_deref()).collect();
        if fixes.is_empty() {
            Check::pass(CheckId::Kinds, detail)
        } else {
            Check::fail(CheckId::Kinds, detail, fixes.join("; "))
        }
    }
}

fn kind_line(found: KindFinding, region: &str, ssh_os_users: &[String]) -> KindLine {
    let KindFinding { kind, what, state } = found;
    let (parameter, off, variable) = parameter(kind);
    match state {
        KindState::Off => KindLine::ok(format!("{}: off ({parameter}={off})", kind.label())),
        KindState::Unevaluable { why } => {
            KindLine::ok(format!("{what}: cannot be evaluated here ({why})"))
        }
        KindState::Refused {
            document,
            decision,
            by,
        } => {
            let denied = if decision == Decision::ExplicitDeny {
                format!("explicitly denied by {}", by.join(", "))
            } else {
                "not allowed by any statement".to_owned()
            };
            let fix = match kind {
                SessionKind::Ssh => format!(
                    "the end-user policy allows {document} and EC2 Instance Connect keys for the OS users {} only: redeploy with SshSessions=true, and ask as one of them (--os-user), or add the OS user to SshOsUsers",
                    ssh_os_users.join(", ")
                ),
                _ => format!(
                    "redeploy the template with {parameter} on (its end-user policy allows exactly the documents of the kinds that are on), or set the doctor's {variable} to what the stack has"
                ),
            };
            KindLine::fix(format!("{what} with {document}: {denied}"), fix)
        }
        KindState::Allowed { document, found } => document_line(&what, &document, region, found),
    }
}

fn document_line(what: &str, name: &str, region: &str, found: DocumentFound) -> KindLine {
    let allowed = format!("{what}: allowed with {name}");
    let redeploy = "redeploy the stack that creates it";
    match found {
        DocumentFound::DefaultShell => KindLine::ok(format!(
            "{allowed} (not saved in {region}: Session Manager's default preferences apply)"
        )),
        DocumentFound::Missing => KindLine::fix(
            format!("{what}: {name} does not exist in {region}"),
            format!(
                "deploy forwarder.yaml in {region} with the same session parameters as template.yaml (it creates the product's documents there)"
            ),
        ),
        DocumentFound::Unreadable { why } => KindLine::fix(
            format!("{what}: {name} in {region} cannot be read: {why}"),
            redeploy,
        ),
        DocumentFound::ReachesOtherHosts => KindLine::fix(
            format!("{what}: {name} in {region} forwards to other hosts"),
            format!(
                "{name} was changed: redeploy the stack that creates it (the product's documents reach only the instance itself)"
            ),
        ),
        DocumentFound::Ports {
            accepts,
            asked: None,
        } => KindLine::ok(format!(
            "{allowed}, which accepts {accepts} (ask about one with --port)"
        )),
        DocumentFound::Ports {
            accepts,
            asked: Some((_, Ok(true))),
        } => KindLine::ok(format!("{allowed}, which accepts {accepts}")),
        DocumentFound::Ports {
            accepts,
            asked: Some((port, Ok(false))),
        } => KindLine::fix(
            format!("{what}: {name} does not accept port {port}; it accepts {accepts}"),
            format!("forward one of those ports, or add {port} to the template's ForwardedPorts"),
        ),
        DocumentFound::Ports {
            asked: Some((_, Err(why))),
            ..
        } => KindLine::fix(format!("{what}: {name} in {region}: {why}"), redeploy),
        DocumentFound::Fine => KindLine::ok(allowed),
    }
}
