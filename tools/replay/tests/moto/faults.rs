//! Faults between the functions and AWS: a fault-injecting proxy on loopback in front of moto,
//! and the real `replay` binary (the same handler code the Lambdas run) talking through it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;
use shared::aws::Clients;
use testkit::fault_proxy::{every_nth, Fault, FaultProxy};
use testkit::{granted_users, seed_samples, tags_of, write_samples, Moto, DEMO_ROLE};

/// Run replay through `endpoint` in a blocking thread, so the in-process proxy keeps serving.
async fn replay(moto: &Moto, endpoint: &str, files: &[PathBuf]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_replay"));
    command
        .args(files)
        .envs(moto.product_env(DEMO_ROLE))
        .env("AWS_ENDPOINT_URL", endpoint);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn lines(output: &Output) -> BTreeMap<String, Value> {
    testkit::replay_lines(&output.stdout)
}

fn total_calls(output: &Output) -> u64 {
    lines(output)
        .values()
        .flat_map(|l| l["calls"].as_object().cloned().unwrap_or_default())
        .map(|(_, n)| n.as_u64().unwrap())
        .sum()
}

struct Seeded {
    moto: Moto,
    admin: Clients,
    replacements: Vec<(String, String)>,
    files: Vec<PathBuf>,
    dir: PathBuf,
}

async fn seeded() -> Seeded {
    let moto = Moto::start().unwrap();
    let admin = Clients::new(&moto.sdk_config().await);
    let (_, replacements) = seed_samples(&admin.ec2, &admin.iam).await;
    let dir = std::env::temp_dir().join(format!("faults-{}-{}", std::process::id(), moto.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = write_samples(&dir, &replacements).unwrap();
    Seeded {
        moto,
        admin,
        replacements,
        files,
        dir,
    }
}

impl Seeded {
    /// The end state that matters: every sample instance's tags, and who is granted by what.
    async fn state(&self) -> (Vec<BTreeMap<String, String>>, BTreeMap<String, String>) {
        // moto makes a new role id each time; compare states with it written as <role-id>, and a
        // share's expiry without its time.
        let role_id = &self.replacements[0].1;
        let mut tags = Vec::new();
        for (sample, id) in &self.replacements {
            if sample.starts_with("i-") {
                let found = tags_of(&self.admin.ec2, id).await;
                tags.push(
                    found
                        .into_iter()
                        .map(|(k, v)| {
                            let v = v.replace(role_id.as_str(), "<role-id>");
                            // A share's expiry is the replay's clock plus its duration.
                            match v.split_once(';') {
                                Some((_, owner)) if k.ends_with("SharedUntil") => {
                                    (k, format!("<now + ShareFor>;{owner}"))
                                }
                                _ => (k, v),
                            }
                        })
                        .collect(),
                );
            }
        }
        (tags, granted_users(&self.admin.iam, DEMO_ROLE).await)
    }
}

impl Drop for Seeded {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The state a fault-free replay of every sample reaches.
async fn reference_state() -> (Vec<BTreeMap<String, String>>, BTreeMap<String, String>) {
    let s = seeded().await;
    let output = replay(&s.moto, &s.moto.endpoint(), &s.files).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    s.state().await
}

#[tokio::test]
async fn throttling_and_503s_on_every_third_request_converge_through_the_sdk_retries() {
    // GIVEN a proxy that throttles or fails every third request
    let s = seeded().await;
    let flip = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let plan: testkit::fault_proxy::FaultPlan = Arc::new(move |index, _| {
        ((index + 1) % 3 == 0).then(|| {
            if flip.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                Fault::Throttle
            } else {
                Fault::Unavailable
            }
        })
    });
    let proxy = FaultProxy::start(s.moto.port(), plan).await.unwrap();

    // WHEN every sample is replayed through it
    let output = replay(&s.moto, &proxy.endpoint(), &s.files).await;

    // THEN every event succeeds, the SDK's retries absorbed the faults, and the end state is
    // the fault-free one
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let faults = proxy.faults.load(Ordering::SeqCst);
    assert!(faults >= 5, "only {faults} faults injected");
    // The interceptor counts every attempt on the wire: exactly what the proxy saw.
    assert_eq!(
        total_calls(&output),
        proxy.requests.load(Ordering::SeqCst) as u64
    );
    assert_eq!(s.state().await, reference_state().await);
}

#[tokio::test]
async fn an_endpoint_down_mid_run_fails_retryably_and_a_replay_then_converges() {
    // GIVEN a proxy that serves the first 6 requests and then refuses every connection
    let s = seeded().await;
    let proxy = FaultProxy::start(
        s.moto.port(),
        Arc::new(|index, _| (index >= 6).then_some(Fault::Drop)),
    )
    .await
    .unwrap();

    // WHEN every sample is replayed
    let output = replay(&s.moto, &proxy.endpoint(), &s.files).await;

    // THEN the run fails, every failure is retryable and says why, and nothing panicked
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<Value> = lines(&output)
        .into_values()
        .filter(|l| l["outcome"] == "error")
        .collect();
    assert!(!errors.is_empty());
    for error in &errors {
        assert_eq!(error["error_type"], "Retryable", "{error}");
    }

    // WHEN the endpoint is back and the same events plus a reconcile are replayed
    proxy.set_plan(Arc::new(|_, _| None));
    let mut again = s.files.clone();
    again.push(s.dir.join("scheduled-reconcile.json"));
    let output = replay(&s.moto, &proxy.endpoint(), &again).await;

    // THEN the state is exactly the fault-free one: nothing lost, nothing duplicated
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(s.state().await, reference_state().await);
}

#[tokio::test]
async fn a_partial_create_tags_failure_is_completed_by_the_next_delivery() {
    // GIVEN one launch event for two instances of two different owners (two CreateTags calls)
    let s = seeded().await;
    let event_path = s.dir.join("run-instances-created-by.json");
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(&event_path).unwrap()).unwrap();
    event["detail"]["requestParameters"]
        .as_object_mut()
        .unwrap()
        .remove("tagSpecificationSet");
    event["detail"]["responseElements"]["instancesSet"]["items"][0]["tagSet"] =
        serde_json::json!({"items": [{"key": "CreatedBy", "value": "ada.lovelace"}]});
    event["detail"]["responseElements"]["instancesSet"]["items"][1]["tagSet"] =
        serde_json::json!({"items": [{"key": "CreatedBy", "value": "tim.malone"}]});
    let file = s.dir.join("two-owners.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let ids: Vec<String> = ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002"]
        .iter()
        .map(|sample| {
            s.replacements
                .iter()
                .find(|(x, _)| x == sample)
                .unwrap()
                .1
                .clone()
        })
        .collect();

    // AND a proxy on which the second CreateTags, and every one after it, fails
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let proxy = FaultProxy::start(
        s.moto.port(),
        Arc::new(move |_, op| {
            (op == "CreateTags" && counter.fetch_add(1, Ordering::SeqCst) >= 1)
                .then_some(Fault::Unavailable)
        }),
    )
    .await
    .unwrap();

    // WHEN it is delivered THEN it fails retryably with the first owner written and not the second
    let output = replay(&s.moto, &proxy.endpoint(), std::slice::from_ref(&file)).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(lines(&output)["two-owners.json"]["error_type"], "Retryable");
    let written: Vec<Option<String>> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(tags_of(&s.admin.ec2, id).await.get("AwsUserId").cloned());
        }
        v
    };
    assert_eq!(
        written.iter().filter(|w| w.is_some()).count(),
        1,
        "{written:?}"
    );

    // WHEN it is delivered again on a healthy endpoint THEN both are tagged
    proxy.set_plan(Arc::new(|_, _| None));
    let output = replay(&s.moto, &proxy.endpoint(), std::slice::from_ref(&file)).await;
    assert!(output.status.success());
    let role_id = s.replacements[0].1.clone();
    assert_eq!(
        tags_of(&s.admin.ec2, &ids[0]).await.get("AwsUserId"),
        Some(&format!("{role_id}:ada.lovelace"))
    );
    assert_eq!(
        tags_of(&s.admin.ec2, &ids[1]).await.get("AwsUserId"),
        Some(&format!("{role_id}:tim.malone"))
    );
}

