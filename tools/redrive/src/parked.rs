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
//! - **A forwarder's dead letter**, in a forwarder region's `<prefix>forward-dead-letters` queue,
//!   when that region's rule could not deliver an event to the home region's default bus: the
//!   same shape, but `TARGET_ARN` is the home bus and `RULE_ARN` one of the forwarder's three
//!   rules. Events from `aws.*` sources cannot be put on a bus again, so [`Product::route`]
//!   sends it to the home function (or both) that the home rules would have sent it to.
//!
//! Anything else is unreadable: it is reported and left in the queue, never deleted. So is a
//! readable message that names a function other than the product's own, or a bus or rule other
//! than the product's ([`Product::route`]): whoever could write to a queue would otherwise choose
//! what an operator's redrive invokes, and with which event.

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
    /// A forwarder region's dead-letter queue: the event never reached the home bus.
    ForwarderDeadLetter,
}

/// One parked event, read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parked {
    /// The SQS message id (the listing prints it once, from the message).
    #[serde(skip)]
    pub message_id: String,
    pub source: Source,
    /// Where it was going: the function it failed in (an unqualified ARN), or for a
    /// forwarder's dead letter the home region's event bus.
    pub target: String,
    /// The rule that parked it (an EventBridge dead letter's `RULE_ARN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
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
    let read = if body.get("requestContext").is_some() {
        destination_record(&body, sent)?
    } else if let Some(target) = message.attributes.get("TARGET_ARN") {
        dead_letter(message, target, body, sent)?
    } else {
        return Err(
            "neither a Lambda destination record nor an EventBridge dead letter (no TARGET_ARN)"
                .into(),
        );
    };
    let target = match read.source {
        Source::ForwarderDeadLetter => read.target,
        _ => unqualified(&read.target)?,
    };
    Ok(Parked {
        message_id: message.id.clone(),
        source: read.source,
        target,
        rule: message.attributes.get("RULE_ARN").cloned(),
        error_type: read.error_type,
        error_message: read.error_message,
        failed_at: read.failed_at,
        detail_type: text(&read.event, &["detail-type"]).unwrap_or_default(),
        event_id: text(&read.event, &["id"]).unwrap_or_default(),
        event: read.event,
    })
}

/// What each shape of message says, before the target is checked.
struct Read {
    source: Source,
    target: String,
    error_type: String,
    error_message: String,
    failed_at: String,
    event: Value,
}

/// Lambda's on-failure destination record.
fn destination_record(body: &Value, sent: String) -> Result<Read, String> {
    let target = text(body, &["requestContext", "functionArn"])
        .ok_or("a Lambda destination record without requestContext.functionArn")?;
    let event = body
        .get("requestPayload")
        .filter(|p| p.is_object())
        .cloned()
        .ok_or("a Lambda destination record without its requestPayload")?;
    // Lambda writes one of these two for an on-failure destination; a success record, or a
    // hand-made one, says something else or nothing.
    let condition = text(body, &["requestContext", "condition"]);
    if !matches!(
        condition.as_deref(),
        Some("RetriesExhausted" | "EventAgeExceeded")
    ) {
        return Err(format!(
            "a Lambda destination record whose requestContext.condition is {condition:?}, not RetriesExhausted or EventAgeExceeded (not an on-failure record)"
        ));
    }
    Ok(Read {
        source: Source::LambdaOnFailure,
        target,
        error_type: text(body, &["responsePayload", "errorType"])
            .or_else(|| text(body, &["responseContext", "functionError"]))
            .or(condition)
            .unwrap_or_else(|| "unknown".into()),
        error_message: text(body, &["responsePayload", "errorMessage"]).unwrap_or_default(),
        failed_at: text(body, &["timestamp"]).unwrap_or(sent),
        event,
    })
}

/// EventBridge's dead letter: the event, with where it was going in the attributes; a
/// forwarder's when it was going to a bus.
fn dead_letter(message: &Message, target: &str, body: Value, sent: String) -> Result<Read, String> {
    if !body.is_object() {
        return Err("an EventBridge dead letter whose body is not an event".into());
    }
    let source = if is_event_bus_arn(target) {
        if !message.attributes.contains_key("RULE_ARN") {
            return Err("a forwarder's dead letter without RULE_ARN".into());
        }
        Source::ForwarderDeadLetter
    } else {
        Source::EventBridgeDeadLetter
    };
    let attribute = |name: &str| message.attributes.get(name).cloned();
    Ok(Read {
        source,
        target: target.to_owned(),
        error_type: attribute("ERROR_CODE").unwrap_or_else(|| "unknown".into()),
        error_message: attribute("ERROR_MESSAGE").unwrap_or_default(),
        failed_at: sent,
        event: body,
    })
}

