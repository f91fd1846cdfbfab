//! Redrive against moto in server mode: the queues are moto's SQS. moto's Lambda runs functions
//! only in Docker, so a real invocation stops at moto's "function not found"; the success path
//! uses an in-test invoker behind the tool's `Invoker` port, with the real SQS adapter.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

use std::process::{Command, Output};
use std::sync::Mutex;

use redrive::aws::SqsQueue;
use redrive::parked::{Filter, Product, Source};
use redrive::run::{redrive, Fate, Invoked, Invoker, Line};
use shared::Error;
use testkit::Moto;

const FUNCTION: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicyFunction-X";
const OWNER_TAGGER: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:stack-OwnerTaggerFunction-Y";
const FORWARDER_QUEUE: &str = "ssm-session-owner-forward-dead-letters";

fn product() -> Product {
    Product::new(OWNER_TAGGER, FUNCTION, "CreatedBy", "AwsUserId").unwrap()
}

/// Every message of `queue`, through `invoker`; with `apply`, redriven.
async fn redrive_one<I: Invoker + Sync>(queue: &SqsQueue, invoker: &I, apply: bool) -> Vec<Line> {
    redrive(
        std::slice::from_ref(queue),
        invoker,
        &product(),
        &Filter::default(),
        apply,
    )
    .await
    .unwrap()
}

fn record(event_id: &str) -> String {
    record_for(FUNCTION, event_id)
}

fn record_for(function: &str, event_id: &str) -> String {
    serde_json::json!({
        "version": "1.0",
        "timestamp": "2026-11-30T09:12:41.123Z",
        "requestContext": {"requestId": "r", "functionArn": format!("{function}:$LATEST"),
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {"id": event_id, "detail-type": "EC2 Instance State-change Notification",
                           "detail": {"instance-id": "i-0a1b2c3d4e5f60006", "state": "terminated"}},
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Permanent", "errorMessage": "the users' role Okta does not exist"}
    })
    .to_string()
}

/// moto's empty FailureQueue.
async fn empty_queue(moto: &Moto) -> SqsQueue {
    let sdk = moto.sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let url = client
        .create_queue()
        .queue_name("FailureQueue")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    SqsQueue::failure_queue(client, url)
}

async fn parked_queue(moto: &Moto) -> SqsQueue {
    let SqsQueue { client, url, .. } = empty_queue(moto).await;
    for id in ["ev-1", "ev-2"] {
        client
            .send_message()
            .queue_url(&url)
            .message_body(record(id))
            .send()
            .await
            .unwrap();
    }
    SqsQueue::failure_queue(client, url)
}

fn run_tool(moto: &Moto, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redrive"))
        .args(["--queue-url", url, "--owner-tagger", OWNER_TAGGER])
        .args(["--session-policy", FUNCTION])
        .args(args)
        .env_clear()
        .envs(moto.env())
        .output()
        .unwrap()
}

/// The `--json` lines of a run that exited 1 (some message was not redriven).
fn json_lines_of_a_failed_run(output: &Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_dry_run_lists_what_is_parked_and_changes_nothing() {
    let moto = Moto::start().unwrap();
    let queue = parked_queue(&moto).await;

    let output = run_tool(&moto, &queue.url, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout
            .matches("parked (dry run: add --yes to redrive)")
            .count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("stack-SessionPolicyFunction-X"), "{stdout}");
    assert!(stdout.contains("Permanent"), "{stdout}");
    // Both messages are still there, visible again.
    assert_eq!(queue.waiting().await.unwrap(), 2);
}

#[tokio::test]
async fn an_event_whose_function_cannot_be_invoked_stays_parked() {
    // moto has no such function: its Invoke answers ResourceNotFoundException.
    let moto = Moto::start().unwrap();
    let queue = parked_queue(&moto).await;
    let output = run_tool(&moto, &queue.url, &["--yes", "--json"]);
    let lines = json_lines_of_a_failed_run(&output);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["result"], "not-invoked", "{line}");
        assert_eq!(line["function"], "stack-SessionPolicyFunction-X");
        assert!(line["error"]
            .as_str()
            .unwrap()
            .starts_with("lambda:Invoke failed: ResourceNotFoundException"));
    }
    assert_eq!(queue.waiting().await.unwrap(), 2);
}

/// Succeeds for the first event it is sent, fails for the rest.
#[derive(Default)]
struct FirstSucceeds {
    sent: Mutex<Vec<serde_json::Value>>,
}

