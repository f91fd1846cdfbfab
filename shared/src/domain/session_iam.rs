//! The IAM vocabulary of Session Manager, in one place: the actions, the session tag, the ARNs
//! and the requests IAM evaluates. The statements the product writes, the doctor's questions
//! (to its own evaluator and to IAM's simulator) and the property tests all speak it, so they
//! cannot drift apart.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::evaluation::Request;
use crate::domain::ids::{InstanceId, Partition};

pub const START_SESSION: &str = "ssm:StartSession";
pub const TERMINATE_SESSION: &str = "ssm:TerminateSession";
pub const RESUME_SESSION: &str = "ssm:ResumeSession";
/// The two actions on a user's own sessions, named explicitly: a wildcard would also grant
/// actions AWS adds later.
pub const SESSION_ACTIONS: [&str; 2] = [TERMINATE_SESSION, RESUME_SESSION];
/// The session tag Session Manager writes with the starter's `${aws:userid}`.
pub const SESSION_ID_TAG: &str = "aws:ssmmessages:session-id";
/// The condition key that reads [`SESSION_ID_TAG`] on a session.
pub const SESSION_ID_KEY: &str = "ssm:resourceTag/aws:ssmmessages:session-id";
/// The caller's `<role-id>:<role-session-name>`.
pub const USER_ID_KEY: &str = "aws:userid";
/// The document a plain `aws ssm start-session` opens; StartSession is authorized on it too.
pub const SHELL_DOCUMENT: &str = "SSM-SessionManagerRunShell";
/// The condition key every `ssm:StartSession` allow carries (`BoolIfExists` true): the caller must
/// name a document the policy allows. A session started without a document name is evaluated
/// with it false, and runs the account's default shell if any statement without it allows.
pub const DOCUMENT_ACCESS_CHECK_KEY: &str = "ssm:SessionDocumentAccessCheck";
/// The document that forwards to any host the instance can reach, another user's included: never
/// allowed.
pub const REMOTE_HOST_DOCUMENT: &str = "AWS-StartPortForwardingSessionToRemoteHost";
/// AWS's own documents for port forwarding to the instance itself and for SSH. The product's
/// documents replace them (the operator's port list, one name prefix to guard), so they are not
/// allowed either.
pub const AWS_PORT_FORWARDING_DOCUMENT: &str = "AWS-StartPortForwardingSession";
pub const AWS_SSH_DOCUMENT: &str = "AWS-StartSSHSession";
/// Opens the data channel of a session the caller started or resumed. The Service Authorization
/// Reference lists no resource type and no condition key for it, so IAM authorizes it on `*`;
/// the session's token, which only StartSession and ResumeSession return, is what reaches it.
pub const OPEN_DATA_CHANNEL: &str = "ssmmessages:OpenDataChannel";
/// EC2 Instance Connect: push a temporary SSH key for `ec2:osuser` onto an instance.
pub const SEND_SSH_PUBLIC_KEY: &str = "ec2-instance-connect:SendSSHPublicKey";
pub const OS_USER_KEY: &str = "ec2:osuser";
/// The prefixes under which IAM exposes an instance's tags to `ssm:StartSession` and EC2.
pub const RESOURCE_TAG_PREFIXES: [&str; 3] =
    ["ssm:resourceTag", "aws:ResourceTag", "ec2:ResourceTag"];

