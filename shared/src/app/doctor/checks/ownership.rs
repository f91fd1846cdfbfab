//! Check 3: the ownership tags, and what the sweep will do about them.

use std::collections::BTreeMap;

use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;
use crate::domain::ids::{ResolvedRole, UserId};
use crate::domain::ownership::{is_case_variant, sweep};
use crate::domain::reason::ReasonCode;

/// How the sweep is run now rather than on its schedule.
const SWEEP_NOW: &str = "wait for the tag sweep (TagSweepSchedule, every 15 minutes by default), or run it now: invoke the owner-tagger with events/scheduled-tag-sweep.json";

/// Check 3: the user-id tag, and what the sweep will do about it.
#[expect(
    clippy::too_many_lines,
    reason = "judges every state of the ownership tags (check 3), every wording in place; its own finding type, tested by value, is left to do"
)]
pub(crate) fn ownership(
    tags: &BTreeMap<String, String>,
    user_id: &UserId,
    role: &ResolvedRole,
    config: &Config,
) -> Check {
    let key = &config.ownership.user_id_tag_key;
    let variants: Vec<String> = tags
        .iter()
        .filter(|(k, _)| {
            is_case_variant(k, key) || is_case_variant(k, &config.ownership.owner_tag_key)
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let tampering = (!variants.is_empty()).then(|| {
        format!(
            "; case variants of the ownership keys are present (tampering): {}. IAM reads tag keys in any case, so which value it uses is undefined; the tag sweep removes them and counts OwnershipTagTampered",
            variants.join(", ")
        )
    });
    let tampering_fix = "wait for the tag sweep to remove the variants, or have an administrator delete them now; CloudTrail's CreateTags events show who wrote them";
    let plan = sweep(tags, &role.id, &config.ownership);
    let user = user_id.user();
    let fail = |detail: String, fix: String| {
        let fix = if tampering.is_some() {
            format!("{fix}; and {tampering_fix}")
        } else {
            fix
        };
        Check::fail(
            CheckId::Ownership,
            format!("{detail}{}", tampering.as_deref().unwrap_or("")),
            fix,
        )
    };
    let Some(value) = tags.get(key) else {
        return match (&plan.write, &plan.skip) {
            (Some(write), _) if write.user() == user => fail(
                format!(
                    "no {key} tag; {}={user}, so the tag sweep will write {key}={write}",
                    config.ownership.owner_tag_key
                ),
                SWEEP_NOW.to_owned(),
            ),
            (Some(write), _) => fail(
                format!(
                    "no {key} tag; {} names {}, so the tag sweep will give the instance to {}, not to {user}",
                    config.ownership.owner_tag_key,
                    write.user(),
                    write.user()
                ),
                format!("only {} will be able to connect; launch your own instance through the portal", write.user()),
            ),
            (None, skip) => {
                let (why, fix) = match skip {
                    Some(reason) if reason.code == ReasonCode::UntrustedLauncher => (
                        reason.text.clone(),
                        "relaunch through a launcher in TRUSTED_LAUNCHER_ARNS".to_owned(),
                    ),
                    Some(reason) if reason.code == ReasonCode::InvalidUsername => (
                        reason.text.clone(),
                        format!("correct {} in the portal to a valid username", config.ownership.owner_tag_key),
                    ),
                    Some(reason) => (
                        reason.text.clone(),
                        format!(
                            "have the portal tag the instance {}={user}; the tag sweep then writes {key}",
                            config.ownership.owner_tag_key
                        ),
                    ),
                    None => ("the sweep has nothing to write".to_owned(), SWEEP_NOW.to_owned()),
                };
                fail(
                    format!("no {key} tag, and the tag sweep cannot write one: {why}"),
                    fix,
                )
            }
        };
    };
    if *value == user_id.to_string() {
        return match tampering {
            None => Check::pass(
                CheckId::Ownership,
                format!("{key}={value}: the instance is {user}'s"),
            ),
            Some(_) => fail(
                format!("{key}={value}: the instance is {user}'s"),
                "nothing to do about the owner".to_owned(),
            ),
        };
    }
    match UserId::parse_for(value, &role.id) {
        Ok(other) => fail(
            format!("{key}={value}: the instance belongs to {}", other.user()),
            format!(
                "only {} may open sessions on it, and ownership never moves; launch your own instance through the portal",
                other.user()
            ),
        ),
        Err(reason) if reason.code == ReasonCode::ForeignRole => match (&plan.write, &plan.stale) {
            (Some(write), Some(_)) => {
                let whose = if write.user() == user {
                    format!("it is {user}'s under an older id of the role")
                } else {
                    format!("it belongs to {} under an older id of the role", write.user())
                };
                fail(
                    format!(
                        "{key}={value} is stale: it names role id {}, not the users' role's current id {} (the role was re-created); {whose}, and the tag sweep rewrites it to {write}",
                        value.split(':').next().unwrap_or_default(),
                        role.id
                    ),
                    SWEEP_NOW.to_owned(),
                )
            }
            _ => fail(
                format!("{key}={value}: {}", reason.text),
                "an administrator must delete the tag; the tag sweep then writes it from CreatedBy".to_owned(),
            ),
        },
        Err(reason) => fail(
            format!("{key}={value} is not <role-id>:<username>: {}", reason.text),
            "an administrator must delete the tag; the tag sweep then writes it from CreatedBy".to_owned(),
        ),
    }
}
