//! The owner-tagging function against moto in server mode: the tags that end up on the
//! instances, and the AWS requests each event costs (counted at the HTTP layer).

use std::collections::BTreeMap;

use crate::common::{world, World, ROLE};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use shared::app::owner_tagging::OwnerTagger;
use shared::aws::{CallCounter, Clients};
use shared::config::UsersRole;
use shared::domain::outcome::SkipSubject;
use shared::domain::reason::ReasonCode;
use shared::{Config, Error, Status};
use testkit::{create_volume, rewrite, run_instances, sample_event, tags_of, volumes_of, Moto};

const SAMPLE_ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

fn config(vars: &[(&str, &str)]) -> Config {
    let mut all = vec![("SESSION_ROLE_NAME", ROLE)];
    all.extend_from_slice(vars);
    Config::for_tests(&all)
}

fn time_of(event: &Value) -> DateTime<Utc> {
    event["time"].as_str().unwrap().parse().unwrap()
}

fn calls(counter: &CallCounter) -> BTreeMap<String, u64> {
    counter.take()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

impl World {
    fn tagger(&self, config: Config) -> OwnerTagger<aws_sdk_ec2::Client, aws_sdk_iam::Client> {
        OwnerTagger::new(config, self.clients.ec2.clone(), self.clients.iam.clone())
    }

    /// Every instance of `ids` and its volumes carry `user`'s id, and the launch cost one read
    /// of the instances, one of their volumes and one CreateTags.
    async fn assert_owned_in_one_pass(&self, ids: &[String], user: &str) {
        let expected = format!("{}:{user}", self.role_id);
        for id in ids {
            assert_eq!(self.user_id_tag(id).await, Some(expected.clone()), "{id}");
            for volume in volumes_of(&self.admin.ec2, id).await {
                assert_eq!(self.user_id_tag(&volume).await, Some(expected.clone()));
            }
        }
        assert_eq!(
            calls(&self.counter),
            counts(&[
                ("ec2:DescribeInstances", 1),
                ("ec2:DescribeVolumes", 1),
                ("ec2:CreateTags", 1)
            ])
        );
    }

    async fn user_id_tag(&self, instance_id: &str) -> Option<String> {
        tags_of(&self.admin.ec2, instance_id)
            .await
            .get("AwsUserId")
            .cloned()
    }
}

#[tokio::test]
async fn owner_in_event_tags_every_instance_with_one_call_and_a_replay_changes_nothing() {
    // GIVEN two instances the portal launched for tim.malone, and the role id in config
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 2, &[("CreatedBy", "tim.malone")]).await;
    let event = rewrite(
        &sample_event("run-instances-created-by.json"),
        &[
            ("i-0a1b2c3d4e5f60001", &ids[0]),
            ("i-0a1b2c3d4e5f60002", &ids[1]),
        ],
    );
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    // WHEN the RunInstances event is handled
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();

    // THEN both instances and their root volumes carry AwsUserId=<role-id>:tim.malone, for
    // one read of the instances, one of their volumes and one CreateTags call
    assert_eq!(outcome.status, Status::Changed);
    assert_eq!(outcome.counts.instances_tagged, 2);
    assert_eq!(outcome.counts.volumes_tagged, 2);
    w.assert_owned_in_one_pass(&ids, "tim.malone").await;

    // WHEN the same event is delivered again
    let before: Vec<_> = tags_of_all(&w, &ids).await;
    tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();
    // THEN every tag is as it was, for at most one call
    assert_eq!(tags_of_all(&w, &ids).await, before);
    assert!(w.counter.total() <= 1, "{:?}", w.counter.snapshot());
}

async fn tags_of_all(w: &World, ids: &[String]) -> Vec<BTreeMap<String, String>> {
    let mut all = Vec::new();
    for id in ids {
        all.push(tags_of(&w.admin.ec2, id).await);
    }
    all
}

#[tokio::test]
async fn the_role_id_is_resolved_with_one_get_role_per_process() {
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 2, &[("CreatedBy", "tim.malone")]).await;
    let event = rewrite(
        &sample_event("run-instances-created-by.json"),
        &[
            ("i-0a1b2c3d4e5f60001", &ids[0]),
            ("i-0a1b2c3d4e5f60002", &ids[1]),
        ],
    );
    let tagger = w.tagger(config(&[]));

    tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();
    assert_eq!(
        calls(&w.counter),
        counts(&[
            ("ec2:DescribeInstances", 1),
            ("ec2:DescribeVolumes", 1),
            ("ec2:CreateTags", 1),
            ("iam:GetRole", 1)
        ])
    );
    tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();
    assert_eq!(calls(&w.counter), counts(&[("ec2:DescribeInstances", 1)]));
    assert_eq!(
        w.user_id_tag(&ids[0]).await,
        Some(format!("{}:tim.malone", w.role_id))
    );
}

