//! The `replay` binary end to end, against moto in server mode on loopback.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use shared::aws::Clients;
use testkit::{
    create_role, granted_users, role_policy_names, seed_samples, tags_of, write_samples, Moto,
    DEMO_ROLE,
};
use testkit::{events_dir, real_events_dir};

fn replay(moto: &Moto, role: &str, args: &[PathBuf], stdin: Option<&str>) -> Output {
    replay_with(moto, role, &[], args, stdin)
}

fn replay_with(
    moto: &Moto,
    role: &str,
    extra_env: &[(&str, &str)],
    args: &[PathBuf],
    stdin: Option<&str>,
) -> Output {
    // moto has no SSM session APIs (HTTP 500); session ending is covered with aws-smithy-mocks.
    let mut child = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .envs(moto.product_env(role))
        .envs(extra_env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("replay runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The JSON lines, keyed by file name.
fn lines(output: &Output) -> BTreeMap<String, Value> {
    testkit::replay_lines(&output.stdout)
}

fn json_files(dir: PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

const GONE: &str = "instance no longer exists in EC2";

#[tokio::test]
async fn every_real_event_gets_its_expected_outcome_and_none_fails() {
    // GIVEN moto with the users' role, and the public real-event corpus
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    create_role(&admin.iam, DEMO_ROLE).await;
    let files = json_files(real_events_dir());

    // WHEN all of them are replayed in one run
    let output = replay(&moto, DEMO_ROLE, &files, None);

    // THEN the run succeeds with one line per file and no panic
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let results = lines(&output);
    assert_eq!(results.len(), files.len());

    let expected: &[(&str, &str, &str)] = &[
        ("negative-cloudtrail-controltower-sso-assumed-role.json", "ignored", "no function handles aws.controltower / AWS API Call via CloudTrail / CreateManagedAccount"),
        ("runinstances-assumed-role-console-name-tag.json", "ignored", GONE),
        ("runinstances-assumed-role-console-private-ip-name-tag.json", "ignored", GONE),
        ("runinstances-autoscaling-eks-ec2fleet.json", "ignored", GONE),
        ("runinstances-dryrun-eks-nodegroup-launch-template.json", "ignored", "dry run (Client.DryRunOperation): nothing was launched"),
        ("runinstances-dryrun-invokedby-aws-internal.json", "ignored", "dry run (Client.DryRunOperation): nothing was launched"),
        ("runinstances-failed-unauthorized-operation.json", "ignored", "failed call (Client.UnauthorizedOperation): nothing was launched"),
        ("runinstances-iam-user-cli-tagspec-multitag.json", "ignored", GONE),
        ("runinstances-iam-user-console-2015.json", "ignored", GONE),
        ("runinstances-iam-user-console-instance-store.json", "ignored", GONE),
        ("runinstances-root-invokedby-autoscaling-two-instances.json", "ignored", "skipped i-784cdacd: instance no longer exists in EC2; skipped i-7b4cdace: instance no longer exists in EC2"),
        ("runinstances-sso-role-two-instances-tagspec.json", "ignored", GONE),
        ("state-change-pending-custodian-2015.json", "ignored", "instance is pending: nothing to revoke"),
        ("state-change-pending-docs.json", "ignored", "instance is pending: nothing to revoke"),
        ("state-change-running.json", "ignored", "instance is running: nothing to revoke"),
        ("state-change-shutting-down.json", "ignored", "instance is shutting-down: nothing to revoke"),
        ("state-change-stopped-masked-ids.json", "ignored", "instance is stopped: nothing to revoke"),
        ("state-change-terminated-captured.json", "ignored", "i-0e3844befff9de3ba is no longer visible or has no AwsUserId tag; the next reconcile converges"),
        ("state-change-terminated-docs-leading-space-id.json", "ignored", "i-1234567890abcdef0 is no longer visible or has no AwsUserId tag"),
        ("state-change-terminated-docs.json", "ignored", "i-1234567890abcdef0 is no longer visible or has no AwsUserId tag"),
        ("tag-change-instance-add-update-delete.json", "ignored", "AwsUserId did not change"),
        ("tag-change-instance-single-key.json", "ignored", "AwsUserId did not change"),
        ("tag-change-subnet-non-instance.json", "ignored", "not an EC2 instance (service ec2, resource-type subnet)"),
    ];
    // The metric reason code each ignored real event is counted under, as replay prints it: the
    // code is built where the decision is made, never parsed from the reason text.
    let codes: &[(&str, &str)] = &[
        (
            "negative-cloudtrail-controltower-sso-assumed-role.json",
            "OtherEvent",
        ),
        (
            "runinstances-assumed-role-console-name-tag.json",
            "InstanceGone",
        ),
        (
            "runinstances-dryrun-eks-nodegroup-launch-template.json",
            "DryRun",
        ),
        (
            "runinstances-failed-unauthorized-operation.json",
            "FailedCall",
        ),
        (
            "runinstances-root-invokedby-autoscaling-two-instances.json",
            "InstanceGone",
        ),
        ("state-change-running.json", "NotTerminated"),
        ("state-change-terminated-docs.json", "InstanceGone"),
        ("tag-change-instance-single-key.json", "UserIdTagUnchanged"),
        ("tag-change-subnet-non-instance.json", "OtherEvent"),
    ];
    for (file, code) in codes {
        let line = &results[*file];
        assert_eq!(line["code"], *code, "{file}: {line}");
    }
    for (file, outcome, reason) in expected {
        let line = results
            .get(*file)
            .unwrap_or_else(|| panic!("no line for {file}"));
        assert_eq!(line["outcome"], *outcome, "{file}: {line}");
        assert!(
            line["reason"].as_str().unwrap().contains(reason),
            "{file}: {line}"
        );
        let function = match file.split('-').next() {
            Some("runinstances") => "owner-tagger",
            Some("state" | "tag") => "session-policy",
            _ => "none",
        };
        assert_eq!(line["function"], function, "{file}");
    }
    for (file, line) in &results {
        assert_ne!(line["outcome"], "error", "{file}: {line}");
    }
}

#[tokio::test]
async fn a_real_launch_by_a_session_of_a_same_named_but_different_role_is_not_tagged() {
    // GIVEN a role named like the SSO event's issuer, but with another id (role recreated)
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    create_role(&admin.iam, "ARole").await;
    let file = real_events_dir().join("runinstances-sso-role-two-instances-tagspec.json");

    let output = replay(&moto, "ARole", &[file], None);

    assert!(output.status.success());
    let line = &lines(&output)["runinstances-sso-role-two-instances-tagspec.json"];
    assert_eq!(line["outcome"], "ignored");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .contains("launched by a session of role id 00000000000000000"),
        "{line}"
    );
    assert_eq!(
        tags_of(&admin.ec2, "i-00000000000000000")
            .await
            .get("AwsUserId"),
        None
    );
}

#[tokio::test]
async fn the_samples_tag_their_instances_and_a_second_replay_changes_nothing() {
    // GIVEN moto seeded as the samples describe
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let (role_id, replacements) = seed_samples(&admin.ec2, &admin.iam).await;
    let dir = tempdir();
    let files = write_samples(&dir, &replacements).unwrap();
    assert_eq!(files.len(), json_files(events_dir()).len());
    let id = |sample: &str| {
        replacements
            .iter()
            .find(|(s, _)| s == sample)
            .unwrap()
            .1
            .clone()
    };

    // WHEN every sample is replayed
    let first = replay(&moto, DEMO_ROLE, &files, None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let results = lines(&first);
    assert_eq!(
        results["run-instances-created-by.json"]["outcome"],
        "changed"
    );
    assert_eq!(
        results["run-instances-owner-not-in-event.json"]["outcome"],
        "changed"
    );
    assert_eq!(
        results["run-instances-users-role-session.json"]["outcome"],
        "changed"
    );
    assert_eq!(
        results["run-instances-hostile-username.json"]["outcome"],
        "ignored"
    );
    assert_eq!(results["run-instances-dry-run.json"]["outcome"], "ignored");
    let fleet = &results["create-fleet-instant.json"];
    assert_eq!(fleet["outcome"], "changed", "{fleet}");
    assert_eq!(
        fleet["reason"],
        "tagged 2 instance(s) with AwsUserId; tagged 2 volume(s) with AwsUserId"
    );
    // The reconcile grants the two users with live instances and alan.turing, a guest with no
    // instance of his own (his slot on tim's shared instance), in one shard, and removes
    // grace.hopper's leftover inline statement; the termination and tag-change events then
    // find nothing to do.
    let changed: Vec<&str> = results["scheduled-reconcile.json"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert_eq!(changed[0], "create ssm-session-owner-shard-01 (3 users)");
    assert!(changed[1].starts_with("delete inline ssm-session-owner-grace.hopper-"));
    assert_eq!(
        results["state-change-terminated.json"]["reason"],
        "grace.hopper has no live instance: revoked"
    );
    assert_eq!(
        results["tag-change-user-id-added.json"]["reason"],
        "tim.malone has 4 live instance(s): granted"
    );
    let granted = granted_users(&admin.iam, DEMO_ROLE).await;
    let shard = "shard ssm-session-owner-shard-01".to_owned();
    assert_eq!(
        granted,
        BTreeMap::from([
            ("ada.lovelace".to_owned(), shard.clone()),
            ("alan.turing".to_owned(), shard.clone()),
            ("tim.malone".to_owned(), shard)
        ])
    );

    // tim.malone's share request gives each of his two guests a slot with his role id (the
    // sweep sample, replayed first, finds the request too: either may write it)
    let share = &results["tag-change-share-with-added.json"];
    assert_eq!(share["function"], "owner-tagger", "{share}");
    assert!(
        ["changed", "unchanged"].contains(&share["outcome"].as_str().unwrap()),
        "{share}"
    );
    let shared = tags_of(&admin.ec2, &id("i-0a1b2c3d4e5f60008")).await;
    assert_eq!(shared["AwsUserIdGuest1"], format!("{role_id}:ada.lovelace"));
    assert_eq!(shared["AwsUserIdGuest2"], format!("{role_id}:alan.turing"));
    assert!(shared["AwsUserIdSharedUntil"].ends_with(&format!(";{role_id}:tim.malone")));

    // THEN the tags in moto name the right users, and the hostile one got nothing
    let expected = [
        ("i-0a1b2c3d4e5f60001", Some("tim.malone")),
        ("i-0a1b2c3d4e5f60002", Some("tim.malone")),
        ("i-0a1b2c3d4e5f60003", Some("ada.lovelace")),
        ("i-0a1b2c3d4e5f60004", Some("tim.malone")),
        ("i-0a1b2c3d4e5f60005", None),
        // the instant fleet's two instances, from its CreateFleet record in one pass
        ("i-0a1b2c3d4e5f60009", Some("ada.lovelace")),
        ("i-0a1b2c3d4e5f60010", Some("ada.lovelace")),
    ];
    let mut before = Vec::new();
    for (sample, user) in expected {
        let tags = tags_of(&admin.ec2, &id(sample)).await;
        assert_eq!(
            tags.get("AwsUserId").cloned(),
            user.map(|u| format!("{role_id}:{u}")),
            "{sample}"
        );
        before.push(tags);
    }

    // WHEN replayed again THEN every tag and policy is unchanged, no event writes to IAM, and no
    // launch event (RunInstances, CreateFleet) costs more than one call beyond the per-process GetRole
    let second = replay(&moto, DEMO_ROLE, &files, None);
    assert!(second.status.success());
    let again = &lines(&second)["tag-change-share-with-added.json"];
    assert_eq!(
        again["outcome"], "unchanged",
        "a redelivered request renews nothing: {again}"
    );
    for (file, line) in lines(&second) {
        let calls = line["calls"].as_object().unwrap();
        assert!(
            !calls
                .keys()
                .any(|op| op.starts_with("iam:Put") || op.starts_with("iam:Delete")),
            "{file}: {line}"
        );
        if !file.starts_with("run-instances") && !file.starts_with("create-fleet") {
            continue;
        }
        let calls: u64 = line["calls"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(op, _)| *op != "iam:GetRole")
            .map(|(_, n)| n.as_u64().unwrap())
            .sum();
        assert!(calls <= 1, "{file}: {line}");
    }
    assert_eq!(
        lines(&second)["run-instances-owner-not-in-event.json"]["outcome"],
        "unchanged"
    );
    for ((sample, _), tags) in expected.iter().zip(before) {
        assert_eq!(tags_of(&admin.ec2, &id(sample)).await, tags, "{sample}");
    }
    assert_eq!(granted_users(&admin.iam, DEMO_ROLE).await, granted);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn stdin_garbage_and_missing_files_are_errors_with_exit_1() {
    let moto = Moto::start().unwrap();
    let output = replay(
        &moto,
        DEMO_ROLE,
        &["-".into(), "/nonexistent.json".into()],
        Some("{not json"),
    );
    assert_eq!(output.status.code(), Some(1));
    let results = lines(&output);
    assert_eq!(results["-"]["outcome"], "error");
    assert!(
        results["-"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not JSON: "),
        "{}",
        results["-"]
    );
    assert_eq!(results["nonexistent.json"]["outcome"], "error");
    assert!(results["nonexistent.json"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("cannot read /nonexistent.json"));

    // A JSON value that is not an event is acknowledged as ignored, like the Lambda does.
    let output = replay(&moto, DEMO_ROLE, &["-".into()], Some("[1, 2]"));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(lines(&output)["-"]["outcome"], "ignored");
}

#[tokio::test]
async fn a_run_against_a_dead_endpoint_reports_retryable_errors_and_exits_1() {
    let moto = Moto::start().unwrap();
    let env = moto.env();
    drop(moto);
    let output = Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg(events_dir().join("run-instances-created-by.json"))
        .envs(env)
        .env("SESSION_ROLE_NAME", DEMO_ROLE)
        .env("SESSION_ROLE_ID", "AROAEXAMPLEROLEID1234")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let line = &lines(&output)["run-instances-created-by.json"];
    assert_eq!(line["outcome"], "error");
    assert_eq!(line["error_type"], "Retryable");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .starts_with("ec2:DescribeInstances failed: DispatchFailure"),
        "{line}"
    );
}

#[test]
fn configuration_errors_name_the_variable_and_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg("-")
        .env_remove("SESSION_ROLE_NAME")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "replay: invalid configuration: SESSION_ROLE_NAME: is required: the name of the users' federated IAM role (or set PERMISSION_SET_NAME)"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_replay")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "replay-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_dry_run_reconcile_prints_its_plan_and_writes_nothing() {
    // GIVEN moto seeded as the samples describe, owners already tagged
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let (_, replacements) = seed_samples(&admin.ec2, &admin.iam).await;
    let dir = tempdir();
    let files = write_samples(&dir, &replacements).unwrap();
    let launches: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("run-instances"))
        .cloned()
        .collect();
    assert!(replay(&moto, DEMO_ROLE, &launches, None).status.success());
    let before = role_policy_names(&admin.iam, DEMO_ROLE).await;
    let granted_before = granted_users(&admin.iam, DEMO_ROLE).await;
    let reconcile = dir.join("scheduled-reconcile.json");

    // WHEN the reconcile is replayed with --dry-run
    let mut args = vec![PathBuf::from("--dry-run")];
    args.push(reconcile.clone());
    let output = replay(&moto, DEMO_ROLE, &args, None);

    // THEN it lists the changes it would make (a shard for the two users, the old inline
    // statement gone), and the role is as it was
    assert!(output.status.success());
    let line = &lines(&output)["scheduled-reconcile.json"];
    assert_eq!(line["outcome"], "unchanged");
    let planned: Vec<&str> = line["planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(planned.len(), 2, "{line}");
    assert_eq!(planned[0], "create ssm-session-owner-shard-01 (3 users)");
    assert!(
        planned[1].starts_with("delete inline ssm-session-owner-grace.hopper-"),
        "{planned:?}"
    );
    assert_eq!(granted_users(&admin.iam, DEMO_ROLE).await, granted_before);
    assert_eq!(role_policy_names(&admin.iam, DEMO_ROLE).await, before);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn static_session_rights_write_no_iam_and_remove_what_per_user_mode_left() {
    // GIVEN the samples replayed in per-user mode: a shard for tim.malone, ada.lovelace and alan.turing (a guest)
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let (_, replacements) = seed_samples(&admin.ec2, &admin.iam).await;
    let dir = tempdir();
    let files = write_samples(&dir, &replacements).unwrap();
    assert!(replay(&moto, DEMO_ROLE, &files, None).status.success());
    assert_eq!(granted_users(&admin.iam, DEMO_ROLE).await.len(), 3);

    // WHEN the deployment switches to static rights, and every sample is replayed again
    let output = replay_with(
        &moto,
        DEMO_ROLE,
        &[("SESSION_RIGHTS", "static")],
        &files,
        None,
    );

    // THEN grants write nothing, the reconcile removed every per-user statement and shard, and
    // the tags are untouched
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = lines(&output);
    let grant = &results["tag-change-user-id-added.json"];
    assert_eq!(grant["outcome"], "ignored", "{grant}");
    assert_eq!(grant["code"], "StaticSessionRights");
    assert_eq!(grant["calls"], serde_json::json!({}));
    let reconcile = &results["scheduled-reconcile.json"];
    assert_eq!(reconcile["outcome"], "changed", "{reconcile}");
    assert!(granted_users(&admin.iam, DEMO_ROLE).await.is_empty());
    assert!(role_policy_names(&admin.iam, DEMO_ROLE).await.is_empty());
    let shards = admin
        .iam
        .list_policies()
        .path_prefix("/ssm-session-owner/")
        .send()
        .await
        .unwrap();
    assert!(shards.policies().is_empty(), "{:?}", shards.policies());
    let tim = replacements
        .iter()
        .find(|(s, _)| s == "i-0a1b2c3d4e5f60001")
        .unwrap();
    assert!(tags_of(&admin.ec2, &tim.1).await["AwsUserId"].ends_with(":tim.malone"));

    // AND a second static replay has nothing left to do
    let again = replay_with(
        &moto,
        DEMO_ROLE,
        &[("SESSION_RIGHTS", "static")],
        &files,
        None,
    );
    assert_eq!(
        lines(&again)["scheduled-reconcile.json"]["outcome"],
        "unchanged"
    );
}

#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_replay"), "replay");
}
