//! One deployment in its home region (us-east-1) covering instances in other regions, against
//! moto, which serves every region on one endpoint: launches, late tags, the sweep, grants and
//! revokes for one user spread over two regions.

use crate::common::ROLE;
use serde_json::Value;
use shared::app::owner_tagging::OwnerTagger;
use shared::app::session_rights::SessionPolicies;
use shared::app::AnyStore;
use shared::ports::InRegion;
use shared::{Config, Status};
use testkit::{granted_users, rewrite, run_instances, sample_event, tags_of, CountedMoto};

const WEST: &str = "us-west-2";
const EU: &str = "eu-west-1";

fn config(w: &CountedMoto) -> Config {
    config_with(w, false)
}

/// `single_writer`: as the template deploys the session-policy function.
fn config_with(w: &CountedMoto, single_writer: bool) -> Config {
    let (role_id, regions) = (w.role_id.to_string(), format!("us-east-1,{WEST},{EU}"));
    Config::for_tests(&[
        ("SESSION_ROLE_NAME", ROLE),
        ("SESSION_ROLE_ID", &role_id),
        ("END_SESSIONS_ON_TERMINATE", "false"),
        ("REGIONS", &regions),
        (
            "SINGLE_WRITER",
            if single_writer { "true" } else { "false" },
        ),
    ])
}

/// A sample event, as forwarded from `region` (forwarded events keep their region).
fn in_region(sample: &str, region: &str, replacements: &[(&str, &str)]) -> Value {
    let mut all = vec![(
        "\"region\": \"us-east-1\"",
        format!("\"region\": \"{region}\""),
    )];
    all.extend(replacements.iter().map(|(a, b)| (*a, b.to_string())));
    let pairs: Vec<(&str, &str)> = all.iter().map(|(a, b)| (*a, b.as_str())).collect();
    rewrite(&sample_event(sample), &pairs)
}

/// The session-policy use case on `w`'s counted clients.
fn policies_on(
    w: &CountedMoto,
    config: Config,
) -> SessionPolicies<
    aws_sdk_ec2::Client,
    aws_sdk_iam::Client,
    aws_sdk_ssm::Client,
    AnyStore<aws_sdk_iam::Client>,
> {
    let store = AnyStore::from_config(w.clients.iam.clone(), &config);
    SessionPolicies::new(
        config,
        w.clients.ec2.clone(),
        w.clients.iam.clone(),
        w.clients.ssm.clone(),
        store,
    )
}

/// The tag-change event for user id `value` on `instance`, from `region`.
fn user_id_tagged(region: &str, instance: &str, value: &str) -> Value {
    in_region(
        "tag-change-user-id-added.json",
        region,
        &[
            ("i-0a1b2c3d4e5f60001", instance),
            ("AROAEXAMPLEROLEID1234:tim.malone", value),
        ],
    )
}

/// Terminates `instance` in `region` (moto), and returns its state-change event from there.
async fn terminate(ec2: &aws_sdk_ec2::Client, region: &str, instance: &str) -> Value {
    ec2.terminate_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    in_region(
        "state-change-terminated.json",
        region,
        &[("i-0a1b2c3d4e5f60006", instance)],
    )
}