#[tokio::test]
async fn owner_not_in_event_is_read_from_ec2_in_one_call_and_a_replay_writes_nothing() {
    // GIVEN an instance whose CreatedBy tag is only in EC2, not in the event
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 1, &[("CreatedBy", "ada.lovelace")]).await;
    let event = rewrite(
        &sample_event("run-instances-owner-not-in-event.json"),
        &[("i-0a1b2c3d4e5f60003", &ids[0])],
    );
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    // WHEN handled: one DescribeInstances, one DescribeVolumes and one CreateTags
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Changed);
    assert_eq!(
        w.user_id_tag(&ids[0]).await,
        Some(format!("{}:ada.lovelace", w.role_id))
    );
    assert_eq!(
        calls(&w.counter),
        counts(&[
            ("ec2:CreateTags", 1),
            ("ec2:DescribeInstances", 1),
            ("ec2:DescribeVolumes", 1)
        ])
    );

    // WHEN replayed: EC2 already shows the right tag, so only the read is made
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Unchanged);
    assert_eq!(calls(&w.counter), counts(&[("ec2:DescribeInstances", 1)]));
}

#[tokio::test]
async fn a_direct_launch_by_a_user_session_is_owned_by_that_session() {
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 1, &[]).await;
    let event = rewrite(
        &sample_event("run-instances-users-role-session.json"),
        &[
            ("i-0a1b2c3d4e5f60004", &ids[0]),
            (SAMPLE_ROLE_ID, w.role_id.as_str()),
        ],
    );
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();

    assert_eq!(outcome.status, Status::Changed);
    assert_eq!(
        w.user_id_tag(&ids[0]).await,
        Some(format!("{}:tim.malone", w.role_id))
    );
    assert_eq!(
        calls(&w.counter),
        counts(&[
            ("ec2:DescribeInstances", 1),
            ("ec2:DescribeVolumes", 1),
            ("ec2:CreateTags", 1)
        ])
    );
}

#[tokio::test]
async fn a_hostile_username_is_rejected_and_nothing_is_written() {
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 1, &[("CreatedBy", "tim*")]).await;
    let event = rewrite(
        &sample_event("run-instances-hostile-username.json"),
        &[("i-0a1b2c3d4e5f60005", &ids[0])],
    );
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();

    assert_eq!(outcome.status, Status::Ignored);
    assert_eq!(
        outcome.reason,
        format!(
            "skipped {}: CreatedBy tag \"tim*\" rejected: username contains '*' at character 4; only A-Z a-z 0-9 + = , . @ _ - are allowed",
            ids[0]
        )
    );
    assert_eq!(w.user_id_tag(&ids[0]).await, None);
    assert_eq!(w.counter.total(), 0);
}

#[tokio::test]
async fn each_instance_gets_its_own_owner_even_when_names_are_prefixes_of_each_other() {
    // GIVEN one call that launched instances for "tim" and "tim.malone" (tags in the response)
    let w = world().await;
    let tim = run_instances(&w.admin.ec2, 1, &[("CreatedBy", "tim")]).await;
    let malone = run_instances(&w.admin.ec2, 1, &[("CreatedBy", "tim.malone")]).await;
    let mut event = rewrite(
        &sample_event("run-instances-created-by.json"),
        &[
            ("i-0a1b2c3d4e5f60001", &tim[0]),
            ("i-0a1b2c3d4e5f60002", &malone[0]),
        ],
    );
    event["detail"]["requestParameters"]
        .as_object_mut()
        .unwrap()
        .remove("tagSpecificationSet");
    event["detail"]["responseElements"]["instancesSet"]["items"][0]["tagSet"] =
        serde_json::json!({"items": [{"key": "CreatedBy", "value": "tim"}]});
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();

    // THEN each instance, and its volume, names exactly its own user; one read of each kind,
    // one write per distinct value
    for (ids, name) in [(&tim, "tim"), (&malone, "tim.malone")] {
        let expected = Some(format!("{}:{name}", w.role_id));
        assert_eq!(w.user_id_tag(&ids[0]).await, expected);
        for volume in volumes_of(&w.admin.ec2, &ids[0]).await {
            assert_eq!(w.user_id_tag(&volume).await, expected);
        }
    }
    assert_eq!(
        calls(&w.counter),
        counts(&[
            ("ec2:DescribeInstances", 1),
            ("ec2:DescribeVolumes", 1),
            ("ec2:CreateTags", 2)
        ])
    );
}

