//! The doctor against the in-memory fakes: the paths moto cannot reach (a managed node, IAM's
//! simulator answering, another region, Identity Center). The fake simulator is the product's
//! own evaluator; IAM's real one is covered with aws-smithy-mocks (`tools/doctor/tests`).

use std::collections::BTreeSet;

use super::checks::reachability::reachability;
use super::checks::simulator::confirmation;
use super::context::OwnAnswers;
use super::*;
use crate::app::managed_store::ManagedStore;
use crate::config::WriteMode;
use crate::domain::evaluation::Decision;
use crate::domain::ids::InstanceId;
use crate::domain::ids::{ResolvedRole, RoleId, UserId};
use crate::domain::session_iam::{RESUME_SESSION, START_SESSION, TERMINATE_SESSION};
use crate::domain::session_name::SessionName;
use crate::domain::statements::Scope;
use crate::fakes::FakeAws;
use crate::ports::{ManagedNode, ManagedPolicies, PolicyStore, Simulated};
use crate::ports::{PingStatus, RolePolicies};

const ROLE: &str = Config::TEST_ROLE;
const ROLE_ID: &str = "AROAEXAMPLEROLEID1234";
const INSTANCE: &str = "i-0a1b2c3d4e5f60001";
/// The end-user policy's allows with the template's defaults (a shell with the account's
/// document, port forwarding with the product's).
const END_USER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"StartSessionOnOwnInstances","Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:123456789012:instance/*","Condition":{"StringEquals":{"ssm:resourceTag/AwsUserId":"${aws:userid}"},"BoolIfExists":{"ssm:SessionDocumentAccessCheck":"true"}}},
  {"Sid":"StartSessionWithAllowedDocuments","Effect":"Allow","Action":"ssm:StartSession","Resource":["arn:aws:ssm:*:123456789012:document/SSM-SessionManagerRunShell","arn:aws:ssm:*:123456789012:document/SsmSessionOwner-PortForwarding"],"Condition":{"BoolIfExists":{"ssm:SessionDocumentAccessCheck":"true"}}}]}"#;

fn role() -> RoleId {
    RoleId::parse(ROLE_ID).unwrap()
}

fn resolved() -> ResolvedRole {
    ResolvedRole {
        name: ROLE.into(),
        id: role(),
    }
}

fn config(vars: &[(&str, &str)]) -> Config {
    Config::for_tests(vars)
}

/// The role with the end-user policy attached, tim's instance, and tim granted in a shard.
async fn account(role_name: &str) -> FakeAws {
    let fake = FakeAws::new().with_role(role_name, &role());
    let policy = fake
        .create_policy("SsmSessionOwnerEndUser", "/", END_USER)
        .await
        .unwrap();
    fake.attach_role_policy(role_name, &policy.arn)
        .await
        .unwrap();
    fake.add_instance(
        INSTANCE,
        InstanceState::Running,
        &[("AwsUserId", &format!("{ROLE_ID}:tim"))],
    );
    fake
}

async fn grant(fake: &FakeAws, names: &[&str]) {
    let store = ManagedStore::new(fake.clone(), "ssm-session-owner-", 10, 10);
    let desired: BTreeSet<SessionName> = names
        .iter()
        .map(|n| SessionName::parse(n).unwrap())
        .collect();
    store
        .converge(&resolved(), &Scope::All, &desired, WriteMode::Apply)
        .await
        .unwrap();
}

fn online() -> ManagedNode {
    ManagedNode {
        ping_status: PingStatus::Online,
        agent_version: Some("3.3.1142.0".into()),
        platform: Some("Amazon Linux 2023".into()),
        last_ping: None,
    }
}

fn question<'a>(user: &'a str, instance: &'a str) -> Question<'a> {
    Question {
        user,
        instance,
        ..Question::default()
    }
}

/// A trail that delivers every region's launches.
static TRAILS: std::sync::LazyLock<crate::fakes::FakeTrails> =
    std::sync::LazyLock::new(crate::fakes::FakeTrails::logging_everywhere);

fn services(
    fake: &FakeAws,
) -> Services<'_, FakeAws, FakeAws, FakeAws, FakeAws, crate::fakes::FakeTrails> {
    Services {
        ec2: fake,
        iam: fake,
        ssm: fake,
        logging: fake,
        trails: &TRAILS,
    }
}

async fn run(config: &Config, fake: &FakeAws, user: &str) -> Diagnosis {
    diagnose(config, &question(user, INSTANCE), services(fake))
        .await
        .unwrap()
}

