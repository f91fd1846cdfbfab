//! What a message in `FailureQueue` says (pure: no AWS here). Two shapes arrive there:
//!
//! - **Lambda's OnFailure destination record**, after an asynchronous invocation ran out of
//!   retries: `requestContext.functionArn`, `requestPayload` (the original event),
//!   `responsePayload.errorType`/`errorMessage` (the function's error: `Retryable` or
//!   `Permanent` for this product's functions), `timestamp` (when Lambda gave up).
//! - **EventBridge's dead-letter message**, when a rule could not deliver to its target: the
//!   body is the original event, and the message attributes `TARGET_ARN`, `ERROR_CODE` and
//!   `ERROR_MESSAGE` say where it was going and why it failed.
//!
//! Anything else is unreadable: it is reported and left in the queue, never deleted. So is a
//! readable message that names a function other than the product's own ([`ProductFunctions`]):
//! whoever could write to the queue would otherwise choose what an operator's redrive invokes,
//! and with which event.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A message as the queue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// Message attributes (string values).
    pub attributes: BTreeMap<String, String>,
    /// When the message was sent to the queue (SQS `SentTimestamp`, milliseconds).
    pub sent_at_ms: Option<i64>,
}

/// Which of the two shapes a parked message has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    /// Lambda's OnFailure destination: the function ran and failed every attempt.
    LambdaOnFailure,
    /// EventBridge's dead-letter queue: the event never reached the function.
    EventBridgeDeadLetter,
}

/// One parked event, read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parked {
    /// The SQS message id (the listing prints it once, from the message).
    #[serde(skip)]
    pub message_id: String,
    pub source: Source,
    /// The function it failed in (an unqualified ARN).
    pub function_arn: String,
    /// The function's name: the last part of the ARN.
    pub function: String,
    /// `Retryable`, `Permanent`, or EventBridge's error code.
    pub error_type: String,
    pub error_message: String,
    /// When it was parked (RFC 3339, or the queue's sent time).
    pub failed_at: String,
    /// The event's own `detail-type` and `id`, for the listing.
    pub detail_type: String,
    pub event_id: String,
    /// The original event, sent back as it was.
    #[serde(skip)]
    pub event: Value,
}

/// Read a parked message; `Err` says why it cannot be redriven.
pub fn read(message: &Message) -> Result<Parked, String> {
    let body: Value =
        serde_json::from_str(&message.body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let sent = message
        .sent_at_ms
        .map(|ms| format!("{ms} ms since the epoch (sent to the queue)"))
        .unwrap_or_default();
    let (source, function_arn, error_type, error_message, failed_at, event) = if body
        .get("requestContext")
        .is_some()
    {
        let arn = text(&body, &["requestContext", "functionArn"])
            .ok_or("a Lambda destination record without requestContext.functionArn")?;
        let event = body
            .get("requestPayload")
            .filter(|p| p.is_object())
            .cloned()
            .ok_or("a Lambda destination record without its requestPayload")?;
        // Lambda writes one of these two for an on-failure destination; a success record,
        // or a hand-made one, says something else or nothing.
        let condition = text(&body, &["requestContext", "condition"]);
        if !matches!(
            condition.as_deref(),
            Some("RetriesExhausted" | "EventAgeExceeded")
        ) {
            return Err(format!(
                    "a Lambda destination record whose requestContext.condition is {condition:?}, not RetriesExhausted or EventAgeExceeded (not an on-failure record)"
                ));
        }
        let error_type = text(&body, &["responsePayload", "errorType"])
            .or_else(|| text(&body, &["responseContext", "functionError"]))
            .or_else(|| text(&body, &["requestContext", "condition"]))
            .unwrap_or_else(|| "unknown".into());
        let error_message = text(&body, &["responsePayload", "errorMessage"]).unwrap_or_default();
        let failed_at = text(&body, &["timestamp"]).unwrap_or(sent);
        (
            Source::LambdaOnFailure,
            arn,
            error_type,
            error_message,
            failed_at,
            event,
        )
    } else if let Some(target) = message.attributes.get("TARGET_ARN") {
        if !body.is_object() {
            return Err("an EventBridge dead letter whose body is not an event".into());
        }
        let error_type = message
            .attributes
            .get("ERROR_CODE")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let error_message = message
            .attributes
            .get("ERROR_MESSAGE")
            .cloned()
            .unwrap_or_default();
        (
            Source::EventBridgeDeadLetter,
            target.clone(),
            error_type,
            error_message,
            sent,
            body,
        )
    } else {
        return Err(
            "neither a Lambda destination record nor an EventBridge dead letter (no TARGET_ARN)"
                .into(),
        );
    };
    let function_arn = unqualified(&function_arn)?;
    let function = function_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Parked {
        message_id: message.id.clone(),
        source,
        function_arn,
        function,
        error_type,
        error_message,
        failed_at,
        detail_type: text(&event, &["detail-type"]).unwrap_or_default(),
        event_id: text(&event, &["id"]).unwrap_or_default(),
        event,
    })
}