#[tokio::test]
async fn one_users_instances_in_two_regions_are_tagged_there_and_keep_their_rights_until_the_last_goes(
) {
    // GIVEN the home stack in us-east-1, and ada's instances in us-west-2 and eu-west-1
    let w = CountedMoto::start(ROLE).await;
    let (west, eu) = (w.admin.ec2.in_region(WEST), w.admin.ec2.in_region(EU));
    let in_west = run_instances(&west, 2, &[("CreatedBy", "ada.lovelace")]).await;
    let in_eu = run_instances(&eu, 1, &[("CreatedBy", "ada.lovelace")])
        .await
        .remove(0);
    let tagger = OwnerTagger::new(config(&w), w.clients.ec2.clone(), w.clients.iam.clone());
    let policies = policies_on(&w, config(&w));
    let value = format!("{}:ada.lovelace", w.role_id);

    // WHEN the us-west-2 launch is forwarded home, and the sweep runs
    let launch = in_region(
        "run-instances-created-by.json",
        WEST,
        &[
            ("i-0a1b2c3d4e5f60001", &in_west[0]),
            ("i-0a1b2c3d4e5f60002", &in_west[1]),
            ("tim.malone", "ada.lovelace"),
        ],
    );
    let tagged = tagger.handle(launch).await.unwrap();
    let swept = tagger
        .handle(rewrite(&sample_event("scheduled-tag-sweep.json"), &[]))
        .await
        .unwrap();

    // THEN the launch was tagged in us-west-2, where the instances are, and the sweep found
    // the eu-west-1 one no event reported
    assert_eq!(tagged.status, Status::Changed, "{tagged:?}");
    for id in &in_west {
        assert_eq!(tags_of(&west, id).await["AwsUserId"], value);
    }
    assert_eq!(swept.status, Status::Changed, "{swept:?}");
    assert_eq!(tags_of(&eu, &in_eu).await["AwsUserId"], value);
    // (and nothing was written on those ids in the home region)
    assert!(tags_of(&w.admin.ec2, &in_west[0]).await.is_empty());

    // WHEN ada's eu-west-1 tag change arrives THEN she is granted
    let grant = policies
        .handle(user_id_tagged(EU, &in_eu, &value))
        .await
        .unwrap();
    assert_eq!(grant.status, Status::Changed, "{grant:?}");
    assert!(granted_users(&w.admin.iam, ROLE)
        .await
        .contains_key("ada.lovelace"));

    // WHEN both us-west-2 instances terminate THEN she keeps her rights: eu-west-1 still runs
    for id in &in_west {
        let revoke = policies
            .handle(terminate(&west, WEST, id).await)
            .await
            .unwrap();
        assert_eq!(revoke.status, Status::Unchanged, "{revoke:?}");
    }
    let reconcile = policies
        .handle(rewrite(&sample_event("scheduled-reconcile.json"), &[]))
        .await
        .unwrap();
    assert_ne!(reconcile.status, Status::Changed, "{reconcile:?}");
    assert!(granted_users(&w.admin.iam, ROLE)
        .await
        .contains_key("ada.lovelace"));

    // WHEN the last one, in eu-west-1, terminates THEN the statement goes
    let revoke = policies
        .handle(terminate(&eu, EU, &in_eu).await)
        .await
        .unwrap();
    assert_eq!(revoke.status, Status::Changed, "{revoke:?}");
    assert!(granted_users(&w.admin.iam, ROLE).await.is_empty());
}

#[tokio::test]
async fn a_region_that_cannot_be_read_fails_retryable_and_revokes_nobody() {
    // GIVEN ada with an instance in eu-west-1, granted, and a proxy in front of moto
    let w = CountedMoto::start(ROLE).await;
    let eu = w.admin.ec2.in_region(EU);
    let value = format!("{}:ada.lovelace", w.role_id);
    run_instances(&eu, 1, &[("AwsUserId", &value)]).await;
    let proxy =
        testkit::fault_proxy::FaultProxy::start(w.moto.port(), std::sync::Arc::new(|_, _| None))
            .await
            .unwrap();
    let clients = shared::aws::Clients::new(&w.moto.sdk_config_at(&proxy.endpoint()).await);
    let config = config(&w);
    let store = AnyStore::from_config(clients.iam.clone(), &config);
    let policies = SessionPolicies::new(config, clients.ec2, clients.iam, clients.ssm, store);
    let reconcile = || rewrite(&sample_event("scheduled-reconcile.json"), &[]);
    policies.handle(reconcile()).await.unwrap();
    assert!(granted_users(&w.admin.iam, ROLE)
        .await
        .contains_key("ada.lovelace"));

    // WHEN eu-west-1 cannot be read (every request throttled, past the SDK's retries)
    proxy.block_region(Some(EU));
    let err = policies.handle(reconcile()).await.unwrap_err();

    // THEN the reconcile fails retryable, naming the region, and ada keeps her statement
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .starts_with("region eu-west-1 cannot be read"),
        "{err}"
    );
    assert!(granted_users(&w.admin.iam, ROLE)
        .await
        .contains_key("ada.lovelace"));

    // AND once the region answers again, the reconcile converges
    proxy.block_region(None);
    let ok = policies.handle(reconcile()).await.unwrap();
    assert_ne!(ok.status, Status::Ignored);
    assert!(granted_users(&w.admin.iam, ROLE)
        .await
        .contains_key("ada.lovelace"));
}