#[tokio::test]
async fn with_a_node_online_and_iam_agreeing_every_check_passes() {
    // GIVEN tim granted, his node online, and IAM's simulator answering
    let fake = account(ROLE).await;
    grant(&fake, &["tim"]).await;
    let instance = InstanceId::parse(INSTANCE).unwrap();
    fake.world().nodes.insert(instance, online());
    fake.world().simulator_available = true;
    let before = fake.world().managed_policies.len();
    fake.take_calls();

    // WHEN the doctor runs
    let found = run(&config(&[]), &fake, "tim").await;

    // THEN all twelve checks pass, IAM confirms, and nothing was written
    let marks: Vec<Option<bool>> = found.checks.iter().map(|c| c.ok()).collect();
    assert_eq!(marks, [Some(true); 12], "{found}");
    // in CheckId::ALL's order, so each check's number is its position there
    let ids: Vec<CheckId> = found.checks.iter().map(|c| c.id).collect();
    assert_eq!(ids, CheckId::ALL);
    assert_eq!(CheckId::Trust.number(), 8);
    assert!(found.to_string().contains("✓ 8. trust policy"), "{found}");
    assert_eq!(
        found.check(CheckId::Kinds).unwrap().detail,
        "shell: allowed with SSM-SessionManagerRunShell (not saved in us-east-1: Session Manager's default preferences apply); port forwarding: allowed with SsmSessionOwner-PortForwarding, which accepts ports matching ^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$ (ask about one with --port); SSH: off (SshSessions=false)"
    );
    assert_eq!(found.verdict, Verdict::Allowed);
    assert_eq!(
        found.check(CheckId::Reachability).unwrap().detail,
        "i-0a1b2c3d4e5f60001 is a managed node, Online (agent 3.3.1142.0, Amazon Linux 2023)"
    );
    assert_eq!(
        found.check(CheckId::Simulator).unwrap().detail,
        "IAM's policy simulator agrees: StartSession allowed, TerminateSession allowed, ResumeSession allowed"
    );
    assert_eq!(fake.world().managed_policies.len(), before);
    let calls = fake.take_calls();
    let writes: Vec<&&str> = calls
        .keys()
        .filter(|op| {
            ["Create", "Delete", "Put", "Attach", "Detach", "Terminate"]
                .iter()
                .any(|w| op.split(':').nth(1).is_some_and(|name| name.starts_with(w)))
        })
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(
        calls.contains_key("iam:SimulatePrincipalPolicy"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_node_that_lost_its_connection_denies_even_when_iam_allows() {
    let fake = account(ROLE).await;
    grant(&fake, &["tim"]).await;
    fake.world().nodes.insert(
        InstanceId::parse(INSTANCE).unwrap(),
        ManagedNode {
            ping_status: PingStatus::ConnectionLost,
            ..online()
        },
    );
    let found = run(&config(&[]), &fake, "tim").await;
    assert_eq!(found.actions.start_session, ActionVerdict::Allowed);
    assert_eq!(found.verdict, Verdict::Denied);
    let check = found.check(CheckId::Reachability).unwrap();
    assert_eq!(check.ok(), Some(false));
    assert!(check.detail.contains("but ConnectionLost"), "{found}");
    // The simulator is refused in the fake by default: said, with the permission to add
    let iam = found.check(CheckId::Simulator).unwrap();
    assert_eq!(iam.ok(), None);
    assert_eq!(
        iam.fix(),
        Some("for IAM's own answer, allow iam:SimulatePrincipalPolicy on arn:aws:iam::123456789012:role/Okta-ServiceWorkbenchUser to whoever runs the doctor")
    );
}

#[tokio::test]
async fn an_instance_in_another_region_is_found_and_named() {
    let fake = account(ROLE).await;
    fake.world().instances.clear();
    fake.world().enabled_regions = vec!["us-east-1".into(), "eu-west-1".into()];
    fake.add_instance_in("eu-west-1", INSTANCE, InstanceState::Running, &[]);
    let found = run(&config(&[]), &fake, "tim").await;
    let check = found.check(CheckId::Instance).unwrap();
    assert_eq!(
        check.detail,
        "i-0a1b2c3d4e5f60001 is not in us-east-1; it is in eu-west-1"
    );
    assert_eq!(check.fix(), Some("run the doctor with --region eu-west-1"));
    assert_eq!(found.verdict, Verdict::Denied);
}

#[tokio::test]
async fn identity_center_names_the_permission_set_and_its_fixes() {
    // GIVEN an Identity Center role without the end-user policy, in per-user mode
    let sso_role = "AWSReservedSSO_ResearchUsers_0123456789abcdef";
    let fake = account(sso_role).await;
    fake.world().attachments.clear();
    let config = config(&[
        ("PERMISSION_SET_NAME", "ResearchUsers"),
        ("SESSION_ROLE_NAME", ""),
    ]);

    let found = run(&config, &fake, "ada@example.com").await;

    assert!(found
        .check(CheckId::User)
        .unwrap()
        .detail
        .contains(&format!(
            "the users' role is {sso_role} ({ROLE_ID}, the role of permission set ResearchUsers)"
        )));
    assert_eq!(
        found.check(CheckId::Policy).unwrap().fix(),
        Some("add the customer managed policy SsmSessionOwnerEndUser (path /) to permission set ResearchUsers, and re-provision it to this account")
    );
    assert_eq!(
        found.check(CheckId::Rights).unwrap().fix(),
        Some("use static session rights: SESSION_RIGHTS=static (template SessionRights=static)")
    );
}

fn answer(action: &str, decision: Decision) -> Simulated {
    Simulated {
        action: action.into(),
        decision,
        matched: vec!["SsmSessionOwnerEndUser".into()],
        missing_context: vec![],
    }
}

#[test]
fn iams_answer_is_the_verdict_and_a_disagreement_is_reported() {
    let own = OwnAnswers {
        start: Some(Decision::Allowed),
        terminate: Some(Decision::Allowed),
        resume: None,
    };
    let iam = [
        answer(START_SESSION, Decision::Allowed),
        answer(START_SESSION, Decision::ExplicitDeny),
        answer(TERMINATE_SESSION, Decision::Allowed),
        answer(RESUME_SESSION, Decision::ImplicitDeny),
    ];
    let (check, actions) = confirmation("arn:aws:iam::1:role/R", None, &iam, &own);
    assert_eq!(check.ok(), Some(false));
    assert_eq!(
        check.detail,
        "IAM's policy simulator says StartSession denied, TerminateSession allowed, ResumeSession denied, where the product's evaluation says StartSession allowed, TerminateSession allowed, ResumeSession unknown; IAM's answer is the verdict"
    );
    assert_eq!(actions.start_session, ActionVerdict::Denied);
    assert_eq!(actions.resume_session, ActionVerdict::Denied);

    // An error that is not a refusal: no permission to suggest
    let throttled = Error::Aws {
        operation: "iam:SimulatePrincipalPolicy",
        code: "Throttling".into(),
        message: "Rate exceeded".into(),
        retryable: true,
    };
    let (check, actions) = confirmation("arn:aws:iam::1:role/R", Some(throttled), &[], &own);
    assert_eq!(check.ok(), None);
    assert_eq!(check.fix(), None);
    assert_eq!(actions.start_session, ActionVerdict::Allowed);
    assert_eq!(actions.resume_session, ActionVerdict::Unknown);
}

#[test]
fn a_missing_node_is_unreachable_and_an_unread_one_is_unknown() {
    let instance = InstanceId::parse(INSTANCE).unwrap();
    let check = reachability(Ok(None), &instance);
    assert_eq!(check.ok(), Some(false));
    assert_eq!(
        check.detail,
        "i-0a1b2c3d4e5f60001 is not a managed node in this region: Session Manager cannot reach it"
    );
    let refused = Error::Aws {
        operation: "ssm:DescribeInstanceInformation",
        code: "AccessDeniedException".into(),
        message: "no".into(),
        retryable: false,
    };
    let check = reachability(Err(refused), &instance);
    assert_eq!(check.ok(), None);
    assert_eq!(
        check.fix(),
        Some("allow ssm:DescribeInstanceInformation to whoever runs the doctor")
    );
}

#[tokio::test]
async fn a_stale_configured_role_id_is_caught_with_one_role_read() {
    // GIVEN SESSION_ROLE_ID naming an older id of the role
    let fake = account(ROLE).await;
    fake.take_calls();
    let config = config(&[("SESSION_ROLE_ID", "AROAOLDROLEID0000001")]);

    // WHEN the doctor runs
    let found = run(&config, &fake, "tim").await;

    // THEN check 1 fails with the real id to configure, read with a single GetRole
    let check = found.check(CheckId::User).unwrap();
    assert_eq!(check.ok(), Some(false));
    assert!(check.detail.ends_with("but SESSION_ROLE_ID is AROAOLDROLEID0000001 (the role was re-created), so the functions write user-id tags no session can match"), "{found}");
    assert_eq!(
        check.fix(),
        Some("set SESSION_ROLE_ID (template UsersRoleId) to AROAEXAMPLEROLEID1234, or leave it empty to have it resolved")
    );
    assert_eq!(fake.take_calls().get("iam:GetRole"), Some(&1));
}

#[tokio::test]
async fn a_trust_policy_that_lets_callers_choose_their_name_fails_with_the_fix() {
    // GIVEN the users' role also trusts the account for sts:AssumeRole, with no condition on the
    // session name (a CI user, or anyone in the account, could call itself "tim")
    let trust = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML"},
        {"Sid":"Ci","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    let fake = account(ROLE).await.with_trust_policy(ROLE, trust);
    grant(&fake, &["tim"]).await;

    // WHEN the doctor runs, on an instance that exists and on one that does not
    let found = run(&config(&[]), &fake, "tim").await;
    let missing = diagnose(
        &config(&[]),
        &question("tim", "i-0ffffffffffffffff"),
        services(&fake),
    )
    .await
    .unwrap();

    // THEN check 8 fails in both, naming the statement, who, and the fix
    for found in [&found, &missing] {
        let check = found.check(CheckId::Trust).unwrap();
        assert_eq!(check.ok(), Some(false), "{found}");
        assert!(check.detail.ends_with("statement Ci lets arn:aws:iam::123456789012:root call sts:AssumeRole with a session name of their choosing"), "{found}");
        assert!(
            check.fix().unwrap().contains("sts:RoleSessionName"),
            "{found}"
        );
        assert_eq!(found.checks[7].id, CheckId::Trust);
    }
}

#[tokio::test]
async fn the_audit_asks_iams_simulator_when_it_may_and_says_so() {
    // GIVEN the role with a broad session grant beside the end-user policy, and IAM's
    // simulator answering
    let fake = account(ROLE).await;
    fake.put_role_policy(
        ROLE,
        "Broad",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"ssm:StartSession","Resource":"*"}]}"#,
    )
    .await
    .unwrap();
    fake.world().simulator_available = true;
    fake.take_calls();

    // WHEN the audit runs
    let found = audit::audit(&config(&[]), "us-east-1", &fake)
        .await
        .unwrap();

    // THEN every question went to the simulator, which found the broad grant; nothing written
    assert_eq!(found.evaluated_by, "IAM's policy simulator");
    let calls = fake.take_calls();
    assert_eq!(
        calls.get("iam:SimulatePrincipalPolicy").copied(),
        Some(found.questions as u64)
    );
    let broad: Vec<&audit::Finding> = found
        .findings
        .iter()
        .filter(|f| f.what.starts_with("ssm:StartSession"))
        .collect();
    assert_eq!(broad.len(), 5, "{found}");
    assert!(
        found.to_string().contains("✗ instance: 2 finding(s)"),
        "{found}"
    );
    // the broad grant also reaches the remote-host document, any other, and none at all
    assert!(
        found.to_string().contains("✗ session documents: 3 finding(s)\n  - ssm:StartSession with AWS-StartPortForwardingSessionToRemoteHost"),
        "{found}"
    );

    // AND when the simulator is refused, the product's own evaluation answers the same, and
    // the report says why
    fake.world().simulator_available = false;
    let own = audit::audit(&config(&[]), "us-east-1", &fake)
        .await
        .unwrap();
    assert!(
        own.evaluated_by
            .starts_with("the product's own evaluation (IAM's policy simulator did not answer: "),
        "{}",
        own.evaluated_by
    );
    assert_eq!(own.findings, found.findings);
}

#[tokio::test]
async fn the_audit_names_every_escalation_primitive_of_administrator_access_and_says_isolation_cannot_be_guaranteed(
) {
    // GIVEN the role with the end-user policy and AWS's AdministratorAccess (as AWS publishes it)
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/managed-policies/AdministratorAccess.json"
    ))
    .unwrap();
    let fake = account(ROLE).await;
    fake.put_role_policy(
        ROLE,
        "AdministratorAccess",
        &fixture["document"].to_string(),
    )
    .await
    .unwrap();

    // WHEN the audit runs (the product's own evaluation: the fake has no simulator)
    let found = audit::audit(&config(&[]), "us-east-1", &fake)
        .await
        .unwrap();

    // THEN every primitive is a finding with the fix, and the report says isolation cannot be
    // guaranteed
    let identity: Vec<&audit::Finding> = found
        .findings
        .iter()
        .filter(|f| f.path == "identity administration")
        .collect();
    assert_eq!(identity.len(), 22, "{found}");
    assert!(identity.iter().any(|f| f.what
        == "iam:CreatePolicyVersion on arn:aws:iam::123456789012:policy/AnyCustomerPolicy"));
    assert!(identity
        .iter()
        .any(|f| f.what == "iam:PassRole on arn:aws:iam::123456789012:role/AnyOtherRole"));
    assert!(identity[0].fix.starts_with("only a permissions boundary (or an SCP) can constrain an identity this creates or changes"), "{}", identity[0].fix);
    assert!(!found.isolation_can_be_guaranteed);
    assert!(
        found
            .to_string()
            .contains("✗ isolation cannot be guaranteed for this role"),
        "{found}"
    );

    assert_eq!(found.permissions_boundary, None);
    assert!(
        found
            .to_string()
            .contains("permissions boundary: none (set the stack's UsersBoundaryArn on the role"),
        "{found}"
    );

    // AND the shipped account alone can be guaranteed, and a boundary on the role is reported
    let boundary = "arn:aws:iam::123456789012:policy/SsmSessionOwnerUsersBoundary";
    let shipped = audit::audit(
        &config(&[]),
        "us-east-1",
        &account(ROLE).await.with_boundary(ROLE, boundary),
    )
    .await
    .unwrap();
    assert!(shipped.isolation_can_be_guaranteed, "{shipped}");
    assert_eq!(shipped.permissions_boundary.as_deref(), Some(boundary));
    assert!(
        shipped
            .to_string()
            .contains(&format!("permissions boundary: {boundary}\n")),
        "{shipped}"
    );
}