/// What redrive may do: invoke the product's two functions, and route a forwarder's dead
/// letter to them as the home rules would (which needs the deployment's tag keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Stack output `OwnerTaggerFunctionArn`, unqualified.
    pub owner_tagger: String,
    /// Stack output `SessionPolicyFunctionArn`, unqualified.
    pub session_policy: String,
    /// `OWNER_TAG_KEY`: a forwarded change of it goes to the owner-tagger (rule `late-owner-tag`).
    pub owner_tag_key: String,
    /// `USER_ID_TAG_KEY`: a forwarded change of it goes to the session-policy function (`grant`).
    pub user_id_tag_key: String,
    /// `SHARE_WITH_TAG_KEY` and `SHARE_FOR_TAG_KEY`: an owner's share request goes to the
    /// owner-tagger (rule `late-owner-tag`, which takes them too).
    pub share_request_keys: [String; 2],
}

/// The CloudTrail launch calls the home rule `run-instances` sends to the owner-tagger.
pub const LAUNCH_CALLS: [&str; 1] = ["RunInstances"];

/// The forwarder's rules, by the end of their names (`<RuleNamePrefix>forward-…`).
const FORWARD_RUN_INSTANCES: &str = "forward-run-instances";
const FORWARD_TAG_CHANGES: &str = "forward-tag-changes";
const FORWARD_TERMINATIONS: &str = "forward-terminations";

impl Product {
    /// Both functions must be Lambda function ARNs (a qualifier is dropped) of one account and
    /// region: that region's default bus is the home bus the forwarders send to.
    pub fn new(
        owner_tagger: &str,
        session_policy: &str,
        owner_tag_key: &str,
        user_id_tag_key: &str,
    ) -> Result<Self, String> {
        let owner_tagger = unqualified(owner_tagger)?;
        let session_policy = unqualified(session_policy)?;
        if home_of(&owner_tagger) != home_of(&session_policy) {
            return Err(format!(
                "{owner_tagger} and {session_policy} are not in one account and region"
            ));
        }
        for (name, key) in [
            ("the owner tag key", owner_tag_key),
            ("the user-id tag key", user_id_tag_key),
        ] {
            if key.is_empty() {
                return Err(format!("{name} is empty"));
            }
        }
        Ok(Self {
            owner_tagger,
            session_policy,
            owner_tag_key: owner_tag_key.to_owned(),
            user_id_tag_key: user_id_tag_key.to_owned(),
            share_request_keys: ["ShareWith".to_owned(), "ShareFor".to_owned()],
        })
    }

    /// The deployment's share request keys, when not the template's defaults.
    pub fn with_share_request_keys(
        self,
        share_with: &str,
        share_for: &str,
    ) -> Result<Self, String> {
        if share_with.is_empty() || share_for.is_empty() {
            return Err("a share request key is empty".to_owned());
        }
        Ok(Self {
            share_request_keys: [share_with.to_owned(), share_for.to_owned()],
            ..self
        })
    }

    /// The home region: the functions'.
    pub fn home_region(&self) -> &str {
        home_of(&self.session_policy).1
    }

    /// The home region's default event bus, which the forwarders target.
    pub fn home_bus(&self) -> String {
        let (partition, region, account) = home_of(&self.session_policy);
        format!("arn:{partition}:events:{region}:{account}:event-bus/default")
    }