/// The functions redrive may invoke: the product's own, as the stack outputs
/// `OwnerTaggerFunctionArn` and `SessionPolicyFunctionArn` name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFunctions(Vec<String>);

impl ProductFunctions {
    /// Each entry must be a Lambda function ARN (a qualifier is dropped); none at all is an
    /// error, never "any function".
    pub fn parse(arns: &[String]) -> Result<Self, String> {
        if arns.is_empty() {
            return Err("no product function is named (--product-function, the stack outputs OwnerTaggerFunctionArn and SessionPolicyFunctionArn)".into());
        }
        arns.iter()
            .map(|arn| unqualified(arn))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Why `parked` may not be redriven, when it names another function.
    pub fn refuses(&self, parked: &Parked) -> Option<String> {
        (!self.0.contains(&parked.function_arn)).then(|| {
            format!(
                "it names {}, which is not one of the product's functions ({}); a message the product did not park is never redriven",
                parked.function_arn,
                self.0.join(", ")
            )
        })
    }
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`, without the
/// qualifier: a redrive goes to the function as deployed now (the fix included).
fn unqualified(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] if !name.is_empty() => {
            Ok(parts[..7].join(":"))
        }
        _ => Err(format!("{arn:?} is not a Lambda function ARN")),
    }
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    match at {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Which parked events a run is about: `--function` (a part of the function's name, any case)
/// and `--error-type` (exact); none given means all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub functions: Vec<String>,
    pub error_types: Vec<String>,
}

impl Filter {
    pub fn selects(&self, parked: &Parked) -> bool {
        let name = parked.function.to_lowercase();
        (self.functions.is_empty()
            || self
                .functions
                .iter()
                .any(|f| name.contains(&f.to_lowercase())))
            && (self.error_types.is_empty() || self.error_types.contains(&parked.error_type))
    }
}

/// Sample messages for the tests of this crate.
#[cfg(test)]
pub(crate) mod tests_support {
    use serde_json::json;

    /// A Lambda OnFailure destination record, as AWS documents it.
    pub(crate) fn destination_record(function: &str, error_type: &str) -> String {
        json!({
            "version": "1.0",
            "timestamp": "2026-11-30T09:12:41.123Z",
            "requestContext": {
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{function}:$LATEST"),
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"id": "c2d4e6f8", "detail-type": "Tag Change on Resource", "detail": {}},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": error_type, "errorMessage": "the users' role Okta does not exist"}
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::destination_record;
    use super::*;
    use serde_json::json;

    fn message(body: String, attributes: &[(&str, &str)]) -> Message {
        Message {
            id: "m-1".into(),
            receipt: "r-1".into(),
            body,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sent_at_ms: Some(1_764_493_961_000),
        }
    }

    #[test]
    fn a_lambda_destination_record_names_the_function_error_and_original_event() {
        let parked = read(&message(
            destination_record("stack-SessionPolicyFunction-AbC", "Permanent"),
            &[],
        ))
        .unwrap();
        assert_eq!(parked.source, Source::LambdaOnFailure);
        assert_eq!(
            parked.function_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicyFunction-AbC"
        );
        assert_eq!(parked.function, "stack-SessionPolicyFunction-AbC");
        assert_eq!(parked.error_type, "Permanent");
        assert_eq!(parked.failed_at, "2026-11-30T09:12:41.123Z");
        assert_eq!(parked.detail_type, "Tag Change on Resource");
        assert_eq!(parked.event["id"], "c2d4e6f8");
    }

    #[test]
    fn an_eventbridge_dead_letter_is_the_event_with_its_target_in_the_attributes() {
        let parked = read(&message(
            json!({"id": "e1", "detail-type": "Scheduled Event"}).to_string(),
            &[
                (
                    "TARGET_ARN",
                    "arn:aws:lambda:eu-west-1:123456789012:function:tagger",
                ),
                ("ERROR_CODE", "SDK_CLIENT_ERROR"),
            ],
        ))
        .unwrap();
        assert_eq!(parked.source, Source::EventBridgeDeadLetter);
        assert_eq!(parked.function, "tagger");
        assert_eq!(parked.error_type, "SDK_CLIENT_ERROR");
        assert!(parked.failed_at.starts_with("1764493961000 ms"));
    }

    #[test]
    fn anything_else_is_unreadable_with_the_reason() {
        for (body, attributes, reason) in [
            ("not json".to_owned(), vec![], "the body is not JSON"),
            (json!({"id": "x"}).to_string(), vec![], "neither a Lambda destination record"),
            (
                json!({"requestContext": {"functionArn": "arn:aws:sqs:us-east-1:1:q", "condition": "RetriesExhausted"}, "requestPayload": {}}).to_string(),
                vec![],
                "\"arn:aws:sqs:us-east-1:1:q\" is not a Lambda function ARN",
            ),
            (
                json!({"requestContext": {"functionArn": "arn:aws:lambda:us-east-1:1:function:f"}}).to_string(),
                vec![],
                "a Lambda destination record without its requestPayload",
            ),
            (
                json!({"requestContext": {"functionArn": "arn:aws:lambda:us-east-1:1:function:f", "condition": "Success"}, "requestPayload": {}}).to_string(),
                vec![],
                "a Lambda destination record whose requestContext.condition is Some(\"Success\")",
            ),
            (
                json!({"requestContext": {"functionArn": "arn:aws:lambda:us-east-1:1:function:f"}, "requestPayload": {}}).to_string(),
                vec![],
                "a Lambda destination record whose requestContext.condition is None",
            ),
            ("[1]".to_owned(), vec![("TARGET_ARN", "arn:aws:lambda:us-east-1:1:function:f")], "an EventBridge dead letter whose body is not an event"),
        ] {
            let err = read(&message(body, &attributes)).unwrap_err();
            assert!(err.starts_with(reason), "{err}");
        }
    }

    #[test]
    fn only_the_products_own_functions_are_admitted() {
        let product = ProductFunctions::parse(&[
            "arn:aws:lambda:us-east-1:123456789012:function:stack-OwnerTaggerFunction-1".into(),
            "arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicyFunction-2:$LATEST"
                .into(),
        ])
        .unwrap();
        let ours = read(&message(
            destination_record("stack-SessionPolicyFunction-2", "Permanent"),
            &[],
        ))
        .unwrap();
        assert_eq!(product.refuses(&ours), None);
        // the same name in another account, and another function of this account
        for forged in [
            destination_record("stack-OwnerTaggerFunction-1", "Permanent")
                .replace("123456789012", "999999999999"),
            destination_record("attacker", "Permanent"),
        ] {
            let parked = read(&message(forged, &[])).unwrap();
            let why = product.refuses(&parked).expect("refused");
            assert!(
                why.starts_with(&format!("it names {}, which is not one of the product's functions (arn:aws:lambda:us-east-1:123456789012:function:stack-OwnerTaggerFunction-1, arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicyFunction-2)", parked.function_arn)),
                "{why}"
            );
        }
        assert!(ProductFunctions::parse(&[])
            .unwrap_err()
            .starts_with("no product function is named"));
        assert_eq!(
            ProductFunctions::parse(&["stack-OwnerTaggerFunction-1".into()]).unwrap_err(),
            "\"stack-OwnerTaggerFunction-1\" is not a Lambda function ARN"
        );
    }

    #[test]
    fn filters_match_a_part_of_the_function_name_and_the_exact_error_type() {
        let parked = read(&message(
            destination_record("stack-OwnerTaggerFunction-1", "Retryable"),
            &[],
        ))
        .unwrap();
        let filter = |f: &[&str], e: &[&str]| Filter {
            functions: f.iter().map(|s| s.to_string()).collect(),
            error_types: e.iter().map(|s| s.to_string()).collect(),
        };
        assert!(filter(&[], &[]).selects(&parked));
        assert!(filter(&["ownertagger"], &["Retryable"]).selects(&parked));
        assert!(!filter(&["SessionPolicy"], &[]).selects(&parked));
        assert!(!filter(&[], &["Permanent"]).selects(&parked));
        assert!(!filter(&[], &["retryable"]).selects(&parked));
    }
}