#[tokio::test]
async fn a_name_session_manager_will_not_tag_fails_session_rights_with_the_fix() {
    let fake = account(ROLE).await;
    fake.add_instance(
        INSTANCE,
        InstanceState::Running,
        &[("AwsUserId", &format!("{ROLE_ID}:a,b"))],
    );
    let found = run(&config(&[]), &fake, "a,b").await;
    let check = found.check(CheckId::Rights).unwrap();
    assert_eq!(check.ok(), Some(false), "{found}");
    assert!(check.detail.contains("holds ','"), "{found}");
    assert!(check.fix().unwrap().contains("no comma"), "{found}");
}

#[test]
fn an_endpoint_without_the_api_is_said_plainly() {
    // moto answers DescribeInstanceInformation with HTML (the SDK cannot parse it) and
    // SimulatePrincipalPolicy with a bare HTTP 500
    let unparseable = Error::Aws {
        operation: "ssm:DescribeInstanceInformation",
        code: "ResponseError".into(),
        message: "response error: invalid input: malformed JSON error body".into(),
        retryable: true,
    };
    let bare = Error::Aws {
        operation: "iam:SimulatePrincipalPolicy",
        code: "HTTP 500".into(),
        message: String::new(),
        retryable: true,
    };
    let instance = InstanceId::parse(INSTANCE).unwrap();
    assert_eq!(
        reachability(Err(unparseable), &instance).detail,
        "not checked: ssm:DescribeInstanceInformation is not available on this endpoint, which gave an answer that is not AWS's"
    );
    assert_eq!(
        bare.in_words(),
        "iam:SimulatePrincipalPolicy is not available on this endpoint, which gave HTTP 500"
    );
    // a real AWS error keeps its code and message
    let throttled = Error::Aws {
        operation: "ssm:DescribeInstanceInformation",
        code: "ThrottlingException".into(),
        message: "Rate exceeded".into(),
        retryable: true,
    };
    assert_eq!(throttled.in_words(), throttled.to_string());
}

/// The account with every session kind on as the template ships it (its real end-user policy,
/// guards included), the product's documents in `documents`, and tim's instance.
async fn every_kind(documents: &[(&str, &str)]) -> (FakeAws, Config) {
    let fake = FakeAws::new().with_role(ROLE, &role());
    // The end-user policy and, sharing being on, the sharing policy beside it (its guards).
    for (name, resource) in [
        ("SsmSessionOwnerEndUser", "EndUserPolicy"),
        ("SsmSessionOwnerSharing", "SharingPolicy"),
    ] {
        let shipped = testkit::shipped_policy_with(resource, &["every-option-on"]).to_string();
        let policy = fake.create_policy(name, "/", &shipped).await.unwrap();
        fake.attach_role_policy(ROLE, &policy.arn).await.unwrap();
    }
    fake.add_instance(
        INSTANCE,
        InstanceState::Running,
        &[("AwsUserId", &format!("{ROLE_ID}:tim"))],
    );
    fake.world().session_documents = Some(
        documents
            .iter()
            .map(|(name, content)| {
                (
                    ("us-east-1".to_owned(), name.to_string()),
                    content.to_string(),
                )
            })
            .collect(),
    );
    let config = config(&[
        ("SESSION_RIGHTS", "static"),
        ("SHELL_SESSIONS", "product"),
        ("SSH_SESSIONS", "true"),
        ("SSH_OS_USERS", "ec2-user,ubuntu,rstudio-user,jupyter"),
    ]);
    (fake, config)
}