    /// The product's functions `parked` goes to, in the order to invoke them; `Err` says why
    /// it is not the product's to redrive.
    pub fn route(&self, parked: &Parked) -> Result<Vec<String>, String> {
        if parked.source != Source::ForwarderDeadLetter {
            return if [&self.owner_tagger, &self.session_policy].contains(&&parked.target) {
                Ok(vec![parked.target.clone()])
            } else {
                Err(format!(
                    "it names {}, which is not one of the product's functions ({}, {}); a message the product did not park is never redriven",
                    parked.target, self.owner_tagger, self.session_policy
                ))
            };
        }
        let home_bus = self.home_bus();
        if parked.target != home_bus {
            return Err(format!(
                "it was going to {}, which is not the home region's default bus ({home_bus}); a message the product did not park is never redriven",
                parked.target
            ));
        }
        let rule = parked.rule.as_deref().unwrap_or_default();
        let (partition, _, account) = home_of(&self.session_policy);
        let forwarder = |suffix: &str| {
            let parts: Vec<&str> = rule.splitn(6, ':').collect();
            matches!(parts.as_slice(), ["arn", p, "events", _, a, name]
                if *p == partition && *a == account
                    && name.strip_prefix("rule/").is_some_and(|n| !n.contains('/') && n.ends_with(suffix)))
        };
        let event = &parked.event;
        let is = |source: &str, detail_type: &str| {
            text(event, &["source"]).as_deref() == Some(source)
                && text(event, &["detail-type"]).as_deref() == Some(detail_type)
        };
        let routed = if forwarder(FORWARD_RUN_INSTANCES) {
            (is("aws.ec2", "AWS API Call via CloudTrail")
                && text(event, &["detail", "eventName"])
                    .is_some_and(|call| LAUNCH_CALLS.contains(&call.as_str())))
            .then(|| vec![self.owner_tagger.clone()])
        } else if forwarder(FORWARD_TERMINATIONS) {
            (is("aws.ec2", "EC2 Instance State-change Notification")
                && text(event, &["detail", "state"]).as_deref() == Some("terminated"))
            .then(|| vec![self.session_policy.clone()])
        } else if forwarder(FORWARD_TAG_CHANGES) {
            if !is("aws.tag", "Tag Change on Resource") {
                None
            } else {
                let changed: Vec<&str> = event
                    .pointer("/detail/changed-tag-keys")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let named = |key: &String| changed.contains(&key.as_str());
                let owner_tagger =
                    named(&self.owner_tag_key) || self.share_request_keys.iter().any(named);
                let functions: Vec<String> = [
                    (owner_tagger, &self.owner_tagger),
                    (named(&self.user_id_tag_key), &self.session_policy),
                ]
                .into_iter()
                .filter(|(takes, _)| *takes)
                .map(|(_, function)| function.clone())
                .collect();
                if functions.is_empty() {
                    return Err(format!(
                        "its changed-tag-keys {changed:?} name neither {} nor {} nor a share request key ({}, {}) (the deployment's OWNER_TAG_KEY, USER_ID_TAG_KEY, SHARE_WITH_TAG_KEY and SHARE_FOR_TAG_KEY): no home rule would take it",
                        self.owner_tag_key, self.user_id_tag_key, self.share_request_keys[0], self.share_request_keys[1]
                    ));
                }
                Some(functions)
            }
        } else {
            return Err(format!(
                "it was parked by {rule:?}, which is not one of the product's forwarder rules (<prefix>{FORWARD_RUN_INSTANCES}, <prefix>{FORWARD_TAG_CHANGES}, <prefix>{FORWARD_TERMINATIONS} in account {account})"
            ));
        };
        routed.ok_or_else(|| {
            format!(
                "the event ({} {:?}) is not what {rule} forwards",
                text(event, &["source"]).unwrap_or_default(),
                text(event, &["detail-type"]).unwrap_or_default()
            )
        })
    }
}

/// A function's partition, region and account.
fn home_of(function_arn: &str) -> (&str, &str, &str) {
    let mut parts = function_arn.split(':').skip(1);
    let mut next = || parts.next().unwrap_or_default();
    let partition = next();
    let _service = next();
    (partition, next(), next())
}

/// `arn:<partition>:events:<region>:<account>:event-bus/<name>`.
fn is_event_bus_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "events", _, _, resource] if resource.starts_with("event-bus/"))
}

