//! What the caller may reach on an instance, read from the instance's tags alone: the same tags
//! IAM reads. Pure: no AWS call here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::sharing::{read_until, ShareDuration, ShareRules, MAX_SLOTS};

/// The deployment's sharing keys as far as a user can know them (`--user-id-tag-key`, ...):
/// every slot any deployment may have (the product never honours one beyond its own number, and
/// removes it), and no maximum below the parser's own (the product refuses a longer share and
/// says why).
pub fn rules(user_id: &str, share_with: &str, share_for: &str) -> Result<ShareRules, String> {
    Ok(ShareRules {
        enabled: true,
        share_with_key: share_with.to_owned(),
        share_for_key: share_for.to_owned(),
        user_id_key: user_id.to_owned(),
        slots: MAX_SLOTS,
        default_duration: ShareDuration::parse("8h")?,
        max_duration: ShareDuration::parse("366d")?,
        policy_name: String::new(),
    })
}

/// How the caller reaches an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "access", rename_all = "lowercase")]
pub enum Reach {
    /// The instance's user-id tag is the caller's; `guests` are the users it is shared with now.
    Owner {
        guests: Vec<String>,
        shared_until: Option<DateTime<Utc>>,
    },
    /// A guest slot is the caller's: shared by `owner` until `shared_until` (`None` when the
    /// expiry is missing or unreadable; the product ends such a share at its next look).
    Guest {
        owner: String,
        shared_until: Option<DateTime<Utc>>,
    },
}

/// One instance the caller may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub id: String,
    pub region: String,
    pub state: String,
    pub name: String,
    #[serde(flatten)]
    pub reach: Reach,
}

/// The username part of `<role-id>:<username>`.
fn username(user_id: &str) -> String {
    user_id
        .split_once(':')
        .map_or(user_id, |(_, user)| user)
        .to_owned()
}

/// What `caller` (their `${aws:userid}`) may reach on an instance with these tags, exactly as
/// the shipped policies read them: the user-id tag, or a guest slot. `None`: nothing.
pub fn reach(tags: &BTreeMap<String, String>, caller: &str, rules: &ShareRules) -> Option<Reach> {
    if tags.get(&rules.user_id_key).map(String::as_str) == Some(caller) {
        let guests: Vec<String> = rules
            .slot_keys()
            .iter()
            .filter_map(|key| tags.get(key))
            .map(|id| username(id))
            .collect();
        let shared_until = if guests.is_empty() {
            None
        } else {
            until(tags, rules)
        };
        return Some(Reach::Owner {
            guests,
            shared_until,
        });
    }
    let slot_holder = rules
        .slot_keys()
        .into_iter()
        .any(|key| tags.get(&key).map(String::as_str) == Some(caller));
    if !slot_holder {
        return None;
    }
    let owner = tags
        .get(&rules.user_id_key)
        .map_or_else(|| "(no owner)".to_owned(), |id| username(id));
    Some(Reach::Guest {
        owner,
        shared_until: until(tags, rules),
    })
}

/// The share's end, through the product's own reader of the expiry tag.
fn until(tags: &BTreeMap<String, String>, rules: &ShareRules) -> Option<DateTime<Utc>> {
    tags.get(&rules.until_key())
        .and_then(|value| read_until(value))
        .map(|(time, _)| time)
}

/// Why the caller cannot reach an instance, in one line, from its tags.
pub fn why_not(tags: &BTreeMap<String, String>, caller: &str, rules: &ShareRules) -> String {
    match tags.get(&rules.user_id_key) {
        None => format!(
            "it has no {} tag yet: the product has not given it an owner",
            rules.user_id_key
        ),
        Some(owner)
            if owner.split_once(':').map(|(r, _)| r) != caller.split_once(':').map(|(r, _)| r) =>
        {
            format!(
                "its {} tag names another role's user ({owner}), not you ({caller})",
                rules.user_id_key
            )
        }
        Some(owner) => format!(
            "it belongs to {} and is not shared with you",
            username(owner)
        ),
    }
}