const SHELL: &str = r#"{"schemaVersion": "1.0", "sessionType": "Standard_Stream",
    "inputs": {"s3BucketName": "research-session-logs", "s3KeyPrefix": "ssm/", "s3EncryptionEnabled": true,
               "cloudWatchLogGroupName": "/research/ssm", "cloudWatchEncryptionEnabled": true,
               "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
               "runAsEnabled": true, "runAsDefaultUser": "researcher", "idleSessionTimeout": "20", "maxSessionDuration": ""}}"#;
const PORTS: &str = r#"{"schemaVersion": "1.0", "sessionType": "Port",
    "parameters": {"portNumber": {"type": "String", "allowedPattern": "^(3389|8787|8888)$", "default": "3389"}},
    "properties": {"portNumber": "{{ portNumber }}", "type": "LocalPortForwarding"}}"#;
const SSH: &str = r#"{"schemaVersion": "1.0", "sessionType": "Port",
    "parameters": {"portNumber": {"type": "String", "allowedPattern": "^22$", "default": "22"}},
    "properties": {"portNumber": "{{ portNumber }}"}}"#;
const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

async fn ask(
    fake: &FakeAws,
    config: &Config,
    port: Option<u16>,
    os_user: Option<&str>,
) -> Diagnosis {
    let question = Question {
        kinds: KindQuestion {
            port,
            os_user: os_user.map(str::to_owned),
        },
        ..question("tim", INSTANCE)
    };
    diagnose(config, &question, services(fake)).await.unwrap()
}

#[tokio::test]
async fn each_kind_is_answered_for_its_port_and_os_user_with_the_fix() {
    // GIVEN every kind on, the product's three documents, and the logging targets in place
    let (fake, config) = every_kind(&[
        ("SsmSessionOwner-Shell", SHELL),
        ("SsmSessionOwner-PortForwarding", PORTS),
        ("SsmSessionOwner-SSH", SSH),
    ])
    .await;
    {
        let mut world = fake.world();
        world.buckets.insert("research-session-logs".into());
        world
            .log_groups
            .insert("/research/ssm".into(), Some(KEY.into()));
        world.kms_keys.insert(KEY.into(), "Enabled".into());
    }

    // WHEN the doctor asks about Jupyter's port and SSH as ubuntu
    let fine = ask(&fake, &config, Some(8888), Some("ubuntu")).await;
    // THEN each kind is allowed with its document
    let kinds = fine.check(CheckId::Kinds).unwrap();
    assert_eq!(kinds.ok(), Some(true), "{fine}");
    assert_eq!(
        kinds.detail,
        "shell: allowed with SsmSessionOwner-Shell; port forwarding to port 8888: allowed with SsmSessionOwner-PortForwarding, which accepts ports matching ^(3389|8787|8888)$; SSH as ubuntu: allowed with SsmSessionOwner-SSH"
    );
    assert_eq!(
        fine.check(CheckId::Logging).unwrap().ok(),
        Some(true),
        "{fine}"
    );
    assert!(fine.check(CheckId::Logging).unwrap().detail.starts_with(
        "shell sessions with SsmSessionOwner-Shell in us-east-1 are logged to s3://research-session-logs/ssm/ and log group /research/ssm, encrypted with KMS key arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab, idle timeout 20 min, maximum duration none; port forwarding and SSH sessions are never logged"
    ));

    // WHEN it asks about a port the document does not forward, and SSH as root
    let refused = ask(&fake, &config, Some(22), Some("root")).await;
    // THEN check 9 fails with both reasons and both fixes
    let kinds = refused.check(CheckId::Kinds).unwrap();
    assert_eq!(kinds.ok(), Some(false));
    assert!(kinds.detail.contains("port forwarding to port 22: SsmSessionOwner-PortForwarding does not accept port 22; it accepts ports matching ^(3389|8787|8888)$"), "{refused}");
    assert!(kinds.detail.contains("SSH as root with SsmSessionOwner-SSH: explicitly denied by SsmSessionOwnerEndUser/GuardOsUsers"), "{refused}");
    let fix = kinds.fix().unwrap();
    assert!(
        fix.contains("add 22 to the template's ForwardedPorts"),
        "{fix}"
    );
    assert!(fix.contains("or add the OS user to SshOsUsers"), "{fix}");
}

#[tokio::test]
async fn a_missing_document_or_logging_target_fails_with_where_to_deploy_or_create_it() {
    // GIVEN every kind on, but the port forwarding document missing in the region, the bucket
    // missing, the log group unencrypted and the key disabled
    let (fake, config) = every_kind(&[
        ("SsmSessionOwner-Shell", SHELL),
        ("SsmSessionOwner-SSH", SSH),
    ])
    .await;
    {
        let mut world = fake.world();
        world.log_groups.insert("/research/ssm".into(), None);
        world.kms_keys.insert(KEY.into(), "Disabled".into());
    }

    // WHEN the doctor runs
    let found = ask(&fake, &config, None, None).await;

    // THEN check 9 says where to deploy the document, check 10 names each broken target
    let kinds = found.check(CheckId::Kinds).unwrap();
    assert!(
        kinds.detail.contains(
            "port forwarding: SsmSessionOwner-PortForwarding does not exist in us-east-1"
        ),
        "{found}"
    );
    assert!(kinds
        .fix()
        .unwrap()
        .contains("deploy forwarder.yaml in us-east-1 with the same session parameters"));
    let logging = found.check(CheckId::Logging).unwrap();
    assert_eq!(logging.ok(), Some(false));
    assert!(logging.detail.ends_with(&format!(
        "but S3 bucket research-session-logs does not exist; log group /research/ssm has no KMS key, and SsmSessionOwner-Shell requires encrypted logs, so sessions fail to start; KMS key {KEY} is Disabled, so sessions fail to start"
    )), "{found}");
}

#[tokio::test]
async fn per_user_run_as_needs_the_trust_policy_to_let_the_identity_provider_tag_sessions() {
    // GIVEN the product's shell document with run-as on, and a SAML trust without sts:TagSession
    let (fake, config) = every_kind(&[("SsmSessionOwner-Shell", SHELL)]).await;
    let found = ask(&fake, &config, None, None).await;
    // THEN check 11 fails: nobody carries SSMSessionRunAs, everyone runs as the default user
    let run_as = found.check(CheckId::RunAs).unwrap();
    assert_eq!(run_as.ok(), Some(false), "{found}");
    assert!(
        run_as
            .detail
            .ends_with("so nobody carries one: every shell runs as researcher"),
        "{found}"
    );
    assert!(run_as
        .fix()
        .unwrap()
        .starts_with("add sts:TagSession to the trust policy's statement for the SAML provider"));

    // GIVEN the trust policy lets the SAML provider tag sessions
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/Okta"},"Action":["sts:AssumeRoleWithSAML","sts:TagSession"]}]}"#;
    let fake = fake.with_trust_policy(ROLE, trust);
    let found = ask(&fake, &config, None, None).await;
    // THEN per-user run-as can work
    let run_as = found.check(CheckId::RunAs).unwrap();
    assert_eq!(run_as.ok(), Some(true), "{found}");
    assert!(run_as
        .detail
        .contains("runs each shell as the user's SSMSessionRunAs session tag, else as researcher"));
}

