//! The EventBridge events this product reacts to, modelling only the fields it reads.

use std::collections::BTreeMap;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::ids::ManagedNodeId;
use crate::domain::reason::{Reason, ReasonCode};

pub(crate) const CLOUDTRAIL_API_CALL: &str = "AWS API Call via CloudTrail";

/// Which function an event belongs to, decided from `source`, `detail-type` and `eventName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// CloudTrail `RunInstances`, or `CreateFleet` (an instant fleet names its instances): the
    /// owner-tagging function.
    RunInstances,
    /// "Tag Change on Resource": a grant when an instance gains the user-id tag.
    TagChange,
    /// "EC2 Instance State-change Notification": a revoke when an instance terminates.
    StateChange,
    /// "Scheduled Event": the reconcile.
    Scheduled,
    /// The product's own "Share Expiry", sent by a one-time schedule at a share's end: the
    /// owner-tagger ends the share on that instance.
    ShareExpiry,
    /// Systems Manager's "SSM Managed Instance Registration": a node outside EC2 (`mi-*`)
    /// registered with an activation; the owner-tagger gives it its owner, and the
    /// session-policy function grants the owner it carries.
    ManagedNodeRegistration,
    /// "SSM Managed Instance Deregistration": a node outside EC2 left; the session-policy
    /// function converges every user, since the node's tags, and so its owner, went with it.
    ManagedNodeDeregistration,
}

/// The owner-tagging function.
pub const OWNER_TAGGER: &str = "owner-tagger";
/// The session-policy function.
pub const SESSION_POLICY: &str = "session-policy";

impl Route {
    /// The functions (and `functions/` crates) whose rules match the event, in the order a
    /// local replay runs them: a schedule goes to the tag sweep first and then the reconcile; a
    /// tag change goes to the owner-tagger when one of `owner_tagger_keys` changed (the owner
    /// key, the share request keys) and to the session-policy function when the user-id key
    /// changed (or, to be told why it is ignored, when neither).
    pub fn functions(
        self,
        detail: &Value,
        owner_tagger_keys: &[&str],
        user_id_key: &str,
    ) -> Vec<&'static str> {
        match self {
            Route::RunInstances | Route::ShareExpiry => vec![OWNER_TAGGER],
            Route::ManagedNodeRegistration => vec![OWNER_TAGGER, SESSION_POLICY],
            Route::ManagedNodeDeregistration => vec![SESSION_POLICY],
            Route::StateChange => vec![SESSION_POLICY],
            Route::Scheduled => vec![OWNER_TAGGER, SESSION_POLICY],
            Route::TagChange => {
                let changed = |key: &str| {
                    detail["changed-tag-keys"]
                        .as_array()
                        .is_some_and(|keys| keys.iter().any(|k| k == key))
                };
                let owner_tagger = owner_tagger_keys.iter().any(|key| changed(key));
                match (owner_tagger, changed(user_id_key)) {
                    (true, true) => vec![OWNER_TAGGER, SESSION_POLICY],
                    (true, false) => vec![OWNER_TAGGER],
                    (false, _) => vec![SESSION_POLICY],
                }
            }
        }
    }
}

pub(crate) const TAG_CHANGE: &str = "Tag Change on Resource";
pub(crate) const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
pub(crate) const SCHEDULED: &str = "Scheduled Event";
/// The source and detail-type of the expiry event the owner-tagger's one-time schedules send
/// (a custom source: `aws.` ones are AWS's).
pub const SHARE_EXPIRY_SOURCE: &str = "ssm-session-owner.sharing";
pub const SHARE_EXPIRY: &str = "Share Expiry";
/// Systems Manager's event when a managed node registers (AWS-FACTS; no public sample of its
/// detail was found, so the node is read from `resources` or the detail's instance id).
pub(crate) const MANAGED_NODE_REGISTRATION: &str = "SSM Managed Instance Registration";
pub(crate) const MANAGED_NODE_DEREGISTRATION: &str = "SSM Managed Instance Deregistration";

/// Parse the envelope of any EventBridge event.
pub fn parse_envelope(event: Value) -> Result<EventBridgeEvent<Value>, Reason> {
    serde_json::from_value(event).map_err(|e| {
        Reason::new(
            ReasonCode::Malformed,
            format!("not an EventBridge event: {e}"),
        )
    })
}

