//! Sharing against moto in server mode: an owner's request, the guest slots and expiry that end
//! up in EC2, the sweep ending the share at its expiry, and the calls it takes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use shared::app::owner_tagging::OwnerTagger;
use shared::domain::ids::TagTarget;
use shared::domain::reason::ReasonCode;
use shared::ports::InstanceTagger;
use shared::{Config, Status};
use testkit::{rewrite, run_instances, sample_event, tags_of, CountedMoto};

use crate::common::ROLE;

/// moto's configuration for the tests, with sharing on.
fn sharing_on(w: &CountedMoto) -> Config {
    let role_id = w.role_id.to_string();
    Config::from_lookup(|k| match k {
        "SESSION_ROLE_NAME" => Some(ROLE.into()),
        "SESSION_ROLE_ID" => Some(role_id.clone()),
        "REGIONS" => Some("us-east-1".into()),
        "SHARING" => Some("true".into()),
        _ => None,
    })
    .unwrap()
}

fn tagger(w: &CountedMoto) -> OwnerTagger<aws_sdk_ec2::Client, aws_sdk_iam::Client> {
    OwnerTagger::new(sharing_on(w), w.clients.ec2.clone(), w.clients.iam.clone())
}

/// The owner's tag change on `instance`, written at 12:00.
fn share_event(instance: &str, keys: &[&str]) -> Value {
    let mut event = rewrite(
        &sample_event("tag-change-share-with-added.json"),
        &[("i-0a1b2c3d4e5f60008", instance)],
    );
    event["detail"]["changed-tag-keys"] = serde_json::json!(keys);
    event["time"] = serde_json::json!("2026-12-06T12:00:00Z");
    event
}

fn sweep_event() -> Value {
    rewrite(&sample_event("scheduled-tag-sweep.json"), &[])
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time)
        .unwrap()
        .with_timezone(&Utc)
}

fn calls(w: &CountedMoto) -> BTreeMap<String, u64> {
    w.counter.take()
}

/// tim.malone's owned instance, with these tags besides.
async fn tims_instance(w: &CountedMoto, more: &[(&str, &str)]) -> String {
    let tim = format!("{}:tim.malone", w.role_id);
    let mut tags = vec![("CreatedBy", "tim.malone"), ("AwsUserId", tim.as_str())];
    tags.extend_from_slice(more);
    run_instances(&w.admin.ec2, 1, &tags).await.remove(0)
}

#[tokio::test]
async fn an_owners_request_gives_each_guest_a_slot_and_the_sweep_ends_the_share_at_its_expiry() {
    // GIVEN tim.malone's instance, shared with two colleagues for 90 minutes
    let w = CountedMoto::start(ROLE).await;
    let instance = tims_instance(
        &w,
        &[
            ("ShareWith", "ada.lovelace grace.hopper"),
            ("ShareFor", "90m"),
        ],
    )
    .await;
    let tagger = tagger(&w);
    let now = at("2026-12-06T12:00:00Z");
    w.counter.take();

    // WHEN the request's tag change arrives
    let outcome = tagger
        .handle_at(share_event(&instance, &["ShareWith", "ShareFor"]), now)
        .await
        .unwrap();

    // THEN each guest has a slot with the owner's role id, and the expiry is recorded
    assert_eq!(outcome.status, Status::Changed, "{outcome:?}");
    assert_eq!(outcome.counts.shares_made, 1);
    let id = |user: &str| format!("{}:{user}", w.role_id);
    let tags = tags_of(&w.admin.ec2, &instance).await;
    assert_eq!(tags["AwsUserIdGuest1"], id("ada.lovelace"));
    assert_eq!(tags["AwsUserIdGuest2"], id("grace.hopper"));
    assert!(!tags.contains_key("AwsUserIdGuest3"));
    assert_eq!(
        tags["AwsUserIdSharedUntil"],
        format!("2026-12-06T13:30:00Z;{}", id("tim.malone"))
    );
    // in one read and one write
    assert_eq!(
        calls(&w),
        BTreeMap::from([
            ("ec2:DescribeInstances".to_owned(), 1),
            ("ec2:CreateTags".to_owned(), 1)
        ])
    );

    // WHEN the sweep runs before the expiry, THEN it writes nothing
    let outcome = tagger
        .handle_at(sweep_event(), now + Duration::minutes(89))
        .await
        .unwrap();
    assert_eq!(outcome.counts.shares_ended, 0, "{outcome:?}");
    assert!(!calls(&w).contains_key("ec2:DeleteTags"));

    // WHEN it runs at the expiry, THEN the slots, the expiry and the request are gone
    let outcome = tagger
        .handle_at(sweep_event(), now + Duration::minutes(90))
        .await
        .unwrap();
    assert_eq!(outcome.counts.shares_ended, 1, "{outcome:?}");
    assert_eq!(
        tags_of(&w.admin.ec2, &instance).await,
        BTreeMap::from([
            ("AwsUserId".to_owned(), id("tim.malone")),
            ("CreatedBy".to_owned(), "tim.malone".to_owned()),
        ])
    );
    assert_eq!(calls(&w).get("ec2:DeleteTags"), Some(&1));
    // and a sweep after that changes nothing
    let outcome = tagger
        .handle_at(sweep_event(), now + Duration::minutes(120))
        .await
        .unwrap();
    assert_eq!(outcome.status, Status::Unchanged, "{outcome:?}");
}