#[tokio::test]
async fn on_someone_elses_instance_no_kind_of_session_is_offered_and_check_3_is_the_fix() {
    // GIVEN every kind on, and ada asking about tim's instance
    let (fake, config) = every_kind(&[
        ("SsmSessionOwner-Shell", SHELL),
        ("SsmSessionOwner-PortForwarding", PORTS),
        ("SsmSessionOwner-SSH", SSH),
    ])
    .await;
    let question = Question {
        kinds: KindQuestion {
            port: Some(8888),
            os_user: None,
        },
        ..question("ada", INSTANCE)
    };
    let found = diagnose(&config, &question, services(&fake)).await.unwrap();
    // THEN check 9 fails once, on the instance, pointing at the ownership checks
    let kinds = found.check(CheckId::Kinds).unwrap();
    assert_eq!(
        kinds.detail,
        "no kind of session: ssm:StartSession on the instance is denied by SsmSessionOwnerSharing/GuardSessionsOnNodesNeitherOwnedNorShared"
    );
    assert_eq!(
        kinds.fix(),
        Some("see checks 3 and 4: the instance's user-id tag decides who may connect, whatever the session kind")
    );
}

/// The role as check 8 reads it, with this trust policy.
fn facts_with_trust(trust_policy: Option<&str>) -> super::context::RoleFacts {
    super::context::RoleFacts {
        role: resolved(),
        arn: format!("arn:aws:iam::123456789012:role/{ROLE}"),
        account: "123456789012".into(),
        partition: crate::domain::ids::Partition::Aws,
        trust_policy: trust_policy.map(str::to_owned),
        permissions_boundary: None,
        max_session_seconds: Some(43_200),
    }
}

#[test]
fn check_8_finds_who_may_choose_a_session_name_by_value() {
    use super::checks::trust::{trust, TrustFinding};
    let saml = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML"}]}"#;
    let account_too = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML"},
        {"Sid":"Ci","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    assert_eq!(
        trust(&facts_with_trust(None)),
        TrustFinding::Unreadable {
            role: ROLE.into(),
            why: "IAM's GetRole answer carried no trust policy".into()
        }
    );
    assert_eq!(
        trust(&facts_with_trust(Some(saml))),
        TrustFinding::NobodyChooses { role: ROLE.into() }
    );
    let TrustFinding::Choosers { role, choosers } = trust(&facts_with_trust(Some(account_too)))
    else {
        panic!("the account may choose");
    };
    assert_eq!((role.as_str(), choosers.len()), (ROLE, 1));
    // the wording is the finding's, in one place
    let check = Check::from(TrustFinding::Choosers { role, choosers });
    assert_eq!(check.ok(), Some(false));
    assert!(check.detail.starts_with(&format!(
        "{ROLE}'s trust policy lets callers choose their session name"
    )));
}

#[test]
fn check_1_finds_the_user_and_a_stale_role_id_by_value() {
    use super::checks::user::{check_user, UserFinding};
    let subject = tim_subject();
    let found = check_user(&config(&[]), &subject);
    assert_eq!(
        found,
        UserFinding {
            user: "tim".into(),
            role: ROLE.into(),
            role_id: ROLE_ID.into(),
            permission_set: None,
            user_id: format!("{ROLE_ID}:tim"),
            stale_role_id: None,
            max_session_seconds: Some(43_200),
        }
    );
    let check = Check::from(found);
    assert_eq!(check.ok(), Some(true));
    assert!(check.detail.ends_with(
        "; its sessions last at most 12 h (MaxSessionDuration; MFA is the identity provider's)"
    ));
    let stale = check_user(
        &config(&[("SESSION_ROLE_ID", "AROAOLDROLEID0000000")]),
        &subject,
    );
    assert_eq!(stale.stale_role_id.as_deref(), Some("AROAOLDROLEID0000000"));
    assert!(Check::from(stale)
        .detail
        .ends_with("so the functions write user-id tags no session can match"));
}

#[tokio::test]
async fn check_12_finds_whether_a_trail_delivers_the_regions_launches_by_value() {
    use super::checks::launch_events::{launch_events, LaunchEventsFinding};
    use crate::fakes::FakeTrails;
    let config = config(&[]);
    let logging = RegionalClients::new(FakeTrails::logging_everywhere(), &config);
    assert_eq!(
        launch_events(&logging, "eu-west-1").await,
        LaunchEventsFinding::Delivered {
            region: "eu-west-1".into()
        }
    );
    let none = RegionalClients::new(FakeTrails(vec![]), &config);
    let found = launch_events(&none, "eu-west-1").await;
    assert_eq!(
        found,
        LaunchEventsFinding::NoTrail {
            region: "eu-west-1".into()
        }
    );
    assert_eq!(Check::from(found).ok(), Some(false));
}

#[test]
fn check_6_finds_the_nodes_ping_status_by_value() {
    use super::checks::reachability::{reachability_finding, ReachabilityFinding};
    let instance = InstanceId::parse(INSTANCE).unwrap();
    let node = |status| crate::ports::ManagedNode {
        ping_status: status,
        agent_version: Some("3.3.1142.0".into()),
        platform: None,
        last_ping: None,
    };
    assert_eq!(
        reachability_finding(Ok(Some(node(PingStatus::ConnectionLost))), &instance),
        ReachabilityFinding::Managed {
            instance: instance.clone(),
            status: PingStatus::ConnectionLost,
            about: "agent 3.3.1142.0".into()
        }
    );
    assert_eq!(
        reachability_finding(Ok(None), &instance),
        ReachabilityFinding::NotManaged {
            instance: instance.clone()
        }
    );
    let online = Check::from(reachability_finding(
        Ok(Some(node(PingStatus::Online))),
        &instance,
    ));
    assert_eq!(online.ok(), Some(true));
    assert_eq!(
        online.detail,
        format!("{INSTANCE} is a managed node, Online (agent 3.3.1142.0)")
    );
}

#[test]
fn check_11_finds_run_as_and_whether_the_tag_can_arrive_by_value() {
    use super::checks::logging::ShellPreferences;
    use super::checks::run_as::{run_as, RunAsFinding};
    use crate::domain::session_documents::Preferences;
    let shell = |run_as_enabled| ShellPreferences::Read {
        document: "SsmSessionOwner-Shell".into(),
        preferences: Preferences {
            run_as_enabled,
            run_as_default_user: Some("researcher".into()),
            ..Preferences::default()
        },
        saved: true,
    };
    let saml_only = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML"}]}"#;
    let with_tags = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/Okta"},"Action":["sts:AssumeRoleWithSAML","sts:TagSession"]}]}"#;
    assert_eq!(
        run_as(&shell(false), Some(saml_only)),
        RunAsFinding::Off {
            document: "SsmSessionOwner-Shell".into()
        }
    );
    let without = run_as(&shell(true), Some(saml_only));
    assert_eq!(
        without,
        RunAsFinding::On {
            document: "SsmSessionOwner-Shell".into(),
            fallback: "as researcher".into(),
            tag_passed: false
        }
    );
    assert_eq!(Check::from(without).ok(), Some(false));
    assert_eq!(
        Check::from(run_as(&shell(true), Some(with_tags))).ok(),
        Some(true)
    );
    assert_eq!(
        run_as(&shell(true), None),
        RunAsFinding::TrustUnread {
            why: "the role's trust policy could not be read".into()
        }
    );
}