/// Decide which function handles an event; the reason when none does.
pub fn route(envelope: &EventBridgeEvent<Value>) -> Result<Route, Reason> {
    let event_name = envelope.detail.get("eventName").and_then(Value::as_str);
    match (
        envelope.source.as_str(),
        envelope.detail_type.as_str(),
        event_name,
    ) {
        ("aws.ec2", CLOUDTRAIL_API_CALL, Some("RunInstances" | "CreateFleet")) => {
            Ok(Route::RunInstances)
        }
        ("aws.tag", TAG_CHANGE, _) => Ok(Route::TagChange),
        ("aws.ec2", STATE_CHANGE, _) => Ok(Route::StateChange),
        ("aws.events", SCHEDULED, _) => Ok(Route::Scheduled),
        (SHARE_EXPIRY_SOURCE, SHARE_EXPIRY, _) => Ok(Route::ShareExpiry),
        ("aws.ssm", MANAGED_NODE_REGISTRATION, _) => Ok(Route::ManagedNodeRegistration),
        ("aws.ssm", MANAGED_NODE_DEREGISTRATION, _) => Ok(Route::ManagedNodeDeregistration),
        (source, detail_type, Some(name)) => Err(Reason::new(
            ReasonCode::OtherEvent,
            format!("no function handles {source} / {detail_type} / {name}"),
        )),
        (source, detail_type, None) => Err(Reason::new(
            ReasonCode::OtherEvent,
            format!("no function handles {source} / {detail_type}"),
        )),
    }
}

/// One event as a function receives it: routed once, its detail typed for its route.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub id: Option<String>,
    /// The region the event names: forwarded events keep the region they happened in.
    pub region: Option<String>,
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    pub resources: Vec<String>,
    pub event: Event,
}

/// The event's kind and its typed detail.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    RunInstances(Box<CloudTrailDetail>),
    TagChange(TagChangeDetail),
    StateChange(StateChangeDetail),
    Scheduled,
    ShareExpiry(ShareExpiryDetail),
    ManagedNodeRegistration(ManagedNodeId),
    ManagedNodeDeregistration(ManagedNodeId),
}

/// An event no function acts on: its id (when it had one) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unhandled {
    pub id: Option<String>,
    pub reason: Reason,
}

/// Parse, route and type one event: the one dispatcher both functions use.
pub(crate) fn dispatch(event: Value) -> Result<Incoming, Unhandled> {
    let mut envelope = parse_envelope(event).map_err(|reason| Unhandled { id: None, reason })?;
    let id = envelope.id.clone();
    let unhandled = |reason: Reason| Unhandled {
        id: id.clone(),
        reason,
    };
    let route = route(&envelope).map_err(unhandled)?;
    let malformed = |what: &str, e: serde_json::Error| {
        unhandled(Reason::new(
            ReasonCode::Malformed,
            format!("malformed {what} detail: {e}"),
        ))
    };
    let detail = std::mem::take(&mut envelope.detail);
    let event = match route {
        Route::RunInstances if detail["eventName"] == "CreateFleet" => {
            Event::RunInstances(Box::new(create_fleet_as_launch(detail).map_err(unhandled)?))
        }
        Route::RunInstances => Event::RunInstances(Box::new(
            serde_json::from_value(detail).map_err(|e| malformed("CloudTrail", e))?,
        )),
        Route::TagChange => Event::TagChange(
            serde_json::from_value(detail).map_err(|e| malformed("tag-change", e))?,
        ),
        Route::StateChange => Event::StateChange(
            serde_json::from_value(detail).map_err(|e| malformed("state-change", e))?,
        ),
        Route::Scheduled => Event::Scheduled,
        Route::ShareExpiry => Event::ShareExpiry(
            serde_json::from_value(detail).map_err(|e| malformed("share-expiry", e))?,
        ),
        Route::ManagedNodeRegistration => Event::ManagedNodeRegistration(
            registered_node(&detail, envelope.resources.as_deref().unwrap_or_default())
                .map_err(unhandled)?,
        ),
        Route::ManagedNodeDeregistration => Event::ManagedNodeDeregistration(
            registered_node(&detail, envelope.resources.as_deref().unwrap_or_default())
                .map_err(unhandled)?,
        ),
    };
    Ok(Incoming {
        id: envelope.id,
        region: envelope.region,
        time: envelope.time,
        resources: envelope.resources.unwrap_or_default(),
        event,
    })
}

