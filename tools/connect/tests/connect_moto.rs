//! `connect` against moto in server mode, as users signed in through the users' role (moto's
//! AssumeRole gives each a `<role-id>:<username>` user id), with stand-ins for the programs it
//! runs (`aws`, `session-manager-plugin`, `ssh-keygen`, `ssh`, `scp`) on `PATH`: each writes its
//! arguments to a log, so a test reads exactly what would have run, in order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_config::Region;
use serde_json::Value;
use shared::aws::Clients;
use testkit::{create_role, run_instances, tags_of, Moto, DEMO_ROLE};

const CONNECT: &str = env!("CARGO_BIN_EXE_connect");

/// A user's credentials, from moto's AssumeRole on the users' role.
async fn sign_in(moto: &Moto, role_arn: &str, user: &str) -> Vec<(&'static str, String)> {
    let sts = aws_sdk_sts::Client::new(&moto.sdk_config().await);
    let credentials = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(user)
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let mut env = moto.env();
    env.retain(|(k, _)| {
        !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET") && *k != "AWS_SESSION_TOKEN"
    });
    env.extend([
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key),
        ("AWS_SESSION_TOKEN", credentials.session_token),
    ]);
    env
}

/// A directory of stand-in programs that log their arguments to `log`, one line per run
/// (program, then each argument, tab-separated). `ssh-keygen` also writes the key files.
fn stand_ins(dir: &Path, programs: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("log");
    for program in programs {
        let mut script = format!(
            "#!/bin/sh\nprintf '%s' '{program}' >> '{log}'\nfor a in \"$@\"; do printf '\\t%s' \"$a\" >> '{log}'; done\necho >> '{log}'\n",
            log = log.display()
        );
        if *program == "ssh-keygen" {
            script.push_str(
                "while [ $# -gt 0 ]; do if [ \"$1\" = -f ]; then echo PRIVATE > \"$2\"; echo 'ssh-ed25519 AAAA connect' > \"$2.pub\"; fi; shift; done\n",
            );
        }
        let path = bin.join(program);
        std::fs::write(&path, script).unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
    }
    bin
}