/// tim, asking about `INSTANCE`, as the checks see him.
fn tim_subject() -> super::context::Subject {
    super::context::Subject {
        name: SessionName::parse("tim").unwrap(),
        user_id: crate::domain::ids::UserId::new(role(), SessionName::parse("tim").unwrap()),
        instance_id: InstanceId::parse(INSTANCE).unwrap(),
        region: "us-east-1".into(),
        arns: facts_with_trust(None).arns("us-east-1"),
        facts: facts_with_trust(None),
    }
}

#[tokio::test]
async fn check_4_finds_what_the_end_user_policy_allows_by_value() {
    use super::checks::end_user_policy::{end_user_policy, EndUserPolicyFinding};
    use crate::ports::RoleEvaluationInputs;
    let fake = account(ROLE).await;
    let config = config(&[]);
    let documents = fake.identity_policies(ROLE).await.unwrap();
    let subject = tim_subject();
    let own_tag =
        std::collections::BTreeMap::from([("AwsUserId".to_owned(), format!("{ROLE_ID}:tim"))]);
    let own = OwnEvaluations::new(&config, &documents, &subject, &own_tag);
    let EndUserPolicyFinding::Allowed {
        name, by_instance, ..
    } = end_user_policy(&config, &documents, &subject, &own)
    else {
        panic!("tim's own instance is allowed");
    };
    assert_eq!(name, "SsmSessionOwnerEndUser");
    assert!(!by_instance.is_empty());
    // somebody else's tag: the guards deny it, and the tags are what to look at
    let ada_tag =
        std::collections::BTreeMap::from([("AwsUserId".to_owned(), format!("{ROLE_ID}:ada"))]);
    let other = OwnEvaluations::new(&config, &documents, &subject, &ada_tag);
    let found = end_user_policy(&config, &documents, &subject, &other);
    assert!(
        matches!(
            found,
            EndUserPolicyFinding::ExplicitlyDenied {
                guard_only: true,
                ..
            } | EndUserPolicyFinding::NotAllowedOnInstance { .. }
        ),
        "{found:?}"
    );
    assert_eq!(Check::from(found).ok(), Some(false));
    // not attached: where to attach it
    assert_eq!(
        end_user_policy(&config, &[], &subject, &own),
        EndUserPolicyFinding::NotAttached {
            name: "SsmSessionOwnerEndUser".into(),
            role: ROLE.into(),
            attach: super::checks::end_user_policy::AttachTo::Role {
                partition: "aws".into(),
                account: "123456789012".into()
            }
        }
    );
}

#[tokio::test]
async fn check_2_finds_the_instance_and_its_state_by_value() {
    use super::checks::instance::{check_instance, InstanceFinding};
    let fake = account(ROLE).await;
    let stopped = "i-0a1b2c3d4e5f60009";
    fake.add_instance(stopped, InstanceState::Stopped, &[]);
    let mut subject = tim_subject();
    subject.instance_id = InstanceId::parse(stopped).unwrap();
    let (found, described) = check_instance(&config(&[]), &fake, &subject).await.unwrap();
    assert_eq!(
        found,
        InstanceFinding::NotRunning {
            instance: InstanceId::parse(stopped).unwrap(),
            region: "us-east-1".into(),
            state: InstanceState::Stopped
        }
    );
    assert!(described.is_ok());
    assert_eq!(
        Check::from(found).fix(),
        Some("start it (aws ec2 start-instances), then try again")
    );
    subject.instance_id = InstanceId::parse("i-0ffffffffffffffff").unwrap();
    let (found, described) = check_instance(&config(&[]), &fake, &subject).await.unwrap();
    assert_eq!(
        found,
        InstanceFinding::NotFound {
            instance: InstanceId::parse("i-0ffffffffffffffff").unwrap(),
            region: "us-east-1".into(),
            elsewhere: None
        }
    );
    assert_eq!(described.unwrap_err(), "the instance does not exist");
}

#[test]
fn check_7_finds_whether_iam_agrees_by_value() {
    use super::checks::simulator::{confirmation_finding, SimulatorFinding};
    let own = OwnAnswers {
        start: Some(Decision::Allowed),
        terminate: Some(Decision::Allowed),
        resume: Some(Decision::Allowed),
    };
    let all_allowed = [
        answer(START_SESSION, Decision::Allowed),
        answer(START_SESSION, Decision::Allowed),
        answer(TERMINATE_SESSION, Decision::Allowed),
        answer(RESUME_SESSION, Decision::Allowed),
    ];
    let allowed = Actions {
        start_session: ActionVerdict::Allowed,
        terminate_session: ActionVerdict::Allowed,
        resume_session: ActionVerdict::Allowed,
    };
    let (found, actions) = confirmation_finding("arn:aws:iam::1:role/R", None, &all_allowed, &own);
    assert_eq!(
        found,
        SimulatorFinding::Agrees {
            iam: allowed,
            missing: vec![]
        }
    );
    assert_eq!(actions, allowed);
    let (found, _) = confirmation_finding("arn:aws:iam::1:role/R", None, &all_allowed[..2], &own);
    assert_eq!(
        found,
        SimulatorFinding::NoAnswer {
            role_arn: "arn:aws:iam::1:role/R".into(),
            why: "2 answers where 4 were asked".into(),
            access_denied: false
        }
    );
}

#[test]
fn check_3_finds_the_state_of_the_ownership_tags_by_value() {
    use super::checks::ownership::{ownership, OwnershipFinding, UserIdTag};
    let subject = tim_subject();
    let tags = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let find = |pairs: &[(&str, &str)]| ownership(&tags(pairs), &subject, &config(&[]));
    let tims = format!("{ROLE_ID}:tim");
    let found = find(&[("AwsUserId", &tims)]);
    assert_eq!(
        found,
        OwnershipFinding {
            key: "AwsUserId".into(),
            owner_key: "CreatedBy".into(),
            user: SessionName::parse("tim").unwrap(),
            tag: UserIdTag::Theirs {
                value: tims.clone()
            },
            variants: vec![],
        }
    );
    assert_eq!(Check::from(found).ok(), Some(true));

    // A look-alike key beside tim's own tag: the owner is right, the check still fails.
    let tampered = find(&[
        ("AwsUserId", &tims),
        ("awsuserid", "AROAEXAMPLEROLEID1234:ana"),
    ]);
    assert_eq!(
        tampered.variants,
        vec!["awsuserid=AROAEXAMPLEROLEID1234:ana".to_owned()]
    );
    let check = Check::from(tampered);
    assert_eq!(check.ok(), Some(false));
    assert!(check.detail.contains("(tampering): awsuserid="));
    assert!(check
        .fix()
        .unwrap()
        .starts_with("nothing to do about the owner; and wait"));

    let missing = find(&[("CreatedBy", "tim")]);
    assert_eq!(
        missing.tag,
        UserIdTag::Missing {
            write: UserId::parse_for(&tims, &role()).unwrap()
        }
    );
    let stale = find(&[
        ("AwsUserId", "AROAOLDROLEID0000001:tim"),
        ("CreatedBy", "tim"),
    ]);
    assert_eq!(
        stale.tag,
        UserIdTag::Stale {
            value: "AROAOLDROLEID0000001:tim".into(),
            current: role(),
            write: UserId::parse_for(&tims, &role()).unwrap(),
        }
    );
    assert!(matches!(
        find(&[("AwsUserId", "AROAEXAMPLEROLEID1234:ana")]).tag,
        UserIdTag::Other { .. }
    ));
    assert!(matches!(
        find(&[("AwsUserId", "tim")]).tag,
        UserIdTag::Malformed { .. }
    ));
    assert!(matches!(
        find(&[]).tag,
        UserIdTag::Unwritable { skip: Some(_) }
    ));
}

