//! Make moto look like a deployment: the users' role, the policies, instances, volumes, the
//! session documents and a stack shaped like the product's.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

use crate::{
    rewrite, role_id_of, shipped_end_user_policy, shipped_policy, shipped_session_documents, AMI,
};

/// Create the shipped end-user policy (without `EndOwnSessions` unless `static_rights`), the
/// guard policy and the sharing policy under the template's default names, attach all three to
/// `role` as the template does, and return the end-user policy's ARN.
pub async fn attach_end_user_policy(
    iam: &aws_sdk_iam::Client,
    role: &str,
    static_rights: bool,
) -> String {
    let mut document = shipped_end_user_policy();
    if !static_rights {
        document["Statement"]
            .as_array_mut()
            .expect("a statement list")
            .retain(|s| s["Sid"] != "EndOwnSessions");
    }
    let documents = [
        (END_USER_POLICY, document),
        (GUARD_POLICY, shipped_policy("GuardPolicy")),
        (SHARING_POLICY, shipped_policy("SharingPolicy")),
    ];
    let mut arns = Vec::new();
    for (name, document) in documents {
        let arn = iam
            .create_policy()
            .policy_name(name)
            .path("/")
            .policy_document(document.to_string())
            .send()
            .await
            .expect("moto CreatePolicy")
            .policy()
            .and_then(|p| p.arn())
            .expect("an ARN in CreatePolicy's answer")
            .to_owned();
        iam.attach_role_policy()
            .role_name(role)
            .policy_arn(&arn)
            .send()
            .await
            .expect("moto AttachRolePolicy");
        arns.push(arn);
    }
    arns.swap_remove(0)
}

/// The template's default `EndUserPolicyName`.
pub const END_USER_POLICY: &str = "SsmSessionOwnerEndUser";
/// The template's default `GuardPolicyName`.
pub const GUARD_POLICY: &str = "SsmSessionOwnerGuards";
/// The template's default `SharingPolicyName`.
pub const SHARING_POLICY: &str = "SsmSessionOwnerSharing";

/// Create the users' role and return its id.
pub async fn create_role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"},
                       "Action": "sts:AssumeRoleWithSAML"}]
    });
    match iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
    {
        Ok(created) => created
            .role()
            .expect("role in CreateRole answer")
            .role_id()
            .to_owned(),
        // On a loaded machine the SDK can time out an attempt moto then completes, and its
        // retry finds the role: the role this test asked for, so read its id.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_entity_already_exists_exception()) =>
        {
            iam.get_role()
                .role_name(name)
                .send()
                .await
                .expect("moto GetRole")
                .role()
                .expect("role in GetRole answer")
                .role_id()
                .to_owned()
        }
        Err(err) => panic!("moto CreateRole: {err:?}"),
    }
}

/// Create an IAM Identity Center role (`AWSReservedSSO_<set>_<suffix>` under
/// `/aws-reserved/sso.amazonaws.com/`, trusting the Identity Center SAML provider) and return its
/// id.
pub async fn create_sso_role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/AWSSSO_0123_DO_NOT_DELETE"},
        "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"]}]});
    iam.create_role()
        .role_name(name)
        .path("/aws-reserved/sso.amazonaws.com/")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("moto CreateRole")
        .role()
        .expect("a role in CreateRole's answer")
        .role_id()
        .to_owned()
}