fn logged(dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn connect(env: &[(&'static str, String)], path: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(CONNECT);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
    command.env(
        "PATH",
        path.map_or_else(|| "/nonexistent".into(), |p| p.display().to_string()),
    );
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn listed(output: &Output) -> BTreeMap<String, Value> {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    json["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["id"].as_str().unwrap().to_owned(), row.clone()))
        .collect()
}

struct World {
    moto: Moto,
    admin: Clients,
    role_id: String,
    role_arn: String,
}

async fn world() -> World {
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let role_id = create_role(&admin.iam, DEMO_ROLE).await;
    World {
        role_arn: format!("arn:aws:iam::123456789012:role/{DEMO_ROLE}"),
        moto,
        admin,
        role_id,
    }
}

async fn ec2_in(moto: &Moto, region: &str) -> aws_sdk_ec2::Client {
    let config = aws_sdk_ec2::config::Builder::from(&moto.sdk_config().await)
        .region(Region::new(region.to_owned()))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

#[test]
fn connect_behaves_like_a_cli() {
    testkit::assert_behaves_like_a_cli(CONNECT, "connect");
}

#[test]
fn a_managed_node_is_refused_in_one_line_where_only_instances_go_and_needs_the_flag() {
    // No AWS call is made for any of these: they are refused before signing in.
    let node = "mi-0a1b2c3d4e5f60001";
    let hybrid = [("CONNECT_HYBRID_NODES", "true".to_owned())];
    for (args, said) in [
        (
            vec!["ssh", node],
            "EC2 Instance Connect cannot push a key to it",
        ),
        (
            vec!["scp", node, "--", "f", "mi-0a1b2c3d4e5f60001:f"],
            "EC2 Instance Connect cannot push a key to it",
        ),
        (vec!["share", node, "ana"], "sharing is for instances only"),
        (vec!["unshare", node], "sharing is for instances only"),
    ] {
        let output = connect(&hybrid, None, &args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).starts_with(&format!(
                "connect: {node} is a managed node outside EC2: {said}"
            )),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    // without CONNECT_HYBRID_NODES a node id is not an instance id
    let output = connect(&[], None, &["shell", node]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not an instance id"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn ls_lists_exactly_the_callers_own_and_shared_instances_in_every_region() {
    // GIVEN ada's instances in two regions, tim's instance shared with ada, and instances that
    // only look like hers: grace's, a look-alike name, another role's ada, a mere label with
    // her id, a case variant of the key, an ownerless one, and her terminated one
    let w = world().await;
    let ada = format!("{}:ada.lovelace", w.role_id);
    let tim = format!("{}:tim.malone", w.role_id);
    let own = run_instances(
        &w.admin.ec2,
        1,
        &[("AwsUserId", &ada), ("Name", "analysis")],
    )
    .await;
    let eu = ec2_in(&w.moto, "eu-west-1").await;
    let own_eu = run_instances(&eu, 1, &[("AwsUserId", &ada)]).await;
    let until = "2030-01-01T00:00:00Z";
    let shared = run_instances(
        &w.admin.ec2,
        1,
        &[
            ("AwsUserId", &tim),
            ("AwsUserIdGuest2", &ada),
            ("AwsUserIdSharedUntil", &format!("{until};{tim}")),
        ],
    )
    .await;
    let grace = format!("{}:grace.hopper", w.role_id);
    let lookalike = format!("{}:ada.lovelace2", w.role_id);
    for tags in [
        vec![("AwsUserId", grace.as_str())],
        vec![("AwsUserId", lookalike.as_str())],
        vec![("AwsUserId", "AROAOTHERROLE00000001:ada.lovelace")],
        vec![("Label", ada.as_str())],
        vec![("awsuserid", ada.as_str())],
        vec![],
    ] {
        run_instances(&w.admin.ec2, 1, &tags).await;
    }
    let gone = run_instances(&w.admin.ec2, 1, &[("AwsUserId", &ada)]).await;
    w.admin
        .ec2
        .terminate_instances()
        .instance_ids(&gone[0])
        .send()
        .await
        .unwrap();
    let as_ada = sign_in(&w.moto, &w.role_arn, "ada.lovelace").await;

    // WHEN ada lists in every region
    let rows = listed(&connect(&as_ada, None, &["ls", "--json"]));

    // THEN exactly her two and tim's shared one, each said as what it is
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), {
        let mut ids = vec![own[0].clone(), own_eu[0].clone(), shared[0].clone()];
        ids.sort();
        ids
    });
    assert_eq!(rows[&own[0]]["access"], "owner");
    assert_eq!(rows[&own[0]]["name"], "analysis");
    assert_eq!(rows[&own[0]]["region"], "us-east-1");
    assert_eq!(rows[&own_eu[0]]["region"], "eu-west-1");
    assert_eq!(rows[&shared[0]]["access"], "guest");
    assert_eq!(rows[&shared[0]]["owner"], "tim.malone");
    assert_eq!(rows[&shared[0]]["shared_until"], until);
    assert_eq!(rows[&shared[0]]["state"], "running");

    // and the owner sees whom it is shared with; one region only with --region
    let as_tim = sign_in(&w.moto, &w.role_arn, "tim.malone").await;
    let tims = listed(&connect(
        &as_tim,
        None,
        &["ls", "--json", "--region", "us-east-1"],
    ));
    assert_eq!(tims.len(), 1);
    assert_eq!(
        tims[&shared[0]]["guests"],
        serde_json::json!(["ada.lovelace"])
    );
    let table = connect(&as_ada, None, &["ls", "--region", "eu-west-1"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains(&own_eu[0]) && text.contains("owner"),
        "{text}"
    );
}

#[tokio::test]
async fn sessions_run_the_right_command_only_on_reachable_running_instances() {
    let w = world().await;
    let ada = format!("{}:ada.lovelace", w.role_id);
    let tim = format!("{}:tim.malone", w.role_id);
    let own = run_instances(&w.admin.ec2, 1, &[("AwsUserId", &ada)]).await[0].clone();
    let theirs = run_instances(&w.admin.ec2, 1, &[("AwsUserId", &tim)]).await[0].clone();
    let shared = run_instances(
        &w.admin.ec2,
        1,
        &[
            ("AwsUserId", &tim),
            ("AwsUserIdGuest1", &ada),
            (
                "AwsUserIdSharedUntil",
                &format!("2030-01-01T00:00:00Z;{tim}"),
            ),
        ],
    )
    .await[0]
        .clone();
    let stopped = run_instances(&w.admin.ec2, 1, &[("AwsUserId", &ada)]).await[0].clone();
    w.admin
        .ec2
        .stop_instances()
        .instance_ids(&stopped)
        .send()
        .await
        .unwrap();
    let as_ada = sign_in(&w.moto, &w.role_arn, "ada.lovelace").await;
    let dir = tempfile::tempdir().unwrap();
    let all = [
        "aws",
        "session-manager-plugin",
        "ssh-keygen",
        "ssh",
        "scp",
        "sftp",
    ];
    let bin = stand_ins(dir.path(), &all);

    // a shell on her own: the account's shell document, named, in the instance's region
    let out = connect(&as_ada, Some(&bin), &["shell", &own]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs = logged(dir.path());
    assert_eq!(
        runs,
        [vec![
            "aws",
            "ssm",
            "start-session",
            "--region",
            "us-east-1",
            "--target",
            &own,
            "--document-name",
            "SSM-SessionManagerRunShell"
        ]]
    );

    // a port forwarded from the instance she is a guest on, with the product's document
    std::fs::remove_file(dir.path().join("log")).unwrap();
    let out = connect(&as_ada, Some(&bin), &["forward", &shared, "8787", "18787"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        logged(dir.path())[0][7..],
        [
            "--document-name",
            "SsmSessionOwner-PortForwarding",
            "--parameters",
            r#"{"portNumber":["8787"],"localPortNumber":["18787"]}"#
        ]
    );

    // ssh: a new key, pushed for the OS user, then ssh through the SSH document at once
    std::fs::remove_file(dir.path().join("log")).unwrap();
    let out = connect(
        &as_ada,
        Some(&bin),
        &["ssh", &own, "--os-user", "ubuntu", "--", "uptime"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs = logged(dir.path());
    let programs: Vec<&str> = runs.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(programs, ["ssh-keygen", "aws", "ssh"]);
    let key = runs[0].last().unwrap().clone();
    assert_eq!(
        runs[1][1..],
        [
            "ec2-instance-connect",
            "send-ssh-public-key",
            "--region",
            "us-east-1",
            "--instance-id",
            &own,
            "--instance-os-user",
            "ubuntu",
            "--ssh-public-key",
            &format!("file://{key}.pub")
        ]
    );
    assert_eq!(
        runs[2][1..8],
        [
            "-i",
            &key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "User=ubuntu",
            "-o"
        ]
    );
    assert!(runs[2][8].starts_with("ProxyCommand="), "{:?}", runs[2]);
    assert!(
        runs[2][8].ends_with(
            "ssm start-session --region us-east-1 --target '%h' --document-name SsmSessionOwner-SSH --parameters 'portNumber=%p'"
        ),
        "{:?}",
        runs[2]
    );
    assert_eq!(runs[2][9..], [own.as_str(), "uptime"]);
    assert!(
        !Path::new(&key).exists(),
        "the one-use key is deleted when ssh ends"
    );

    // scp needs the instance named in a path; sftp as the guest works the same way
    std::fs::remove_file(dir.path().join("log")).unwrap();
    let out = connect(&as_ada, Some(&bin), &["scp", &own, "--", "a.csv", "/tmp/"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{own}:/home/ec2-user/file")),
        "{}",
        stderr(&out)
    );
    let target = format!("{shared}:/home/ec2-user/");
    let out = connect(
        &as_ada,
        Some(&bin),
        &["scp", &shared, "--", "a.csv", &target],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(logged(dir.path())[2][0], "scp");
    assert_eq!(logged(dir.path())[2][9..], ["a.csv", target.as_str()]);

    // refused in one line, nothing run: tim's instance, a stopped one, a bad id
    std::fs::remove_file(dir.path().join("log")).unwrap();
    let out = connect(&as_ada, Some(&bin), &["shell", &theirs]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "connect: you cannot reach {theirs}: it belongs to tim.malone and is not shared with you. If it should be yours, ask your operator to run: doctor check ada.lovelace {theirs}"
        )
    );
    let out = connect(&as_ada, Some(&bin), &["ssh", &stopped]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is stopped"), "{}", stderr(&out));
    let out = connect(&as_ada, Some(&bin), &["shell", "i-nothex"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not an instance id"),
        "{}",
        stderr(&out)
    );
    assert!(logged(dir.path()).is_empty(), "{:?}", logged(dir.path()));

    // a missing plugin, a missing AWS CLI, missing credentials: exit 2, said plainly
    let no_plugin = tempfile::tempdir().unwrap();
    let bin2 = stand_ins(no_plugin.path(), &["aws", "ssh", "ssh-keygen"]);
    let out = connect(&as_ada, Some(&bin2), &["shell", &own]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Session Manager plugin"),
        "{}",
        stderr(&out)
    );
    let out = connect(&as_ada, None, &["shell", &own]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("AWS CLI"), "{}", stderr(&out));
    let mut anonymous = w.moto.env();
    anonymous.retain(|(k, _)| {
        !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET") && *k != "AWS_SESSION_TOKEN"
    });
    let out = connect(&anonymous, Some(&bin), &["ls"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no usable AWS credentials"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn share_writes_the_request_only_as_the_owner_and_only_when_the_product_would_take_it() {
    let w = world().await;
    let ada = format!("{}:ada.lovelace", w.role_id);
    let tim = format!("{}:tim.malone", w.role_id);
    let own = run_instances(&w.admin.ec2, 1, &[("AwsUserId", &ada)]).await[0].clone();
    let theirs = run_instances(&w.admin.ec2, 1, &[("AwsUserId", &tim)]).await[0].clone();
    let as_ada = sign_in(&w.moto, &w.role_arn, "ada.lovelace").await;

    let out = connect(
        &as_ada,
        None,
        &["share", &own, "grace.hopper", "tim.malone", "--for", "3h"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tags = tags_of(&w.admin.ec2, &own).await;
    assert_eq!(tags["ShareWith"], "grace.hopper tim.malone");
    assert_eq!(tags["ShareFor"], "3h");
    // sharing again without --for drops the earlier length: the deployment's default applies
    let out = connect(&as_ada, None, &["share", &own, "grace.hopper"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tags = tags_of(&w.admin.ec2, &own).await;
    assert_eq!(tags["ShareWith"], "grace.hopper");
    assert!(!tags.contains_key("ShareFor"), "{tags:?}");

    // refused, and nothing written: herself, a hostile name, a bad duration, not hers
    for (args, says) in [
        (vec!["share", own.as_str(), "ada.lovelace"], "not shared: "),
        (vec!["share", own.as_str(), "bob,eve"], "not shared: "),
        (
            vec!["share", own.as_str(), "bob", "--for", "forever"],
            "not a duration",
        ),
    ] {
        let out = connect(&as_ada, None, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        tags_of(&w.admin.ec2, &own).await["ShareWith"],
        "grace.hopper"
    );
    let out = connect(&as_ada, None, &["share", &theirs, "grace.hopper"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("belongs to tim.malone"),
        "{}",
        stderr(&out)
    );
    assert!(!tags_of(&w.admin.ec2, &theirs)
        .await
        .contains_key("ShareWith"));

    // unshare removes the request
    let out = connect(&as_ada, None, &["unshare", &own]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tags = tags_of(&w.admin.ec2, &own).await;
    assert!(
        !tags.contains_key("ShareWith") && !tags.contains_key("ShareFor"),
        "{tags:?}"
    );
}

/// `replay` of one event with the clock at the event's time, built beside `connect` by
/// `cargo test --workspace`.
fn replay(moto: &Moto, event: &Value) -> Value {
    let at = event["time"].as_str().unwrap().to_owned();
    let replay = Path::new(CONNECT).with_file_name("replay");
    assert!(
        replay.exists(),
        "{} not found: run the workspace's tests (`scripts/test`), which build it",
        replay.display()
    );
    let mut child = Command::new(replay)
        .args(["--at", &at, "-"])
        .envs(moto.product_env(DEMO_ROLE))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        event.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap()
}

fn tag_change(instance: &str, time: &str, tags: &BTreeMap<String, String>) -> Value {
    serde_json::json!({
        "version": "0", "id": format!("share-{time}"), "detail-type": "Tag Change on Resource",
        "source": "aws.tag", "account": "123456789012", "time": time, "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1:123456789012:instance/{instance}")],
        "detail": {"changed-tag-keys": ["ShareWith", "ShareFor"], "service": "ec2",
                   "resource-type": "instance", "version": 3, "tags": tags}
    })
}

fn sweep(time: &str) -> Value {
    serde_json::json!({
        "version": "0", "id": format!("sweep-{time}"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": time, "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ssm-session-owner-TagSweepSchedule"],
        "detail": {}
    })
}

#[tokio::test]
async fn a_share_through_connect_and_replay_lets_the_guest_list_it_until_it_ends() {
    // GIVEN tim's instance
    let w = world().await;
    let tim = format!("{}:tim.malone", w.role_id);
    let instance = run_instances(
        &w.admin.ec2,
        1,
        &[("AwsUserId", &tim), ("CreatedBy", "tim.malone")],
    )
    .await[0]
        .clone();
    let as_tim = sign_in(&w.moto, &w.role_arn, "tim.malone").await;
    let as_ada = sign_in(&w.moto, &w.role_arn, "ada.lovelace").await;
    let region = ["--region", "us-east-1"];
    let ada_sees = || {
        listed(&connect(
            &as_ada,
            None,
            &["ls", "--json", region[0], region[1]],
        ))
    };

    // WHEN tim writes a request the product refuses (himself, tagged by hand: connect refuses
    // it before writing) THEN replay changes nothing and says why
    let now = chrono::Utc::now();
    let at = |d: chrono::Duration| (now + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    testkit::put_tag(&w.admin.ec2, &instance, "ShareWith", "tim.malone").await;
    let before = tags_of(&w.admin.ec2, &instance).await;
    let line = replay(
        &w.moto,
        &tag_change(&instance, &at(chrono::Duration::zero()), &before),
    );
    assert_eq!(line["skipped"][0]["code"], "ShareRefused", "{line}");
    assert_eq!(tags_of(&w.admin.ec2, &instance).await, before);
    assert!(ada_sees().is_empty());

    // WHEN tim shares it with ada for an hour, and the owner-tagger gets the tag change
    let out = connect(
        &as_tim,
        None,
        &["share", &instance, "ada.lovelace", "--for", "1h"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(ada_sees().is_empty(), "a request alone gives nothing");
    let line = replay(
        &w.moto,
        &tag_change(
            &instance,
            &at(chrono::Duration::zero()),
            &tags_of(&w.admin.ec2, &instance).await,
        ),
    );
    assert_eq!(line["outcome"], "changed", "{line}");

    // THEN ada lists it as tim's, until an hour from the request
    let rows = ada_sees();
    assert_eq!(rows[&instance]["access"], "guest", "{rows:?}");
    assert_eq!(rows[&instance]["owner"], "tim.malone");
    assert_eq!(
        rows[&instance]["shared_until"],
        at(chrono::Duration::hours(1))
    );

    // WHEN the sweep runs after the hour THEN the slots and the request are gone, and so is
    // the instance from ada's list
    let line = replay(&w.moto, &sweep(&at(chrono::Duration::minutes(75))));
    assert_eq!(line["outcome"], "changed", "{line}");
    let tags = tags_of(&w.admin.ec2, &instance).await;
    assert_eq!(
        tags.keys().cloned().collect::<Vec<_>>(),
        ["AwsUserId", "CreatedBy"],
        "{tags:?}"
    );
    assert!(ada_sees().is_empty());

    // WHEN tim shares again and then unshares THEN the owner-tagger ends it at once
    connect(&as_tim, None, &["share", &instance, "ada.lovelace"]);
    replay(
        &w.moto,
        &tag_change(
            &instance,
            &at(chrono::Duration::minutes(80)),
            &tags_of(&w.admin.ec2, &instance).await,
        ),
    );
    assert_eq!(ada_sees().len(), 1);
    let out = connect(&as_tim, None, &["unshare", &instance]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = replay(
        &w.moto,
        &tag_change(
            &instance,
            &at(chrono::Duration::minutes(81)),
            &tags_of(&w.admin.ec2, &instance).await,
        ),
    );
    assert_eq!(line["outcome"], "changed", "{line}");
    assert!(ada_sees().is_empty());
    assert_eq!(tags_of(&w.admin.ec2, &instance).await.len(), 2);
}