#[tokio::test]
async fn a_replayed_or_forged_launch_event_never_re_owns_another_users_instance() {
    // GIVEN tim's instance, already carrying his user id in moto
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 2, &[("CreatedBy", "tim.malone")]).await;
    let tims = format!("{}:tim.malone", w.role_id);
    w.admin
        .ec2
        .create_tags()
        .resources(&ids[0])
        .resources(&ids[1])
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("AwsUserId")
                .value(&tims)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // AND a launch event that says ada launched it (forged, or parked and replayed)
    let event = rewrite(
        &sample_event("run-instances-created-by.json"),
        &[
            ("i-0a1b2c3d4e5f60001", &ids[0]),
            ("i-0a1b2c3d4e5f60002", &ids[1]),
            ("tim.malone", "ada"),
        ],
    );
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    // WHEN the event is handled
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();

    // THEN both instances stay tim's, and each skip says why
    for id in &ids {
        assert_eq!(w.user_id_tag(id).await, Some(tims.clone()));
        let skipped: Vec<_> = outcome
            .skipped
            .iter()
            .filter(|s| s.subject == SkipSubject::Instance(id.clone()))
            .collect();
        assert_eq!(skipped.len(), 1, "{outcome:?}");
        assert_eq!(skipped[0].reason.code, ReasonCode::OwnedByAnother);
    }
    assert_eq!(w.counter.snapshot().get("ec2:CreateTags"), None);
}

#[tokio::test]
async fn dry_runs_and_untrusted_launchers_cost_nothing() {
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 2, &[("CreatedBy", "tim.malone")]).await;
    let dry = rewrite(&sample_event("run-instances-dry-run.json"), &[]);
    let tagger = w.tagger(config(&[]));
    let outcome = tagger.handle_at(dry.clone(), time_of(&dry)).await.unwrap();
    assert_eq!(outcome.status, Status::Ignored);
    assert_eq!(
        outcome.reason,
        "dry run (Client.DryRunOperation): nothing was launched"
    );

    let event = rewrite(
        &sample_event("run-instances-created-by.json"),
        &[
            ("i-0a1b2c3d4e5f60001", &ids[0]),
            ("i-0a1b2c3d4e5f60002", &ids[1]),
        ],
    );
    let tagger = w.tagger(config(&[(
        "TRUSTED_LAUNCHER_ARNS",
        "arn:aws:iam::123456789012:role/SomethingElse",
    )]));
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Ignored);
    assert_eq!(
        outcome.reason,
        "launcher arn:aws:sts::123456789012:assumed-role/ServiceWorkbench-Portal/swb-workflow is not in TRUSTED_LAUNCHER_ARNS"
    );
    assert_eq!(w.user_id_tag(&ids[0]).await, None);
    assert_eq!(w.counter.total(), 0);
}

#[tokio::test]
async fn an_instance_ec2_cannot_see_is_retried_while_recent_and_dropped_when_old() {
    // GIVEN a launch event for an instance EC2 does not (yet) show
    let w = world().await;
    let event = rewrite(&sample_event("run-instances-owner-not-in-event.json"), &[]);
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    // WHEN it arrives a minute after launch THEN it fails retryably
    let err = tagger
        .handle_at(event.clone(), time_of(&event) + Duration::minutes(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InstancesNotYetVisible { instance_ids } if instance_ids == &["i-0a1b2c3d4e5f60003"])
    );
    assert!(err.is_retryable());

    // WHEN it is replayed a day later THEN the instance is taken as gone
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event) + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Ignored);
    assert_eq!(
        outcome.reason,
        "skipped i-0a1b2c3d4e5f60003: instance no longer exists in EC2"
    );
}

#[tokio::test]
async fn a_missing_users_role_is_a_permanent_error_and_nothing_is_written() {
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 2, &[("CreatedBy", "tim.malone")]).await;
    let event = rewrite(
        &sample_event("run-instances-created-by.json"),
        &[
            ("i-0a1b2c3d4e5f60001", &ids[0]),
            ("i-0a1b2c3d4e5f60002", &ids[1]),
        ],
    );
    let mut config = config(&[]);
    config.users_role = UsersRole::Named("NoSuchRole".into());
    let tagger = w.tagger(config);

    let err = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "the users' role NoSuchRole does not exist (IAM GetRole: NoSuchEntity)"
    );
    assert!(!err.is_retryable());
    assert_eq!(w.user_id_tag(&ids[0]).await, None);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_error() {
    // GIVEN clients pointed at a moto that has been stopped
    let moto = Moto::start().unwrap();
    let sdk = moto.sdk_config().await;
    drop(moto);
    let clients = Clients::new(&sdk);
    let tagger = OwnerTagger::new(config(&[]), clients.ec2, clients.iam);
    let event = rewrite(&sample_event("run-instances-created-by.json"), &[]);

    // WHEN an event arrives THEN the error says why and asks for a retry
    let err = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.aws_code(), Some("DispatchFailure"));
    assert_eq!(err.kind(), "Retryable");
}