/// Every action on an instance that reaches it, which the guards deny on an instance that is not
/// the caller's (`GuardSessionsAndCommandsOnOthersInstances` and
/// `GuardDirectAccessToOthersInstances` in the end-user policy, `GuardMoreOnOthersInstances` in
/// the guard policy; a test keeps them equal, and the isolation catalogue too), and which
/// `doctor --audit` asks about.
pub const GUARDED_INSTANCE_ACTIONS: [&str; 46] = [
    "ssm:StartSession",
    "ssm:SendCommand",
    "ec2-instance-connect:SendSSHPublicKey",
    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "ec2:GetPasswordData",
    "ec2:GetConsoleOutput",
    "ec2:GetConsoleScreenshot",
    "ec2:DescribeInstanceAttribute",
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifyInstanceMetadataOptions",
    "ec2:AssociateIamInstanceProfile",
    "ec2:ReplaceIamInstanceProfileAssociation",
    "ec2:AttachVolume",
    "ec2:DetachVolume",
    "ec2:CreateImage",
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ec2:RebootInstances",
    "ec2:TerminateInstances",
    // the guard policy
    "ec2:SendDiagnosticInterrupt",
    "ec2:CreateReplaceRootVolumeTask",
    "ec2:GetLaunchTemplateData",
    "ec2:GetInstanceUefiData",
    "ec2:CreateSnapshots",
    "ec2:CreateInstanceExportTask",
    "ec2:DisassociateIamInstanceProfile",
    "ec2:ResetInstanceAttribute",
    "ec2:AttachNetworkInterface",
    "ec2:DetachNetworkInterface",
    "ec2:ModifyInstanceCpuOptions",
    "ec2:ModifyInstancePlacement",
    "ec2:ModifyInstanceCreditSpecification",
    "ec2:ModifyInstanceMaintenanceOptions",
    "ec2:ModifyInstanceNetworkPerformanceOptions",
    "ec2:ModifyPrivateDnsNameOptions",
    "ec2:ModifyInstanceEventStartTime",
    "ec2:ModifyInstanceCapacityReservationAttributes",
    "ec2:SendSpotInstanceInterruptions",
    "ec2:EnableInstanceSqlHaStandbyDetections",
    "ec2:DisableInstanceSqlHaStandbyDetections",
    "ec2:CreateDelegateMacVolumeOwnershipTask",
    "ec2:CreateMacSystemIntegrityProtectionModificationTask",
    "ec2:AttachClassicLinkVpc",
    "ec2:DetachClassicLinkVpc",
    "ec2:MonitorInstances",
    "ec2:UnmonitorInstances",
];

/// Every session of the partition, in any region and account: the condition carries the
/// isolation.
pub fn any_session(partition: Partition) -> String {
    format!("arn:{}:ssm:*:*:session/*", partition.as_str())
}

/// ARNs in one partition, region and account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    pub partition: Partition,
    pub region: String,
    pub account: String,
}

impl Arns {
    pub fn instance(&self, instance: &InstanceId) -> String {
        self.instance_named(instance.as_str())
    }

    /// A managed node outside EC2 (`mi-…`).
    pub fn managed_node(&self, node: &crate::domain::ids::ManagedNodeId) -> String {
        format!(
            "arn:{}:ssm:{}:{}:managed-instance/{node}",
            self.partition.as_str(),
            self.region,
            self.account
        )
    }

    /// An instance by id text (synthetic ids of `doctor --verify`).
    pub fn instance_named(&self, id: &str) -> String {
        format!(
            "arn:{}:ec2:{}:{}:instance/{id}",
            self.partition.as_str(),
            self.region,
            self.account
        )
    }

    pub fn document(&self, document: &str) -> String {
        format!(
            "arn:{}:ssm:{}:{}:document/{document}",
            self.partition.as_str(),
            self.region,
            self.account
        )
    }

    /// A session of `session_name`: `<session-name>-<suffix>`. The statements never depend on
    /// the suffix; the session-id tag decides.
    pub fn session(&self, session_name: &str, suffix: &str) -> String {
        format!(
            "arn:{}:ssm:{}:{}:session/{session_name}-{suffix}",
            self.partition.as_str(),
            self.region,
            self.account
        )
    }
}

/// The first character of `user_id` that Session Manager will not write in the session-id tag,
/// if any. AWS applies `aws:ssmmessages:session-id` only when the value uses Unicode letters,
/// digits, space and `_ . : / = + - @`; a role-session name may also hold a comma, and then the
/// user's sessions carry no session-id tag, so no statement on that tag matches them.
pub fn untaggable_char(user_id: &str) -> Option<char> {
    user_id
        .chars()
        .find(|c| !(c.is_alphanumeric() || " _.:/=+-@".contains(*c)))
}

/// What that means for the user, and what to do about it.
pub fn untaggable_reason(user_id: &str) -> Option<String> {
    untaggable_char(user_id).map(|c| {
        format!(
            "{user_id} holds {c:?}, which Session Manager does not write in the session-id tag: {user_id}'s sessions will carry no {SESSION_ID_TAG} tag, so nobody can terminate or resume them (they still start); rename the user in the identity provider without it"
        )
    })
}

