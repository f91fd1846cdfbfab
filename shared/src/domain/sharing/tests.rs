use super::*;

const ROLE: &str = "AROAEXAMPLEROLEID1234";

fn role() -> RoleId {
    RoleId::parse(ROLE).unwrap()
}

fn rules() -> ShareRules {
    ShareRules {
        enabled: true,
        share_with_key: "ShareWith".into(),
        share_for_key: "ShareFor".into(),
        user_id_key: "AwsUserId".into(),
        slots: 3,
        default_duration: ShareDuration::parse("8h").unwrap(),
        max_duration: ShareDuration::parse("7d").unwrap(),
        policy_name: "SsmSessionOwnerSharing".into(),
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn user(name: &str) -> UserId {
    UserId::new(role(), SessionName::parse(name).unwrap())
}

/// tim's instance, with these tags besides his user-id tag.
fn tims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tags.insert("AwsUserId".into(), user("tim").to_string());
    tags
}

fn refusal(plan: &SharePlan) -> &str {
    match &plan.outcome {
        ShareOutcome::Refused(reason) => {
            assert_eq!(reason.code, ReasonCode::ShareRefused);
            &reason.text
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn durations_are_whole_minutes_hours_or_days_from_a_minute_up() {
    for (text, minutes) in [
        ("1m", 1),
        ("90m", 90),
        ("8h", 480),
        ("3d", 4320),
        (" 2h ", 120),
    ] {
        assert_eq!(
            ShareDuration::parse(text).unwrap().minutes(),
            minutes,
            "{text}"
        );
    }
    for (text, shown) in [("90m", "90m"), ("120m", "2h"), ("48h", "2d")] {
        assert_eq!(ShareDuration::parse(text).unwrap().to_string(), shown);
    }
    for bad in [
        "", "8", "h", "0m", "-1h", "1.5h", "8H", "8 h", "1w", "9999999d", "400d", "١h",
    ] {
        assert!(ShareDuration::parse(bad).is_err(), "{bad:?} was read");
    }
}

#[test]
fn a_valid_request_gives_each_guest_a_slot_with_the_owners_role_id_and_records_the_expiry() {
    let tags = tims(&[("ShareWith", "ana  bo.li ana"), ("ShareFor", "90m")]);
    let plan = plan_share(
        &tags,
        &role(),
        now(),
        Trigger::Request { since: now() },
        &rules(),
    );
    let until = now() + Duration::minutes(90);
    assert_eq!(
        plan.put,
        BTreeMap::from([
            ("AwsUserIdGuest1".to_owned(), format!("{ROLE}:ana")),
            ("AwsUserIdGuest2".to_owned(), format!("{ROLE}:bo.li")),
            (
                "AwsUserIdSharedUntil".to_owned(),
                format!("2026-12-06T13:30:00Z;{ROLE}:tim")
            ),
        ])
    );
    assert!(plan.remove.is_empty());
    assert_eq!(
        plan.outcome,
        ShareOutcome::Shared {
            guests: vec![user("ana"), user("bo.li")],
            until
        }
    );
    // converging what was written changes nothing
    let mut written = tags.clone();
    written.extend(plan.put);
    let again = plan_share(&written, &role(), now(), Trigger::Converge, &rules());
    assert_eq!(again, SharePlan::unchanged());
}

#[test]
fn without_share_for_the_default_duration_applies() {
    let plan = plan_share(
        &tims(&[("ShareWith", "ana")]),
        &role(),
        now(),
        Trigger::Request { since: now() },
        &rules(),
    );
    assert_eq!(
        plan.put.get("AwsUserIdSharedUntil").map(String::as_str),
        Some(format!("2026-12-06T20:00:00Z;{ROLE}:tim").as_str())
    );
}

#[test]
fn invalid_requests_change_nothing_and_say_why() {
    let cases: [(&[(&str, &str)], &str); 8] = [
        (
            &[("ShareWith", "ana,bo")],
            "separate usernames with spaces, not commas",
        ),
        (
            &[("ShareWith", "ana bo cy di")],
            "names 4 users; an instance can be shared with at most 3",
        ),
        (&[("ShareWith", "tim")], "names the owner, tim"),
        (&[("ShareWith", "   ")], "names nobody"),
        (
            &[("ShareWith", "ana"), ("ShareFor", "8d")],
            "ShareFor=8d is longer than the maximum, 7d",
        ),
        (
            &[("ShareWith", "ana"), ("ShareFor", "soon")],
            "ShareFor: \"soon\" is not a duration",
        ),
        (
            &[("ShareWith", "${aws:userid}")],
            "ShareWith names \"${aws:userid}\"",
        ),
        (&[("ShareWith", "an*")], "ShareWith names \"an*\""),
    ];
    for (pairs, expected) in cases {
        let plan = plan_share(
            &tims(pairs),
            &role(),
            now(),
            Trigger::Request { since: now() },
            &rules(),
        );
        assert!(
            plan.put.is_empty() && plan.remove.is_empty(),
            "{pairs:?}: {plan:?}"
        );
        assert!(
            refusal(&plan).contains(expected),
            "{pairs:?}: {}",
            refusal(&plan)
        );
    }
    // a character no role-session name has
    let plan = plan_share(
        &tims(&[("ShareWith", "ana\"}")]),
        &role(),
        now(),
        Trigger::Request { since: now() },
        &rules(),
    );
    assert!(refusal(&plan).contains("only A-Z a-z 0-9"));
}

#[test]
fn an_invalid_change_to_a_live_share_leaves_the_share_as_it_was() {
    let live = tims(&[
        ("ShareWith", "ana tim"),
        ("AwsUserIdGuest1", &format!("{ROLE}:ana")),
        (
            "AwsUserIdSharedUntil",
            &format!("2026-12-06T13:00:00Z;{ROLE}:tim"),
        ),
    ]);
    let plan = plan_share(
        &live,
        &role(),
        now(),
        Trigger::Request { since: now() },
        &rules(),
    );
    assert!(refusal(&plan).contains("names the owner"));
    assert!(plan.put.is_empty() && plan.remove.is_empty());
}

#[test]
fn a_share_ends_at_its_expiry_on_converge_and_its_request_tags_go_too() {
    let live = tims(&[
        ("ShareWith", "ana bo"),
        ("ShareFor", "1h"),
        ("AwsUserIdGuest1", &format!("{ROLE}:ana")),
        ("AwsUserIdGuest2", &format!("{ROLE}:bo")),
        (
            "AwsUserIdSharedUntil",
            &format!("2026-12-06T12:00:00Z;{ROLE}:tim"),
        ),
    ]);
    let plan = plan_share(&live, &role(), now(), Trigger::Converge, &rules());
    assert!(plan.put.is_empty());
    let mut removed = plan.remove.clone();
    removed.sort();
    assert_eq!(
        removed,
        [
            "AwsUserIdGuest1",
            "AwsUserIdGuest2",
            "AwsUserIdSharedUntil",
            "ShareFor",
            "ShareWith"
        ]
    );
    assert_eq!(
        plan.outcome,
        ShareOutcome::Ended {
            why: EndReason::Expired,
            guests: vec![format!("{ROLE}:ana"), format!("{ROLE}:bo")]
        }
    );
    // a minute before, it stands
    let before = now() - Duration::minutes(1);
    assert_eq!(
        plan_share(&live, &role(), before, Trigger::Converge, &rules()),
        SharePlan::unchanged()
    );
    // the owner writing the request again renews it
    let renewed = plan_share(
        &live,
        &role(),
        now(),
        Trigger::Request { since: now() },
        &rules(),
    );
    assert_eq!(
        renewed.put,
        BTreeMap::from([(
            "AwsUserIdSharedUntil".to_owned(),
            format!("2026-12-06T13:00:00Z;{ROLE}:tim")
        )])
    );
}

#[test]
fn deleting_share_with_ends_the_share_and_a_changed_owner_ends_it_too() {
    let slots = [
        ("AwsUserIdGuest1", format!("{ROLE}:ana")),
        (
            "AwsUserIdSharedUntil",
            format!("2026-12-06T13:00:00Z;{ROLE}:tim"),
        ),
    ];
    let pairs: Vec<(&str, &str)> = slots.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let withdrawn = plan_share(
        &tims(&pairs),
        &role(),
        now(),
        Trigger::Request { since: now() },
        &rules(),
    );
    assert!(matches!(
        withdrawn.outcome,
        ShareOutcome::Ended {
            why: EndReason::Withdrawn,
            ..
        }
    ));
    assert_eq!(
        withdrawn.remove,
        ["AwsUserIdGuest1", "AwsUserIdSharedUntil"]
    );

    let mut with_request = pairs.clone();
    with_request.push(("ShareWith", "ana"));
    let mut adas = tims(&with_request);
    adas.insert("AwsUserId".into(), user("ada").to_string());
    let changed = plan_share(&adas, &role(), now(), Trigger::Converge, &rules());
    assert!(matches!(
        changed.outcome,
        ShareOutcome::Ended {
            why: EndReason::OwnerChanged,
            ..
        }
    ));
    assert!(changed.remove.contains(&"ShareWith".to_owned()));

    let mut ownerless = tims(&with_request);
    ownerless.remove("AwsUserId");
    let gone = plan_share(&ownerless, &role(), now(), Trigger::Converge, &rules());
    assert!(matches!(
        gone.outcome,
        ShareOutcome::Ended {
            why: EndReason::OwnerChanged,
            ..
        }
    ));
}

#[test]
fn fewer_guests_free_their_slots_and_a_stale_role_id_is_rewritten() {
    let live = tims(&[
        ("ShareWith", "bo"),
        ("AwsUserIdGuest1", "AROAOLDROLEID0000001:ana"),
        ("AwsUserIdGuest2", "AROAOLDROLEID0000001:bo"),
        (
            "AwsUserIdSharedUntil",
            &format!("2026-12-06T13:00:00Z;{ROLE}:tim"),
        ),
    ]);
    let plan = plan_share(&live, &role(), now(), Trigger::Converge, &rules());
    assert_eq!(
        plan.put,
        BTreeMap::from([("AwsUserIdGuest1".to_owned(), format!("{ROLE}:bo"))])
    );
    assert_eq!(plan.remove, ["AwsUserIdGuest2"]);
}

#[test]
fn with_sharing_off_shares_end_and_requests_are_refused() {
    let off = ShareRules {
        enabled: false,
        ..rules()
    };
    let live = tims(&[
        ("ShareWith", "ana"),
        ("AwsUserIdGuest1", &format!("{ROLE}:ana")),
        (
            "AwsUserIdSharedUntil",
            &format!("2026-12-06T13:00:00Z;{ROLE}:tim"),
        ),
    ]);
    let plan = plan_share(&live, &role(), now(), Trigger::Converge, &off);
    assert!(matches!(
        plan.outcome,
        ShareOutcome::Ended {
            why: EndReason::SharingOff,
            ..
        }
    ));
    let plan = plan_share(
        &tims(&[("ShareWith", "ana")]),
        &role(),
        now(),
        Trigger::Request { since: now() },
        &off,
    );
    assert!(refusal(&plan).contains("sharing is off"));
    assert_eq!(
        plan_share(&tims(&[]), &role(), now(), Trigger::Converge, &off),
        SharePlan::unchanged()
    );
}

#[test]
fn an_unreadable_expiry_is_rewritten_from_now_rather_than_trusted() {
    let live = tims(&[
        ("ShareWith", "ana"),
        ("AwsUserIdGuest1", &format!("{ROLE}:ana")),
        ("AwsUserIdSharedUntil", "forever"),
    ]);
    let plan = plan_share(&live, &role(), now(), Trigger::Converge, &rules());
    assert_eq!(
        plan.put,
        BTreeMap::from([(
            "AwsUserIdSharedUntil".to_owned(),
            format!("2026-12-06T20:00:00Z;{ROLE}:tim")
        )])
    );
}

#[test]
fn case_variants_of_the_products_sharing_keys_are_removed_whatever_else_is_planned() {
    let live = tims(&[
        ("ShareWith", "ana"),
        ("AwsUserIdGuest1", &format!("{ROLE}:ana")),
        ("awsuseridguest2", &format!("{ROLE}:mallory")),
        ("AWSUSERIDSHAREDUNTIL", "2099-01-01T00:00:00Z;x"),
        (
            "AwsUserIdSharedUntil",
            &format!("2026-12-06T13:00:00Z;{ROLE}:tim"),
        ),
    ]);
    let plan = plan_share(&live, &role(), now(), Trigger::Converge, &rules());
    assert_eq!(plan.tampered, ["AWSUSERIDSHAREDUNTIL", "awsuseridguest2"]);
    assert_eq!(plan.remove, plan.tampered);
    assert!(plan.put.is_empty());
    // a variant of the owner's request keys is just another tag: not read, not removed
    let plan = plan_share(
        &tims(&[("sharewith", "mallory")]),
        &role(),
        now(),
        Trigger::Request { since: now() },
        &rules(),
    );
    assert_eq!(plan, SharePlan::unchanged());
}

#[test]
fn a_share_runs_from_when_its_request_was_written_so_a_redelivery_renews_nothing() {
    let written = now() - Duration::minutes(30);
    let tags = tims(&[("ShareWith", "ana"), ("ShareFor", "1h")]);
    let first = plan_share(
        &tags,
        &role(),
        now(),
        Trigger::Request { since: written },
        &rules(),
    );
    assert_eq!(
        first.put.get("AwsUserIdSharedUntil").map(String::as_str),
        Some(format!("2026-12-06T12:30:00Z;{ROLE}:tim").as_str())
    );
    let mut after = tags.clone();
    after.extend(first.put);
    // the same event, delivered again ten minutes later: nothing to write
    let later = now() + Duration::minutes(10);
    assert_eq!(
        plan_share(
            &after,
            &role(),
            later,
            Trigger::Request { since: written },
            &rules()
        ),
        SharePlan::unchanged()
    );
    // delivered after the share would have ended: it ends
    let too_late = now() + Duration::minutes(31);
    let plan = plan_share(
        &after,
        &role(),
        too_late,
        Trigger::Request { since: written },
        &rules(),
    );
    assert!(matches!(
        plan.outcome,
        ShareOutcome::Ended {
            why: EndReason::Expired,
            ..
        }
    ));
    // an event stamped in the future runs from now, not from then
    let ahead = plan_share(
        &tags,
        &role(),
        now(),
        Trigger::Request {
            since: now() + Duration::hours(5),
        },
        &rules(),
    );
    assert_eq!(
        ahead.put.get("AwsUserIdSharedUntil").map(String::as_str),
        Some(format!("2026-12-06T13:00:00Z;{ROLE}:tim").as_str())
    );
}

#[test]
fn a_slot_beyond_the_deployments_number_is_removed_never_honoured() {
    let live = tims(&[
        ("ShareWith", "ana"),
        ("AwsUserIdGuest1", &format!("{ROLE}:ana")),
        ("AwsUserIdGuest5", &format!("{ROLE}:mallory")),
        (
            "AwsUserIdSharedUntil",
            &format!("2026-12-06T13:00:00Z;{ROLE}:tim"),
        ),
    ]);
    let plan = plan_share(&live, &role(), now(), Trigger::Converge, &rules());
    assert_eq!(plan.remove, ["AwsUserIdGuest5"]);
    assert!(plan.put.is_empty());
}

#[test]
fn a_sessions_owner_is_a_user_of_the_users_role_or_nobody_the_product_may_end() {
    let role = ResolvedRole {
        name: "Okta-ServiceWorkbenchUser".into(),
        id: role(),
    };
    let of = |owner: &str| session_user(owner, &role).map(|u| u.to_string());
    assert_eq!(
        of("arn:aws:sts::123456789012:assumed-role/Okta-ServiceWorkbenchUser/ana"),
        Some(format!("{ROLE}:ana"))
    );
    for other in [
        "arn:aws:sts::123456789012:assumed-role/Admin/ana",
        "arn:aws:sts::123456789012:assumed-role/Okta-ServiceWorkbenchUser2/ana",
        "arn:aws:iam::123456789012:user/ana",
        "arn:aws:sts::123456789012:assumed-role/Okta-ServiceWorkbenchUser/an*a",
        "arn:aws:sts::123456789012:assumed-role/Okta-ServiceWorkbenchUser/a/b",
        "",
    ] {
        assert_eq!(of(other), None, "{other}");
    }
}