/// The node a registration event names: the `managed-instance` ARN among its `resources`, or
/// else an instance id in its detail (`instance-id`, `instanceId` or `InstanceId`). The event
/// only says which node to look at: the owner-tagger reads the node, its tags and its
/// activation itself, so a forged event owns nothing.
fn registered_node(detail: &Value, resources: &[String]) -> Result<ManagedNodeId, Reason> {
    if let Some(id) = resources
        .iter()
        .find_map(|arn| ManagedNodeId::from_arn(arn))
    {
        return Ok(id);
    }
    let named = ["instance-id", "instanceId", "InstanceId"]
        .iter()
        .find_map(|key| detail.get(*key).and_then(Value::as_str));
    match named {
        Some(id) => ManagedNodeId::parse(id),
        None => Err(Reason::new(
            ReasonCode::Malformed,
            "the registration event names no managed node (no managed-instance ARN, no instance id)",
        )),
    }
}

/// `detail` of the product's "Share Expiry": which instance, in which region. Anyone who may
/// put events on the bus can send one; it only makes the owner-tagger look at the instance, and
/// a share ends on the instance's own expiry tag and the function's clock, never on the event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ShareExpiryDetail {
    #[serde(rename = "instance-id")]
    pub instance_id: String,
    pub region: String,
}

