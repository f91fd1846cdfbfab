//! The owner-tagger's tag sweep and late owner tags against moto in server mode: the tags that
//! end up in EC2, and the calls it takes to get there.

use std::collections::BTreeMap;

use crate::common::ROLE;
use serde_json::Value;
use shared::app::owner_tagging::OwnerTagger;
use shared::domain::outcome::SkipSubject;
use shared::domain::reason::ReasonCode;
use shared::{Config, Status};
use testkit::{
    create_volume, rewrite, run_instances, sample_event, tags_of, volumes_of, CountedMoto,
};

fn sweep_event() -> Value {
    rewrite(&sample_event("scheduled-tag-sweep.json"), &[])
}

fn late_owner_event(instance: &str) -> Value {
    rewrite(
        &sample_event("tag-change-created-by-added.json"),
        &[("i-0a1b2c3d4e5f60007", instance)],
    )
}

fn tagger(
    w: &CountedMoto,
    config: Config,
) -> OwnerTagger<aws_sdk_ec2::Client, aws_sdk_iam::Client> {
    OwnerTagger::new(config, w.clients.ec2.clone(), w.clients.iam.clone())
}

fn writes(calls: &BTreeMap<String, u64>) -> u64 {
    calls
        .iter()
        .filter(|(op, _)| op.contains("CreateTags") || op.contains("DeleteTags"))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn the_sweep_tags_owners_repairs_stale_ids_removes_variants_and_writes_nothing_once_converged(
) {
    // GIVEN, in moto:
    let w = CountedMoto::start(ROLE).await;
    let admin = &w.admin.ec2;
    // an instance whose launch event never arrived (an EC2 Fleet launch, say)
    let fleet = run_instances(admin, 1, &[("CreatedBy", "ada.lovelace")])
        .await
        .remove(0);
    // one tagged with an older id of the users' role (the role was re-created)
    let stale = run_instances(
        admin,
        1,
        &[
            ("CreatedBy", "tim.malone"),
            ("AwsUserId", "AROAOLDROLEID00001:tim.malone"),
        ],
    )
    .await
    .remove(0);
    // one of grace's, with case variants planted in several spellings
    let grace = format!("{}:grace.hopper", w.role_id);
    let planted = run_instances(
        admin,
        1,
        &[
            ("CreatedBy", "grace.hopper"),
            ("AwsUserId", &grace),
            ("awsuserid", &format!("{}:mallory", w.role_id)),
            ("AWSUSERID", "x"),
            ("createdby", "mallory"),
            ("Name", "awsuserid"),
        ],
    )
    .await
    .remove(0);
    // a hostile owner, and an instance nobody owns
    let hostile = run_instances(admin, 1, &[("CreatedBy", "tim*")])
        .await
        .remove(0);
    let unowned = run_instances(admin, 1, &[("Name", "build-agent")])
        .await
        .remove(0);

    // WHEN the sweep runs
    let tagger = tagger(&w, w.session_config(ROLE));
    w.counter.take();
    let outcome = tagger.handle(sweep_event()).await.unwrap();

    // THEN every instance carries exactly the tags its owner implies
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    let value = |name: &str| format!("{}:{name}", w.role_id);
    assert_eq!(
        tags_of(admin, &fleet).await["AwsUserId"],
        value("ada.lovelace")
    );
    assert_eq!(
        tags_of(admin, &stale).await["AwsUserId"],
        value("tim.malone")
    );
    let planted_tags = tags_of(admin, &planted).await;
    assert_eq!(
        planted_tags,
        BTreeMap::from([
            ("AwsUserId".to_owned(), grace.clone()),
            ("CreatedBy".to_owned(), "grace.hopper".to_owned()),
            ("Name".to_owned(), "awsuserid".to_owned()),
        ])
    );
    assert!(!tags_of(admin, &hostile).await.contains_key("AwsUserId"));
    assert!(!tags_of(admin, &unowned).await.contains_key("AwsUserId"));
    assert_eq!(outcome.counts.tags_tampered, 3);
    assert_eq!(outcome.counts.instances_tagged, 2);
    assert_eq!(outcome.skipped.len(), 1, "{:?}", outcome.skipped);
    assert_eq!(
        outcome.skipped[0].subject,
        shared::domain::outcome::SkipSubject::Instance(hostile.clone())
    );
    // AND the root volume of each owned instance carries its owner's id (grace's too, though
    // her instance needed no new tag), and no other volume was touched
    for (instance, name) in [
        (&fleet, "ada.lovelace"),
        (&stale, "tim.malone"),
        (&planted, "grace.hopper"),
    ] {
        for volume in volumes_of(admin, instance).await {
            assert_eq!(
                tags_of(admin, &volume).await.get("AwsUserId"),
                Some(&value(name))
            );
        }
    }
    for instance in [&hostile, &unowned] {
        for volume in volumes_of(admin, instance).await {
            assert!(tags_of(admin, &volume).await.is_empty());
        }
    }
    assert_eq!(outcome.counts.volumes_tagged, 3);
    // one page of instances and one of volumes per region (one region here), one CreateTags
    // per value (instances and volumes together), one DeleteTags per variant key, and the
    // covered regions once per process
    let calls = w.counter.take();
    assert_eq!(calls.get("ec2:DescribeRegions"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("ec2:DescribeInstances"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("ec2:DescribeVolumes"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("ec2:CreateTags"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("ec2:DeleteTags"), Some(&3), "{calls:?}");

    // AND a second sweep finds nothing to do: one read of the instances, one of their
    // volumes and one of the users' role's trust policy, no write
    let again = tagger.handle(sweep_event()).await.unwrap();
    assert_eq!(again.status, Status::Unchanged, "{again:?}");
    let calls = w.counter.take();
    assert_eq!(writes(&calls), 0, "{calls:?}");
    assert_eq!(calls.get("iam:GetRole"), Some(&1), "{calls:?}");
    assert_eq!(calls.values().sum::<u64>(), 3, "{calls:?}");
}

#[tokio::test]
async fn the_sweep_gives_volumes_their_instances_owner_and_never_takes_another_users() {
    // GIVEN tim's instance (owned, with its root volume), and on it a volume of ada's, a volume
    // with an older id of the role for tim, and a volume on an instance nobody owns, and one
    // that is detached
    let w = CountedMoto::start(ROLE).await;
    let admin = &w.admin.ec2;
    let tims = format!("{}:tim.malone", w.role_id);
    let adas = format!("{}:ada", w.role_id);
    let tim = run_instances(
        admin,
        1,
        &[("CreatedBy", "tim.malone"), ("AwsUserId", &tims)],
    )
    .await
    .remove(0);
    let root = volumes_of(admin, &tim).await.remove(0);
    let ada = create_volume(admin, Some(&tim), &[("AwsUserId", &adas)]).await;
    let stale = create_volume(
        admin,
        Some(&tim),
        &[("AwsUserId", "AROAOLDROLEID00001:tim.malone")],
    )
    .await;
    let nobodys = run_instances(admin, 1, &[("Name", "build-agent")])
        .await
        .remove(0);
    let unowned = create_volume(admin, Some(&nobodys), &[]).await;
    let detached = create_volume(admin, None, &[]).await;

    // WHEN the sweep runs
    let tagger = tagger(&w, w.session_config(ROLE));
    let outcome = tagger.handle(sweep_event()).await.unwrap();

    // THEN the root volume and the stale one are tim's, ada's is still hers and reported, and
    // the unowned instance's volume and the detached one carry nothing
    let user_id = |tags: BTreeMap<String, String>| tags.get("AwsUserId").cloned();
    assert_eq!(user_id(tags_of(admin, &root).await), Some(tims.clone()));
    assert_eq!(user_id(tags_of(admin, &stale).await), Some(tims.clone()));
    assert_eq!(user_id(tags_of(admin, &ada).await), Some(adas.clone()));
    assert!(tags_of(admin, &unowned).await.is_empty());
    assert!(tags_of(admin, &detached).await.is_empty());
    assert_eq!(outcome.counts.volumes_tagged, 2, "{outcome:?}");
    assert_eq!(
        outcome.skip_codes(),
        [(SkipSubject::Volume(ada), ReasonCode::OwnedByAnother)]
    );
}

#[tokio::test]
async fn the_sweep_notices_a_trust_policy_that_lets_callers_choose_their_name() {
    // GIVEN the users' role trusts only the SAML provider
    let w = CountedMoto::start(ROLE).await;
    let tagger = tagger(&w, w.session_config(ROLE));
    let first = tagger.handle(sweep_event()).await.unwrap();
    assert_eq!(first.counts.trust_policy_findings, 0, "{first:?}");

    // WHEN someone later lets the whole account assume it with sts:AssumeRole, with no
    // condition on the session name
    testkit::trust_the_account_to_assume(&w.admin.iam, ROLE).await;

    // THEN the next sweep counts it (the TrustPolicyFindings metric and its alarm), and still
    // does its work
    let next = tagger.handle(sweep_event()).await.unwrap();
    assert_eq!(next.counts.trust_policy_findings, 1, "{next:?}");
    assert_ne!(next.status, Status::Ignored);
}

#[tokio::test]
async fn a_late_created_by_is_tagged_from_its_tag_change_event() {
    // GIVEN an instance launched without an owner, whose CreatedBy the portal wrote later
    let w = CountedMoto::start(ROLE).await;
    let instance = run_instances(&w.admin.ec2, 1, &[("Name", "fleet-worker")])
        .await
        .remove(0);
    testkit::put_tag(&w.admin.ec2, &instance, "CreatedBy", "ada.lovelace").await;

    // WHEN its Tag Change event arrives
    let tagger = tagger(&w, w.session_config(ROLE));
    w.counter.take();
    let outcome = tagger.handle(late_owner_event(&instance)).await.unwrap();

    // THEN it is tagged, reading only that instance
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(
        tags_of(&w.admin.ec2, &instance).await["AwsUserId"],
        format!("{}:ada.lovelace", w.role_id)
    );
    for volume in volumes_of(&w.admin.ec2, &instance).await {
        assert_eq!(
            tags_of(&w.admin.ec2, &volume).await["AwsUserId"],
            format!("{}:ada.lovelace", w.role_id)
        );
    }
    let calls = w.counter.take();
    assert_eq!(calls.get("ec2:DescribeInstances"), Some(&1));
    assert_eq!(calls.get("ec2:DescribeVolumes"), Some(&1));
    assert_eq!(calls.get("ec2:CreateTags"), Some(&1));

    // AND a redelivery writes nothing
    let again = tagger.handle(late_owner_event(&instance)).await.unwrap();
    assert_eq!(again.status, Status::Unchanged, "{again:?}");
    assert_eq!(writes(&w.counter.take()), 0);
}

#[tokio::test]
async fn with_trusted_launchers_the_sweep_assigns_no_first_owner_but_still_repairs() {
    let w = CountedMoto::start(ROLE).await;
    let admin = &w.admin.ec2;
    let fleet = run_instances(admin, 1, &[("CreatedBy", "ada.lovelace")])
        .await
        .remove(0);
    let stale = run_instances(admin, 1, &[("AwsUserId", "AROAOLDROLEID00001:alice")])
        .await
        .remove(0);
    let planted = run_instances(admin, 1, &[("awsUserId", "x")])
        .await
        .remove(0);
    let role_id = w.role_id.to_string();
    let config = Config::for_tests(&[
        ("SESSION_ROLE_NAME", ROLE),
        ("SESSION_ROLE_ID", &role_id),
        (
            "TRUSTED_LAUNCHER_ARNS",
            "arn:aws:iam::123456789012:role/ServiceWorkbench-Portal",
        ),
    ]);

    tagger(&w, config).handle(sweep_event()).await.unwrap();

    assert!(!tags_of(admin, &fleet).await.contains_key("AwsUserId"));
    assert_eq!(
        tags_of(admin, &stale).await["AwsUserId"],
        format!("{role_id}:alice")
    );
    assert!(tags_of(admin, &planted).await.is_empty());
}

#[tokio::test]
async fn bulk_reads_keep_only_the_ownership_tags_and_their_case_variants() {
    use shared::ports::{InstanceInventory, LiveInstances};
    // GIVEN an instance with the ownership tags, a case variant and a portal's other tags
    let w = CountedMoto::start(ROLE).await;
    let id = run_instances(
        &w.admin.ec2,
        1,
        &[
            ("CreatedBy", "ada.lovelace"),
            ("AwsUserId", "AROAEXAMPLEROLEID1234:ada.lovelace"),
            ("awsuserid", "AROAEXAMPLEROLEID1234:grace"),
            ("Name", "workspace-ada"),
            ("Project", "genomics"),
        ],
    )
    .await
    .remove(0);
    let ec2 = &w.clients.ec2;
    let keys_of = |found: Vec<shared::ports::DescribedInstance>| -> Vec<String> {
        let instance = found
            .into_iter()
            .find(|i| i.instance_id.to_string() == id)
            .expect("the instance is live");
        instance.tags.into_keys().collect()
    };
    // WHEN the sweep's read and the reconcile's read run, THEN only those keys are held
    let mut swept = Vec::new();
    ec2.each_live_instance(&["CreatedBy", "AwsUserId"], &mut |i| swept.push(i))
        .await
        .unwrap();
    assert_eq!(keys_of(swept), ["AwsUserId", "CreatedBy", "awsuserid"]);
    let tagged = ec2
        .live_instances_tagged(&["AwsUserId"], None)
        .await
        .unwrap();
    assert_eq!(keys_of(tagged), ["AwsUserId", "awsuserid"]);
}

#[tokio::test]
async fn the_sweep_counts_the_regions_no_logging_trail_delivers_launches_from() {
    use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType};
    // GIVEN one covered region (us-east-1) and no trail at all
    let w = CountedMoto::start(ROLE).await;
    let tagger = OwnerTagger::new(
        w.session_config(ROLE),
        w.clients.ec2.clone(),
        w.clients.iam.clone(),
    )
    .with_trails(w.clients.cloudtrail.clone());
    let regions_without_trail =
        |outcome: &shared::domain::outcome::Outcome| outcome.counts.regions_without_trail;
    // WHEN swept THEN the region is counted (RegionsWithoutTrail and its alarm), and the sweep
    // still does its work
    let none = tagger.handle(sweep_event()).await.unwrap();
    assert_eq!(regions_without_trail(&none), Some(1), "{none:?}");
    assert_ne!(none.status, Status::Ignored);

    // WHEN a multi-region trail is created (moto's bucket) but not started THEN still counted
    let trails =
        &testkit::create_multi_region_trail(&w.moto.sdk_config().await, "org-trail", "trail-logs")
            .await;
    let stopped = tagger.handle(sweep_event()).await.unwrap();
    assert_eq!(regions_without_trail(&stopped), Some(1), "{stopped:?}");

    // WHEN it logs, with CloudTrail's default selectors (management events, reads and writes)
    // THEN no region is counted
    trails
        .start_logging()
        .name("org-trail")
        .send()
        .await
        .unwrap();
    w.counter.take();
    let logging = tagger.handle(sweep_event()).await.unwrap();
    assert_eq!(regions_without_trail(&logging), Some(0), "{logging:?}");
    // AND the check took 3 calls: the home region's trails, and the one trail's status and
    // selectors
    let calls = w.counter.take();
    let trail_calls: u64 = calls
        .iter()
        .filter(|(op, _)| op.starts_with("cloudtrail:"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(trail_calls, 3, "{calls:?}");

    // WHEN it is narrowed to reads only THEN launches are not delivered: counted again
    trails
        .put_event_selectors()
        .trail_name("org-trail")
        .event_selectors(
            EventSelector::builder()
                .include_management_events(true)
                .read_write_type(ReadWriteType::ReadOnly)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let reads_only = tagger.handle(sweep_event()).await.unwrap();
    assert_eq!(
        regions_without_trail(&reads_only),
        Some(1),
        "{reads_only:?}"
    );

    // AND a tagger built without CloudTrail makes no such check
    let without = OwnerTagger::new(
        w.session_config(ROLE),
        w.clients.ec2.clone(),
        w.clients.iam.clone(),
    );
    let unchecked = without.handle(sweep_event()).await.unwrap();
    assert_eq!(regions_without_trail(&unchecked), None);
}