#[tokio::test]
async fn an_invalid_request_changes_nothing_and_says_why() {
    let w = CountedMoto::start(ROLE).await;
    let tagger = tagger(&w);
    let now = at("2026-12-06T12:00:00Z");
    for (share_with, share_for, expected) in [
        ("tim.malone", "1h", "names the owner, tim.malone"),
        (
            "ada.lovelace",
            "8d",
            "ShareFor=8d is longer than the maximum, 7d",
        ),
        (
            "aa bb cc dd",
            "1h",
            "names 4 users; an instance can be shared with at most 3",
        ),
        ("ada*", "1h", "ShareWith names \"ada*\""),
    ] {
        let instance =
            tims_instance(&w, &[("ShareWith", share_with), ("ShareFor", share_for)]).await;
        let before = tags_of(&w.admin.ec2, &instance).await;
        w.counter.take();
        let outcome = tagger
            .handle_at(share_event(&instance, &["ShareWith"]), now)
            .await
            .unwrap();
        assert_eq!(outcome.status, Status::Unchanged, "{outcome:?}");
        assert_eq!(outcome.counts.shares_refused, 1);
        let skip = &outcome.skipped[0];
        assert_eq!(skip.reason.code, ReasonCode::ShareRefused);
        assert!(skip.reason.text.contains(expected), "{}", skip.reason.text);
        assert_eq!(tags_of(&w.admin.ec2, &instance).await, before);
        assert!(!calls(&w).keys().any(|op| op.contains("Tags")));
    }
}

#[tokio::test]
async fn the_owner_deleting_share_with_ends_the_share_and_a_rewritten_tag_is_never_removed() {
    let w = CountedMoto::start(ROLE).await;
    let tagger = tagger(&w);
    let now = at("2026-12-06T12:00:00Z");
    let instance = tims_instance(&w, &[("ShareWith", "ada.lovelace")]).await;
    tagger
        .handle_at(share_event(&instance, &["ShareWith"]), now)
        .await
        .unwrap();
    assert!(tags_of(&w.admin.ec2, &instance)
        .await
        .contains_key("AwsUserIdGuest1"));

    // WHEN the owner deletes ShareWith
    w.admin
        .ec2
        .delete_tags()
        .resources(&instance)
        .tags(aws_sdk_ec2::types::Tag::builder().key("ShareWith").build())
        .send()
        .await
        .unwrap();
    let outcome = tagger
        .handle_at(share_event(&instance, &["ShareWith"]), now)
        .await
        .unwrap();
    // THEN the share is over
    assert_eq!(outcome.counts.shares_ended, 1, "{outcome:?}");
    let tags = tags_of(&w.admin.ec2, &instance).await;
    assert!(
        !tags
            .keys()
            .any(|k| k.starts_with("AwsUserIdGuest") || k == "AwsUserIdSharedUntil"),
        "{tags:?}"
    );

    // AND a removal names the value it read: a tag rewritten since is left alone
    let target = TagTarget::Instance(shared::domain::ids::InstanceId::parse(&instance).unwrap());
    w.clients
        .ec2
        .put_tags(
            &target,
            &BTreeMap::from([("ShareWith".to_owned(), "grace.hopper".to_owned())]),
        )
        .await
        .unwrap();
    w.clients
        .ec2
        .remove_tags_if_unchanged(
            &target,
            &BTreeMap::from([("ShareWith".to_owned(), "ada.lovelace".to_owned())]),
        )
        .await
        .unwrap();
    assert_eq!(
        tags_of(&w.admin.ec2, &instance).await["ShareWith"],
        "grace.hopper"
    );
    w.clients
        .ec2
        .remove_tags_if_unchanged(
            &target,
            &BTreeMap::from([("ShareWith".to_owned(), "grace.hopper".to_owned())]),
        )
        .await
        .unwrap();
    assert!(!tags_of(&w.admin.ec2, &instance)
        .await
        .contains_key("ShareWith"));
}

