//! Fuzzing the event parsing and planning with proptest (cargo-fuzz needs a nightly toolchain,
//! which this project's machines cannot install). The AWS side is an in-memory fake behind the
//! project's own ports: these properties are about the pure logic, not AWS behaviour.
//!
//! Properties: no input panics; an invalid event writes nothing; a tag is written only with a
//! valid session name, exactly `<role-id>:<name>`.
//!
//! Bounded in CI by the default case counts below; a longer run:
//! `PROPTEST_CASES=20000 cargo test --release -p shared --test fuzz_events`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

use proptest::prelude::*;
use serde_json::Value;
use shared::app::inline_store::InlineStore;
use shared::app::owner_tagging::OwnerTagger;
use shared::app::session_rights::SessionPolicies;
use shared::domain::ids::{InstanceState, RoleId};
use shared::domain::session_name::SessionName;
use shared::fakes::FakeAws;
use shared::{Config, Error};
use testkit::real_events_dir;

const ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

/// EC2, IAM and SSM in memory (the project's own fakes), with the users' role.
fn fake() -> FakeAws {
    FakeAws::new().with_role(
        "Okta-ServiceWorkbenchUser",
        &RoleId::parse(ROLE_ID).unwrap(),
    )
}

/// IAM writes the session-policy function made.
fn policy_writes(fake: &FakeAws) -> u64 {
    fake.calls_to("iam:PutRolePolicy") + fake.calls_to("iam:DeleteRolePolicy")
}

fn config() -> Config {
    Config::for_tests(&[("SESSION_ROLE_ID", ROLE_ID)])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn real_events() -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(real_events_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// Arbitrary JSON, biased towards the shapes the handlers look at.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("aws.ec2"),
            Just("aws.tag"),
            Just("aws.events"),
            Just("RunInstances"),
            Just("AWS API Call via CloudTrail"),
            Just("Tag Change on Resource"),
            Just("EC2 Instance State-change Notification"),
            Just("Scheduled Event"),
            Just("terminated"),
            Just("i-0a1b2c3d4e5f60001"),
            Just("AwsUserId"),
            Just("CreatedBy"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("source".to_owned()),
                    Just("detail-type".to_owned()),
                    Just("detail".to_owned()),
                    Just("eventName".to_owned()),
                    Just("eventSource".to_owned()),
                    Just("responseElements".to_owned()),
                    Just("instancesSet".to_owned()),
                    Just("items".to_owned()),
                    Just("instanceId".to_owned()),
                    Just("tagSet".to_owned()),
                    Just("key".to_owned()),
                    Just("value".to_owned()),
                    Just("tags".to_owned()),
                    Just("changed-tag-keys".to_owned()),
                    Just("instance-id".to_owned()),
                    Just("state".to_owned()),
                    "[a-z-]{1,10}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Hostile and ordinary usernames: wildcards, quotes, look-alikes, control characters, lengths.
fn username() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9+=,.@_-]{2,64}",
        "[A-Za-z0-9+=,.@_-]{65,80}",
        Just(String::new()),
        Just("*".to_owned()),
        Just("tim*".to_owned()),
        Just("t?m".to_owned()),
        Just("tim\"x".to_owned()),
        Just("${aws:userid}".to_owned()),
        Just("tim.mаlone".to_owned()),
        Just("tim\nmalone".to_owned()),
        ".{0,70}",
    ]
}

