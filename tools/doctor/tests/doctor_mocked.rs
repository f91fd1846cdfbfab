//! The doctor's two AWS parts that moto does not implement, covered with aws-smithy-mocks:
//! `ssm:DescribeInstanceInformation` (reachability) and `iam:SimulatePrincipalPolicy` (IAM's
//! confirmation, and the whole `doctor --verify` matrix).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

use std::sync::{Arc, Mutex};

use aws_sdk_iam::operation::get_role::GetRoleOutput;
use aws_sdk_iam::operation::simulate_principal_policy::{
    SimulatePrincipalPolicyInput, SimulatePrincipalPolicyOutput,
};
use aws_sdk_iam::types::{
    ContextKeyTypeEnum, EvaluationResult, PolicyEvaluationDecisionType, ResourceSpecificResult,
    Role, Statement,
};
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
use aws_sdk_ssm::types::{InstanceInformation, PingStatus};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use shared::app::doctor::verify::{verify, SYNTHETIC_USERS};
use shared::domain::evaluation::{Decision, Request};
use shared::domain::ids::InstanceId;
use shared::error::Error;
use shared::ports::{ManagedNode, ManagedNodes, PolicySimulator, Simulation};
use shared::Config;

const ROLE: &str = Config::TEST_ROLE;
const ROLE_ID: &str = "AROARZPUZDIKBSV3HPLXQ";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/Okta-ServiceWorkbenchUser";
const INSTANCE: &str = "i-0a1b2c3d4e5f60001";

fn config(rights: &str) -> Config {
    Config::for_tests(&[("SESSION_ROLE_NAME", ROLE), ("SESSION_RIGHTS", rights)])
}

fn iam_error(status: u16, code: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>not authorized to perform: iam:SimulatePrincipalPolicy</Message></Error><RequestId>1</RequestId></ErrorResponse>"
        )),
    )
}

fn node(status: Option<PingStatus>) -> InstanceInformation {
    InstanceInformation::builder()
        .instance_id(INSTANCE)
        .set_ping_status(status)
        .agent_version("3.3.1142.0")
        .platform_name("Amazon Linux")
        .platform_version("2023")
        .build()
}

/// DescribeInstanceInformation for exactly the one instance id, answering `nodes`.
fn nodes_answer(nodes: Vec<InstanceInformation>) -> Rule {
    mock!(aws_sdk_ssm::Client::describe_instance_information)
        .match_requests(|req| {
            req.filters().len() == 1
                && req.filters()[0].key() == "InstanceIds"
                && req.filters()[0].values() == [INSTANCE]
        })
        .then_output(move || {
            DescribeInstanceInformationOutput::builder()
                .set_instance_information_list(Some(nodes.clone()))
                .build()
        })
}

#[tokio::test]
async fn a_managed_node_is_read_with_its_ping_status_and_agent() {
    let instance = InstanceId::parse(INSTANCE).unwrap();
    for (nodes, expected) in [
        (
            vec![node(Some(PingStatus::Online))],
            Some(ManagedNode {
                ping_status: shared::ports::PingStatus::Online,
                agent_version: Some("3.3.1142.0".into()),
                platform: Some("Amazon Linux 2023".into()),
                last_ping: None,
            }),
        ),
        (
            vec![node(Some(PingStatus::ConnectionLost))],
            Some(ManagedNode {
                ping_status: shared::ports::PingStatus::ConnectionLost,
                agent_version: Some("3.3.1142.0".into()),
                platform: Some("Amazon Linux 2023".into()),
                last_ping: None,
            }),
        ),
        // Not a managed node: an empty list is an answer, "none"
        (vec![], None),
    ] {
        let rule = nodes_answer(nodes);
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&rule]);
        assert_eq!(ssm.managed_node(&instance).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn a_node_answer_without_a_ping_status_is_an_error_not_a_guess() {
    let rule = nodes_answer(vec![node(None)]);
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&rule]);
    let err = ssm
        .managed_node(&InstanceId::parse(INSTANCE).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnreadableAnswer { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "ssm:DescribeInstanceInformation answered without the node's ping status"
    );
}