/// A function's name: the last part of its ARN.
pub fn function_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or_default()
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
    /// `functions`: where the event is routed (unqualified ARNs); any of them may match.
    pub fn selects(&self, parked: &Parked, functions: &[String]) -> bool {
        let names: Vec<String> = functions
            .iter()
            .map(|arn| function_name(arn).to_lowercase())
            .collect();
        (self.functions.is_empty()
            || self
                .functions
                .iter()
                .any(|f| names.iter().any(|name| name.contains(&f.to_lowercase()))))
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

    const OWNER_TAGGER: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:stack-OwnerTaggerFunction-1";
    const SESSION_POLICY: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicyFunction-2";

    fn product() -> Product {
        Product::new(OWNER_TAGGER, SESSION_POLICY, "CreatedBy", "AwsUserId").unwrap()
    }

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
            parked.target,
            "arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicyFunction-AbC"
        );
        assert_eq!(
            function_name(&parked.target),
            "stack-SessionPolicyFunction-AbC"
        );
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
        assert_eq!(function_name(&parked.target), "tagger");
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
            (json!({"id": "x"}).to_string(), vec![("TARGET_ARN", "arn:aws:events:us-east-1:1:event-bus/default")], "a forwarder's dead letter without RULE_ARN"),
        ] {
            let err = read(&message(body, &attributes)).unwrap_err();
            assert!(err.starts_with(reason), "{err}");
        }
    }

    #[test]
    fn only_the_products_own_functions_are_admitted() {
        let product = product();
        let ours = read(&message(
            destination_record("stack-SessionPolicyFunction-2", "Permanent"),
            &[],
        ))
        .unwrap();
        assert_eq!(
            product.route(&ours).unwrap(),
            vec![SESSION_POLICY.to_owned()]
        );
        // the same name in another account, and another function of this account
        for forged in [
            destination_record("stack-OwnerTaggerFunction-1", "Permanent")
                .replace("123456789012", "999999999999"),
            destination_record("attacker", "Permanent"),
        ] {
            let parked = read(&message(forged, &[])).unwrap();
            let why = product.route(&parked).unwrap_err();
            assert!(
                why.starts_with(&format!("it names {}, which is not one of the product's functions ({OWNER_TAGGER}, {SESSION_POLICY})", parked.target)),
                "{why}"
            );
        }
    }

    #[test]
    fn the_product_is_two_function_arns_of_one_account_and_region_and_two_tag_keys() {
        assert_eq!(
            Product::new(
                "stack-OwnerTaggerFunction-1",
                SESSION_POLICY,
                "CreatedBy",
                "AwsUserId"
            )
            .unwrap_err(),
            "\"stack-OwnerTaggerFunction-1\" is not a Lambda function ARN"
        );
        let elsewhere = SESSION_POLICY.replace("us-east-1", "eu-west-1");
        assert_eq!(
            Product::new(OWNER_TAGGER, &elsewhere, "CreatedBy", "AwsUserId").unwrap_err(),
            format!("{OWNER_TAGGER} and {elsewhere} are not in one account and region")
        );
        assert_eq!(
            Product::new(OWNER_TAGGER, SESSION_POLICY, "", "AwsUserId").unwrap_err(),
            "the owner tag key is empty"
        );
        let qualified = Product::new(
            &format!("{OWNER_TAGGER}:$LATEST"),
            SESSION_POLICY,
            "CreatedBy",
            "AwsUserId",
        )
        .unwrap();
        assert_eq!(qualified.owner_tagger, OWNER_TAGGER);
        assert_eq!(
            qualified.home_bus(),
            "arn:aws:events:us-east-1:123456789012:event-bus/default"
        );
    }

    /// A dead letter of the eu-west-1 forwarder's rule `rule`, holding `event`.
    fn forwarded(rule: &str, event: Value) -> Parked {
        read(&message(
            event.to_string(),
            &[
                (
                    "TARGET_ARN",
                    "arn:aws:events:us-east-1:123456789012:event-bus/default",
                ),
                (
                    "RULE_ARN",
                    &format!("arn:aws:events:eu-west-1:123456789012:rule/ssm-session-owner-{rule}"),
                ),
                ("ERROR_CODE", "THROTTLING"),
            ],
        ))
        .unwrap()
    }

    fn tag_change(keys: &[&str]) -> Value {
        json!({"source": "aws.tag", "detail-type": "Tag Change on Resource", "region": "eu-west-1",
               "detail": {"service": "ec2", "resource-type": "instance", "changed-tag-keys": keys}})
    }

    #[test]
    fn a_forwarders_dead_letter_goes_to_the_home_functions_the_home_rules_would_have_invoked() {
        let product = product();
        let launch = forwarded(
            "forward-run-instances",
            json!({"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail",
                   "detail": {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"}}),
        );
        assert_eq!(launch.source, Source::ForwarderDeadLetter);
        assert_eq!(
            launch.target,
            "arn:aws:events:us-east-1:123456789012:event-bus/default"
        );
        assert_eq!(launch.error_type, "THROTTLING");
        assert_eq!(
            product.route(&launch).unwrap(),
            vec![OWNER_TAGGER.to_owned()]
        );
        let termination = forwarded(
            "forward-terminations",
            json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
                   "detail": {"instance-id": "i-1", "state": "terminated"}}),
        );
        assert_eq!(
            product.route(&termination).unwrap(),
            vec![SESSION_POLICY.to_owned()]
        );
        for (keys, functions) in [
            (vec!["CreatedBy"], vec![OWNER_TAGGER]),
            (vec!["AwsUserId", "Name"], vec![SESSION_POLICY]),
            (
                vec!["AwsUserId", "CreatedBy"],
                vec![OWNER_TAGGER, SESSION_POLICY],
            ),
            // an owner's share request, from another region
            (vec!["ShareWith", "ShareFor"], vec![OWNER_TAGGER]),
            (
                vec!["ShareFor", "AwsUserId"],
                vec![OWNER_TAGGER, SESSION_POLICY],
            ),
        ] {
            let parked = forwarded("forward-tag-changes", tag_change(&keys));
            assert_eq!(product.route(&parked).unwrap(), functions, "{keys:?}");
        }
        // A key only in another spelling: no home rule would have taken it.
        let parked = forwarded("forward-tag-changes", tag_change(&["createdby"]));
        assert_eq!(
            product.route(&parked).unwrap_err(),
            "its changed-tag-keys [\"createdby\"] name neither CreatedBy nor AwsUserId nor a share request key (ShareWith, ShareFor) (the deployment's OWNER_TAG_KEY, USER_ID_TAG_KEY, SHARE_WITH_TAG_KEY and SHARE_FOR_TAG_KEY): no home rule would take it"
        );
    }

    #[test]
    fn a_forwarded_event_is_refused_unless_the_products_rule_parked_what_it_forwards_for_the_home_bus(
    ) {
        let product = product();
        let launch = json!({"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail",
                            "detail": {"eventName": "RunInstances"}});
        // another bus
        let mut parked = forwarded("forward-run-instances", launch.clone());
        parked.target = "arn:aws:events:us-east-1:999999999999:event-bus/default".into();
        assert!(product.route(&parked).unwrap_err().starts_with(
            "it was going to arn:aws:events:us-east-1:999999999999:event-bus/default, which is not the home region's default bus (arn:aws:events:us-east-1:123456789012:event-bus/default)"
        ));
        // a rule that is not a forwarder's, or a forwarder's of another account
        for rule in [
            "arn:aws:events:eu-west-1:123456789012:rule/attacker",
            "arn:aws:events:eu-west-1:999999999999:rule/ssm-session-owner-forward-run-instances",
            "arn:aws:events:eu-west-1:123456789012:rule/bus/ssm-session-owner-forward-run-instances",
        ] {
            let mut parked = forwarded("forward-run-instances", launch.clone());
            parked.rule = Some(rule.into());
            let why = product.route(&parked).unwrap_err();
            assert!(
                why.starts_with(&format!("it was parked by {rule:?}, which is not one of the product's forwarder rules")),
                "{why}"
            );
        }
        // an event the rule does not forward
        for (rule, event) in [
            (
                "forward-run-instances",
                json!({"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail", "detail": {"eventName": "TerminateInstances"}}),
            ),
            (
                "forward-terminations",
                json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {"state": "running"}}),
            ),
            (
                "forward-tag-changes",
                json!({"source": "custom", "detail-type": "Tag Change on Resource", "detail": {"changed-tag-keys": ["CreatedBy"]}}),
            ),
        ] {
            let why = product.route(&forwarded(rule, event)).unwrap_err();
            assert!(why.contains(&format!("is not what arn:aws:events:eu-west-1:123456789012:rule/ssm-session-owner-{rule} forwards")), "{why}");
        }
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
        let to = [parked.target.clone()];
        assert!(filter(&[], &[]).selects(&parked, &to));
        assert!(filter(&["ownertagger"], &["Retryable"]).selects(&parked, &to));
        assert!(!filter(&["SessionPolicy"], &[]).selects(&parked, &to));
        assert!(!filter(&[], &["Permanent"]).selects(&parked, &to));
        assert!(!filter(&[], &["retryable"]).selects(&parked, &to));
        // routed to both functions, either name selects it
        let both = [parked.target.clone(), SESSION_POLICY.to_owned()];
        assert!(filter(&["SessionPolicy"], &[]).selects(&parked, &both));
    }
}