#[tokio::test]
async fn as_deployed_a_grant_reads_its_region_once_and_a_revoke_each_covered_region_once() {
    // GIVEN the function as the template deploys it (the only writer), covering three regions,
    // and ada's instance in eu-west-1
    let w = CountedMoto::start(ROLE).await;
    let eu = w.admin.ec2.in_region(EU);
    let value = format!("{}:ada.lovelace", w.role_id);
    let instance = run_instances(&eu, 1, &[("AwsUserId", &value)])
        .await
        .remove(0);
    let policies = policies_on(&w, config_with(&w, true));

    // WHEN its tag change arrives
    w.counter.take();
    let grant = policies
        .handle(user_id_tagged(EU, &instance, &value))
        .await
        .unwrap();
    // THEN she is granted in moto, after one read of eu-west-1 and no verifying read
    assert_eq!(grant.status, Status::Changed, "{grant:?}");
    assert!(granted_users(&w.admin.iam, ROLE)
        .await
        .contains_key("ada.lovelace"));
    let calls = w.counter.take();
    assert_eq!(calls.get("ec2:DescribeInstances"), Some(&1), "{calls:?}");

    // WHEN it terminates
    let revoke = policies
        .handle(terminate(&eu, EU, &instance).await)
        .await
        .unwrap();
    // THEN the statement is gone from moto, after the instance's own read and one read of each
    // of the three covered regions
    assert_eq!(revoke.status, Status::Changed, "{revoke:?}");
    assert!(granted_users(&w.admin.iam, ROLE).await.is_empty());
    let calls = w.counter.take();
    assert_eq!(
        calls.get("ec2:DescribeInstances"),
        Some(&(1 + 3)),
        "{calls:?}"
    );
    assert!(calls.values().sum::<u64>() <= 8 + 3, "{calls:?}");
}

/// `scripts/package-org` against `moto`, with `args`: (exit code, JSON lines, standard error).
fn package_org(moto: &testkit::Moto, args: &[&str]) -> (i32, Vec<Value>, String) {
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new(repository.join(".venv/bin/python"))
        .arg(repository.join("scripts/package_org.py"))
        .args(args)
        .envs(moto.env())
        .output()
        .expect("python runs (scripts/test installs .venv)");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), lines, stderr)
}