#[tokio::test]
async fn a_refused_node_read_keeps_its_code() {
    let denied =
        mock!(aws_sdk_ssm::Client::describe_instance_information).then_http_response(|| {
            HttpResponse::new(
                StatusCode::try_from(400).unwrap(),
                SdkBody::from(r#"{"__type":"AccessDeniedException","message":"no"}"#),
            )
        });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&denied]);
    let err = ssm
        .managed_node(&InstanceId::parse(INSTANCE).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.aws_code(), Some("AccessDeniedException"));
    assert!(!err.is_retryable());
}

fn result(action: &str, decision: PolicyEvaluationDecisionType) -> EvaluationResult {
    EvaluationResult::builder()
        .eval_action_name(action)
        .eval_decision(decision)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_simulator_is_asked_exactly_and_its_answers_are_read_per_action() {
    // GIVEN IAM answering TerminateSession generally denied but allowed for the resource named,
    // and ResumeSession explicitly denied
    let seen: Arc<Mutex<Vec<SimulatePrincipalPolicyInput>>> = Arc::default();
    let record = seen.clone();
    let rule =
        mock!(aws_sdk_iam::Client::simulate_principal_policy).then_compute_output(move |req| {
            record.lock().unwrap().push(req.clone());
            let resource = req.resource_arns()[0].clone();
            SimulatePrincipalPolicyOutput::builder()
                .evaluation_results(
                    EvaluationResult::builder()
                        .eval_action_name("ssm:TerminateSession")
                        .eval_decision(PolicyEvaluationDecisionType::ImplicitDeny)
                        .resource_specific_results(
                            ResourceSpecificResult::builder()
                                .eval_resource_name(resource)
                                .eval_resource_decision(PolicyEvaluationDecisionType::Allowed)
                                .matched_statements(
                                    Statement::builder()
                                        .source_policy_id("ssm-session-owner-shard-01")
                                        .build(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .evaluation_results(result(
                    "ssm:ResumeSession",
                    PolicyEvaluationDecisionType::ExplicitDeny,
                ))
                .is_truncated(false)
                .build()
        });
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&rule]);
    let session = "arn:aws:ssm:us-east-1:123456789012:session/tim-5cg7niur55cxqrt5thkensh7ki";
    let simulation = Simulation {
        role_arn: ROLE_ARN.into(),
        actions: vec!["ssm:TerminateSession".into(), "ssm:ResumeSession".into()],
        request: Request::new("ssm:TerminateSession", session)
            .with("aws:userid", format!("{ROLE_ID}:tim"))
            .with_list("aws:TagKeys", &["Name", "AwsUserId"]),
        extra_policies: vec![r#"{"Version":"2012-10-17","Statement":[]}"#.into()],
    };

    // WHEN the adapter asks
    let answers = iam.simulate(&simulation).await.unwrap();

    // THEN one answer per action, the resource-specific one where IAM gives it
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].action, "ssm:TerminateSession");
    assert_eq!(answers[0].decision, Decision::Allowed);
    assert_eq!(answers[0].matched, ["ssm-session-owner-shard-01"]);
    assert_eq!(answers[1].decision, Decision::ExplicitDeny);
    // AND the question carried the role, the resource, typed context keys and the extra policy
    let asked = seen.lock().unwrap()[0].clone();
    assert_eq!(asked.policy_source_arn(), Some(ROLE_ARN));
    assert_eq!(asked.resource_arns(), [session]);
    assert_eq!(asked.policy_input_list().len(), 1);
    let entries: Vec<(&str, &ContextKeyTypeEnum, Vec<&str>)> = asked
        .context_entries()
        .iter()
        .map(|e| {
            (
                e.context_key_name().unwrap(),
                e.context_key_type().unwrap(),
                e.context_key_values().iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "aws:userid",
                &ContextKeyTypeEnum::String,
                vec!["AROARZPUZDIKBSV3HPLXQ:tim"]
            ),
            (
                "aws:TagKeys",
                &ContextKeyTypeEnum::StringList,
                vec!["Name", "AwsUserId"]
            ),
        ]
    );
}

#[tokio::test]
async fn simulator_answers_that_cannot_be_read_are_errors() {
    let simulation = Simulation {
        role_arn: ROLE_ARN.into(),
        actions: vec!["ssm:StartSession".into()],
        request: Request::new(
            "ssm:StartSession",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
        ),
        extra_policies: vec![],
    };
    // No result for the action asked about
    let other = mock!(aws_sdk_iam::Client::simulate_principal_policy).then_output(|| {
        SimulatePrincipalPolicyOutput::builder()
            .evaluation_results(result(
                "ssm:TerminateSession",
                PolicyEvaluationDecisionType::Allowed,
            ))
            .build()
    });
    // A decision this build does not know
    let unknown = mock!(aws_sdk_iam::Client::simulate_principal_policy).then_output(|| {
        SimulatePrincipalPolicyOutput::builder()
            .evaluation_results(result(
                "ssm:StartSession",
                PolicyEvaluationDecisionType::from("maybe"),
            ))
            .build()
    });
    for (rule, message) in [
        (other, "iam:SimulatePrincipalPolicy answered without a result for ssm:StartSession"),
        (unknown, "iam:SimulatePrincipalPolicy answered without a known decision for ssm:StartSession (got maybe)"),
    ] {
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&rule]);
        let err = iam.simulate(&simulation).await.unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    // A caller without the permission: the code is kept, and it is not retried
    let denied = mock!(aws_sdk_iam::Client::simulate_principal_policy)
        .then_http_response(|| iam_error(403, "AccessDenied"));
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&denied]);
    let err = iam.simulate(&simulation).await.unwrap_err();
    assert_eq!(err.aws_code(), Some("AccessDenied"));
    assert!(!err.is_retryable());
}

