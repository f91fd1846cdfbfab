//! Redrive against moto in server mode: the queue is moto's SQS. moto's Lambda runs functions
//! only in Docker, so a real invocation stops at moto's "function not found"; the success path
//! uses an in-test invoker behind the tool's `Invoker` port, with the real SQS adapter.

use std::process::{Command, Output};
use std::sync::Mutex;

use redrive::aws::SqsQueue;
use redrive::parked::{Filter, ProductFunctions};
use redrive::run::{redrive, Fate, Invoked, Invoker};
use shared::Error;
use testkit::Moto;

const FUNCTION: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicyFunction-X";

fn product() -> ProductFunctions {
    ProductFunctions::parse(&[FUNCTION.to_owned()]).unwrap()
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

async fn parked_queue(moto: &Moto) -> SqsQueue {
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
    for id in ["ev-1", "ev-2"] {
        client
            .send_message()
            .queue_url(&url)
            .message_body(record(id))
            .send()
            .await
            .unwrap();
    }
    SqsQueue { client, url }
}

fn run_tool(moto: &Moto, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redrive"))
        .args(["--queue-url", url, "--product-function", FUNCTION])
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

    let lines = redrive(&queue, &invoker, &product(), &Filter::default(), true)
        .await
        .unwrap();

    assert_eq!(lines[0].fate, Fate::Redriven);
    assert!(matches!(lines[1].fate, Fate::FailedAgain { .. }));
    // The original event went back as it was parked.
    let first = invoker.sent.lock().unwrap()[0].clone();
    assert_eq!(first["detail"]["instance-id"], "i-0a1b2c3d4e5f60006");
    // One message left in moto's queue: the one that failed again, visible.
    assert_eq!(queue.waiting().await.unwrap(), 1);
    let left = redrive(&queue, &invoker, &product(), &Filter::default(), false)
        .await
        .unwrap();
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
    let lines = redrive(&queue, &invoker, &product(), &Filter::default(), true)
        .await
        .unwrap();
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
fn a_product_function_that_is_not_a_function_arn_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_redrive"))
        .args([
            "--queue-url",
            "http://127.0.0.1:1/q",
            "--product-function",
            "not-an-arn",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--product-function: \"not-an-arn\" is not a Lambda function ARN"),
        "{stderr}"
    );
}

#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_redrive"), "redrive");
}