#[tokio::test]
async fn package_org_puts_each_functions_code_in_every_regions_bucket_and_writes_a_plain_template()
{
    // GIVEN moto, and the two functions' binaries as cargo lambda lays them out
    let moto = testkit::Moto::start().expect("moto starts");
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("package-org");
    for crate_name in ["owner-tagger", "session-policy"] {
        std::fs::create_dir_all(tmp.join(crate_name)).unwrap();
        std::fs::write(
            tmp.join(crate_name).join("bootstrap"),
            format!("{crate_name} binary"),
        )
        .unwrap();
    }
    let output = tmp.join("org-template.json");
    let args = [
        "--bucket-prefix",
        "acme-ssm-code",
        "--regions",
        &format!("us-east-1,{EU}"),
        "--org-id",
        "o-abcdefghij",
        "--artifacts",
        tmp.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    // WHEN packaged for two regions
    let (code, lines, stderr) = package_org(&moto, &args);
    assert_eq!(code, 0, "{stderr}");
    // THEN each region has its own bucket, in that region, holding both functions' zips
    let sdk = moto.sdk_config().await;
    let s3 = |region: &str| {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .region(aws_config::Region::new(region.to_owned()))
                .build(),
        )
    };
    let template: Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let mut keys = Vec::new();
    for (logical, crate_name) in [
        ("OwnerTaggerFunction", "owner-tagger"),
        ("SessionPolicyFunction", "session-policy"),
    ] {
        let code = &template["Resources"][logical]["Properties"]["Code"];
        // AND the template takes each function's code from the bucket of the region it is
        // deployed in, by a key that names the zip's content
        assert_eq!(
            code["S3Bucket"],
            serde_json::json!({"Fn::Sub": "${CodeBucketPrefix}-${AWS::Region}"})
        );
        let key = code["S3Key"].as_str().unwrap().to_owned();
        assert!(
            key.starts_with(&format!("functions/{crate_name}-")) && key.ends_with(".zip"),
            "{key}"
        );
        keys.push(key);
    }
    for region in ["us-east-1", EU] {
        let bucket = format!("acme-ssm-code-{region}");
        let client = s3(region);
        let location = client
            .get_bucket_location()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        // us-east-1 is S3's "no constraint"
        let expected = if region == "us-east-1" { "" } else { region };
        assert_eq!(
            location.location_constraint().map_or("", |c| c.as_str()),
            expected,
            "{bucket}"
        );
        let listed = client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix("functions/")
            .send()
            .await
            .unwrap();
        let mut held: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        held.sort();
        assert_eq!(held, keys, "{bucket}");
        // AND public access is blocked, and the policy lets the organisation read over TLS
        let block = client
            .get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let block = block.public_access_block_configuration().unwrap();
        assert_eq!(
            (
                block.block_public_acls(),
                block.ignore_public_acls(),
                block.block_public_policy(),
                block.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true))
        );
        let policy = client
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
        assert_eq!(
            policy["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
            "o-abcdefghij"
        );
        assert_eq!(policy["Statement"][0]["Action"], "s3:GetObject");
        assert_eq!(policy["Statement"][1]["Effect"], "Deny");
    }
    // AND the template has no transform, is in the home bucket, and its URL is printed
    assert!(template.get("Transform").is_none());
    let last = lines.last().unwrap();
    let url = last["template_url"].as_str().unwrap();
    let template_key = url.rsplit_once(".amazonaws.com/").unwrap().1;
    assert!(
        url.starts_with("https://acme-ssm-code-us-east-1.s3.us-east-1.amazonaws.com/templates/"),
        "{url}"
    );
    let listed = s3("us-east-1")
        .list_objects_v2()
        .bucket("acme-ssm-code-us-east-1")
        .prefix(template_key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1, "{template_key}");
    assert_eq!(
        last["bytes"].as_u64(),
        Some(std::fs::metadata(&output).unwrap().len())
    );
    // AND cfn-lint, which CloudFormation's own team writes, passes it
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lint = std::process::Command::new(repository.join(".venv/bin/cfn-lint"))
        .arg(&output)
        .args(["--parameters", "UsersRoleName=Okta-ServiceWorkbenchUser"])
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    // WHEN run again with the same code THEN nothing is uploaded again
    let (code, again, stderr) = package_org(&moto, &args);
    assert_eq!(code, 0, "{stderr}");
    let actions: Vec<&str> = again.iter().filter_map(|l| l["action"].as_str()).collect();
    assert_eq!(actions, ["present"; 5], "{again:?}");

    // AND a bucket prefix S3 cannot take, or a region that is not one, is a usage error that
    // creates nothing
    for bad in [
        ["--bucket-prefix", "Acme_Code"],
        ["--regions", "us-east-1,mars"],
    ] {
        let mut args = args.to_vec();
        let at = args.iter().position(|a| *a == bad[0]).unwrap();
        args[at + 1] = bad[1];
        let (code, lines, stderr) = package_org(&moto, &args);
        assert_eq!((code, lines.len()), (2, 0), "{stderr}");
        assert!(stderr.contains(bad[1]), "{stderr}");
    }
    let buckets = s3("us-east-1").list_buckets().send().await.unwrap();
    assert_eq!(buckets.buckets().len(), 2);
}
