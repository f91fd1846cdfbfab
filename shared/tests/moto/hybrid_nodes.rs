//! Managed nodes outside EC2 (`mi-*`) through the Systems Manager adapter.
//!
//! moto has no activations and no `DescribeInstanceInformation`, and refuses `ManagedInstance`
//! tags, so the adapter is covered here with aws-smithy-mocks: each rule matches only the
//! request the adapter must send (the node, the resource type, the filter), and the use case
//! runs through it with the fakes for EC2 and IAM.

use aws_sdk_ssm::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_ssm::operation::describe_activations::DescribeActivationsOutput;
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
use aws_sdk_ssm::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_ssm::operation::remove_tags_from_resource::RemoveTagsFromResourceOutput;
use aws_sdk_ssm::types::{
    Activation, DescribeActivationsFilterKeys, InstanceInformation, ResourceTypeForTagging, Tag,
};
use aws_sdk_ssm::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use shared::app::owner_tagging::OwnerTagger;
use shared::domain::ids::{ManagedNodeId, RoleId};
use shared::fakes::FakeAws;
use shared::ports::{HybridNodes, RegisteredNode};
use shared::{Config, Status};

const NODE: &str = "mi-0a1b2c3d4e5f60001";
const ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

fn node() -> ManagedNodeId {
    ManagedNodeId::parse(NODE).unwrap()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

/// DescribeInstanceInformation for exactly `NODE` (the InstanceIds filter), answering it with
/// `activation`.
fn node_information(activation: Option<&'static str>) -> aws_smithy_mocks::Rule {
    mock!(Client::describe_instance_information)
        .match_requests(|req| {
            req.filters()
                .iter()
                .any(|f| f.key() == "InstanceIds" && f.values() == [NODE])
        })
        .then_output(move || {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    InstanceInformation::builder()
                        .instance_id(NODE)
                        .set_activation_id(activation.map(str::to_owned))
                        .resource_type(aws_sdk_ssm::types::ResourceType::ManagedInstance)
                        .build(),
                )
                .build()
        })
}

/// ListTagsForResource of `NODE` as a ManagedInstance, answering `tags`.
fn node_tags(tags: &'static [(&'static str, &'static str)]) -> aws_smithy_mocks::Rule {
    mock!(Client::list_tags_for_resource)
        .match_requests(|req| {
            req.resource_type() == Some(&ResourceTypeForTagging::ManagedInstance)
                && req.resource_id() == Some(NODE)
        })
        .then_output(move || {
            ListTagsForResourceOutput::builder()
                .set_tag_list(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
                .build()
        })
}

/// DescribeActivations filtered to `id`, answering it with `tags`.
fn activation(id: &'static str, tags: Vec<Tag>) -> aws_smithy_mocks::Rule {
    mock!(Client::describe_activations)
        .match_requests(move |req| {
            req.filters().iter().any(|f| {
                f.filter_key() == Some(&DescribeActivationsFilterKeys::ActivationIds)
                    && f.filter_values() == [id]
            })
        })
        .then_output(move || {
            DescribeActivationsOutput::builder()
                .activation_list(
                    Activation::builder()
                        .activation_id(id)
                        .set_tags(Some(tags.clone()))
                        .build(),
                )
                .build()
        })
}

/// AddTagsToResource of exactly one tag `key=value` on `NODE` as a ManagedInstance.
fn add_exactly(key: &'static str, value: String) -> aws_smithy_mocks::Rule {
    mock!(Client::add_tags_to_resource)
        .match_requests(move |req| {
            req.resource_type() == Some(&ResourceTypeForTagging::ManagedInstance)
                && req.resource_id() == Some(NODE)
                && req.tags() == [tag(key, &value)]
        })
        .then_output(|| AddTagsToResourceOutput::builder().build())
}

#[tokio::test]
async fn the_adapter_reads_a_node_its_tags_and_its_activation_and_writes_one_tag() {
    let adas = format!("{ROLE_ID}:ada");
    let information = node_information(Some("act-ada"));
    let tags = node_tags(&[("Name", "lab"), ("awsuserid", "x")]);
    let read_activation = activation("act-ada", vec![tag("AwsUserId", &adas)]);
    let add = add_exactly("AwsUserId", adas.clone());
    let remove = mock!(Client::remove_tags_from_resource)
        .match_requests(|req| {
            req.resource_type() == Some(&ResourceTypeForTagging::ManagedInstance)
                && req.resource_id() == Some(NODE)
                && req.tag_keys() == ["awsuserid"]
        })
        .then_output(|| RemoveTagsFromResourceOutput::builder().build());
    let ssm = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        [&information, &tags, &read_activation, &add, &remove]
    );

    assert_eq!(
        ssm.registered_node(&node()).await.unwrap(),
        Some(RegisteredNode {
            node_id: node(),
            activation_id: Some("act-ada".into())
        })
    );
    assert_eq!(
        ssm.node_tags(&node()).await.unwrap(),
        [
            ("Name".to_owned(), "lab".to_owned()),
            ("awsuserid".to_owned(), "x".to_owned())
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        ssm.activation_tags("act-ada").await.unwrap(),
        Some(
            [("AwsUserId".to_owned(), adas.clone())]
                .into_iter()
                .collect()
        )
    );
    ssm.tag_node(&node(), "AwsUserId", &adas).await.unwrap();
    ssm.untag_node(&node(), "awsuserid").await.unwrap();
    assert_eq!(
        (
            information.num_calls(),
            tags.num_calls(),
            read_activation.num_calls(),
            add.num_calls(),
            remove.num_calls()
        ),
        (1, 1, 1, 1, 1)
    );
}

#[tokio::test]
async fn an_unknown_node_or_activation_is_none_and_an_unreadable_answer_is_an_error() {
    // a node Systems Manager does not list, an activation that no longer exists
    let nobody = mock!(Client::describe_instance_information)
        .then_output(|| DescribeInstanceInformationOutput::builder().build());
    let no_activation = mock!(Client::describe_activations)
        .then_output(|| DescribeActivationsOutput::builder().build());
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&nobody, &no_activation]);
    assert_eq!(ssm.registered_node(&node()).await.unwrap(), None);
    assert_eq!(ssm.activation_tags("act-gone").await.unwrap(), None);

    // a listed node without an id, or with one that is no managed node id: an error (retried),
    // never "no node"
    for id in [None, Some("i-0a1b2c3d4e5f60001")] {
        let odd = mock!(Client::describe_instance_information).then_output(move || {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    InstanceInformation::builder()
                        .set_instance_id(id.map(str::to_owned))
                        .build(),
                )
                .build()
        });
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&odd]);
        let err = ssm.registered_nodes().await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            err.to_string()
                .starts_with("ssm:DescribeInstanceInformation answered without"),
            "{err}"
        );
    }

    // throttling: retryable
    let throttled = mock!(Client::list_tags_for_resource).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(400).unwrap(),
            SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        )
    });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&throttled]);
    assert!(ssm.node_tags(&node()).await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn the_sweep_lists_only_managed_instances_page_by_page() {
    let pages = mock!(Client::describe_instance_information)
        .match_requests(|req| {
            req.filters()
                .iter()
                .any(|f| f.key() == "ResourceType" && f.values() == ["ManagedInstance"])
        })
        .sequence()
        .output(|| {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(InstanceInformation::builder().instance_id(NODE).build())
                .next_token("page-2")
                .build()
        })
        .output(|| {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    InstanceInformation::builder()
                        .instance_id("mi-0a1b2c3d4e5f60002")
                        .activation_id("act-2")
                        .build(),
                )
                .build()
        })
        .build();
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&pages]);

    let nodes = ssm.registered_nodes().await.unwrap();

    let ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(ids, [NODE, "mi-0a1b2c3d4e5f60002"]);
    assert_eq!(nodes[1].activation_id.as_deref(), Some("act-2"));
    assert_eq!(pages.num_calls(), 2);
}