impl Invoker for FirstSucceeds {
    async fn invoke(&self, arn: &str, event: &serde_json::Value) -> Result<Invoked, Error> {
        assert_eq!(arn, FUNCTION);
        let mut sent = self.sent.lock().unwrap();
        sent.push(event.clone());
        Ok(if sent.len() == 1 {
            Invoked::Succeeded
        } else {
            Invoked::FunctionError {
                error_type: "Retryable".into(),
                message: "throttled".into(),
            }
        })
    }
}

#[tokio::test]
async fn a_redriven_event_leaves_the_queue_only_once_it_succeeded() {
    let moto = Moto::start().unwrap();
    let queue = parked_queue(&moto).await;
    let invoker = FirstSucceeds::default();

    let lines = redrive_one(&queue, &invoker, true).await;

    assert_eq!(lines[0].fate, Fate::Redriven);
    assert!(matches!(lines[1].fate, Fate::FailedAgain { .. }));
    // The original event went back as it was parked.
    let first = invoker.sent.lock().unwrap()[0].clone();
    assert_eq!(first["detail"]["instance-id"], "i-0a1b2c3d4e5f60006");
    // One message left in moto's queue: the one that failed again, visible.
    assert_eq!(queue.waiting().await.unwrap(), 1);
    let left = redrive_one(&queue, &invoker, false).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message_id, lines[1].message_id);
}

#[tokio::test]
async fn a_forged_message_in_the_queue_is_refused_and_a_real_parked_event_is_still_redriven() {
    // GIVEN moto's queue with a real parked event and a forged launch event that names a
    // function of another account, sent by whoever could write to the queue
    let moto = Moto::start().unwrap();
    let queue = parked_queue(&moto).await;
    let forged_function = FUNCTION.replace("123456789012", "999999999999");
    queue
        .client
        .send_message()
        .queue_url(&queue.url)
        .message_body(record_for(&forged_function, "forged"))
        .send()
        .await
        .unwrap();

    // WHEN an operator redrives everything through the tool
    let output = run_tool(&moto, &queue.url, &["--yes", "--json"]);

    // THEN the forged message is refused with the reason and kept, and exits 1
    let lines = json_lines_of_a_failed_run(&output);
    let forged: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["event_id"] == "forged").collect();
    assert_eq!(forged.len(), 1, "{lines:?}");
    assert_eq!(forged[0]["result"], "refused");
    assert!(forged[0]["reason"].as_str().unwrap().starts_with(&format!(
        "it names {forged_function}, which is not one of the product's functions"
    )));
    assert_eq!(queue.waiting().await.unwrap(), 3);

    // AND the real parked events still go back to their function (in-test invoker), the forged
    // one is never invoked
    let invoker = FirstSucceeds::default();
    let lines = redrive_one(&queue, &invoker, true).await;
    assert_eq!(lines.iter().filter(|l| l.fate == Fate::Redriven).count(), 1);
    assert_eq!(
        lines
            .iter()
            .filter(|l| matches!(l.fate, Fate::Refused { .. }))
            .count(),
        1
    );
    assert_eq!(invoker.sent.lock().unwrap().len(), 2);
    assert_eq!(queue.waiting().await.unwrap(), 2);
}

#[test]
fn a_function_that_is_not_a_function_arn_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_redrive"))
        .args([
            "--queue-url",
            "http://127.0.0.1:1/q",
            "--owner-tagger",
            "not-an-arn",
            "--session-policy",
            FUNCTION,
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the product's functions: \"not-an-arn\" is not a Lambda function ARN"),
        "{stderr}"
    );
}

#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_redrive"), "redrive");
}