/// Let the whole account assume `role` with `sts:AssumeRole` (statement `Ci`) beside its SAML
/// trust, with no condition on the session name: what a trust-policy check must find.
pub async fn trust_the_account_to_assume(iam: &aws_sdk_iam::Client, role: &str) {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"}, "Action": "sts:AssumeRoleWithSAML"},
        {"Sid": "Ci", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
    iam.update_assume_role_policy()
        .role_name(role)
        .policy_document(trust.to_string())
        .send()
        .await
        .expect("moto UpdateAssumeRolePolicy");
}

/// Launch `count` instances with `tags` and return their ids.
pub async fn run_instances(
    ec2: &aws_sdk_ec2::Client,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    let mut request = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(count)
        .max_count(count);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (key, value) in tags {
            spec = spec.tags(Tag::builder().key(*key).value(*value).build());
        }
        request = request.tag_specifications(spec.build());
    }
    request
        .send()
        .await
        .expect("moto RunInstances")
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// Write one tag on an EC2 resource, as a portal or an owner would.
pub async fn put_tag(ec2: &aws_sdk_ec2::Client, resource: &str, key: &str, value: &str) {
    ec2.create_tags()
        .resources(resource)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .expect("moto CreateTags");
}

/// Launch `count` instances with `tags` through an instant EC2 Fleet (moto implements
/// CreateFleet) and return their ids.
pub async fn create_instant_fleet(
    ec2: &aws_sdk_ec2::Client,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    use aws_sdk_ec2::types::{
        DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest,
        FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest, FleetType,
        InstanceType, RequestLaunchTemplateData, TargetCapacitySpecificationRequest,
    };
    // A name no other fleet of this process has taken.
    static FLEETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = FLEETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let template = ec2
        .create_launch_template()
        .launch_template_name(format!("fleet-{}-{n}", std::process::id()))
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(AMI).build())
        .send()
        .await
        .expect("moto CreateLaunchTemplate")
        .launch_template()
        .and_then(|t| t.launch_template_id().map(str::to_owned))
        .expect("a launch template id");
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (key, value) in tags {
        spec = spec.tags(Tag::builder().key(*key).value(*value).build());
    }
    let answer = ec2
        .create_fleet()
        .r#type(FleetType::Instant)
        .launch_template_configs(
            FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_id(template)
                        .version("$Latest")
                        .build(),
                )
                // moto needs the instance type in the overrides
                .overrides(
                    FleetLaunchTemplateOverridesRequest::builder()
                        .instance_type(InstanceType::T3Micro)
                        .build(),
                )
                .build(),
        )
        .target_capacity_specification(
            TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(count)
                .default_target_capacity_type(DefaultTargetCapacityType::OnDemand)
                .build(),
        )
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("moto CreateFleet");
    answer
        .instances()
        .iter()
        .flat_map(|set| set.instance_ids().iter().cloned())
        .collect()
}

/// The ids of the volumes attached to an instance (moto gives every instance a root volume).
pub async fn volumes_of(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Vec<String> {
    use aws_sdk_ec2::types::Filter;
    ec2.describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(instance_id)
                .build(),
        )
        .send()
        .await
        .expect("moto DescribeVolumes")
        .volumes()
        .iter()
        .filter_map(|v| v.volume_id().map(str::to_owned))
        .collect()
}

/// A new volume with `tags`, attached to `instance_id` when one is given.
pub async fn create_volume(
    ec2: &aws_sdk_ec2::Client,
    instance_id: Option<&str>,
    tags: &[(&str, &str)],
) -> String {
    let mut request = ec2.create_volume().availability_zone("us-east-1a").size(8);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Volume);
        for (key, value) in tags {
            spec = spec.tags(Tag::builder().key(*key).value(*value).build());
        }
        request = request.tag_specifications(spec.build());
    }
    let volume_id = request
        .send()
        .await
        .expect("moto CreateVolume")
        .volume_id()
        .expect("a volume id")
        .to_owned();
    if let Some(instance_id) = instance_id {
        ec2.attach_volume()
            .volume_id(&volume_id)
            .instance_id(instance_id)
            .device("/dev/sdf")
            .send()
            .await
            .expect("moto AttachVolume");
    }
    volume_id
}