/// `caller` starting a session on `resource` (an instance or a document). An instance's tags are
/// given under every prefix IAM reads them by; a document has none.
pub fn start_session(resource: &str, caller: &str, tags: &BTreeMap<String, String>) -> Request {
    let mut request = Request::new(START_SESSION, resource).with(USER_ID_KEY, caller);
    for (key, value) in tags {
        for prefix in RESOURCE_TAG_PREFIXES {
            request = request.with(format!("{prefix}/{key}"), value.clone());
        }
    }
    request
}

/// What a user does on their own instance, each through one of the product's session documents
/// (`<prefix>Shell`, `<prefix>PortForwarding`, `<prefix>SSH`), or the account's
/// [`SHELL_DOCUMENT`] for a shell with `ShellSessions=account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Shell,
    PortForwarding,
    Ssh,
}

impl SessionKind {
    pub const ALL: [SessionKind; 3] = [Self::Shell, Self::PortForwarding, Self::Ssh];

    /// The product's document name after the prefix.
    pub fn document_suffix(self) -> &'static str {
        match self {
            Self::Shell => "Shell",
            Self::PortForwarding => "PortForwarding",
            Self::Ssh => "SSH",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Shell => "shell",
            Self::PortForwarding => "port forwarding",
            Self::Ssh => "SSH",
        }
    }
}

/// Where shells come from (`ShellSessions` in the template).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShellSource {
    /// The account's `SSM-SessionManagerRunShell` and its preferences (the console's shell).
    Account,
    /// The product's `<prefix>Shell`, with the stack's logging, encryption and run-as.
    Product,
    Off,
}

/// The session kinds a deployment turns on, and its documents' names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKinds {
    pub shell: ShellSource,
    pub port_forwarding: bool,
    pub ssh: bool,
    /// `SessionDocumentPrefix` (`SsmSessionOwner-`).
    pub document_prefix: String,
    /// `SshOsUsers`.
    pub ssh_os_users: Vec<String>,
}

impl Default for SessionKinds {
    /// The template's defaults.
    fn default() -> Self {
        Self {
            shell: ShellSource::Account,
            port_forwarding: true,
            ssh: false,
            document_prefix: "SsmSessionOwner-".into(),
            ssh_os_users: vec!["ec2-user".into(), "ubuntu".into()],
        }
    }
}

impl SessionKinds {
    /// The document a session of `kind` starts with, when the kind is on.
    pub fn document(&self, kind: SessionKind) -> Option<String> {
        let product = || format!("{}{}", self.document_prefix, kind.document_suffix());
        match kind {
            SessionKind::Shell => match self.shell {
                ShellSource::Account => Some(SHELL_DOCUMENT.to_owned()),
                ShellSource::Product => Some(product()),
                ShellSource::Off => None,
            },
            SessionKind::PortForwarding => self.port_forwarding.then(product),
            SessionKind::Ssh => self.ssh.then(product),
        }
    }

    /// Every document the end-user policy allows.
    pub fn allowed_documents(&self) -> Vec<String> {
        SessionKind::ALL
            .into_iter()
            .filter_map(|kind| self.document(kind))
            .collect()
    }
}

/// `caller` starting a session on `instance` with `document` (None: no document name). IAM
/// authorizes StartSession on the instance and on the document; a request that names no
/// document is evaluated on the instance alone, with the document access check false.
pub fn start_session_with(
    instance: &str,
    document: Option<&str>,
    caller: &str,
    tags: &BTreeMap<String, String>,
) -> Vec<Request> {
    let check = if document.is_some() { "true" } else { "false" };
    let mut requests =
        vec![start_session(instance, caller, tags).with(DOCUMENT_ACCESS_CHECK_KEY, check)];
    if let Some(document) = document {
        requests.push(
            start_session(document, caller, &BTreeMap::new())
                .with(DOCUMENT_ACCESS_CHECK_KEY, check),
        );
    }
    requests
}

/// `caller` pushing an SSH key for `os_user` onto `instance` (EC2 Instance Connect), with the
/// instance's tags under the prefixes EC2 gives them.
pub fn send_ssh_public_key(
    instance: &str,
    caller: &str,
    os_user: &str,
    tags: &BTreeMap<String, String>,
) -> Request {
    let mut request = Request::new(SEND_SSH_PUBLIC_KEY, instance)
        .with(USER_ID_KEY, caller)
        .with(OS_USER_KEY, os_user);
    for (key, value) in tags {
        for prefix in ["aws:ResourceTag", "ec2:ResourceTag"] {
            request = request.with(format!("{prefix}/{key}"), value.clone());
        }
    }
    request
}

