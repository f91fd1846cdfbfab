//! Check 3: the ownership tags, and what the sweep will do about them.

use std::collections::BTreeMap;

use chrono::SecondsFormat;

use crate::app::doctor::context::Subject;
use crate::app::doctor::report::{Check, CheckId};
use crate::config::Config;
use crate::domain::ids::{RoleId, UserId};
use crate::domain::ownership::{is_case_variant, sweep};
use crate::domain::reason::{Reason, ReasonCode};
use crate::domain::session_name::SessionName;
use crate::domain::sharing::guest_slot;

/// How the sweep is run now rather than on its schedule.
const SWEEP_NOW: &str = "wait for the tag sweep (TagSweepSchedule, every 15 minutes by default), or run it now: invoke the owner-tagger with events/scheduled-tag-sweep.json";

/// What an administrator does about a user-id tag the sweep will not rewrite.
const DELETE_THE_TAG: &str =
    "an administrator must delete the tag; the tag sweep then writes it from CreatedBy";

/// What check 3 found: the state of the user-id tag, and any case variants of the ownership
/// keys beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnershipFinding {
    /// The deployed user-id tag key.
    pub key: String,
    /// The deployed owner tag key.
    pub owner_key: String,
    /// The username asked about.
    pub user: SessionName,
    pub tag: UserIdTag,
    /// Case variants of either ownership key, as `key=value` (tampering).
    pub variants: Vec<String>,
}

/// The state of the user-id tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserIdTag {
    /// No tag; the sweep will write `write` (the user's, or another user's).
    Missing { write: UserId },
    /// No tag, and the sweep cannot write one (`None`: it has nothing to write).
    Unwritable { skip: Option<Reason> },
    /// The user's own.
    Theirs { value: String },
    /// Another user's, under the role's current id.
    Other { value: String, other: UserId },
    /// Another user's, shared with this user: their guest slot, and when the share ends.
    Shared {
        value: String,
        owner: UserId,
        slot: String,
        until: Option<String>,
    },
    /// Under an older id of the role; the sweep rewrites it to `write`.
    Stale {
        value: String,
        current: RoleId,
        write: UserId,
    },
    /// Another role's id, and the sweep will not rewrite it.
    ForeignRole { value: String, reason: String },
    /// Not `<role-id>:<username>`.
    Malformed { value: String, reason: String },
}

/// Check 3: the user-id tag, and what the sweep will do about it.
pub(crate) fn ownership(
    tags: &BTreeMap<String, String>,
    subject: &Subject,
    config: &Config,
) -> OwnershipFinding {
    let (user_id, role) = (&subject.user_id, &subject.facts.role);
    let rules = &config.ownership;
    let key = &rules.user_id_tag_key;
    let variants = tags
        .iter()
        .filter(|(k, _)| is_case_variant(k, key) || is_case_variant(k, &rules.owner_tag_key))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let plan = sweep(tags, &role.id, rules);
    let tag = match tags.get(key) {
        None => match plan.write {
            Some(write) => UserIdTag::Missing { write },
            None => UserIdTag::Unwritable { skip: plan.skip },
        },
        Some(value) if *value == user_id.to_string() => UserIdTag::Theirs {
            value: value.clone(),
        },
        Some(value) => match UserId::parse_for(value, &role.id) {
            Ok(other) => match guest_slot(tags, user_id, &config.sharing) {
                Some((slot, until)) => UserIdTag::Shared {
                    value: value.clone(),
                    owner: other,
                    slot,
                    until: until.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                },
                None => UserIdTag::Other {
                    value: value.clone(),
                    other,
                },
            },
            Err(reason) if reason.code == ReasonCode::ForeignRole => {
                match (plan.write, plan.stale) {
                    (Some(write), Some(_)) => UserIdTag::Stale {
                        value: value.clone(),
                        current: role.id.clone(),
                        write,
                    },
                    _ => UserIdTag::ForeignRole {
                        value: value.clone(),
                        reason: reason.text,
                    },
                }
            }
            Err(reason) => UserIdTag::Malformed {
                value: value.clone(),
                reason: reason.text,
            },
        },
    };
    OwnershipFinding {
        key: key.clone(),
        owner_key: rules.owner_tag_key.clone(),
        user: user_id.user().to_owned(),
        tag,
        variants,
    }
}