/// The table `connect ls` prints.
pub fn table(rows: &[Row], now: DateTime<Utc>) -> String {
    let mut lines = vec![[
        "INSTANCE".to_owned(),
        "REGION".to_owned(),
        "STATE".to_owned(),
        "ACCESS".to_owned(),
        "NAME".to_owned(),
    ]];
    for row in rows {
        lines.push([
            row.id.clone(),
            row.region.clone(),
            row.state.clone(),
            access_text(&row.reach, now),
            row.name.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn until_text(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match until {
        None => "an unreadable time".to_owned(),
        Some(t) if t <= now => format!("{} (ended; being removed)", t.format("%Y-%m-%d %H:%M UTC")),
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn access_text(reach: &Reach, now: DateTime<Utc>) -> String {
    match reach {
        Reach::Owner { guests, .. } if guests.is_empty() => "owner".to_owned(),
        Reach::Owner {
            guests,
            shared_until,
        } => format!(
            "owner, shared with {} until {}",
            guests.join(" "),
            until_text(*shared_until, now)
        ),
        Reach::Guest {
            owner,
            shared_until,
        } => format!("guest of {owner} until {}", until_text(*shared_until, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "AROAEXAMPLEROLEID0001:ada.lovelace";
    const TIM: &str = "AROAEXAMPLEROLEID0001:tim.malone";

    fn keys() -> ShareRules {
        rules("AwsUserId", "ShareWith", "ShareFor").unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_owner_and_each_guest_reach_it_and_nobody_else() {
        let shared = tags(&[
            ("AwsUserId", TIM),
            ("AwsUserIdGuest1", ME),
            ("AwsUserIdGuest2", "AROAEXAMPLEROLEID0001:grace.hopper"),
            (
                "AwsUserIdSharedUntil",
                &format!("2026-12-07T03:00:00Z;{TIM}"),
            ),
        ]);
        let until = DateTime::parse_from_rfc3339("2026-12-07T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            reach(&shared, TIM, &keys()),
            Some(Reach::Owner {
                guests: vec!["ada.lovelace".into(), "grace.hopper".into()],
                shared_until: Some(until)
            })
        );
        assert_eq!(
            reach(&shared, ME, &keys()),
            Some(Reach::Guest {
                owner: "tim.malone".into(),
                shared_until: Some(until)
            })
        );
        // a look-alike, another role's user of the same name, and a user named only in the
        // owner's request (not yet in a slot) reach nothing
        for other in [
            "AROAEXAMPLEROLEID0001:ada.lovelace2",
            "AROAOTHERROLEID000001:ada.lovelace",
            "AROAEXAMPLEROLEID0001:ADA.LOVELACE",
        ] {
            assert_eq!(reach(&shared, other, &keys()), None, "{other}");
        }
        let requested = tags(&[("AwsUserId", TIM), ("ShareWith", "ada.lovelace")]);
        assert_eq!(reach(&requested, ME, &keys()), None);
    }

    #[test]
    fn a_different_key_spelling_or_another_tag_holding_the_id_is_not_access() {
        // IAM's condition keys name the product's exact keys; a tag that merely holds the
        // caller's id (a user's own label) gives nothing
        let t = tags(&[("awsuserid", ME), ("Label", ME), ("AwsUserIdGuest9", ME)]);
        assert_eq!(reach(&t, ME, &keys()), None);
    }

    #[test]
    fn why_not_names_the_missing_tag_another_role_or_the_owner() {
        assert!(why_not(&tags(&[]), ME, &keys()).contains("no AwsUserId tag"));
        assert!(why_not(
            &tags(&[("AwsUserId", "AROAOTHER:ada.lovelace")]),
            ME,
            &keys()
        )
        .contains("another role's user"));
        assert_eq!(
            why_not(&tags(&[("AwsUserId", TIM)]), ME, &keys()),
            "it belongs to tim.malone and is not shared with you"
        );
    }

    #[test]
    fn the_table_says_who_and_until_when_and_marks_an_ended_share() {
        let until = DateTime::parse_from_rfc3339("2026-12-07T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let rows = vec![Row {
            id: "i-0a1b2c3d4e5f60008".into(),
            region: "eu-west-1".into(),
            state: "running".into(),
            name: "analysis".into(),
            reach: Reach::Guest {
                owner: "tim.malone".into(),
                shared_until: Some(until),
            },
        }];
        let before = table(&rows, until - chrono::Duration::hours(1));
        assert_eq!(
            before.lines().nth(1).unwrap(),
            "i-0a1b2c3d4e5f60008  eu-west-1  running  guest of tim.malone until 2026-12-07 03:00 UTC  analysis"
        );
        assert!(table(&rows, until).contains("(ended; being removed)"));
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["access"], "guest");
        assert_eq!(json["owner"], "tim.malone");
        assert_eq!(json["shared_until"], "2026-12-07T03:00:00Z");
    }
}