#[tokio::test]
async fn check_5_finds_where_the_users_session_rights_are_by_value() {
    use super::checks::rights::{check_rights, Evaluated, RightsFinding, Statement, StoreRoom};
    use crate::ports::RoleEvaluationInputs;
    let fake = account(ROLE).await;
    let subject = tim_subject();
    let own_tag =
        std::collections::BTreeMap::from([("AwsUserId".to_owned(), format!("{ROLE_ID}:tim"))]);
    let find = |config: Config| {
        let (fake, subject, own_tag) = (&fake, &subject, &own_tag);
        async move {
            let documents = fake.identity_policies(ROLE).await.unwrap();
            let own = OwnEvaluations::new(&config, &documents, subject, own_tag);
            check_rights(&config, fake, subject, &documents, &own)
                .await
                .unwrap()
        }
    };
    // per-user mode, nobody granted yet: no statement, and the fix is to own an instance
    let RightsFinding::PerUser {
        statement, room, ..
    } = find(config(&[])).await
    else {
        panic!("per-user mode is the default");
    };
    assert_eq!(statement, Statement::Nowhere);
    assert!(matches!(
        room,
        StoreRoom::Managed {
            users: 0,
            shards: 0,
            ..
        }
    ));

    // static mode with the per-user end-user policy and no shard: nothing lets anybody end a session
    let found = find(config(&[("SESSION_RIGHTS", "static")])).await;
    assert_eq!(
        found,
        RightsFinding::Static {
            evaluated: Evaluated::Denied
        }
    );
    assert_eq!(
        Check::from(found).fix(),
        Some("deploy the template with SessionRights=static: the end-user policy then carries EndOwnSessions")
    );

    grant(&fake, &["tim"]).await;
    let found = find(config(&[])).await;
    let RightsFinding::PerUser {
        ref statement,
        ref evaluated,
        room,
        ..
    } = found
    else {
        panic!("per-user mode is the default");
    };
    assert!(
        matches!(statement, Statement::InShard { policy } if policy.starts_with("ssm-session-owner-"))
    );
    assert!(matches!(evaluated, Evaluated::Allowed { by } if !by.is_empty()));
    assert!(matches!(
        room,
        StoreRoom::Managed {
            users: 1,
            shards: 1,
            ..
        }
    ));
    assert_eq!(Check::from(found).ok(), Some(true));
}

#[tokio::test]
async fn check_9_finds_each_session_kind_by_value() {
    use super::checks::session_kinds::{
        session_kinds, DocumentFound, KindState, SessionKindsFinding,
    };
    use crate::domain::session_iam::SessionKind;
    use crate::ports::RoleEvaluationInputs;
    let (fake, config) = every_kind(&[
        ("SsmSessionOwner-Shell", SHELL),
        ("SsmSessionOwner-PortForwarding", PORTS),
    ])
    .await;
    let documents = fake.identity_policies(ROLE).await.unwrap();
    let subject = tim_subject();
    let tag = |user: &str| {
        std::collections::BTreeMap::from([("AwsUserId".to_owned(), format!("{ROLE_ID}:{user}"))])
    };
    let asked = KindQuestion {
        port: Some(22),
        os_user: Some("root".into()),
    };
    let found = session_kinds(&config, &fake, &subject, &tag("tim"), &documents, &asked)
        .await
        .unwrap();
    let SessionKindsFinding::Kinds { region, kinds, .. } = &found else {
        panic!("tim's own instance: {found:?}");
    };
    assert_eq!(region, "us-east-1");
    let states: Vec<(SessionKind, &str, &KindState)> = kinds
        .iter()
        .map(|k| (k.kind, k.what.as_str(), &k.state))
        .collect();
    assert_eq!(
        states[..2],
        [
            (
                SessionKind::Shell,
                "shell",
                &KindState::Allowed {
                    document: "SsmSessionOwner-Shell".into(),
                    found: DocumentFound::Fine
                }
            ),
            (
                SessionKind::PortForwarding,
                "port forwarding to port 22",
                &KindState::Allowed {
                    document: "SsmSessionOwner-PortForwarding".into(),
                    found: DocumentFound::Ports {
                        accepts: "ports matching ^(3389|8787|8888)$".into(),
                        asked: Some((22, Ok(false)))
                    }
                }
            ),
        ]
    );
    assert!(
        matches!(
            states[2],
            (SessionKind::Ssh, "SSH as root", KindState::Refused { decision: Decision::ExplicitDeny, by, .. })
                if by.iter().any(|s| s.ends_with("/GuardOsUsers"))
        ),
        "{states:?}"
    );
    assert_eq!(Check::from(found).ok(), Some(false));

    // another user's instance: no kind at all, whatever the documents
    let found = session_kinds(&config, &fake, &subject, &tag("ada"), &documents, &asked)
        .await
        .unwrap();
    assert!(
        matches!(found, SessionKindsFinding::NotOnInstance { .. }),
        "{found:?}"
    );
}

#[tokio::test]
async fn check_10_finds_where_shell_sessions_are_logged_by_value() {
    use super::checks::logging::{logging, shell_preferences, LoggingFinding, TargetProblem};
    use crate::ports::KeyState;
    let (fake, config) = every_kind(&[("SsmSessionOwner-Shell", SHELL)]).await;
    {
        let mut world = fake.world();
        world.log_groups.insert("/research/ssm".into(), None);
        world.kms_keys.insert(KEY.into(), "Disabled".into());
    }
    let shell = shell_preferences(&config, &fake).await.unwrap();
    let LoggingFinding::Logged {
        document,
        saved,
        problems,
        unknown,
        ..
    } = logging(&fake, "us-east-1", &shell).await
    else {
        panic!("the shell document is there");
    };
    assert_eq!((document.as_str(), saved), ("SsmSessionOwner-Shell", true));
    assert_eq!(
        problems,
        vec![
            TargetProblem::NoBucket("research-session-logs".into()),
            TargetProblem::UnencryptedLogGroup("/research/ssm".into()),
            TargetProblem::KeyNotEnabled {
                key: KEY.into(),
                state: KeyState::Disabled
            },
        ]
    );
    assert!(unknown.is_empty());

    // the product's shell document missing in the region: where to deploy it
    let (fake, config) = every_kind(&[]).await;
    let shell = shell_preferences(&config, &fake).await.unwrap();
    let found = logging(&fake, "us-east-1", &shell).await;
    assert_eq!(
        found,
        LoggingFinding::Broken {
            document: "SsmSessionOwner-Shell".into(),
            region: "us-east-1".into(),
            why: "SsmSessionOwner-Shell does not exist".into()
        }
    );
    assert_eq!(
        Check::from(found).fix(),
        Some("deploy the product's documents in us-east-1 (template.yaml at home, forwarder.yaml elsewhere)")
    );
}