#[tokio::test]
async fn an_iam_write_failing_after_an_earlier_one_is_completed_by_the_next_reconcile() {
    // GIVEN tagged instances, grace.hopper's old inline statement, and a proxy on which every
    // DeleteRolePolicy fails (the migration step after the shard is written)
    let s = seeded().await;
    let launches: Vec<PathBuf> = s
        .files
        .iter()
        .filter(|f| f.to_string_lossy().contains("run-instances"))
        .cloned()
        .collect();
    assert!(replay(&s.moto, &s.moto.endpoint(), &launches)
        .await
        .status
        .success());
    let proxy = FaultProxy::start(s.moto.port(), every_nth(1, Fault::Unavailable))
        .await
        .unwrap();
    proxy.set_plan(Arc::new(|_, op| {
        (op == "DeleteRolePolicy").then_some(Fault::Unavailable)
    }));
    let reconcile = s.dir.join("scheduled-reconcile.json");

    // WHEN the reconcile runs THEN it fails retryably, but the shard already grants the users
    let output = replay(&s.moto, &proxy.endpoint(), std::slice::from_ref(&reconcile)).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        lines(&output)["scheduled-reconcile.json"]["error_type"],
        "Retryable"
    );
    let granted = granted_users(&s.admin.iam, DEMO_ROLE).await;
    assert_eq!(
        granted.get("tim.malone").map(String::as_str),
        Some("shard ssm-session-owner-shard-01")
    );
    assert!(
        granted
            .get("grace.hopper")
            .is_some_and(|h| h.starts_with("inline ")),
        "{granted:?}"
    );

    // WHEN the next reconcile runs on a healthy endpoint THEN the migration completes
    proxy.set_plan(Arc::new(|_, _| None));
    let output = replay(&s.moto, &proxy.endpoint(), std::slice::from_ref(&reconcile)).await;
    assert!(output.status.success());
    let granted = granted_users(&s.admin.iam, DEMO_ROLE).await;
    assert_eq!(
        granted.keys().cloned().collect::<Vec<_>>(),
        ["ada.lovelace", "alan.turing", "tim.malone"]
    );
}
