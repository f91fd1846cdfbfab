//! The `doctor` binary against moto in server mode: one case per verdict.
//!
//! moto implements neither `ssm:DescribeInstanceInformation` nor `iam:SimulatePrincipalPolicy`,
//! so here those two checks report that they could not run and the verdicts are the product's
//! own evaluation; `doctor_mocked.rs` covers both with aws-smithy-mocks.

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
use shared::aws::{Clients, LoggingClients};
use shared::config::WriteMode;
use shared::domain::session_name::SessionName;
use shared::domain::statements::Scope;
use shared::ports::PolicyStore;
use testkit::{
    attach_end_user_policy, create_role, create_session_documents, role_policy_names,
    run_instances, tags_of, user, Moto, DEMO_POLICY_PREFIX, DEMO_ROLE,
};

/// moto with the users' role and the end-user policy attached.
struct Account {
    moto: Moto,
    admin: Clients,
    role_id: String,
}

impl Account {
    async fn new(static_rights: bool) -> Self {
        let moto = Moto::start().unwrap();
        let admin = Clients::new(&moto.sdk_config().await);
        let role_id = create_role(&admin.iam, DEMO_ROLE).await;
        attach_end_user_policy(&admin.iam, DEMO_ROLE, static_rights).await;
        Self {
            moto,
            admin,
            role_id,
        }
    }

    fn user_id(&self, name: &str) -> String {
        format!("{}:{name}", self.role_id)
    }

    async fn launch(&self, tags: &[(&str, &str)]) -> String {
        run_instances(&self.admin.ec2, 1, tags).await.remove(0)
    }

    /// Grant `names` in the managed store, as the session-policy function would.
    /// tim's instance, owned (both tags) and granted: his user id and the instance id.
    async fn tims_granted_instance(&self) -> (String, String) {
        let tim = self.user_id("tim.malone");
        let instance = self
            .launch(&[("CreatedBy", "tim.malone"), ("AwsUserId", &tim)])
            .await;
        self.grant(&["tim.malone"]).await;
        (tim, instance)
    }

    async fn grant(&self, names: &[&str]) {
        let store = ManagedStore::new(self.admin.iam.clone(), DEMO_POLICY_PREFIX, 10, 10);
        let desired: BTreeSet<SessionName> = names.iter().map(|n| user(n)).collect();
        store
            .converge(
                &testkit::resolved(DEMO_ROLE, &self.role_id),
                &Scope::All,
                &desired,
                WriteMode::Apply,
            )
            .await
            .unwrap();
    }

    fn doctor(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_doctor"))
            .args(args)
            .envs(self.moto.product_env(DEMO_ROLE))
            .envs(extra_env.iter().copied())
            .output()
            .unwrap()
    }

    /// `doctor --json USER INSTANCE`: the exit status and the report.
    fn diagnose(&self, name: &str, instance: &str, extra_env: &[(&str, &str)]) -> (i32, Value) {
        let output = self.doctor(&["--json", name, instance], extra_env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {:?}, stderr {stderr}", output.stdout));
        (output.status.code().unwrap(), report)
    }
}

/// The check of that name in a JSON report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn detail(report: &Value, name: &str) -> String {
    check(report, name)["detail"].as_str().unwrap().to_owned()
}