/// CloudTrail's record of `CreateFleet`, read into the launch RunInstances describes: the
/// instances of an instant fleet (`responseElements.CreateFleetResponse.fleetInstanceSet`) and
/// the instance tags of its request (`CreateFleetRequest.TagSpecification`), so that the same
/// owner rules, reason codes and calls apply. CloudTrail writes this call's request and
/// response in the EC2 query's own shape: a list of one is an object, an empty one `""`.
/// A fleet of type `maintain` or `request` (the API's default is `maintain`) launches later,
/// in calls of its own: only the sweep sees those instances.
fn create_fleet_as_launch(detail: Value) -> Result<CloudTrailDetail, Reason> {
    let mut launch: CloudTrailDetail = serde_json::from_value(detail.clone()).map_err(|e| {
        Reason::new(
            ReasonCode::Malformed,
            format!("malformed CreateFleet detail: {e}"),
        )
    })?;
    // A failed or dry-run call: the screen says which.
    if launch.error_code.is_some() {
        return Ok(launch);
    }
    let request = &detail["requestParameters"]["CreateFleetRequest"];
    let kind = request["Type"].as_str().unwrap_or("maintain");
    if !kind.eq_ignore_ascii_case("instant") {
        return Err(Reason::new(
            ReasonCode::FleetNotInstant,
            format!("an EC2 Fleet of type {kind} launches its instances later, not in this call: the tag sweep gives them an owner"),
        ));
    }
    let tags: Vec<Tag> = one_or_many(&request["TagSpecification"])
        .into_iter()
        .filter(|spec| spec["ResourceType"] == "instance")
        .flat_map(|spec| one_or_many(&spec["Tag"]))
        .filter_map(|tag| {
            Some(Tag {
                key: tag["Key"].as_str()?.to_owned(),
                value: tag["Value"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    let response = &detail["responseElements"]["CreateFleetResponse"];
    let ids: Vec<String> = one_or_many(&response["fleetInstanceSet"]["item"])
        .into_iter()
        .flat_map(|set| one_or_many(&set["instanceIds"]["item"]))
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    if ids.is_empty() {
        let errors: Vec<&str> = one_or_many(&response["errorSet"]["item"])
            .into_iter()
            .filter_map(|e| e["errorCode"].as_str())
            .collect();
        return Err(Reason::new(
            ReasonCode::FailedCall,
            format!(
                "the instant fleet launched no instance{}",
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join(", "))
                }
            ),
        ));
    }
    launch.request_parameters = Some(RunInstancesRequest {
        tag_specification_set: Some(Items {
            items: vec![TagSpecification {
                resource_type: Some("instance".into()),
                tags,
            }],
        }),
    });
    launch.response_elements = Some(RunInstancesResponse {
        instances_set: Some(Items {
            items: ids
                .into_iter()
                .map(|instance_id| LaunchedInstanceItem {
                    instance_id,
                    tag_set: None,
                })
                .collect(),
        }),
    });
    Ok(launch)
}

/// The members of an EC2 query list as CloudTrail writes it: an array, one object, or nothing.
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        Value::String(text) if text.is_empty() => Vec::new(),
        one => vec![one],
    }
}

/// A CloudTrail record as delivered in `detail`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CloudTrailDetail {
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub error_code: Option<String>,
    pub user_identity: Option<UserIdentity>,
    pub request_parameters: Option<RunInstancesRequest>,
    pub response_elements: Option<RunInstancesResponse>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserIdentity {
    #[serde(rename = "type")]
    pub identity_type: Option<String>,
    pub principal_id: Option<String>,
    pub arn: Option<String>,
    pub session_context: Option<SessionContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionContext {
    pub session_issuer: Option<SessionIssuer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionIssuer {
    #[serde(rename = "type")]
    pub issuer_type: Option<String>,
    pub arn: Option<String>,
    pub user_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunInstancesRequest {
    pub tag_specification_set: Option<Items<TagSpecification>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagSpecification {
    pub resource_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunInstancesResponse {
    pub instances_set: Option<Items<LaunchedInstanceItem>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LaunchedInstanceItem {
    pub instance_id: String,
    pub tag_set: Option<Items<Tag>>,
}

/// CloudTrail's `{"items": [...]}` wrapper.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Items<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// `detail` of "Tag Change on Resource".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct TagChangeDetail {
    #[serde(default)]
    pub changed_tag_keys: Vec<String>,
    pub service: Option<String>,
    pub resource_type: Option<String>,
    /// The resource's tags after the change.
    #[serde(default)]
    pub tags: BTreeMap<String, Value>,
}

impl TagChangeDetail {
    /// Whether this change is about `key` on an EC2 instance; the reason (with
    /// `unchanged_code` when another key changed) when it is not.
    pub(crate) fn changed_on_instance(
        &self,
        keys: &[String],
        unchanged_code: ReasonCode,
    ) -> Result<(), Reason> {
        if self.service.as_deref() != Some("ec2")
            || self.resource_type.as_deref() != Some("instance")
        {
            return Err(Reason::new(
                ReasonCode::OtherEvent,
                format!(
                    "not an EC2 instance (service {}, resource-type {})",
                    self.service.as_deref().unwrap_or("none"),
                    self.resource_type.as_deref().unwrap_or("none")
                ),
            ));
        }
        if !self.changed_tag_keys.iter().any(|k| keys.contains(k)) {
            let text = match keys {
                [first, rest @ ..] if !rest.is_empty() => {
                    format!("{first} did not change (nor {})", rest.join(", "))
                }
                _ => format!("{} did not change", keys.join("")),
            };
            return Err(Reason::new(unchanged_code, text));
        }
        Ok(())
    }
}

/// `detail` of "EC2 Instance State-change Notification".
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct StateChangeDetail {
    pub instance_id: String,
    pub state: String,
}

/// Tags as a map; a later duplicate key wins, as in EC2.
pub(crate) fn tag_map<'a>(tags: impl IntoIterator<Item = &'a Tag>) -> BTreeMap<String, String> {
    tags.into_iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(json: &str) -> EventBridgeEvent<Value> {
        parse_envelope(serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn run_instances_routes_to_the_owner_tagger() {
        let event = envelope(include_str!(
            "../../../events/run-instances-created-by.json"
        ));
        assert_eq!(route(&event), Ok(Route::RunInstances));
        assert_eq!(
            Route::RunInstances.functions(&event.detail, &["CreatedBy"], "AwsUserId"),
            ["owner-tagger"]
        );
    }

    #[test]
    fn state_tag_and_schedule_events_route_to_the_session_policy_function() {
        for (file, json, expected) in [
            (
                "state-change-terminated-docs.json",
                real_event!("state-change-terminated-docs.json"),
                Route::StateChange,
            ),
            (
                "state-change-running.json",
                real_event!("state-change-running.json"),
                Route::StateChange,
            ),
            (
                "tag-change-instance-single-key.json",
                real_event!("tag-change-instance-single-key.json"),
                Route::TagChange,
            ),
            (
                "tag-change-subnet-non-instance.json",
                real_event!("tag-change-subnet-non-instance.json"),
                Route::TagChange,
            ),
        ] {
            assert_eq!(route(&envelope(json)), Ok(expected), "{file}");
            let event = envelope(json);
            assert_eq!(
                expected.functions(&event.detail, &["CreatedBy"], "AwsUserId"),
                ["session-policy"],
                "{file}"
            );
        }
    }

    #[test]
    fn other_api_calls_are_unrouted_with_the_reason() {
        let event = envelope(real_event!(
            "negative-cloudtrail-controltower-sso-assumed-role.json"
        ));
        assert_eq!(
            route(&event),
            Err(Reason::new(
                ReasonCode::OtherEvent,
                "no function handles aws.controltower / AWS API Call via CloudTrail / CreateManagedAccount"
            ))
        );
    }

    #[test]
    fn a_non_eventbridge_payload_is_rejected_with_the_reason() {
        let err = parse_envelope(serde_json::json!({"hello": "world"})).unwrap_err();
        assert_eq!(
            err.text,
            "not an EventBridge event: missing field `detail-type`"
        );
        assert_eq!(err.code, ReasonCode::Malformed);
    }

    #[test]
    fn schedules_go_to_the_sweep_then_the_reconcile_and_tag_changes_by_key() {
        let detail = |keys: &[&str]| serde_json::json!({"changed-tag-keys": keys});
        let route = |r: Route, keys: &[&str]| {
            r.functions(
                &detail(keys),
                &["CreatedBy", "ShareWith", "ShareFor"],
                "AwsUserId",
            )
        };
        assert_eq!(
            route(Route::Scheduled, &[]),
            ["owner-tagger", "session-policy"]
        );
        assert_eq!(route(Route::TagChange, &["CreatedBy"]), ["owner-tagger"]);
        assert_eq!(route(Route::TagChange, &["AwsUserId"]), ["session-policy"]);
        assert_eq!(
            route(Route::TagChange, &["AwsUserId", "CreatedBy"]),
            ["owner-tagger", "session-policy"]
        );
        assert_eq!(route(Route::TagChange, &["Name"]), ["session-policy"]);
        assert_eq!(route(Route::TagChange, &["ShareFor"]), ["owner-tagger"]);
    }
}

#[cfg(test)]
mod create_fleet_tests {
    use super::*;

    fn fleet() -> Value {
        serde_json::from_str(include_str!("../../../events/create-fleet-instant.json")).unwrap()
    }

    fn launch_of(event: Value) -> Result<CloudTrailDetail, Reason> {
        match dispatch(event) {
            Ok(Incoming {
                event: Event::RunInstances(detail),
                ..
            }) => Ok(*detail),
            Ok(other) => panic!("not a launch: {other:?}"),
            Err(unhandled) => Err(unhandled.reason),
        }
    }

    fn ids(launch: &CloudTrailDetail) -> Vec<String> {
        launch
            .response_elements
            .as_ref()
            .unwrap()
            .instances_set
            .as_ref()
            .unwrap()
            .items
            .iter()
            .map(|i| i.instance_id.clone())
            .collect()
    }

    #[test]
    fn an_instant_fleet_is_a_launch_of_its_instances_with_its_instance_tags() {
        let launch = launch_of(fleet()).unwrap();
        assert_eq!(ids(&launch), ["i-0a1b2c3d4e5f60009", "i-0a1b2c3d4e5f60010"]);
        let specs = &launch
            .request_parameters
            .as_ref()
            .unwrap()
            .tag_specification_set
            .as_ref()
            .unwrap()
            .items;
        let tags: Vec<(&str, &str)> = specs[0]
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        // the instance's tags, not the fleet's
        assert_eq!(
            tags,
            [("CreatedBy", "ada.lovelace"), ("Name", "research-fleet")]
        );
        assert_eq!(launch.event_name.as_deref(), Some("CreateFleet"));
    }

    #[test]
    fn lists_of_one_and_of_many_read_alike() {
        let mut one = fleet();
        let response = &mut one["detail"]["responseElements"]["CreateFleetResponse"];
        response["fleetInstanceSet"]["item"] = serde_json::json!([
            {"instanceIds": {"item": "i-0a1b2c3d4e5f60009"}},
            {"instanceIds": {"item": ["i-0a1b2c3d4e5f60010", "i-0a1b2c3d4e5f60011"]}}
        ]);
        one["detail"]["requestParameters"]["CreateFleetRequest"]["TagSpecification"] = serde_json::json!({"ResourceType": "instance", "tag": 1,
                "Tag": {"Key": "CreatedBy", "Value": "tim.malone", "tag": 1}});
        let launch = launch_of(one).unwrap();
        assert_eq!(
            ids(&launch),
            [
                "i-0a1b2c3d4e5f60009",
                "i-0a1b2c3d4e5f60010",
                "i-0a1b2c3d4e5f60011"
            ]
        );
        let spec = &launch
            .request_parameters
            .unwrap()
            .tag_specification_set
            .unwrap()
            .items[0];
        assert_eq!(spec.tags[0].value, "tim.malone");
    }

    #[test]
    fn other_fleets_and_fleets_that_launched_nothing_are_ignored_with_their_reason() {
        for (kind, code) in [
            (Some("maintain"), ReasonCode::FleetNotInstant),
            (Some("request"), ReasonCode::FleetNotInstant),
            (None, ReasonCode::FleetNotInstant),
        ] {
            let mut event = fleet();
            let request = &mut event["detail"]["requestParameters"]["CreateFleetRequest"];
            match kind {
                Some(kind) => request["Type"] = serde_json::json!(kind),
                None => {
                    request.as_object_mut().unwrap().remove("Type");
                }
            }
            assert_eq!(launch_of(event).unwrap_err().code, code, "{kind:?}");
        }
        let mut empty = fleet();
        let response = &mut empty["detail"]["responseElements"]["CreateFleetResponse"];
        response["fleetInstanceSet"] = serde_json::json!("");
        response["errorSet"] =
            serde_json::json!({"item": {"errorCode": "InsufficientInstanceCapacity"}});
        let reason = launch_of(empty).unwrap_err();
        assert_eq!(reason.code, ReasonCode::FailedCall);
        assert!(
            reason.text.contains("InsufficientInstanceCapacity"),
            "{reason}"
        );
        // a failed call keeps its error code for the screen (FailedCall, DryRun)
        let mut failed = fleet();
        failed["detail"]["errorCode"] = serde_json::json!("Client.UnauthorizedOperation");
        assert_eq!(
            launch_of(failed).unwrap().error_code.as_deref(),
            Some("Client.UnauthorizedOperation")
        );
    }
}

#[cfg(test)]
mod registration_tests {
    use super::*;

    #[test]
    fn a_registration_names_its_node_by_arn_or_detail_and_goes_to_both_functions() {
        let sample: Value =
            serde_json::from_str(sample_event!("managed-node-registration.json")).unwrap();
        let envelope = parse_envelope(sample.clone()).unwrap();
        let route = route(&envelope).unwrap();
        assert_eq!(route, Route::ManagedNodeRegistration);
        // the owner-tagger owns the node; the session-policy function grants its owner
        assert_eq!(
            route.functions(&envelope.detail, &[], "AwsUserId"),
            [OWNER_TAGGER, SESSION_POLICY]
        );
        let node = |event: Value| match dispatch(event).map(|i| i.event) {
            Ok(Event::ManagedNodeRegistration(node)) => Ok(node.to_string()),
            Ok(other) => panic!("{other:?}"),
            Err(unhandled) => Err(unhandled.reason.code),
        };
        assert_eq!(node(sample.clone()), Ok("mi-0a1b2c3d4e5f60001".into()));
        // the ARN first; the detail's id when there is none
        let mut by_detail = sample.clone();
        by_detail["resources"] = serde_json::json!([]);
        by_detail["detail"] = serde_json::json!({"InstanceId": "mi-0a1b2c3d4e5f60002"});
        assert_eq!(node(by_detail), Ok("mi-0a1b2c3d4e5f60002".into()));
        let mut nameless = sample.clone();
        nameless["resources"] = serde_json::json!(["arn:aws:ec2:us-east-1:1:instance/i-1"]);
        nameless["detail"] = serde_json::json!({});
        assert_eq!(node(nameless), Err(ReasonCode::Malformed));
        // a deregistration names its node the same way, for the session-policy function only
        let mut deregistered = sample.clone();
        deregistered["detail-type"] = serde_json::json!("SSM Managed Instance Deregistration");
        let envelope = parse_envelope(deregistered.clone()).unwrap();
        let routed = super::route(&envelope).unwrap();
        assert_eq!(routed, Route::ManagedNodeDeregistration);
        assert_eq!(
            routed.functions(&envelope.detail, &[], "AwsUserId"),
            [SESSION_POLICY]
        );
        assert!(matches!(
            dispatch(deregistered).map(|i| i.event),
            Ok(Event::ManagedNodeDeregistration(node)) if node.as_str() == "mi-0a1b2c3d4e5f60001"
        ));
        let mut hostile = sample;
        hostile["resources"] = serde_json::json!([]);
        hostile["detail"] = serde_json::json!({"instance-id": "mi-$(reboot)"});
        assert_eq!(node(hostile), Err(ReasonCode::InvalidInstanceId));
    }
}
