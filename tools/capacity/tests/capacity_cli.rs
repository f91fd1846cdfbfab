//! The `capacity` binary against moto in server mode.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

use std::collections::BTreeSet;
use std::process::{Command, Output};

use serde_json::Value;
use shared::app::managed_store::ManagedStore;
use shared::aws::Clients;
use shared::config::WriteMode;
use shared::domain::session_name::SessionName;
use shared::domain::statements::{inline_document, inline_policy_name, Scope};
use shared::ports::PolicyStore;
use testkit::{
    create_role, create_sso_role, run_instances, user, Moto, DEMO_POLICY_PREFIX, DEMO_ROLE,
};

/// The report's JSON, once the exit status is as expected (stderr shown if not).
fn report_with_status(output: &Output, status: i32) -> Value {
    assert_eq!(
        output.status.code(),
        Some(status),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn capacity(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capacity"))
        .args(args)
        .envs(moto.product_env(DEMO_ROLE))
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_report_shows_shards_sizes_headroom_and_drift_both_ways() {
    // GIVEN ada and tim granted in a shard, bob live but not granted, and grace's old inline
    // statement left behind with no instance
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let role = testkit::resolved(DEMO_ROLE, &create_role(&admin.iam, DEMO_ROLE).await);
    let role_id = role.id.clone();
    for name in ["ada", "tim", "bob"] {
        let value = format!("{role_id}:{name}");
        run_instances(&admin.ec2, 1, &[("AwsUserId", &value)]).await;
    }
    let store = ManagedStore::new(admin.iam.clone(), DEMO_POLICY_PREFIX, 10, 10);
    let granted: BTreeSet<SessionName> = [user("ada"), user("tim")].into();
    store
        .converge(&role, &Scope::All, &granted, WriteMode::Apply)
        .await
        .unwrap();
    admin
        .iam
        .put_role_policy()
        .role_name(DEMO_ROLE)
        .policy_name(inline_policy_name(DEMO_POLICY_PREFIX, &user("grace")))
        .policy_document(inline_document(&role_id, &user("grace")))
        .send()
        .await
        .unwrap();

    // WHEN the JSON report is asked for
    let output = capacity(&moto, &["--json"]);

    // THEN it names the users, the shard and its size, the headroom and the drift, and exits 1
    let report = report_with_status(&output, 1);
    assert_eq!(report["store"], "managed");
    assert_eq!(
        report["users_with_statements"],
        serde_json::json!(["ada", "grace", "tim"])
    );
    assert_eq!(report["shards"][0]["name"], "ssm-session-owner-shard-01");
    assert_eq!(report["shards"][0]["users"], 2);
    assert_eq!(report["shards"][0]["limit"], 6144);
    assert_eq!(report["shards"][0]["attached"], true);
    assert_eq!(report["chars_available"], 10 * 6144);
    assert_eq!(report["chars_used"], report["shards"][0]["chars"]);
    // Headroom counts characters: 61,440 available, less the shard in use, over 35 characters
    // per user with a 10-character name (a quoted id and a comma in the dense encoding).
    let headroom = report["headroom_users"].as_u64().unwrap();
    assert!((1_700..=1_760).contains(&headroom), "{headroom}");
    assert_eq!(report["inline_policies"][0]["ours"], true);
    assert_eq!(report["drift"]["missing"], serde_json::json!(["bob"]));
    assert_eq!(report["drift"]["stale"], serde_json::json!(["grace"]));

    // AND the human form says the same, naming the role, how it was found, and the mode
    let text = String::from_utf8(capacity(&moto, &[]).stdout).unwrap();
    assert!(
        text.starts_with(&format!(
            "role: {DEMO_ROLE}, found by name ({DEMO_ROLE})\nsession rights: per-user\n"
        )),
        "{text}"
    );
    assert!(text.contains("users with statements: 3"), "{text}");
    assert!(text.contains("ssm-session-owner-shard-01"), "{text}");
    assert!(
        text.contains("drift: 1 missing (live instance, no statement): bob"),
        "{text}"
    );
    assert!(
        text.contains("1 stale (statement, no live instance): grace"),
        "{text}"
    );

    // WHEN the store converges THEN there is no drift and the exit status is 0
    let desired: BTreeSet<SessionName> = [user("ada"), user("tim"), user("bob")].into();
    store
        .converge(&role, &Scope::All, &desired, WriteMode::Apply)
        .await
        .unwrap();
    let report = report_with_status(&capacity(&moto, &["--json"]), 0);
    assert_eq!(
        report["drift"],
        serde_json::json!({"missing": [], "stale": []})
    );
    assert_eq!(report["inline_policies"], serde_json::json!([]));
}

#[test]
fn bad_arguments_and_configuration_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_capacity"))
        .arg("--yaml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(env!("CARGO_BIN_EXE_capacity"))
        .env_remove("SESSION_ROLE_NAME")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SESSION_ROLE_NAME: is required"));
}

#[tokio::test]
async fn under_identity_center_the_report_reads_the_permission_sets_role() {
    // GIVEN the users' role is the Identity Center role of permission set ResearchUsers (static
    // session rights, the only mode Identity Center allows), a researcher's live instance, and
    // an inline statement per-user mode once left on that role
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let sso_role = "AWSReservedSSO_ResearchUsers_0123456789abcdef";
    let role_id = create_sso_role(&admin.iam, sso_role).await;
    let value = format!("{role_id}:ada@example.com");
    run_instances(&admin.ec2, 1, &[("AwsUserId", &value)]).await;
    let grace = user("grace");
    admin
        .iam
        .put_role_policy()
        .role_name(sso_role)
        .policy_name(inline_policy_name(DEMO_POLICY_PREFIX, &grace))
        .policy_document(inline_document(&testkit::role_id_of(&role_id), &grace))
        .send()
        .await
        .unwrap();

    // WHEN the capacity report runs with PERMISSION_SET_NAME instead of SESSION_ROLE_NAME
    let output = Command::new(env!("CARGO_BIN_EXE_capacity"))
        .arg("--json")
        .envs(moto.product_env(DEMO_ROLE))
        .env_remove("SESSION_ROLE_NAME")
        .env("PERMISSION_SET_NAME", "ResearchUsers")
        .env("SESSION_RIGHTS", "static")
        .output()
        .unwrap();

    // THEN it reads that role: grace's leftover is stale, nobody is missing a statement in
    // static mode, and the drift makes the exit status 1
    let report = report_with_status(&output, 1);
    assert_eq!(
        report["users_with_statements"],
        serde_json::json!(["grace"])
    );
    assert_eq!(report["inline_policies"][0]["ours"], true);
    assert_eq!(
        report["drift"],
        serde_json::json!({"missing": [], "stale": ["grace"]})
    );
    // AND it names the role it examined, how it found it, and the mode, and says that per-user
    // headroom does not apply to static rights
    assert_eq!(report["role"], sso_role);
    assert_eq!(
        report["role_found"],
        "as the Identity Center role of permission set ResearchUsers"
    );
    assert_eq!(report["session_rights"], "static");
    let text = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_capacity"))
            .envs(moto.product_env(DEMO_ROLE))
            .env_remove("SESSION_ROLE_NAME")
            .env("PERMISSION_SET_NAME", "ResearchUsers")
            .env("SESSION_RIGHTS", "static")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        text.starts_with(&format!(
            "role: {sso_role}, found as the Identity Center role of permission set ResearchUsers\nsession rights: static\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "headroom: not limited by IAM (static session rights: one statement for every user)"
        ),
        "{text}"
    );
}

#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_capacity"), "capacity");
}

#[tokio::test]
async fn with_stack_it_configures_itself_from_the_deployed_functions_environment() {
    // GIVEN moto with the users' role, two granted users, and a stack shaped like the product's
    // whose functions carry the environment template.yaml renders (one covered region here)
    let moto = Moto::start().unwrap();
    let sdk = moto.sdk_config().await;
    let admin = Clients::new(&sdk);
    let role = testkit::resolved(DEMO_ROLE, &create_role(&admin.iam, DEMO_ROLE).await);
    for name in ["ada", "tim"] {
        let value = format!("{}:{name}", role.id);
        run_instances(&admin.ec2, 1, &[("AwsUserId", &value)]).await;
    }
    ManagedStore::new(admin.iam.clone(), DEMO_POLICY_PREFIX, 10, 10)
        .converge(
            &role,
            &Scope::All,
            &[user("ada"), user("tim")].into(),
            WriteMode::Apply,
        )
        .await
        .unwrap();
    let mut environment = testkit::deployed_environment("defaults");
    assert_eq!(environment["SESSION_ROLE_NAME"], DEMO_ROLE);
    environment.insert("REGIONS".into(), testkit::REGION.into());
    environment.insert("END_SESSIONS_ON_TERMINATE".into(), "false".into());
    testkit::create_product_stack(&sdk, "ssm-session-owner", &environment).await;

    // WHEN capacity runs with --stack and nothing of the product's configuration in its own
    // environment (only the SDK's: moto's endpoint, region and credentials)
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_capacity"))
            .args(args)
            .env_clear()
            .envs(moto.env())
            .output()
            .unwrap()
    };
    let output = run(&["--stack", "ssm-session-owner", "--json"]);

    // THEN it reads the deployed configuration, says so, and reports the role's shard
    let report = report_with_status(&output, 0);
    assert_eq!(report["store"], "managed");
    assert_eq!(
        report["users_with_statements"],
        serde_json::json!(["ada", "tim"])
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("capacity: configured from stack ssm-session-owner (the environment of arn:aws:lambda:us-east-1:123456789012:function:ssm-session-owner-SessionPolicyFunction-"),
        "{stderr}"
    );
    // AND without --stack the same environment-less run is a configuration error
    let output = run(&["--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("capacity: invalid configuration"));
    // AND a stack that does not exist, or is not the product's, is a clear error (exit 2)
    let output = run(&["--stack", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("capacity: cannot read the stack: cloudformation:DescribeStacks failed: ValidationError"),
        "{stderr}"
    );
}
