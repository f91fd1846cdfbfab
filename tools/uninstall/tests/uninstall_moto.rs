//! The `uninstall` binary against moto in server mode.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

use std::collections::BTreeSet;
use std::process::{Command, Output};

use shared::app::managed_store::ManagedStore;
use shared::aws::Clients;
use shared::config::WriteMode;
use shared::domain::session_name::SessionName;
use shared::domain::statements::{inline_document, inline_policy_name, Scope};
use shared::ports::PolicyStore;
use testkit::{
    create_role, create_volume, role_policy_names, run_instances, tags_of, user, Moto,
    DEMO_POLICY_PREFIX, DEMO_ROLE,
};

fn uninstall(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_uninstall"))
        .args(args)
        .envs(moto.product_env(DEMO_ROLE))
        .output()
        .unwrap()
}

/// The product's shards in moto: the policies whose name carries the prefix.
async fn shards(iam: &aws_sdk_iam::Client) -> Vec<String> {
    iam.list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap()
        .policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_owned))
        .filter(|name| name.starts_with(DEMO_POLICY_PREFIX))
        .collect()
}

#[tokio::test]
async fn a_dry_run_lists_what_the_product_left_and_yes_removes_exactly_that() {
    // GIVEN ada and tim granted in a shard, grace's old inline statement, their instances and a
    // detached volume carrying the user-id tag, and a volume and an instance the product never
    // tagged
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let role = testkit::resolved(DEMO_ROLE, &create_role(&admin.iam, DEMO_ROLE).await);
    let ada = format!("{}:ada", role.id);
    let owned = run_instances(&admin.ec2, 2, &[("AwsUserId", &ada), ("Name", "ws")]).await;
    let volume = create_volume(&admin.ec2, None, &[("AwsUserId", &ada)]).await;
    let other = create_volume(&admin.ec2, None, &[("Project", "x")]).await;
    let untouched = run_instances(&admin.ec2, 1, &[("Name", "build")])
        .await
        .remove(0);
    // ada's instance shared with tim: a guest slot and the expiry the owner-tagger wrote
    let tim = format!("{}:tim", role.id);
    let until = format!("2030-01-01T00:00:00Z;{ada}");
    let shared = run_instances(
        &admin.ec2,
        1,
        &[
            ("AwsUserId", &ada),
            ("ShareWith", "tim"),
            ("AwsUserIdGuest1", &tim),
            ("AwsUserIdSharedUntil", &until),
        ],
    )
    .await
    .remove(0);
    let granted: BTreeSet<SessionName> = [user("ada"), user("tim")].into();
    ManagedStore::new(admin.iam.clone(), DEMO_POLICY_PREFIX, 10, 10)
        .converge(&role, &Scope::All, &granted, WriteMode::Apply)
        .await
        .unwrap();
    admin
        .iam
        .put_role_policy()
        .role_name(DEMO_ROLE)
        .policy_name(inline_policy_name(DEMO_POLICY_PREFIX, &user("grace")))
        .policy_document(inline_document(&role.id, &user("grace")))
        .send()
        .await
        .unwrap();
    assert_eq!(shards(&admin.iam).await.len(), 1);

    // WHEN it runs without --yes
    let output = uninstall(&moto, &[]);

    // THEN it lists the shard, the inline policy and the tagged resources, and changes nothing
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("ssm-session-owner-shard-01"), "{text}");
    assert!(text.contains("ssm-session-owner-grace"), "{text}");
    assert!(
        text.contains("ec2 us-east-1: would remove AwsUserId from 4 resource(s)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ec2 us-east-1: would remove the guest slots and share expiry from 1 instance(s): {shared}"
        )),
        "{text}"
    );
    assert!(tags_of(&admin.ec2, &shared)
        .await
        .contains_key("AwsUserIdGuest1"));
    for id in owned.iter().chain([&volume]) {
        assert!(text.contains(id.as_str()), "{id}: {text}");
    }
    assert!(text.contains("dry run: nothing changed"), "{text}");
    assert_eq!(shards(&admin.iam).await.len(), 1);
    assert_eq!(role_policy_names(&admin.iam, DEMO_ROLE).await.len(), 1);
    assert_eq!(
        tags_of(&admin.ec2, &volume).await.get("AwsUserId"),
        Some(&ada)
    );

    // WHEN it runs with --yes
    let output = uninstall(&moto, &["--yes"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // THEN the shard and the inline policy are gone, the user-id tag is off every resource
    // that had it, and nothing else changed
    assert!(shards(&admin.iam).await.is_empty());
    assert!(role_policy_names(&admin.iam, DEMO_ROLE).await.is_empty());
    for id in owned.iter().chain([&volume]) {
        let tags = tags_of(&admin.ec2, id).await;
        assert_eq!(tags.get("AwsUserId"), None, "{id}");
    }
    // the product's sharing tags go too; the owner's own request stays (the owner wrote it)
    assert_eq!(
        tags_of(&admin.ec2, &shared)
            .await
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["ShareWith"]
    );
    assert_eq!(
        tags_of(&admin.ec2, &owned[0])
            .await
            .get("Name")
            .map(String::as_str),
        Some("ws")
    );
    assert_eq!(
        tags_of(&admin.ec2, &other)
            .await
            .get("Project")
            .map(String::as_str),
        Some("x")
    );
    assert_eq!(
        tags_of(&admin.ec2, &untouched)
            .await
            .get("Name")
            .map(String::as_str),
        Some("build")
    );

    // AND a second run finds nothing left
    let text = String::from_utf8(uninstall(&moto, &[]).stdout).unwrap();
    assert!(text.contains("nothing left"), "{text}");
}

#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_uninstall"), "uninstall");
}
