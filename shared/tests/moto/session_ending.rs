//! Ending the sessions still open on a terminated instance.
//!
//! moto does not implement the SSM session APIs (DescribeSessions and TerminateSession answer
//! HTTP 500), so the SSM adapter is covered here with aws-smithy-mocks; EC2 and IAM stay real
//! (moto) in the end-to-end case.

use aws_sdk_ssm::operation::describe_sessions::DescribeSessionsOutput;
use aws_sdk_ssm::operation::terminate_session::TerminateSessionOutput;
use aws_sdk_ssm::types::{Session, SessionFilterKey, SessionState};
use aws_sdk_ssm::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use shared::app::inline_store::InlineStore;
use shared::app::session_rights::SessionPolicies;
use shared::aws::Clients;
use shared::ports::{GuestSessions, OpenSession, SessionTerminator};
use shared::{Config, Status};
use testkit::events_dir;
use testkit::{create_role, rewrite, run_instances, Moto};

const INSTANCE: &str = "i-0a1b2c3d4e5f60006";

fn instance() -> shared::domain::ids::InstanceId {
    shared::domain::ids::InstanceId::parse(INSTANCE).unwrap()
}

/// DescribeSessions answers `ids` for active sessions on `instance`, and matches nothing else.
fn sessions_on(instance: &str, ids: &[&str]) -> aws_smithy_mocks::Rule {
    let sessions: Vec<(&str, Option<&str>)> = ids.iter().map(|id| (*id, None)).collect();
    owned_sessions_on(instance, &sessions)
}

fn terminate_any() -> aws_smithy_mocks::Rule {
    mock!(Client::terminate_session).then_compute_output(|req| {
        TerminateSessionOutput::builder()
            .set_session_id(req.session_id().map(str::to_owned))
            .build()
    })
}

#[tokio::test]
async fn every_active_session_on_the_instance_is_terminated() {
    let describe = sessions_on(
        INSTANCE,
        &[
            "tim.malone-0ab1cd9d876e54321",
            "tim.malone-0ab1cd9d876e54322",
        ],
    );
    let terminate = terminate_any();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&describe, &terminate]);

    let ended = ssm.end_sessions_on(&instance()).await.unwrap();

    assert_eq!(
        ended,
        [
            "tim.malone-0ab1cd9d876e54321",
            "tim.malone-0ab1cd9d876e54322"
        ]
    );
    assert_eq!(describe.num_calls(), 1);
    assert_eq!(terminate.num_calls(), 2);
}

#[tokio::test]
async fn no_open_session_means_no_terminate_call() {
    let describe = sessions_on(INSTANCE, &[]);
    let terminate = terminate_any();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&describe, &terminate]);

    assert_eq!(
        ssm.end_sessions_on(&instance()).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(terminate.num_calls(), 0);
}

#[tokio::test]
async fn throttling_is_a_retryable_error_with_its_code() {
    let throttled = mock!(Client::describe_sessions).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(400).unwrap(),
            SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        )
    });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&throttled]);

    let err = ssm.end_sessions_on(&instance()).await.unwrap_err();

    assert!(err.is_retryable());
    assert_eq!(err.aws_code(), Some("ThrottlingException"));
    assert_eq!(
        err.to_string(),
        "ssm:DescribeSessions failed: ThrottlingException: Rate exceeded"
    );
}

#[tokio::test]
async fn a_terminated_instance_loses_its_statement_and_its_open_sessions() {
    // GIVEN ada's only instance (moto), granted, then terminated, with a session still open (mocked SSM)
    let moto = Moto::start().unwrap();
    let clients = Clients::new(&moto.sdk_config().await);
    let role_id = create_role(&clients.iam, "Okta-ServiceWorkbenchUser").await;
    let value = format!("{role_id}:ada");
    let instance = run_instances(&clients.ec2, 1, &[("AwsUserId", &value)])
        .await
        .remove(0);
    let describe = sessions_on(&instance, &["ada-0ab1cd9d876e54321"]);
    let terminate = terminate_any();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&describe, &terminate]);
    let config = Config::for_tests(&[]);
    let store = InlineStore::new(clients.iam.clone(), "ssm-session-owner-");
    let policies =
        SessionPolicies::new(config, clients.ec2.clone(), clients.iam.clone(), ssm, store);
    let reconcile = rewrite(
        &std::fs::read_to_string(events_dir().join("scheduled-reconcile.json")).unwrap(),
        &[],
    );
    policies.handle(reconcile).await.unwrap();
    clients
        .ec2
        .terminate_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();

    // WHEN the termination event arrives
    let event = rewrite(
        &std::fs::read_to_string(events_dir().join("state-change-terminated.json")).unwrap(),
        &[(INSTANCE, &instance)],
    );
    let outcome = policies.handle(event).await.unwrap();

    // THEN the statement is gone and the open session was terminated
    assert_eq!(outcome.status, Status::Changed);
    assert_eq!(
        outcome.reason,
        format!("ada has no live instance: revoked; ended 1 session(s) on {instance}")
    );
    let names = clients
        .iam
        .list_role_policies()
        .role_name("Okta-ServiceWorkbenchUser")
        .send()
        .await
        .unwrap();
    assert!(
        names.policy_names().is_empty(),
        "{:?}",
        names.policy_names()
    );
    assert_eq!(terminate.num_calls(), 1);
}

/// DescribeSessions answers these (id, owner) active sessions on `instance`, and matches
/// nothing else; an owner of `None` is a session whose owner the answer leaves out.
fn owned_sessions_on(instance: &str, sessions: &[(&str, Option<&str>)]) -> aws_smithy_mocks::Rule {
    let (target, answer) = (instance.to_owned(), instance.to_owned());
    let sessions: Vec<(String, Option<String>)> = sessions
        .iter()
        .map(|(id, owner)| (id.to_string(), owner.map(str::to_owned)))
        .collect();
    mock!(Client::describe_sessions)
        .match_requests(move |req| {
            req.state() == Some(&SessionState::Active)
                && req
                    .filters()
                    .iter()
                    .any(|f| f.key() == &SessionFilterKey::TargetId && f.value() == target)
        })
        .then_output(move || {
            DescribeSessionsOutput::builder()
                .set_sessions(Some(
                    sessions
                        .iter()
                        .map(|(id, owner)| {
                            Session::builder()
                                .session_id(id)
                                .target(&answer)
                                .set_owner(owner.clone())
                                .build()
                        })
                        .collect(),
                ))
                .build()
        })
}

#[tokio::test]
async fn the_guest_sessions_adapter_reads_each_sessions_owner_and_ends_one_session() {
    let owner = "arn:aws:sts::123456789012:assumed-role/Okta-ServiceWorkbenchUser/ana";
    let describe = owned_sessions_on(INSTANCE, &[("ana-0ab1cd9d876e54321", Some(owner))]);
    let terminate = terminate_any();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&describe, &terminate]);

    assert_eq!(
        ssm.open_sessions_on(&instance()).await.unwrap(),
        [OpenSession {
            id: "ana-0ab1cd9d876e54321".into(),
            owner: owner.into()
        }]
    );
    ssm.end_session("ana-0ab1cd9d876e54321").await.unwrap();
    assert_eq!((describe.num_calls(), terminate.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_session_whose_owner_cannot_be_read_is_an_error_never_nobodys() {
    let describe = owned_sessions_on(INSTANCE, &[("ana-0ab1cd9d876e54321", None)]);
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&describe]);

    let err = ssm.open_sessions_on(&instance()).await.unwrap_err();

    assert!(err.to_string().contains("a session's owner"), "{err}");
}