/// The wording of check 3.
impl From<OwnershipFinding> for Check {
    fn from(finding: OwnershipFinding) -> Self {
        let OwnershipFinding {
            key,
            owner_key,
            user,
            tag,
            variants,
        } = finding;
        if variants.is_empty() {
            match &tag {
                UserIdTag::Theirs { value } => {
                    return Check::pass(
                        CheckId::Ownership,
                        format!("{key}={value}: the instance is {user}'s"),
                    )
                }
                UserIdTag::Shared {
                    value,
                    owner,
                    slot,
                    until,
                } => {
                    let until = until.as_deref().map_or_else(
                        || "until the owner-tagger records when it ends".to_owned(),
                        |t| format!("until {t}"),
                    );
                    return Check::pass(
                        CheckId::Ownership,
                        format!(
                            "{key}={value}: the instance is {}'s, shared with {user} {until} ({slot})",
                            owner.user()
                        ),
                    );
                }
                _ => {}
            }
        }
        let (detail, fix) = tag.in_words(&key, &owner_key, &user);
        if variants.is_empty() {
            return Check::fail(CheckId::Ownership, detail, fix);
        }
        Check::fail(
            CheckId::Ownership,
            format!(
                "{detail}; case variants of the ownership keys are present (tampering): {}. IAM reads tag keys in any case, so which value it uses is undefined; the tag sweep removes them and counts OwnershipTagTampered",
                variants.join(", ")
            ),
            format!("{fix}; and wait for the tag sweep to remove the variants, or have an administrator delete them now; CloudTrail's CreateTags events show who wrote them"),
        )
    }
}

impl UserIdTag {
    /// The detail and the fix, for a tag that is not simply the user's own.
    fn in_words(self, key: &str, owner_key: &str, user: &SessionName) -> (String, String) {
        match self {
            Self::Theirs { value } => (
                format!("{key}={value}: the instance is {user}'s"),
                "nothing to do about the owner".to_owned(),
            ),
            Self::Missing { write } if write.user() == user => (
                format!("no {key} tag; {owner_key}={user}, so the tag sweep will write {key}={write}"),
                SWEEP_NOW.to_owned(),
            ),
            Self::Missing { write } => (
                format!(
                    "no {key} tag; {owner_key} names {}, so the tag sweep will give the instance to {}, not to {user}",
                    write.user(),
                    write.user()
                ),
                format!(
                    "only {} will be able to connect; launch your own instance through the portal",
                    write.user()
                ),
            ),
            Self::Unwritable { skip } => {
                let (why, fix) = match skip {
                    Some(reason) if reason.code == ReasonCode::UntrustedLauncher => (
                        reason.text,
                        "relaunch through a launcher in TRUSTED_LAUNCHER_ARNS".to_owned(),
                    ),
                    Some(reason) if reason.code == ReasonCode::InvalidUsername => (
                        reason.text,
                        format!("correct {owner_key} in the portal to a valid username"),
                    ),
                    Some(reason) => (
                        reason.text,
                        format!(
                            "have the portal tag the instance {owner_key}={user}; the tag sweep then writes {key}"
                        ),
                    ),
                    None => ("the sweep has nothing to write".to_owned(), SWEEP_NOW.to_owned()),
                };
                (
                    format!("no {key} tag, and the tag sweep cannot write one: {why}"),
                    fix,
                )
            }
            Self::Shared { value, owner, .. } => (
                format!("{key}={value}: the instance is {}'s, shared with {user}", owner.user()),
                "nothing to do about the share".to_owned(),
            ),
            Self::Other { value, other } => (
                format!("{key}={value}: the instance belongs to {}", other.user()),
                format!(
                    "only {} may open sessions on it, and ownership never moves; launch your own instance through the portal",
                    other.user()
                ),
            ),
            Self::Stale {
                value,
                current,
                write,
            } => {
                let whose = if write.user() == user {
                    format!("it is {user}'s under an older id of the role")
                } else {
                    format!("it belongs to {} under an older id of the role", write.user())
                };
                (
                    format!(
                        "{key}={value} is stale: it names role id {}, not the users' role's current id {current} (the role was re-created); {whose}, and the tag sweep rewrites it to {write}",
                        value.split(':').next().unwrap_or_default(),
                    ),
                    SWEEP_NOW.to_owned(),
                )
            }
            Self::ForeignRole { value, reason } => {
                (format!("{key}={value}: {reason}"), DELETE_THE_TAG.to_owned())
            }
            Self::Malformed { value, reason } => (
                format!("{key}={value} is not <role-id>:<username>: {reason}"),
                DELETE_THE_TAG.to_owned(),
            ),
        }
    }
}