#[tokio::test]
async fn an_eventbridge_dead_letter_in_moto_is_listed_and_redriven_to_its_function() {
    // GIVEN moto's queue holding what EventBridge parks when it cannot deliver an event to the
    // function (the rules' DeadLetterConfig): the event itself, its target and the error in the
    // message attributes
    use aws_sdk_sqs::types::MessageAttributeValue;
    let moto = Moto::start().unwrap();
    let SqsQueue { client, url, .. } = empty_queue(&moto).await;
    let event = serde_json::json!({
        "version": "0", "id": "dead-letter-1", "source": "aws.ec2",
        "detail-type": "EC2 Instance State-change Notification", "region": "eu-west-1",
        "detail": {"instance-id": "i-0a1b2c3d4e5f60006", "state": "terminated"}
    });
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    };
    client
        .send_message()
        .queue_url(&url)
        .message_body(event.to_string())
        .message_attributes(
            "RULE_ARN",
            attribute("arn:aws:events:us-east-1:123456789012:rule/ssm-session-owner-revoke"),
        )
        .message_attributes("TARGET_ARN", attribute(FUNCTION))
        .message_attributes("ERROR_CODE", attribute("SDK_CLIENT_ERROR"))
        .message_attributes(
            "ERROR_MESSAGE",
            attribute("Unable to invoke Lambda function"),
        )
        .send()
        .await
        .unwrap();
    let queue = SqsQueue::failure_queue(client, url);

    // WHEN the dry run lists it THEN it is an EventBridge dead letter of the product's function
    let invoker = FirstSucceeds::default();
    let listed = redrive_one(&queue, &invoker, false).await;
    assert_eq!(listed.len(), 1);
    let parked = listed[0].parked.as_ref().expect("a readable dead letter");
    assert_eq!(parked.source, Source::EventBridgeDeadLetter);
    assert_eq!(parked.error_type, "SDK_CLIENT_ERROR");
    assert!(invoker.sent.lock().unwrap().is_empty());
    assert_eq!(queue.waiting().await.unwrap(), 1);

    // AND redriven, the event itself goes to the function and leaves the queue
    let lines = redrive_one(&queue, &invoker, true).await;
    assert_eq!(lines[0].fate, Fate::Redriven);
    assert_eq!(invoker.sent.lock().unwrap()[0], event);
    assert_eq!(queue.waiting().await.unwrap(), 0);
}

/// A forwarder's dead letter as EventBridge parks it: the event, with the home bus as its
/// target and the forwarder's rule in the attributes.
async fn park_forwarded(queue: &SqsQueue, event: &serde_json::Value, bus: &str, rule: &str) {
    use aws_sdk_sqs::types::MessageAttributeValue;
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    };
    queue
        .client
        .send_message()
        .queue_url(&queue.url)
        .message_body(event.to_string())
        .message_attributes("TARGET_ARN", attribute(bus))
        .message_attributes(
            "RULE_ARN",
            attribute(&format!(
                "arn:aws:events:eu-west-1:123456789012:rule/ssm-session-owner-{rule}"
            )),
        )
        .message_attributes("ERROR_CODE", attribute("THROTTLING"))
        .send()
        .await
        .unwrap();
}

/// moto's forwarder queue in eu-west-1, as forwarder.yaml names it.
async fn forwarder_queue(moto: &Moto) -> SqsQueue {
    let sdk = moto.sdk_config().await;
    let config = aws_sdk_sqs::config::Builder::from(&sdk)
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
        .create_queue()
        .queue_name(FORWARDER_QUEUE)
        .send()
        .await
        .unwrap();
    SqsQueue::forwarder(&sdk, "eu-west-1", FORWARDER_QUEUE)
        .await
        .unwrap()
        .expect("the queue just created")
}

/// A sample event of `events/`, as the eu-west-1 forwarder would have forwarded it.
fn sample(name: &str) -> serde_json::Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["region"] = "eu-west-1".into();
    event
}

const HOME_BUS: &str = "arn:aws:events:us-east-1:123456789012:event-bus/default";

#[tokio::test]
async fn a_forwarders_dead_letters_in_moto_go_to_the_home_functions_and_a_forged_one_stays() {
    // GIVEN moto's forwarder queue in eu-west-1 holding a launch and a tag change of both
    // ownership keys it could not forward, and a forged message for another account's bus
    let moto = Moto::start().unwrap();
    let queue = forwarder_queue(&moto).await;
    assert_eq!(queue.name, "forwarder eu-west-1");
    let launch = sample("run-instances-created-by.json");
    let mut both_keys = sample("tag-change-created-by-added.json");
    both_keys["detail"]["changed-tag-keys"] = serde_json::json!(["CreatedBy", "AwsUserId"]);
    park_forwarded(&queue, &launch, HOME_BUS, "forward-run-instances").await;
    park_forwarded(&queue, &both_keys, HOME_BUS, "forward-tag-changes").await;
    let forged_bus = HOME_BUS.replace("123456789012", "999999999999");
    park_forwarded(&queue, &launch, &forged_bus, "forward-run-instances").await;

    // WHEN an operator redrives everything (an in-test invoker that always succeeds)
    let invoker = Recorder::default();
    let lines = redrive_one(&queue, &invoker, true).await;

    // THEN the launch went to the owner-tagger, the tag change to both functions, each as
    // it was parked, and both left the queue
    let sent = invoker.sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![
            (OWNER_TAGGER.to_owned(), launch.clone()),
            (OWNER_TAGGER.to_owned(), both_keys.clone()),
            (FUNCTION.to_owned(), both_keys.clone()),
        ]
    );
    let redriven: Vec<&Vec<String>> = lines
        .iter()
        .filter(|l| l.fate == Fate::Redriven)
        .map(|l| &l.functions)
        .collect();
    assert_eq!(redriven.len(), 2, "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .find(|l| l.parked.as_ref().unwrap().event_id == both_keys["id"])
            .unwrap()
            .functions,
        [
            "stack-OwnerTaggerFunction-Y",
            "stack-SessionPolicyFunction-X"
        ]
    );
    assert_eq!(
        lines[0].parked.as_ref().unwrap().source,
        Source::ForwarderDeadLetter
    );
    // AND the forged one is refused and kept, visible
    let refused: Vec<&Fate> = lines
        .iter()
        .map(|l| &l.fate)
        .filter(|f| matches!(f, Fate::Refused { .. }))
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(queue.waiting().await.unwrap(), 1);
    // AND a region without the queue is "no forwarder there", not an error
    let sdk = moto.sdk_config().await;
    assert!(SqsQueue::forwarder(&sdk, "ap-southeast-2", FORWARDER_QUEUE)
        .await
        .unwrap()
        .is_none());
}