#[tokio::test]
async fn a_launch_owns_the_instances_volumes_but_never_takes_another_users_volume() {
    // GIVEN two instances the portal launched for tim.malone, each with its root volume; on
    // the first, ada's volume is attached as well, and a volume carrying only a case variant
    // of the user-id key
    let w = world().await;
    let ids = run_instances(&w.admin.ec2, 2, &[("CreatedBy", "tim.malone")]).await;
    let ada = format!("{}:ada", w.role_id);
    let adas = create_volume(&w.admin.ec2, Some(&ids[0]), &[("AwsUserId", &ada)]).await;
    let variant = create_volume(&w.admin.ec2, Some(&ids[0]), &[("awsuserid", &ada)]).await;
    let event = rewrite(
        &sample_event("run-instances-created-by.json"),
        &[
            ("i-0a1b2c3d4e5f60001", &ids[0]),
            ("i-0a1b2c3d4e5f60002", &ids[1]),
        ],
    );
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));
    w.counter.take();

    // WHEN the launch is handled
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();

    // THEN the root volumes and the variant's volume are tim's; the variant key is gone
    let tims = format!("{}:tim.malone", w.role_id);
    let roots: Vec<String> = [
        volumes_of(&w.admin.ec2, &ids[0]).await,
        volumes_of(&w.admin.ec2, &ids[1]).await,
    ]
    .concat()
    .into_iter()
    .filter(|v| *v != adas && *v != variant)
    .collect();
    assert_eq!(roots.len(), 2);
    for volume in &roots {
        assert_eq!(w.user_id_tag(volume).await, Some(tims.clone()));
    }
    let variant_tags = tags_of(&w.admin.ec2, &variant).await;
    assert_eq!(variant_tags.get("AwsUserId"), Some(&tims));
    assert_eq!(variant_tags.get("awsuserid"), None);
    // AND ada's volume is still hers, reported with a reason code
    assert_eq!(w.user_id_tag(&adas).await, Some(ada.clone()));
    assert_eq!(
        outcome.skip_codes(),
        [(
            SkipSubject::Volume(adas.clone()),
            ReasonCode::OwnedByAnother
        )]
    );
    assert_eq!(outcome.counts.volumes_tagged, 3);
    assert_eq!(outcome.counts.tags_tampered, 1);
    // AND the instances and volumes were written in one CreateTags call
    assert_eq!(
        calls(&w.counter),
        counts(&[
            ("ec2:DescribeInstances", 1),
            ("ec2:DescribeVolumes", 1),
            ("ec2:CreateTags", 1),
            ("ec2:DeleteTags", 1)
        ])
    );
}

#[tokio::test]
async fn an_instant_fleet_tags_every_instance_it_launched_in_one_pass() {
    // GIVEN an instant EC2 Fleet of three the portal launched for ada.lovelace (moto's
    // CreateFleet), and its CloudTrail record naming them
    let w = world().await;
    let ids =
        testkit::create_instant_fleet(&w.admin.ec2, 3, &[("CreatedBy", "ada.lovelace")]).await;
    assert_eq!(ids.len(), 3);
    let mut event: Value =
        serde_json::from_str(&sample_event("create-fleet-instant.json")).unwrap();
    event["detail"]["responseElements"]["CreateFleetResponse"]["fleetInstanceSet"]["item"]
        ["instanceIds"]["item"] = serde_json::json!(ids);
    let tagger = w.tagger(config(&[("SESSION_ROLE_ID", w.role_id.as_str())]));

    // WHEN the CreateFleet event is handled
    let outcome = tagger
        .handle_at(event.clone(), time_of(&event))
        .await
        .unwrap();

    // THEN every instance of the fleet, and its root volume, is ada's, for the calls a
    // RunInstances of the same instances costs: one read of the instances, one of their
    // volumes, one CreateTags
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(outcome.counts.instances_tagged, 3);
    w.assert_owned_in_one_pass(&ids, "ada.lovelace").await;

    // WHEN a maintain fleet's record arrives THEN it is left to the sweep, for no call
    let mut maintain = event.clone();
    maintain["detail"]["requestParameters"]["CreateFleetRequest"]["Type"] =
        serde_json::json!("maintain");
    let outcome = tagger
        .handle_at(maintain.clone(), time_of(&maintain))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Ignored);
    assert_eq!(outcome.code, Some(ReasonCode::FleetNotInstant));
    assert_eq!(w.counter.total(), 0);
}