fn check_writes(fake: &FakeAws) -> Result<(), TestCaseError> {
    for (_, key, value) in fake.world().tag_writes.iter() {
        prop_assert_eq!(key.as_str(), "AwsUserId");
        let name = value.strip_prefix(&format!("{ROLE_ID}:"));
        prop_assert!(
            name.is_some_and(|n| SessionName::parse(n).is_ok()),
            "wrote {value:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_and_an_ignored_event_writes_nothing(event in json()) {
        let fake = fake();
        let tagger = OwnerTagger::new(config(), fake.clone(), fake.clone());
        let policies = SessionPolicies::new(config(), fake.clone(), fake.clone(), fake.clone(), InlineStore::new(fake.clone(), "ssm-session-owner-"));
        let rt = runtime();
        let tagged = rt.block_on(tagger.handle(event.clone()));
        let policy = rt.block_on(policies.handle(event));
        match &tagged {
            Ok(outcome) if outcome.status == shared::Status::Ignored => {
                prop_assert!(fake.world().tag_writes.is_empty());
            }
            Ok(_) => {}
            // The fake EC2 knows no instance, so a lookup can only find it "not yet visible".
            Err(err) => prop_assert!(matches!(err, Error::InstancesNotYetVisible { .. }), "{err}"),
        }
        // With no live instance anywhere, the policy function grants nobody and cannot fail.
        match &policy {
            Ok(outcome) => prop_assert_ne!(outcome.status, shared::Status::Changed),
            Err(err) => prop_assert!(false, "session-policy failed on fuzzed input: {err}"),
        }
        check_writes(&fake)?;
        prop_assert_eq!(policy_writes(&fake), 0, "no live instance, so nothing to grant");
    }

    #[test]
    fn truncated_real_events_never_panic(cut in 0.0f64..1.0) {
        let rt = runtime();
        for (name, text) in real_events() {
            let end = ((text.len() as f64) * cut) as usize;
            let Some(prefix) = text.get(..end) else { continue };
            let Ok(event) = serde_json::from_str::<Value>(prefix) else { continue };
            let fake = fake();
            let tagger = OwnerTagger::new(config(), fake.clone(), fake.clone());
            let _ = rt.block_on(tagger.handle(event));
            check_writes(&fake).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        }
    }

    #[test]
    fn a_tag_is_written_only_for_a_valid_username_and_exactly_as_role_id_and_name(name in username()) {
        let text = std::fs::read_to_string(real_events_dir().join("runinstances-sso-role-two-instances-tagspec.json")).unwrap();
        let mut event: Value = serde_json::from_str(&text).unwrap();
        event["detail"]["responseElements"]["instancesSet"]["items"][0]["tagSet"] =
            serde_json::json!({"items": [{"key": "CreatedBy", "value": name}]});
        event["detail"]["responseElements"]["instancesSet"]["items"][1]["tagSet"] =
            serde_json::json!({"items": [{"key": "CreatedBy", "value": name}]});
        let fake = fake();
        // The launched instances, as EC2 has them: the tagger reads them before it writes.
        for item in event["detail"]["responseElements"]["instancesSet"]["items"].as_array().unwrap() {
            fake.add_instance_in("us-west-2", item["instanceId"].as_str().unwrap(), InstanceState::Running, &[("CreatedBy", &name)]);
        }
        let tagger = OwnerTagger::new(config(), fake.clone(), fake.clone());
        let outcome = runtime().block_on(tagger.handle(event)).unwrap();
        let writes = fake.world().tag_writes.clone();
        if SessionName::parse(&name).is_ok() {
            prop_assert_eq!(writes.len(), 1);
            prop_assert_eq!(&writes[0].2, &format!("{ROLE_ID}:{name}"));
            prop_assert_eq!(writes[0].0.len(), 2);
        } else {
            prop_assert!(writes.is_empty(), "wrote {:?} for {:?}", writes, name);
            prop_assert_eq!(outcome.status, shared::Status::Ignored);
        }
    }

    #[test]
    fn a_tag_change_grants_only_a_valid_user_of_the_users_role(name in username(), other_role in any::<bool>()) {
        let role = if other_role { "AROAOTHERROLE999" } else { ROLE_ID };
        let value = format!("{role}:{name}");
        let fake = fake();
        fake.add_instance("i-0a1b2c3d4e5f60001", InstanceState::Running, &[("AwsUserId", &value)]);
        let event = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "Tag Change on Resource", "source": "aws.tag",
            "account": "123456789012", "time": "2026-11-21T10:00:05Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0a1b2c3d4e5f60001"],
            "detail": {"changed-tag-keys": ["AwsUserId"], "service": "ec2", "resource-type": "instance", "tags": {"AwsUserId": value}}
        });
        let policies = SessionPolicies::new(config(), fake.clone(), fake.clone(), fake.clone(), InlineStore::new(fake.clone(), "ssm-session-owner-"));
        let outcome = runtime().block_on(policies.handle(event)).unwrap();
        let granted = fake.world().inline_policies.len();
        if !other_role && SessionName::parse(&name).is_ok() {
            prop_assert_eq!(granted, 1);
            let doc = fake.world().inline_policies.values().next().unwrap().clone();
            let parsed: Value = serde_json::from_str(&doc).unwrap();
            prop_assert_eq!(parsed["Statement"][0]["Condition"]["StringEquals"]["aws:userid"].as_str(), Some(value.as_str()));
        } else {
            prop_assert_eq!(granted, 0, "{:?}", outcome);
        }
    }
}