/// Succeeds for every event; records where each went.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(String, serde_json::Value)>>,
}

impl Invoker for Recorder {
    async fn invoke(&self, arn: &str, event: &serde_json::Value) -> Result<Invoked, Error> {
        self.sent
            .lock()
            .unwrap()
            .push((arn.to_owned(), event.clone()));
        Ok(Invoked::Succeeded)
    }
}

#[tokio::test]
async fn with_stack_it_reads_the_home_queue_and_every_covered_regions_forwarder_queue() {
    // GIVEN a stack shaped like the product's in moto covering us-east-1 and eu-west-1, an
    // on-failure record of its session-policy function parked in its queue, and a launch in
    // the eu-west-1 forwarder's dead letters
    let moto = Moto::start().unwrap();
    let sdk = moto.sdk_config().await;
    let environment = [("REGIONS".to_owned(), "us-east-1,eu-west-1".to_owned())].into();
    testkit::create_product_stack(&sdk, "ssm-session-owner", &environment).await;
    let outputs = aws_sdk_cloudformation::Client::new(&sdk)
        .describe_stacks()
        .stack_name("ssm-session-owner")
        .send()
        .await
        .unwrap()
        .stacks()[0]
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap().to_owned(),
                o.output_value().unwrap().to_owned(),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>();
    let function = &outputs["SessionPolicyFunctionArn"];
    let client = aws_sdk_sqs::Client::new(&sdk);
    client
        .send_message()
        .queue_url(&outputs["FailureQueueUrl"])
        .message_body(record_for(function, "ev-stack"))
        .send()
        .await
        .unwrap();
    let forwarder = forwarder_queue(&moto).await;
    let launch = sample("run-instances-created-by.json");
    park_forwarded(&forwarder, &launch, HOME_BUS, "forward-run-instances").await;

    // WHEN redrive lists them with --stack and no queue or function of its own
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_redrive"))
            .args(["--stack", "ssm-session-owner", "--json"])
            .args(extra)
            .env_clear()
            .envs(moto.env())
            .output()
            .unwrap()
    };
    let output = run(&[]);

    // THEN it found both queues and routes each event to the stack's function (a dry run:
    // listed, kept)
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("redrive: configured from stack ssm-session-owner")
            && stderr.contains("forwarders' ssm-session-owner-forward-dead-letters in eu-west-1"),
        "{stderr}"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["queue"], "FailureQueue");
    assert_eq!(lines[0]["event_id"], "ev-stack");
    assert_eq!(lines[0]["result"], "listed");
    assert_eq!(lines[1]["queue"], "forwarder eu-west-1");
    assert_eq!(lines[1]["event_id"], launch["id"]);
    assert_eq!(lines[1]["source"], "ForwarderDeadLetter");
    let owner_tagger = outputs["OwnerTaggerFunctionArn"]
        .rsplit(':')
        .next()
        .unwrap();
    assert_eq!(lines[1]["functions"], serde_json::json!([owner_tagger]));
    assert_eq!(lines[1]["result"], "listed");
    assert_eq!(forwarder.waiting().await.unwrap(), 1);

    // AND a covered region without a forwarder's queue is said, and exits 1
    let output = run(&["--forwarder-region", "eu-west-1,ap-southeast-2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("redrive: ap-southeast-2 has no queue ssm-session-owner-forward-dead-letters: no forwarder stack there"),
        "{stderr}"
    );

    // AND --stack with a queue of its own is a usage error
    let output = run(&["--queue-url", "https://x"]);
    assert_eq!(output.status.code(), Some(2));
}