fn fix(report: &Value, name: &str) -> String {
    check(report, name)["fix"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_owner_is_allowed_and_the_doctor_writes_nothing() {
    // GIVEN tim's instance, tagged and granted in shard 01
    let account = Account::new(false).await;
    let tim = account.user_id("tim.malone");
    let instance = account
        .launch(&[("CreatedBy", "tim.malone"), ("AwsUserId", &tim)])
        .await;
    account.grant(&["tim.malone", "ada"]).await;
    let tags_before = tags_of(&account.admin.ec2, &instance).await;
    let policies_before = role_policy_names(&account.admin.iam, DEMO_ROLE).await;

    // WHEN the doctor is asked about tim on it
    let (status, report) = account.diagnose("tim.malone", &instance, &[]);

    // THEN every check the product can make passes and the verdict is allowed (exit 0)
    assert_eq!(status, 0, "{report:#}");
    // AND the subcommand spelling answers exactly as the older one
    let output = account.doctor(&["check", "tim.malone", &instance, "--json"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<Value>(&output.stdout).unwrap(),
        report
    );
    assert_eq!(report["verdict"], "allowed");
    assert_eq!(report["user"], "tim.malone");
    assert_eq!(report["instance"], instance.as_str());
    assert_eq!(
        report["actions"],
        serde_json::json!({"StartSession": "allowed", "TerminateSession": "allowed", "ResumeSession": "allowed"})
    );
    for name in [
        "user and role",
        "instance",
        "ownership tags",
        "end-user policy",
        "session rights",
    ] {
        assert_eq!(check(&report, name)["ok"], true, "{name}: {report:#}");
    }
    assert!(detail(&report, "user and role").contains(&format!("their aws:userid is {tim}")));
    // moto's role has IAM's default MaxSessionDuration, one hour
    assert!(detail(&report, "user and role").ends_with(
        "; its sessions last at most 1 h (MaxSessionDuration; MFA is the identity provider's)"
    ));
    assert_eq!(
        detail(&report, "ownership tags"),
        format!("AwsUserId={tim}: the instance is tim.malone's")
    );
    assert!(detail(&report, "end-user policy")
        .contains("allowed on the instance by SsmSessionOwnerEndUser/StartSessionOnOwnInstances"));
    assert!(detail(&report, "session rights").starts_with(
        "tim.malone's statement is in ssm-session-owner-shard-01 (attached, exact); capacity: 2 users in 1 of up to 7 shards"
    ), "{report:#}");
    // moto has neither API: both checks say they could not run, and why
    assert_eq!(check(&report, "reachability")["ok"], Value::Null);
    assert_eq!(check(&report, "IAM simulator")["ok"], Value::Null);
    assert!(
        detail(&report, "IAM simulator").contains("the verdicts are the product's own evaluation")
    );

    // AND nothing changed in the account
    assert_eq!(tags_of(&account.admin.ec2, &instance).await, tags_before);
    assert_eq!(
        role_policy_names(&account.admin.iam, DEMO_ROLE).await,
        policies_before
    );

    // AND the human form has one line per check and the verdict
    let output = account.doctor(&["tim.malone", &instance], &[]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("✓ 3. ownership tags"), "{text}");
    assert!(text.contains("? 6. reachability"), "{text}");
    // (no trail in this account: check 12 says launches wait for the sweep, and the fix)
    assert!(text.contains("✗ 12. launch events"), "{text}");
    assert!(text.ends_with(
        "verdict: allowed (StartSession on this instance: allowed; TerminateSession and ResumeSession of their own sessions: allowed and allowed)\n"
    ), "{text}");
}

#[tokio::test]
async fn every_ownership_problem_is_denied_with_its_reason_and_fix() {
    let account = Account::new(false).await;
    let tim = account.user_id("tim.malone");
    let owned = account
        .launch(&[("CreatedBy", "tim.malone"), ("AwsUserId", &tim)])
        .await;
    let untagged = account.launch(&[("CreatedBy", "tim.malone")]).await;
    let stale = account
        .launch(&[("AwsUserId", "AROAOLDROLEID0000001:tim.malone")])
        .await;
    let planted = account
        .launch(&[
            ("AwsUserId", &tim),
            ("awsuserid", &account.user_id("mallory")),
        ])
        .await;
    account.grant(&["tim.malone"]).await;

    // another user on tim's instance
    let (status, report) = account.diagnose("ada", &owned, &[]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(report["verdict"], "denied");
    assert_eq!(report["actions"]["StartSession"], "denied");
    assert_eq!(
        detail(&report, "ownership tags"),
        format!("AwsUserId={tim}: the instance belongs to tim.malone")
    );
    // the sharing policy's guard (sharing is on) denies it explicitly, and the fix points at the
    // ownership tags
    assert!(
        detail(&report, "end-user policy").ends_with(
            "explicitly denied by SsmSessionOwnerSharing/GuardSessionsOnNodesNeitherOwnedNorShared"
        ),
        "{report:#}"
    );
    assert!(fix(&report, "end-user policy").starts_with("see check 3"));
    // ada owns nothing, so per-user mode holds no statement for her
    assert!(detail(&report, "session rights").starts_with("no statement for ada"));

    // an instance the sweep has not tagged yet
    let (status, report) = account.diagnose("tim.malone", &untagged, &[]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(
        detail(&report, "ownership tags"),
        format!(
            "no AwsUserId tag; CreatedBy=tim.malone, so the tag sweep will write AwsUserId={tim}"
        )
    );
    assert!(check(&report, "ownership tags")["fix"]
        .as_str()
        .unwrap()
        .starts_with("wait for the tag sweep"));

    // a value written for an older id of the role
    let (status, report) = account.diagnose("tim.malone", &stale, &[]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(
        detail(&report, "ownership tags"),
        format!(
            "AwsUserId=AROAOLDROLEID0000001:tim.malone is stale: it names role id AROAOLDROLEID0000001, not the users' role's current id {} (the role was re-created); it is tim.malone's under an older id of the role, and the tag sweep rewrites it to {tim}",
            account.role_id
        )
    );

    // a case variant planted beside the real tag: IAM's answer is undefined, so not allowed
    let (status, report) = account.diagnose("tim.malone", &planted, &[]);
    assert_eq!(status, 1, "{report:#}");
    let ownership = detail(&report, "ownership tags");
    assert!(
        ownership
            .contains("case variants of the ownership keys are present (tampering): awsuserid="),
        "{ownership}"
    );
    assert_eq!(report["actions"]["StartSession"], "unknown");
    assert_eq!(check(&report, "end-user policy")["ok"], Value::Null);
    assert!(detail(&report, "end-user policy").contains("more than one letter case"));
}

#[tokio::test]
async fn terminated_missing_and_hostile_are_told_apart() {
    let account = Account::new(false).await;
    let tim = account.user_id("tim.malone");
    let gone = account
        .launch(&[("CreatedBy", "tim.malone"), ("AwsUserId", &tim)])
        .await;
    account
        .admin
        .ec2
        .terminate_instances()
        .instance_ids(&gone)
        .send()
        .await
        .unwrap();

    let (status, report) = account.diagnose("tim.malone", &gone, &[]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(check(&report, "instance")["ok"], false);
    assert_eq!(
        detail(&report, "instance"),
        format!("{gone} is terminated in us-east-1: Session Manager cannot reach it")
    );
    assert_eq!(report["actions"]["StartSession"], "denied");
    assert_eq!(
        detail(&report, "ownership tags"),
        "not checked: the instance is terminated"
    );

    let (status, report) = account.diagnose("tim.malone", "i-0123456789abcdef0", &[]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(
        detail(&report, "instance"),
        "no instance i-0123456789abcdef0 in us-east-1 or any covered region"
    );

    // A hostile name is a usage error: exit 2, the reason, no report
    for (args, reason) in [
        (vec!["tim*", gone.as_str()], "doctor: USER \"tim*\" can never be a user of the role: username contains '*' at character 4"),
        (vec!["tim.malone", "i-nothex"], "doctor: \"i-nothex\" is not an EC2 instance id"),
        (vec!["tim.malone"], "doctor: USER and INSTANCE_ID are required"),
        (vec!["tim.malone", gone.as_str(), "--region", "us-east-1\n"], "doctor: \"us-east-1\\n\" is not a region name"),
        (vec!["--verify", "--region", "*"], "doctor: \"*\" is not a region name"),
        (vec!["--verify", "tim"], "doctor: --verify takes no USER or INSTANCE_ID"),
    ] {
        let output = account.doctor(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with(reason), "{stderr}");
        assert!(output.stdout.is_empty());
    }

    // A configuration error is exit 2 as well
    let output = account.doctor(
        &["tim.malone", &gone],
        &[("SESSION_ROLE_NAME", "NoSuchRole")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr)
        .starts_with("doctor: the users' role NoSuchRole does not exist"));
}

#[tokio::test]
async fn static_mode_needs_the_static_statement() {
    // GIVEN static session rights, with the end-user policy as the template ships it for them
    let account = Account::new(true).await;
    let tim = account.user_id("tim.malone");
    let instance = account
        .launch(&[("CreatedBy", "tim.malone"), ("AwsUserId", &tim)])
        .await;

    // WHEN the doctor runs in static mode
    let (status, report) =
        account.diagnose("tim.malone", &instance, &[("SESSION_RIGHTS", "static")]);

    // THEN the static statement gives the rights, with no per-user state at all
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(
        detail(&report, "session rights"),
        "static mode: ending and resuming their own sessions is allowed by SsmSessionOwnerEndUser/EndOwnSessions"
    );
    assert!(role_policy_names(&account.admin.iam, DEMO_ROLE)
        .await
        .is_empty());

    // AND per-user mode on the same account finds no statement: StartSession still works, ending
    // sessions does not
    let (status, report) = account.diagnose("tim.malone", &instance, &[]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(
        check(&report, "session rights")["ok"],
        true,
        "EndOwnSessions still allows: {report:#}"
    );
}

impl Account {
    /// `doctor audit --json`, checked to answer as the older `doctor --audit --json`: the exit
    /// status and the report.
    fn audit(&self) -> (i32, Value) {
        let read = |args: &[&str]| {
            let output = self.doctor(args, &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let report: Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|e| panic!("{e}: stdout {:?}, stderr {stderr}", output.stdout));
            (output.status.code().unwrap(), report)
        };
        let answer = read(&["audit", "--json"]);
        assert_eq!(read(&["--audit", "--json"]), answer);
        answer
    }

    /// An inline policy of one statement, or of a list of them.
    async fn put_inline(&self, name: &str, statements: Value) {
        let statements = match statements {
            Value::Array(list) => list,
            one => vec![one],
        };
        let document = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        self.admin
            .iam
            .put_role_policy()
            .role_name(DEMO_ROLE)
            .policy_name(name)
            .policy_document(document.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Plant what real accounts have: a broad session grant, an Auto Scaling tag permission, and
    /// a trust policy that lets the whole account assume the role with a name of its choosing.
    async fn plant_problems(&self) {
        self.put_inline(
            "PortalBroadSsm",
            serde_json::json!({"Sid": "AnySession", "Effect": "Allow", "Action": "ssm:StartSession", "Resource": "*"}),
        )
        .await;
        self.put_inline(
            "PortalAutoScaling",
            serde_json::json!({"Sid": "Tags", "Effect": "Allow", "Action": "autoscaling:CreateOrUpdateTags", "Resource": "*"}),
        )
        .await;
        testkit::trust_the_account_to_assume(&self.admin.iam, DEMO_ROLE).await;
    }
}

/// The findings' `what`, by path.
fn findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["what"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_audit_reports_the_shipped_boundary_once_it_is_set_on_the_role() {
    // GIVEN the demo account, and the template's boundary created and set on the users' role
    let account = Account::new(false).await;
    let (_, before) = account.audit();
    assert_eq!(before["permissions_boundary"], Value::Null, "{before:#}");
    assert_eq!(before["isolation_can_be_guaranteed"], true, "{before:#}");
    let boundary = account
        .admin
        .iam
        .create_policy()
        .policy_name("SsmSessionOwnerUsersBoundary")
        .policy_document(testkit::shipped_policy("UsersBoundary").to_string())
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    account
        .admin
        .iam
        .put_role_permissions_boundary()
        .role_name(DEMO_ROLE)
        .permissions_boundary(&boundary)
        .send()
        .await
        .unwrap();

    // WHEN the audit runs THEN it names the boundary, and still finds nothing
    let (status, report) = account.audit();
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["permissions_boundary"], boundary.as_str());
    assert_eq!(report["findings"], serde_json::json!([]));
}

#[tokio::test]
async fn the_audit_passes_the_shipped_account_and_finds_each_planted_problem() {
    // GIVEN the demo account: the users' role with the shipped end-user policy (guards on)
    let guarded = Account::new(false).await;

    // WHEN the audit runs THEN it finds nothing, says which evaluator answered, and exits 0
    let (status, report) = guarded.audit();
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["findings"], serde_json::json!([]));
    assert!(report["questions"].as_u64().unwrap() >= 50, "{report:#}");
    // moto has no policy simulator
    assert!(
        report["evaluated_by"]
            .as_str()
            .unwrap()
            .starts_with("the product's own evaluation (IAM's policy simulator did not answer"),
        "{report:#}"
    );

    // GIVEN the same problems planted on it: the guards hold, only the trust policy is found
    guarded.plant_problems().await;
    let (status, report) = guarded.audit();
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(
        findings(&report),
        [(
            "trust".to_owned(),
            "statement Ci lets arn:aws:iam::123456789012:root call sts:AssumeRole with a session name of their choosing".to_owned()
        )]
    );

    // GIVEN an account whose end-user policy has the guards off, and the same problems
    let unguarded = Account::new(false).await;
    let mut document = testkit::shipped_end_user_policy();
    document["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| !s["Sid"].as_str().unwrap_or("").starts_with("Guard"));
    unguarded
        .put_inline(
            "EndUserWithoutGuards",
            serde_json::json!(document["Statement"]),
        )
        .await;
    let end_user_arn = format!(
        "arn:aws:iam::123456789012:policy/{}",
        testkit::END_USER_POLICY
    );
    let guards_arn = format!("arn:aws:iam::123456789012:policy/{}", testkit::GUARD_POLICY);
    let sharing_arn = format!(
        "arn:aws:iam::123456789012:policy/{}",
        testkit::SHARING_POLICY
    );
    for arn in [&end_user_arn, &guards_arn, &sharing_arn] {
        unguarded
            .admin
            .iam
            .detach_role_policy()
            .role_name(DEMO_ROLE)
            .policy_arn(arn)
            .send()
            .await
            .unwrap();
    }
    unguarded.plant_problems().await;

    // WHEN the audit runs
    let (status, report) = unguarded.audit();

    // THEN it finds each planted problem, names the policy and statement, and exits 1
    assert_eq!(status, 1, "{report:#}");
    let found = findings(&report);
    for expected in [
        ("instance", "ssm:StartSession on another user's instance"),
        ("instance", "ssm:StartSession on an untagged instance"),
        (
            "ownership tags",
            "autoscaling:CreateOrUpdateTags writing AwsUserId",
        ),
        (
            "ownership tags",
            "autoscaling:CreateOrUpdateTags writing CreatedBy",
        ),
    ] {
        assert!(
            found.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not in {found:#?}"
        );
    }
    assert!(found.iter().any(|(path, _)| path == "trust"), "{found:#?}");
    let start = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["what"] == "ssm:StartSession on another user's instance")
        .unwrap();
    assert_eq!(
        start["allowed_by"],
        serde_json::json!(["PortalBroadSsm/AnySession"])
    );
    assert!(start["fix"].as_str().unwrap().contains("GuardDenies=true"));
    // and nothing it was not given: no terminate of others' sessions, no product change
    assert!(
        !found
            .iter()
            .any(|(path, _)| path == "the product" || path == "session"),
        "{found:#?}"
    );
}

#[tokio::test]
async fn the_product_shells_logging_targets_are_checked_where_moto_has_them() {
    // GIVEN tim's instance, the product's shell document (as template.yaml creates it) logging to
    // a bucket that does not exist and an unencrypted log group, with a KMS key
    let account = Account::new(true).await;
    let tim = account.user_id("tim.malone");
    let instance = account
        .launch(&[("CreatedBy", "tim.malone"), ("AwsUserId", &tim)])
        .await;
    let sdk = account.moto.sdk_config().await;
    let logging = LoggingClients::new(&sdk);
    let key = logging
        .kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .and_then(|m| m.arn())
        .unwrap()
        .to_owned();
    logging
        .logs
        .create_log_group()
        .log_group_name("/research/ssm")
        .send()
        .await
        .unwrap();
    let key_setting = format!("SessionKmsKeyArn={key}");
    let documents = create_session_documents(
        &aws_sdk_ssm::Client::new(&sdk),
        &[
            "ShellSessions=product",
            "SessionLogBucket=research-session-logs",
            "SessionLogGroup=/research/ssm",
            &key_setting,
        ],
    )
    .await;
    assert_eq!(
        documents,
        ["SsmSessionOwner-Shell", "SsmSessionOwner-PortForwarding"]
    );
    let product_shell = [("SHELL_SESSIONS", "product")];

    // WHEN the doctor runs
    let (_, report) = account.diagnose("tim.malone", &instance, &product_shell);

    // THEN check 10 names the missing bucket and the unencrypted log group, and the fix
    let logged = check(&report, "session logging");
    assert_eq!(logged["ok"], false, "{report:#}");
    assert!(detail(&report, "session logging").starts_with(&format!(
        "shell sessions with SsmSessionOwner-Shell in us-east-1 are logged to s3://research-session-logs/ and log group /research/ssm, encrypted with KMS key {key}, idle timeout 20 min, maximum duration none;"
    )));
    assert!(detail(&report, "session logging").ends_with(
        "but S3 bucket research-session-logs does not exist; log group /research/ssm has no KMS key, and SsmSessionOwner-Shell requires encrypted logs, so sessions fail to start"
    ), "{report:#}");
    assert!(fix(&report, "session logging").starts_with("create them"));

    // WHEN the bucket exists and the log group is encrypted with the key
    logging
        .s3
        .create_bucket()
        .bucket("research-session-logs")
        .send()
        .await
        .unwrap();
    logging
        .logs
        .delete_log_group()
        .log_group_name("/research/ssm")
        .send()
        .await
        .unwrap();
    logging
        .logs
        .create_log_group()
        .log_group_name("/research/ssm")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap();
    let (_, report) = account.diagnose("tim.malone", &instance, &product_shell);

    // THEN check 10 passes, and check 9 reads each document moto holds
    assert_eq!(check(&report, "session logging")["ok"], true, "{report:#}");
    assert!(
        detail(&report, "session kinds").contains("port forwarding: allowed with SsmSessionOwner-PortForwarding, which accepts ports matching"),
        "{report:#}"
    );
}

#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_doctor"), "doctor");
}

#[tokio::test]
async fn with_stack_the_doctor_configures_itself_from_the_deployed_stack() {
    // GIVEN tim's granted instance, and a stack shaped like the product's whose functions carry
    // the environment template.yaml renders (one covered region here)
    let account = Account::new(false).await;
    let (tim, instance) = account.tims_granted_instance().await;
    let mut environment = testkit::deployed_environment("defaults");
    environment.insert("REGIONS".into(), testkit::REGION.into());
    testkit::create_product_stack(
        &account.moto.sdk_config().await,
        "research-access",
        &environment,
    )
    .await;

    // WHEN the doctor runs with --stack and only the SDK's environment
    let output = Command::new(env!("CARGO_BIN_EXE_doctor"))
        .args([
            "--stack",
            "research-access",
            "--json",
            "tim.malone",
            &instance,
        ])
        .env_clear()
        .envs(account.moto.env())
        .output()
        .unwrap();

    // THEN it examines the role and the session kinds the stack deployed, and tim is allowed
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("doctor: configured from stack research-access"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "allowed", "{report:#}");
    assert!(detail(&report, "user and role").contains(&format!("their aws:userid is {tim}")));
}

#[tokio::test]
async fn the_launch_events_check_passes_only_where_a_logging_trail_delivers_the_regions_launches() {
    // GIVEN tim's instance in an account without a trail
    let account = Account::new(false).await;
    let (_, instance) = account.tims_granted_instance().await;
    // WHEN the doctor is asked THEN check 12 fails, says why, and names the fix
    let (_, report) = account.diagnose("tim.malone", &instance, &[]);
    assert_eq!(check(&report, "launch events")["ok"], false, "{report:#}");
    assert!(detail(&report, "launch events")
        .contains("no logging trail delivers us-east-1's write management events to EventBridge"));
    assert!(fix(&report, "launch events").contains("CreateTrail=true"));

    // WHEN a multi-region trail logs management events (CloudTrail's default selectors)
    let trails = &testkit::create_multi_region_trail(
        &account.moto.sdk_config().await,
        "org-trail",
        "org-trail-logs",
    )
    .await;
    trails
        .start_logging()
        .name("org-trail")
        .send()
        .await
        .unwrap();
    // THEN it passes, and the verdict is unchanged
    let (status, report) = account.diagnose("tim.malone", &instance, &[]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(check(&report, "launch events")["ok"], true, "{report:#}");
    assert!(detail(&report, "launch events").contains("launches are tagged within seconds"));
}