fn get_role() -> Rule {
    mock!(aws_sdk_iam::Client::get_role)
        .match_requests(|req| req.role_name() == Some(ROLE))
        .then_output(|| {
            GetRoleOutput::builder()
                .role(
                    Role::builder()
                        .path("/")
                        .role_name(ROLE)
                        .role_id(ROLE_ID)
                        .arn(ROLE_ARN)
                        // URL-encoded, as IAM returns it
                        .assume_role_policy_document("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Federated%22%3A%22arn%3Aaws%3Aiam%3A%3A123456789012%3Asaml-provider%2FOkta%22%7D%2C%22Action%22%3A%22sts%3AAssumeRoleWithSAML%22%7D%5D%7D")
                        .create_date(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

/// A model of IAM for the matrix: the session actions and StartSession are allowed exactly when
/// the tag equals the caller's aws:userid (`prefix_bug`: when it merely starts with it, as a
/// `StringLike` with a trailing `*` would), in per-user mode only with the caller's statement
/// among the extra policies; ownership-tag writes are explicitly denied.
fn model_iam(prefix_bug: bool, per_user: bool) -> Rule {
    mock!(aws_sdk_iam::Client::simulate_principal_policy)
        .match_requests(|req| req.policy_source_arn() == Some(ROLE_ARN))
        .then_compute_output(move |req| {
            let context = |key: &str| {
                req.context_entries()
                    .iter()
                    .find(|e| e.context_key_name() == Some(key))
                    .and_then(|e| e.context_key_values().first().cloned())
                    .unwrap_or_default()
            };
            let caller = context("aws:userid");
            let owns = |tag: String| {
                if prefix_bug {
                    tag.starts_with(&caller)
                } else {
                    tag == caller
                }
            };
            let has_statement = !per_user
                || req
                    .policy_input_list()
                    .iter()
                    .any(|p| p.contains(&format!("\"aws:userid\":\"{caller}\"")));
            let mut output = SimulatePrincipalPolicyOutput::builder();
            for action in req.action_names() {
                let allowed = match action.as_str() {
                    "ssm:StartSession" => owns(context("ssm:resourceTag/AwsUserId")),
                    "ec2:CreateTags" | "ec2:DeleteTags" => false,
                    _ => {
                        has_statement && owns(context("ssm:resourceTag/aws:ssmmessages:session-id"))
                    }
                };
                let decision = match (allowed, action.starts_with("ec2:")) {
                    (true, _) => PolicyEvaluationDecisionType::Allowed,
                    (false, true) => PolicyEvaluationDecisionType::ExplicitDeny,
                    (false, false) => PolicyEvaluationDecisionType::ImplicitDeny,
                };
                output = output.evaluation_results(result(action, decision));
            }
            output.build()
        })
}

#[tokio::test]
async fn verify_passes_when_iam_isolates_every_synthetic_user_and_writes_nothing() {
    for (rights, per_user) in [("per-user", true), ("static", false)] {
        // GIVEN IAM as it should be; any call other than GetRole and the simulator would panic
        let (role, simulator) = (get_role(), model_iam(false, per_user));
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&role, &simulator]);

        // WHEN the matrix is asked for
        let matrix = verify(&config(rights), "eu-west-1", &iam).await.unwrap();

        // THEN every cell is right: 5 users, 25 pairs × (StartSession + 2 session shapes × 2
        // actions) + 5 callers × 6 tag spellings × 2 actions
        assert_eq!(matrix.wrong, 0, "{matrix}");
        assert_eq!(matrix.users, SYNTHETIC_USERS);
        assert_eq!(matrix.cells.len(), 25 * 5 + 5 * 6 * 2);
        assert_eq!(simulator.num_calls(), 25 * 3 + 5 * 6);
        assert_eq!(matrix.session_rights, rights);
        assert_eq!(
            matrix
                .cells
                .iter()
                .filter(|c| c.decision == Decision::Allowed)
                .count(),
            5 * 5,
            "each user: their own instance, and both actions on both shapes of their own sessions"
        );
        assert!(matrix.cells.iter().any(|c| c.resource
            == "arn:aws:ssm:eu-west-1:123456789012:session/Tim-5cg7niur55cxqrt5thkensh7ki"));
        let text = matrix.to_string();
        // The README shows this output.
        println!("{text}");
        assert!(text.contains("ownership tags: CreateTags/DeleteTags of AwsUserId, awsuserid, AWSUSERID, CreatedBy, createdby, CREATEDBY by every caller: 60 of 60 denied ✓"), "{text}");
        assert!(text.ends_with("185 answers, 0 wrong: passed\n"), "{text}");
    }
}

#[tokio::test]
async fn verify_fails_on_a_policy_that_lets_prefixes_through() {
    // GIVEN IAM with a policy that compares by prefix
    let (role, simulator) = (get_role(), model_iam(true, true));
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&role, &simulator]);

    // WHEN the matrix is asked for
    let matrix = verify(&config("per-user"), "us-east-1", &iam)
        .await
        .unwrap();

    // THEN tim reaching timm's, tim.malone's and tim-0ab1cd9d8's instance and sessions is wrong
    let wrong: Vec<(&str, &str)> = matrix
        .cells
        .iter()
        .filter(|c| !c.ok && c.action == "ssm:StartSession")
        .map(|c| (c.caller.as_str(), c.owner.as_deref().unwrap()))
        .collect();
    assert_eq!(
        wrong,
        [
            ("tim", "timm"),
            ("tim", "tim.malone"),
            ("tim", "tim-0ab1cd9d8")
        ]
    );
    assert_eq!(matrix.wrong, 3 * 5);
    let text = matrix.to_string();
    assert!(text.contains("✗ tim ssm:StartSession on arn:aws:ec2:us-east-1:123456789012:instance/i-0d0c7000000000002: IAM says allowed, expected implicitly denied"), "{text}");
    assert!(text.ends_with("185 answers, 15 wrong: FAILED\n"), "{text}");
}

#[tokio::test]
async fn verify_without_the_simulator_is_an_error() {
    let role = get_role();
    let denied = mock!(aws_sdk_iam::Client::simulate_principal_policy)
        .then_http_response(|| iam_error(403, "AccessDenied"));
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&role, &denied]);
    let err = verify(&config("static"), "us-east-1", &iam)
        .await
        .unwrap_err();
    assert_eq!(err.aws_code(), Some("AccessDenied"));
    assert_eq!(denied.num_calls(), 1, "the first refusal stops the matrix");
}