#[tokio::test]
async fn a_guest_is_told_the_instance_is_shared_with_them_and_until_when() {
    // GIVEN every kind on, and tim's instance shared with ada until 13:30
    let (fake, config) = every_kind(&[
        ("SsmSessionOwner-Shell", SHELL),
        ("SsmSessionOwner-PortForwarding", PORTS),
        ("SsmSessionOwner-SSH", SSH),
    ])
    .await;
    let tims = format!("{ROLE_ID}:tim");
    let shared = "i-0a1b2c3d4e5f60011";
    fake.add_instance(
        shared,
        InstanceState::Running,
        &[
            ("AwsUserId", &tims),
            ("AwsUserIdGuest1", &format!("{ROLE_ID}:ada")),
            (
                "AwsUserIdSharedUntil",
                &format!("2026-12-06T13:30:00Z;{tims}"),
            ),
        ],
    );
    fake.world()
        .nodes
        .insert(InstanceId::parse(shared).unwrap(), online());
    // WHEN ada asks
    let found = diagnose(&config, &question("ada", shared), services(&fake))
        .await
        .unwrap();
    // THEN check 3 says whose it is and until when it is hers too, and she may connect
    let ownership = found.check(CheckId::Ownership).unwrap();
    assert_eq!(ownership.ok(), Some(true), "{found}");
    assert!(ownership.detail.ends_with(
        "the instance is tim's, shared with ada until 2026-12-06T13:30:00Z (AwsUserIdGuest1)"
    ));
    assert!(
        found
            .check(CheckId::Policy)
            .unwrap()
            .detail
            .contains("SsmSessionOwnerSharing/StartSessionAsGuest1"),
        "{found}"
    );
    assert_eq!(found.verdict, Verdict::Allowed, "{found}");
    // AND bo, who holds no slot, is denied by the sharing policy's guard
    let found = diagnose(&config, &question("bo", shared), services(&fake))
        .await
        .unwrap();
    assert_eq!(found.verdict, Verdict::Denied, "{found}");
}

#[test]
fn check_3_finds_a_share_with_the_asker_by_value() {
    use super::checks::ownership::{ownership, UserIdTag};
    let tims = format!("{ROLE_ID}:tim");
    let tags = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    // ada, on tim's instance: shared with her until 13:30, or not at all
    let mut ada = tim_subject();
    ada.name = SessionName::parse("ada").unwrap();
    ada.user_id = UserId::new(role(), ada.name.clone());
    let sharing = config(&[("SHARING", "true")]);
    let shared = tags(&[
        ("AwsUserId", &tims),
        ("AwsUserIdGuest2", &format!("{ROLE_ID}:ada")),
        (
            "AwsUserIdSharedUntil",
            &format!("2026-12-06T13:30:00Z;{tims}"),
        ),
    ]);
    let found = ownership(&shared, &ada, &sharing);
    assert_eq!(
        found.tag,
        UserIdTag::Shared {
            value: tims.clone(),
            owner: UserId::parse_for(&tims, &role()).unwrap(),
            slot: "AwsUserIdGuest2".into(),
            until: Some("2026-12-06T13:30:00Z".into()),
        }
    );
    let check = Check::from(found);
    assert_eq!(check.ok(), Some(true));
    assert_eq!(
        check.detail,
        format!("AwsUserId={tims}: the instance is tim's, shared with ada until 2026-12-06T13:30:00Z (AwsUserIdGuest2)")
    );
    // a look-alike holds no slot
    let mut adam = tim_subject();
    adam.name = SessionName::parse("adam").unwrap();
    adam.user_id = UserId::new(role(), adam.name.clone());
    assert!(matches!(
        ownership(&shared, &adam, &sharing).tag,
        UserIdTag::Other { .. }
    ));
}

/// The hybrid-nodes policy's session statement, as the template ships it.
const HYBRID_NODES: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"StartSessionOnOwnManagedNodes","Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ssm:*:123456789012:managed-instance/*","Condition":{"StringEquals":{"ssm:resourceTag/AwsUserId":"${aws:userid}"},"BoolIfExists":{"ssm:SessionDocumentAccessCheck":"true"}}}]}"#;

const NODE: &str = "mi-0a1b2c3d4e5f60001";

/// tim's managed node in us-east-1, registered with his activation.
fn add_tims_node(fake: &FakeAws) {
    fake.world().hybrid_nodes.insert(
        (
            "us-east-1".into(),
            crate::domain::ids::ManagedNodeId::parse(NODE).unwrap(),
        ),
        crate::fakes::FakeHybridNode {
            activation_id: Some("act-tim".into()),
            tags: [("AwsUserId".to_owned(), format!("{ROLE_ID}:tim"))].into(),
        },
    );
}

async fn ask_node(config: &Config, fake: &FakeAws, user: &str) -> Diagnosis {
    diagnose(config, &question(user, NODE), services(fake))
        .await
        .unwrap()
}

/// Each check's pass or fail, by label.
fn outcomes(report: &Diagnosis) -> Vec<(&'static str, Option<bool>)> {
    report
        .checks
        .iter()
        .map(|c| (c.id.label(), c.ok()))
        .collect()
}

#[tokio::test]
async fn a_managed_node_is_diagnosed_by_its_tag_the_policies_and_the_regions_tier() {
    // GIVEN tim's node outside EC2, the end-user policy, and a region on the standard tier
    let fake = account(ROLE).await;
    add_tims_node(&fake);
    let config = config(&[("HYBRID_NODES", "true")]);

    // WHEN tim asks THEN denied: no statement allows sessions on nodes outside EC2, and the tier
    // is standard; his tag is right
    let report = ask_node(&config, &fake, "tim").await;
    assert_eq!(report.verdict, Verdict::Denied);
    let labels = |r: &Diagnosis| outcomes(r).into_iter().map(|(l, _)| l).collect::<Vec<_>>();
    let expected = [
        CheckId::User,
        CheckId::Instance,
        CheckId::Ownership,
        CheckId::Policy,
        CheckId::Reachability,
    ]
    .map(CheckId::label);
    assert_eq!(labels(&report), expected);
    let ok = |r: &Diagnosis, id: CheckId| r.check(id).and_then(Check::ok);
    assert_eq!(ok(&report, CheckId::Ownership), Some(true));
    assert_eq!(ok(&report, CheckId::Policy), Some(false));
    let tier = report.check(CheckId::Reachability).unwrap();
    assert_eq!(tier.ok(), Some(false));
    assert!(
        tier.detail.contains("on the standard instances tier"),
        "{}",
        tier.detail
    );
    assert!(tier.fix().unwrap().contains("--setting-value advanced"));

    // WHEN the hybrid-nodes policy is attached and the region is on the advanced tier THEN tim
    // is allowed, and ana, whose id the node does not carry, is not
    let policy = fake
        .create_policy("SsmSessionOwnerHybridNodes", "/", HYBRID_NODES)
        .await
        .unwrap();
    fake.attach_role_policy(ROLE, &policy.arn).await.unwrap();
    fake.world()
        .activation_tiers
        .insert("us-east-1".into(), "advanced".into());
    let report = ask_node(&config, &fake, "tim").await;
    assert_eq!(report.verdict, Verdict::Allowed, "{:?}", outcomes(&report));
    assert_eq!(report.actions.start_session, ActionVerdict::Allowed);
    let report = ask_node(&config, &fake, "ana").await;
    assert_eq!(report.verdict, Verdict::Denied);
    let ownership = report.check(CheckId::Ownership).unwrap();
    assert!(
        ownership.detail.ends_with("the node is another user's"),
        "{}",
        ownership.detail
    );

    // AND a node that is not registered here, or a tier that cannot be read, is said, never
    // passed
    let report = diagnose(
        &config,
        &question("tim", "mi-0a1b2c3d4e5f6000f"),
        services(&fake),
    )
    .await
    .unwrap();
    assert_eq!(report.verdict, Verdict::Denied);
    assert_eq!(
        outcomes(&report),
        [("user and role", Some(true)), ("instance", Some(false))]
    );
    fake.world().failing.insert("ssm:GetServiceSetting");
    let report = ask_node(&config, &fake, "tim").await;
    assert_eq!(report.verdict, Verdict::Denied);
    assert!(report
        .check(CheckId::Reachability)
        .unwrap()
        .detail
        .starts_with("the managed-instances tier could not be read"));
}