#[tokio::test]
async fn a_share_is_scheduled_to_end_at_its_time_and_a_new_share_moves_the_schedule() {
    // GIVEN the deployment's schedule group in moto (moto has EventBridge Scheduler)
    let w = CountedMoto::start(ROLE).await;
    let group = "ssm-session-owner-shares";
    w.admin
        .scheduler
        .create_schedule_group()
        .name(group)
        .send()
        .await
        .unwrap();
    let at = shared::config::ExpirySchedule {
        group: group.into(),
        role_arn: "arn:aws:iam::123456789012:role/ShareExpiryRole".into(),
        bus_arn: "arn:aws:events:us-east-1:123456789012:event-bus/default".into(),
    };
    let schedules = shared::aws::ExpirySchedules::new(w.clients.scheduler.clone(), at);
    let instance = shared::domain::ids::InstanceId::parse("i-0a1b2c3d4e5f60008").unwrap();
    let time = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
    let read = || async {
        w.admin
            .scheduler
            .get_schedule()
            .group_name(group)
            .name("share-eu-west-1-i-0a1b2c3d4e5f60008")
            .send()
            .await
            .unwrap()
    };
    w.counter.take();

    // WHEN a share of the instance in eu-west-1 is scheduled THEN one schedule, in UTC, sends
    // the product's expiry event naming the instance and its region to the bus, as the role
    use shared::ports::ShareExpiries;
    schedules
        .schedule_expiry(&instance, "eu-west-1", time("2026-12-07T03:00:00Z"))
        .await
        .unwrap();
    let made = read().await;
    assert_eq!(made.schedule_expression(), Some("at(2026-12-07T03:00:00)"));
    assert_eq!(made.schedule_expression_timezone(), Some("UTC"));
    let target = made.target().unwrap();
    assert_eq!(
        target.arn(),
        "arn:aws:events:us-east-1:123456789012:event-bus/default"
    );
    assert_eq!(
        target.role_arn(),
        "arn:aws:iam::123456789012:role/ShareExpiryRole"
    );
    let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"instance-id": "i-0a1b2c3d4e5f60008", "region": "eu-west-1"})
    );
    let parameters = target.event_bridge_parameters().unwrap();
    assert_eq!(
        (parameters.source(), parameters.detail_type()),
        ("ssm-session-owner.sharing", "Share Expiry")
    );
    assert_eq!(
        w.counter.take(),
        BTreeMap::from([("scheduler:CreateSchedule".to_owned(), 1)])
    );

    // WHEN the instance is shared again THEN its one schedule moves: Create finds it, Update
    // moves it
    schedules
        .schedule_expiry(&instance, "eu-west-1", time("2026-12-08T09:30:00Z"))
        .await
        .unwrap();
    assert_eq!(
        read().await.schedule_expression(),
        Some("at(2026-12-08T09:30:00)")
    );
    assert_eq!(
        w.counter.take(),
        BTreeMap::from([
            ("scheduler:CreateSchedule".to_owned(), 1),
            ("scheduler:UpdateSchedule".to_owned(), 1)
        ])
    );

    // WHEN the group is missing THEN the error is Scheduler's, not a silent success
    let lost = shared::aws::ExpirySchedules::new(
        w.clients.scheduler.clone(),
        shared::config::ExpirySchedule {
            group: "no-such-group".into(),
            role_arn: "arn:aws:iam::123456789012:role/ShareExpiryRole".into(),
            bus_arn: "arn:aws:events:us-east-1:123456789012:event-bus/default".into(),
        },
    );
    let err = lost
        .schedule_expiry(&instance, "eu-west-1", time("2026-12-07T03:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("scheduler:CreateSchedule"),
        "{err}"
    );
}