/// `caller` doing `action` (terminate or resume) on the session `arn`, whose session-id tag is
/// `owner` (None: a session Session Manager did not tag).
pub fn on_session(action: &str, arn: &str, caller: &str, owner: Option<&str>) -> Request {
    let request = Request::new(action, arn).with(USER_ID_KEY, caller);
    match owner {
        Some(owner) => request.with(SESSION_ID_KEY, owner),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_comma_of_a_role_session_name_is_left_out_of_the_session_id_tag() {
        assert_eq!(untaggable_char("AROAEXAMPLE1234:a,b"), Some(','));
        for fine in [
            "AROAEXAMPLE1234:tim.malone",
            "AROAEXAMPLE1234:ada@example.com",
            "AROAEXAMPLE1234:a_b+c=d-e",
        ] {
            assert_eq!(untaggable_char(fine), None, "{fine}");
        }
        assert!(untaggable_reason("AROAEXAMPLE1234:a,b")
            .unwrap()
            .starts_with("AROAEXAMPLE1234:a,b holds ',', which Session Manager does not write in the session-id tag"));
    }

    #[test]
    fn each_kind_on_names_its_document_and_the_kinds_off_name_none() {
        let defaults = SessionKinds::default();
        assert_eq!(
            defaults.allowed_documents(),
            [
                "SSM-SessionManagerRunShell",
                "SsmSessionOwner-PortForwarding"
            ]
        );
        let everything = SessionKinds {
            shell: ShellSource::Product,
            ssh: true,
            document_prefix: "Research-".into(),
            ..SessionKinds::default()
        };
        assert_eq!(
            everything.allowed_documents(),
            ["Research-Shell", "Research-PortForwarding", "Research-SSH"]
        );
        let ssh_only = SessionKinds {
            shell: ShellSource::Off,
            port_forwarding: false,
            ssh: true,
            ..SessionKinds::default()
        };
        assert_eq!(ssh_only.document(SessionKind::Shell), None);
        assert_eq!(ssh_only.allowed_documents(), ["SsmSessionOwner-SSH"]);
    }

    #[test]
    fn a_session_without_a_document_name_is_asked_on_the_instance_with_the_check_false() {
        let tags = BTreeMap::from([("AwsUserId".to_owned(), "AROA1:tim".to_owned())]);
        let named = start_session_with("arn:instance", Some("arn:document"), "AROA1:tim", &tags);
        assert_eq!(named.len(), 2);
        assert!(named.iter().all(|r| r.context.contains(&(
            DOCUMENT_ACCESS_CHECK_KEY.to_owned(),
            vec!["true".to_owned()]
        ))));
        assert_eq!(named[1].resource, "arn:document");
        let unnamed = start_session_with("arn:instance", None, "AROA1:tim", &tags);
        assert_eq!(unnamed.len(), 1);
        assert!(unnamed[0].context.contains(&(
            DOCUMENT_ACCESS_CHECK_KEY.to_owned(),
            vec!["false".to_owned()]
        )));
    }

    #[test]
    fn the_session_id_key_reads_the_session_id_tag() {
        assert_eq!(SESSION_ID_KEY, format!("ssm:resourceTag/{SESSION_ID_TAG}"));
    }

    #[test]
    fn arns_name_partition_region_and_account() {
        let arns = Arns {
            partition: Partition::AwsUsGov,
            region: "us-gov-west-1".into(),
            account: "123456789012".into(),
        };
        assert_eq!(
            arns.instance(&InstanceId::parse("i-0123456789abcdef0").unwrap()),
            "arn:aws-us-gov:ec2:us-gov-west-1:123456789012:instance/i-0123456789abcdef0"
        );
        assert_eq!(
            arns.document(SHELL_DOCUMENT),
            "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:document/SSM-SessionManagerRunShell"
        );
        assert_eq!(
            arns.session("tim", "0ab1cd9d876e54321"),
            "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:session/tim-0ab1cd9d876e54321"
        );
        assert_eq!(
            any_session(Partition::AwsCn),
            "arn:aws-cn:ssm:*:*:session/*"
        );
    }
}