/// The tags EC2 holds for one resource. DescribeTags, unlike DescribeInstances, also answers for
/// ids moto has no instance for, so "nothing was written" can be checked for any id.
pub async fn tags_of(ec2: &aws_sdk_ec2::Client, resource_id: &str) -> BTreeMap<String, String> {
    use aws_sdk_ec2::types::Filter;
    ec2.describe_tags()
        .filters(
            Filter::builder()
                .name("resource-id")
                .values(resource_id)
                .build(),
        )
        .send()
        .await
        .expect("moto DescribeTags")
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The users' role in the samples and the demo.
pub const DEMO_ROLE: &str = "Okta-ServiceWorkbenchUser";
/// The placeholder role id in `events/`.
pub const SAMPLE_ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

/// The time of `tag-change-share-with-added.json`, which seeding rewrites to the present.
pub const SHARE_SAMPLE_TIME: &str = "2026-11-21T10:09:00Z";

/// The policy-name prefix the samples and the demo use (the product's default).
pub const DEMO_POLICY_PREFIX: &str = "ssm-session-owner-";

/// create-fleet-instant.json: an instant EC2 Fleet of two for ada.lovelace, launched through
/// moto's CreateFleet; the replacements of its two sample ids.
async fn seed_fleet_sample(admin_ec2: &aws_sdk_ec2::Client) -> Vec<(String, String)> {
    let fleet = create_instant_fleet(
        admin_ec2,
        2,
        &[("CreatedBy", "ada.lovelace"), ("Name", "research-fleet")],
    )
    .await;
    assert_eq!(fleet.len(), 2, "moto's instant fleet launched {fleet:?}");
    ["i-0a1b2c3d4e5f60009", "i-0a1b2c3d4e5f60010"]
        .iter()
        .map(|sample_id| (*sample_id).to_owned())
        .zip(fleet)
        .collect()
}

/// Make moto match `events/`: create the users' role and launch, for every sample instance id,
/// an instance tagged as the portal would have. grace.hopper's only instance
/// (`i-0a1b2c3d4e5f60006`, the termination sample) is already tagged and terminated, and her
/// statement from before is still on the role. Returns the role id and the replacements
/// (sample id → moto id) that turn a sample event into one about these instances.
pub async fn seed_samples(
    admin_ec2: &aws_sdk_ec2::Client,
    admin_iam: &aws_sdk_iam::Client,
) -> (String, Vec<(String, String)>) {
    let role_id = create_role(admin_iam, DEMO_ROLE).await;
    let mut replacements = vec![(SAMPLE_ROLE_ID.to_owned(), role_id.clone())];
    let launches: &[(&str, &[(&str, &str)])] = &[
        // run-instances-created-by.json: two portal instances for tim.malone
        (
            "i-0a1b2c3d4e5f60001",
            &[("CreatedBy", "tim.malone"), ("Name", "workspace-tim")],
        ),
        (
            "i-0a1b2c3d4e5f60002",
            &[("CreatedBy", "tim.malone"), ("Name", "workspace-tim")],
        ),
        // run-instances-owner-not-in-event.json: the portal tagged after launch
        ("i-0a1b2c3d4e5f60003", &[("CreatedBy", "ada.lovelace")]),
        // run-instances-users-role-session.json: tim.malone launched it himself
        ("i-0a1b2c3d4e5f60004", &[("Name", "scratch")]),
        // run-instances-hostile-username.json
        ("i-0a1b2c3d4e5f60005", &[("CreatedBy", "tim*")]),
        // tag-change-created-by-added.json: a fleet launch no RunInstances event reported,
        // whose CreatedBy came later
        (
            "i-0a1b2c3d4e5f60007",
            &[("CreatedBy", "ada.lovelace"), ("Name", "fleet-worker")],
        ),
    ];
    for (sample_id, tags) in launches {
        let ids = run_instances(admin_ec2, 1, tags).await;
        replacements.push((sample_id.to_string(), ids[0].clone()));
    }
    replacements.extend(seed_fleet_sample(admin_ec2).await);
    // tag-change-share-with-added.json: tim.malone's owned instance, which he shares with two
    // colleagues for 90 minutes
    let tim_value = format!("{role_id}:tim.malone");
    let shared = run_instances(
        admin_ec2,
        1,
        &[
            ("CreatedBy", "tim.malone"),
            ("AwsUserId", &tim_value),
            ("ShareWith", "ada.lovelace alan.turing"),
            ("ShareFor", "90m"),
        ],
    )
    .await
    .remove(0);
    replacements.push(("i-0a1b2c3d4e5f60008".into(), shared));
    // A share runs from when its request was written: the sample's request is written now.
    replacements.push((
        SHARE_SAMPLE_TIME.into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    let grace_value = format!("{role_id}:grace.hopper");
    let grace = run_instances(
        admin_ec2,
        1,
        &[("CreatedBy", "grace.hopper"), ("AwsUserId", &grace_value)],
    )
    .await
    .remove(0);
    admin_ec2
        .terminate_instances()
        .instance_ids(&grace)
        .send()
        .await
        .expect("moto TerminateInstances");
    let grace_user =
        shared::domain::session_name::SessionName::parse("grace.hopper").expect("valid name");
    admin_iam
        .put_role_policy()
        .role_name(DEMO_ROLE)
        .policy_name(shared::domain::statements::inline_policy_name(
            DEMO_POLICY_PREFIX,
            &grace_user,
        ))
        .policy_document(shared::domain::statements::inline_document(
            &role_id_of(&role_id),
            &grace_user,
        ))
        .send()
        .await
        .expect("moto PutRolePolicy");
    replacements.push(("i-0a1b2c3d4e5f60006".into(), grace));
    (role_id, replacements)
}

/// Every sample in `events/`, rewritten with `replacements` into `dir`; returns the paths.
pub fn write_samples(
    dir: &std::path::Path,
    replacements: &[(String, String)],
) -> io::Result<Vec<PathBuf>> {
    let pairs: Vec<(&str, &str)> = replacements
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut paths = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(crate::events::events_dir())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for source in entries {
        let text = std::fs::read_to_string(&source)?;
        let target = dir.join(source.file_name().unwrap_or_default());
        std::fs::write(&target, rewrite(&text, &pairs).to_string())?;
        paths.push(target);
    }
    Ok(paths)
}

/// Create, in the region `ssm` talks to, the session documents `template.yaml` creates with
/// `settings` (as CloudFormation would), and return their names.
pub async fn create_session_documents(ssm: &aws_sdk_ssm::Client, settings: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for document in shipped_session_documents("template.yaml", settings) {
        let properties = &document["properties"];
        let name = properties["Name"]
            .as_str()
            .expect("a document name")
            .to_owned();
        ssm.create_document()
            .name(&name)
            .document_type(aws_sdk_ssm::types::DocumentType::Session)
            .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
            .content(properties["Content"].to_string())
            .send()
            .await
            .expect("moto CreateDocument");
        names.push(name);
    }
    names
}

/// Create, in moto's CloudFormation, a stack `name` shaped like the product's for the tools'
/// `--stack`: the two functions (both with `environment`, as the template's Globals give it)
/// and the failure queue, with the outputs `template.yaml` gives them. moto cannot create
/// `template.yaml` itself (it substitutes a `Fn::Sub` variable's value twice and encodes JSON
/// policy strings twice), so the stack holds only what `--stack` reads.
pub async fn create_product_stack(
    sdk: &aws_config::SdkConfig,
    name: &str,
    environment: &BTreeMap<String, String>,
) {
    let function = serde_json::json!({
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "provided.al2023", "Handler": "bootstrap", "Code": {"ZipFile": "stand-in"},
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Environment": {"Variables": environment},
        },
    });
    let template = serde_json::json!({
        "Resources": {
            "FunctionRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
            "OwnerTaggerFunction": function,
            "SessionPolicyFunction": function,
            "FailureQueue": {"Type": "AWS::SQS::Queue"},
        },
        "Outputs": {
            "OwnerTaggerFunctionArn": {"Value": {"Fn::GetAtt": ["OwnerTaggerFunction", "Arn"]}},
            "SessionPolicyFunctionArn": {"Value": {"Fn::GetAtt": ["SessionPolicyFunction", "Arn"]}},
            "FailureQueueUrl": {"Value": {"Ref": "FailureQueue"}},
            "ForwarderDeadLettersName": {"Value": "ssm-session-owner-forward-dead-letters"},
        },
    });
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam)
        .send()
        .await
        .expect("moto CreateStack");
}

/// A multi-region CloudTrail trail in moto, writing to a bucket of its own (path-style, as moto
/// serves it); not logging until it is started. Returns the CloudTrail client.
pub async fn create_multi_region_trail(
    sdk: &SdkConfig,
    name: &str,
    bucket: &str,
) -> aws_sdk_cloudtrail::Client {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("moto CreateBucket");
    let trails = aws_sdk_cloudtrail::Client::new(sdk);
    trails
        .create_trail()
        .name(name)
        .s3_bucket_name(bucket)
        .is_multi_region_trail(true)
        .send()
        .await
        .expect("moto CreateTrail");
    trails
}