#[tokio::test]
async fn a_registration_through_the_adapter_owns_the_node_from_its_users_activation() {
    // GIVEN ada's node, registered with her activation, carrying no user id of its own
    let adas = format!("{ROLE_ID}:ada");
    let information = node_information(Some("act-ada"));
    let tags = node_tags(&[("Name", "lab")]);
    let read_activation = activation("act-ada", vec![tag("AwsUserId", &adas)]);
    let add = add_exactly("AwsUserId", adas.clone());
    let ssm = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        [&information, &tags, &read_activation, &add]
    );
    let fake = FakeAws::new().with_role(Config::TEST_ROLE, &RoleId::parse(ROLE_ID).unwrap());
    let config = Config::for_tests(&[("HYBRID_NODES", "true"), ("REGIONS", "us-east-1")]);
    let tagger = OwnerTagger::new(config, fake.clone(), fake).with_hybrid_nodes(ssm);
    let event = serde_json::json!({
        "version": "0", "id": "c2e4a6b8-1d3f-4a5c-9e7b-0f1a2b3c4d5e",
        "detail-type": "SSM Managed Instance Registration", "source": "aws.ssm",
        "account": "123456789012", "time": "2026-12-06T09:15:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:ssm:us-east-1:123456789012:managed-instance/{NODE}")],
        "detail": {}
    });

    // WHEN its registration is handled
    let outcome = tagger.handle(event).await.unwrap();

    // THEN exactly one AddTagsToResource wrote ada's id on the node, after three reads
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(outcome.changed, [format!("{NODE}: AwsUserId={adas}")]);
    assert_eq!(
        (
            information.num_calls(),
            tags.num_calls(),
            read_activation.num_calls(),
            add.num_calls()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn a_users_nodes_are_asked_for_by_their_tag_among_managed_instances_only() {
    let adas = format!("{ROLE_ID}:ada");
    let wanted = adas.clone();
    let tagged = mock!(Client::describe_instance_information)
        .match_requests(move |req| {
            let has = |key: &str, value: &str| {
                req.filters()
                    .iter()
                    .any(|f| f.key() == key && f.values() == [value])
            };
            has("ResourceType", "ManagedInstance") && has("tag:AwsUserId", &wanted)
        })
        .then_output(|| {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(InstanceInformation::builder().instance_id(NODE).build())
                .build()
        });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&tagged]);

    assert_eq!(
        ssm.nodes_tagged("AwsUserId", &adas).await.unwrap(),
        [node()]
    );
    assert_eq!(tagged.num_calls(), 1);
}

#[tokio::test]
async fn the_tier_is_read_from_its_service_setting_and_an_answer_without_a_value_is_an_error() {
    use aws_sdk_ssm::operation::get_service_setting::GetServiceSettingOutput;
    use aws_sdk_ssm::types::ServiceSetting;
    use shared::ports::ActivationTier;
    let advanced = mock!(Client::get_service_setting)
        .match_requests(|req| req.setting_id() == Some("/ssm/managed-instance/activation-tier"))
        .then_output(|| {
            GetServiceSettingOutput::builder()
                .service_setting(ServiceSetting::builder().setting_value("advanced").build())
                .build()
        });
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&advanced]);
    assert_eq!(ssm.activation_tier().await.unwrap(), "advanced");

    let empty = mock!(Client::get_service_setting)
        .then_output(|| GetServiceSettingOutput::builder().build());
    let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&empty]);
    let err = ssm.activation_tier().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ssm:GetServiceSetting answered without the tier's value"),
        "{err}"
    );
}
