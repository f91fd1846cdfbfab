//! Owner tagging, pure: turn a CloudTrail `RunInstances` record (or an instant `CreateFleet`,
//! read into the same shape) into a plan of tag writes.
//!
//! The owner of an instance is, in order of precedence:
//! 1. the launching session, when a user of the shared role launched it directly (its
//!    `principalId` already is `<role-id>:<session-name>`; a `CreatedBy` naming somebody else
//!    cannot hand the instance to them);
//! 2. the `CreatedBy` tag carried in the event (request tag specification or response tag set);
//! 3. the `CreatedBy` tag EC2 reports now, for instances whose tags were not in the event.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::events::{tag_map, CloudTrailDetail};
use crate::domain::ids::{InstanceId, ResolvedRole, RoleId, UserId};
use crate::domain::outcome::Skipped;
use crate::domain::reason::{Reason, ReasonCode};
use crate::domain::session_name::SessionName;

/// The ownership rules of a deployment: the two tag keys, and who may launch for somebody else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipRules {
    /// The portal's owner tag (`OWNER_TAG_KEY`, template `OwnerTagKey`): a username.
    pub owner_tag_key: String,
    /// The product's user-id tag (`USER_ID_TAG_KEY`, template `UserIdTagKey`):
    /// `<role-id>:<username>`.
    pub user_id_tag_key: String,
    /// When non-empty, only these principals' launches may name an owner other than themselves
    /// (`TRUSTED_LAUNCHER_ARNS`).
    pub trusted_launcher_arns: Vec<String>,
}

/// How long after a launch EC2 may still not show the instance (eventual consistency). Within
/// this window a missing instance is retried; after it, the instance is taken to be gone.
pub(crate) const CONSISTENCY_WINDOW: Duration = Duration::minutes(15);

/// A successful launch that passed screening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// Set when a session of the users' role launched the instances itself.
    pub users_role_session: Option<UsersRoleSession>,
    pub instances: Vec<LaunchedInstance>,
    /// Instances in the event whose id is not an EC2 instance id, with the reason.
    pub rejected: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsersRoleSession {
    /// The `<role-id>` half of the launcher's `principalId`.
    pub role_id: String,
    /// The `<session-name>` half, not yet validated.
    pub session_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchedInstance {
    pub instance_id: InstanceId,
    /// The tags the event shows for the instance (request specification, then response set).
    pub tags: BTreeMap<String, String>,
}

/// Where the tags an owner decision reads came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagsFrom {
    /// The launch event: EC2 may know an owner tag the event does not show.
    Event,
    /// EC2 itself: a missing owner tag is final.
    Ec2,
}

/// What to do with one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnerDecision {
    /// Write `value` as the user-id tag.
    Tag {
        value: UserId,
    },
    /// The tag already holds `value`; nothing to write.
    AlreadyTagged {
        value: UserId,
    },
    /// The event does not show the owner tag; ask EC2.
    Lookup,
    Skip {
        reason: Reason,
    },
}

/// Keep launches that created instances; return the reason for everything else. A launch by a
/// session of `users_role_name` is recognised as a user's own.
#[expect(
    clippy::too_many_lines,
    reason = "the launch screen: every reason a launch is not tagged, in the order they are decided"
)]
pub(crate) fn screen(
    detail: &CloudTrailDetail,
    rules: &OwnershipRules,
    users_role_name: &str,
) -> Result<Launch, Reason> {
    let other = |text: String| Reason::new(ReasonCode::OtherEvent, text);
    match detail.event_name.as_deref() {
        Some("RunInstances" | "CreateFleet") => {}
        Some(name) => {
            return Err(other(format!(
                "not a RunInstances call (eventName {name:?})"
            )))
        }
        None => return Err(other("not a RunInstances call (no eventName)".into())),
    }
    if let Some(code) = detail.error_code.as_deref() {
        return Err(if code.contains("DryRunOperation") {
            Reason::new(
                ReasonCode::DryRun,
                format!("dry run ({code}): nothing was launched"),
            )
        } else {
            Reason::new(
                ReasonCode::FailedCall,
                format!("failed call ({code}): nothing was launched"),
            )
        });
    }
    let malformed = |text: &str| Reason::new(ReasonCode::Malformed, text);
    let items = match detail
        .response_elements
        .as_ref()
        .and_then(|r| r.instances_set.as_ref())
    {
        Some(set) if !set.items.is_empty() => &set.items,
        Some(_) => return Err(malformed("responseElements lists no instances")),
        None => {
            return Err(malformed(
                "no responseElements.instancesSet: nothing was launched",
            ))
        }
    };

    let identity = detail.user_identity.clone().unwrap_or_default();
    let issuer = identity
        .session_context
        .and_then(|c| c.session_issuer)
        .unwrap_or_default();
    if !rules.trusted_launcher_arns.is_empty() {
        let trusted = [identity.arn.as_deref(), issuer.arn.as_deref()]
            .into_iter()
            .flatten()
            .any(|arn| rules.trusted_launcher_arns.iter().any(|t| t == arn));
        if !trusted {
            return Err(Reason::new(
                ReasonCode::UntrustedLauncher,
                format!(
                    "launcher {} is not in TRUSTED_LAUNCHER_ARNS",
                    identity.arn.as_deref().unwrap_or("(no arn)")
                ),
            ));
        }
    }

    let users_role_session = match (
        &identity.identity_type,
        &issuer.issuer_type,
        &issuer.user_name,
    ) {
        (Some(t), Some(it), Some(name))
            if t == "AssumedRole" && it == "Role" && name == users_role_name =>
        {
            identity
                .principal_id
                .as_deref()
                .and_then(|p| p.split_once(':'))
                .map(|(role_id, session)| UsersRoleSession {
                    role_id: role_id.to_owned(),
                    session_name: session.to_owned(),
                })
        }
        _ => None,
    };

    let request_tags = detail
        .request_parameters
        .as_ref()
        .and_then(|r| r.tag_specification_set.as_ref())
        .map(|set| {
            tag_map(
                set.items
                    .iter()
                    .filter(|spec| spec.resource_type.as_deref() == Some("instance"))
                    .flat_map(|spec| spec.tags.iter()),
            )
        })
        .unwrap_or_default();

    let mut instances: Vec<LaunchedInstance> = Vec::new();
    let mut rejected = Vec::new();
    for item in items {
        let instance_id = match InstanceId::parse(&item.instance_id) {
            Ok(id) => id,
            Err(reason) => {
                rejected.push(Skipped::instance(item.instance_id.clone(), reason));
                continue;
            }
        };
        if instances.iter().any(|i| i.instance_id == instance_id) {
            continue;
        }
        let mut tags = request_tags.clone();
        if let Some(set) = &item.tag_set {
            tags.extend(tag_map(&set.items));
        }
        instances.push(LaunchedInstance { instance_id, tags });
    }

    Ok(Launch {
        users_role_session,
        instances,
        rejected,
    })
}

/// Decide what one instance needs, given the tags known for it and where they came from.
pub(crate) fn decide(
    tags: &BTreeMap<String, String>,
    launcher: Option<&UsersRoleSession>,
    role: &ResolvedRole,
    rules: &OwnershipRules,
    tags_from: TagsFrom,
) -> OwnerDecision {
    let role_id = &role.id;
    let candidate = match launcher {
        Some(session) if session.role_id != role_id.as_str() => {
            return OwnerDecision::Skip {
                reason: Reason::new(
                    ReasonCode::RoleRecreated,
                    format!(
                        "launched by a session of role id {} but {} now has id {role_id} (role recreated?)",
                        session.role_id, role.name
                    ),
                ),
            }
        }
        Some(session) => &session.session_name,
        None => match tags.get(&rules.owner_tag_key) {
            Some(owner) => owner,
            None if tags_from == TagsFrom::Ec2 => {
                return OwnerDecision::Skip {
                    reason: Reason::new(
                        ReasonCode::NoOwnerTag,
                        format!(
                            "no {} tag, and not launched by a session of {}",
                            rules.owner_tag_key, role.name
                        ),
                    ),
                }
            }
            None => return OwnerDecision::Lookup,
        },
    };
    let username = match SessionName::parse(candidate) {
        Ok(name) => name,
        Err(err) => {
            let source = if launcher.is_some() {
                "launching session name".to_owned()
            } else {
                format!("{} tag", rules.owner_tag_key)
            };
            return OwnerDecision::Skip {
                reason: Reason::new(
                    ReasonCode::InvalidUsername,
                    format!("{source} {candidate:?} rejected: {err}"),
                ),
            };
        }
    };
    let value = UserId::new(role_id.clone(), username);
    if tags.get(&rules.user_id_tag_key).map(String::as_str) == Some(value.to_string().as_str()) {
        OwnerDecision::AlreadyTagged { value }
    } else {
        OwnerDecision::Tag { value }
    }
}

/// What to do with `value`, which an event says an instance should carry, once the instance's
/// tags in EC2 are known: write it where no user-id tag (in any letter case) names anybody
/// else, leave it where it is already there, and refuse where another value is there. Only the
/// sweep, reading the instance itself, ever replaces a user-id tag.
pub(crate) fn confirm_in_ec2(
    value: &UserId,
    tags: &BTreeMap<String, String>,
    rules: &OwnershipRules,
) -> OwnerDecision {
    let wanted = value.to_string();
    let other = tags
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(&rules.user_id_tag_key) && **v != wanted);
    match (other, tags.get(&rules.user_id_tag_key)) {
        (Some((key, current)), _) => OwnerDecision::Skip {
            reason: Reason::new(
                ReasonCode::OwnedByAnother,
                format!(
                    "the event names {wanted}, but the instance already carries {key}={current}; an event does not re-own an instance (the tag sweep decides from the instance's own tags)"
                ),
            ),
        },
        (None, Some(_)) => OwnerDecision::AlreadyTagged {
            value: value.clone(),
        },
        (None, None) => OwnerDecision::Tag {
            value: value.clone(),
        },
    }
}

/// Whether EC2 may still be catching up with a launch at `event_time`. An unknown time counts
/// as recent, so the event is retried rather than dropped.
pub(crate) fn within_consistency_window(
    event_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    event_time.is_none_or(|t| now - t < CONSISTENCY_WINDOW)
}

/// Instances to write, grouped by value so one call covers every instance needing it.
pub(crate) fn group_writes<'a>(
    decisions: impl IntoIterator<Item = (&'a InstanceId, &'a OwnerDecision)>,
) -> BTreeMap<&'a UserId, Vec<InstanceId>> {
    let mut groups: BTreeMap<&UserId, Vec<InstanceId>> = BTreeMap::new();
    for (instance_id, decision) in decisions {
        if let OwnerDecision::Tag { value } = decision {
            groups.entry(value).or_default().push(instance_id.clone());
        }
    }
    groups
}

/// What the tag sweep does to one live instance: bring it to exactly the tags its owner
/// implies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SweepPlan {
    /// The user-id value to write, when the instance lacks it or holds a stale one.
    pub write: Option<UserId>,
    /// The value being replaced, when it named an older id of the users' role.
    pub stale: Option<String>,
    /// Case variants of the ownership keys to remove: key and value.
    pub remove: Vec<(String, String)>,
    /// Why no owner is written, when the instance needs one and cannot have it.
    pub skip: Option<Reason>,
}

/// Whether `key` spells `wanted` in other letter case. IAM matches condition-key names without
/// regard to case, and AWS does not say by which rule, so every rule Unicode defines counts:
/// lower case, upper case, and full case folding (`SeẞionOwner` folds to `sessionowner`, though
/// neither its lower nor its upper case equals `SessionOwner`'s).
pub(crate) fn is_case_variant(key: &str, wanted: &str) -> bool {
    key != wanted
        && (key.to_lowercase() == wanted.to_lowercase()
            || key.to_uppercase() == wanted.to_uppercase()
            || unicase::UniCase::unicode(key) == unicase::UniCase::unicode(wanted))
}

/// Whether a bulk read keeps the tag `key`: it is one of `keys` or a case variant of one (the
/// sweep's tamper check needs the variants; no decision needs any other tag).
pub(crate) fn tag_kept(keys: &[&str], key: &str) -> bool {
    keys.iter()
        .any(|wanted| *wanted == key || is_case_variant(key, wanted))
}

/// A key's code points (`U+0041 U+017F …`) when it is not plain ASCII, for the tamper log: a
/// look-alike letter is invisible in a log line.
pub(crate) fn code_points(key: &str) -> Option<String> {
    (!key.is_ascii()).then(|| {
        key.chars()
            .map(|c| format!("U+{:04X}", u32::from(c)))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Plan the sweep of one live instance from its tags.
///
/// - An exact user-id tag for the users' role stays: the owner was decided at launch, and a
///   `CreatedBy` written later cannot hand the instance to someone else.
/// - A user-id tag naming an older id of the role (the role was deleted and created again) is
///   rewritten with the current id, keeping its name part.
/// - A missing (or unreadable) user-id tag is written from `CreatedBy`, unless
///   `TRUSTED_LAUNCHER_ARNS` is set: then only a launch event, which says who launched, may
///   assign a first owner.
/// - Case variants of either ownership key are removed; the exact keys stay.
pub(crate) fn sweep(
    tags: &BTreeMap<String, String>,
    role_id: &RoleId,
    rules: &OwnershipRules,
) -> SweepPlan {
    let mut plan = SweepPlan {
        remove: tags
            .iter()
            .filter(|(key, _)| {
                is_case_variant(key, &rules.owner_tag_key)
                    || is_case_variant(key, &rules.user_id_tag_key)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..SweepPlan::default()
    };
    let current = tags.get(&rules.user_id_tag_key);
    if let Some(value) = current {
        if UserId::parse_for(value, role_id).is_ok() {
            return plan;
        }
        if let Some(name) = stale_name(value) {
            plan.write = Some(UserId::new(role_id.clone(), name));
            plan.stale = Some(value.clone());
            return plan;
        }
    }
    if !rules.trusted_launcher_arns.is_empty() {
        plan.skip = Some(Reason::new(
            ReasonCode::UntrustedLauncher,
            "TRUSTED_LAUNCHER_ARNS is set: only a launch event may assign a first owner",
        ));
        return plan;
    }
    plan.skip = match tags.get(&rules.owner_tag_key) {
        None => Some(Reason::new(
            ReasonCode::NoOwnerTag,
            format!("no {} tag", rules.owner_tag_key),
        )),
        Some(owner) => match SessionName::parse(owner) {
            Ok(name) => {
                plan.write = Some(UserId::new(role_id.clone(), name));
                None
            }
            Err(err) => Some(Reason::new(
                ReasonCode::InvalidUsername,
                format!("{} tag {owner:?} rejected: {err}", rules.owner_tag_key),
            )),
        },
    };
    plan
}

/// Plan one managed node outside EC2 (`mi-*`) from its tags and, once it turns out to have no
/// owner of its own, from its activation's tags (`activation`: Systems Manager copies them onto
/// every node registered with the activation, and a user may create one only with their own id
/// in the user-id tag).
///
/// - The node's own tags decide first, exactly as an instance's do in the sweep: an exact
///   user-id tag stays, an older id of the role is rewritten, case variants go.
/// - A node with no user-id tag takes the activation's: the role's current id as it is, an
///   older id with its name part under the current id; a value that is no user id is refused
///   (`UserIdMalformed`), and nothing is written.
/// - With neither, the instance rules: the node's `CreatedBy`, unless `TRUSTED_LAUNCHER_ARNS`.
///   The activation's id comes before the node's `CreatedBy`: IAM checked the one, any value
///   may be in the other.
pub(crate) fn node_plan(
    node_tags: &BTreeMap<String, String>,
    activation: Option<&BTreeMap<String, String>>,
    role_id: &RoleId,
    rules: &OwnershipRules,
) -> SweepPlan {
    let mut plan = sweep(node_tags, role_id, rules);
    if has_own_id(node_tags, role_id, rules) {
        return plan;
    }
    let Some(value) = activation.and_then(|tags| tags.get(&rules.user_id_tag_key)) else {
        return plan;
    };
    plan.skip = None;
    plan.write = None;
    if let Ok(id) = UserId::parse_for(value, role_id) {
        plan.write = Some(id);
    } else if let Some(name) = stale_name(value) {
        plan.write = Some(UserId::new(role_id.clone(), name));
    } else {
        plan.skip = Some(Reason::new(
            ReasonCode::UserIdMalformed,
            format!(
                "the node's activation carries {}={value:?}, which is not <role-id>:<username>",
                rules.user_id_tag_key
            ),
        ));
    }
    plan
}

/// Whether a node carries a user id of its own (the role's current or an older id); without
/// one, its activation's user-id tag names its owner, before any `CreatedBy`.
pub(crate) fn has_own_id(
    node_tags: &BTreeMap<String, String>,
    role_id: &RoleId,
    rules: &OwnershipRules,
) -> bool {
    node_tags.get(&rules.user_id_tag_key).is_some_and(|value| {
        UserId::parse_for(value, role_id).is_ok() || stale_name(value).is_some()
    })
}

/// What the owner-tagger does to one volume attached to owned instances: give it its
/// instance's owner, so that the guards keep other users off it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VolumePlan {
    /// The user-id value to write, when the volume lacks it or holds a stale one.
    pub write: Option<UserId>,
    /// Case variants of the user-id key to remove: key and value.
    pub remove: Vec<(String, String)>,
    /// Why the volume keeps what it has although its instance's owner differs.
    pub skip: Option<Reason>,
}

/// Plan one attached volume from its tags and the owners of the owned instances it is attached
/// to (unowned instances are left out of `owners`).
///
/// - Attached to no owned instance: nothing.
/// - Attached to instances of two users (multi-attach): skipped, whatever it carries.
/// - Its exact user-id tag is the owner's: nothing; an older id of the role with the owner's
///   name: rewritten.
/// - Another user's id: skipped. A volume's owner is never replaced (it was a user's before it
///   was attached here, or someone who may re-attach disks did it).
/// - No user-id tag: the owner's is written.
/// - Case variants of the user-id key are removed in every case: IAM would read one of them.
pub(crate) fn volume_plan(
    tags: &BTreeMap<String, String>,
    owners: &[&UserId],
    role_id: &RoleId,
    rules: &OwnershipRules,
) -> VolumePlan {
    let key = &rules.user_id_tag_key;
    let mut plan = VolumePlan {
        remove: tags
            .iter()
            .filter(|(k, _)| is_case_variant(k, key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..VolumePlan::default()
    };
    let Some(owner) = owners.first() else {
        return plan;
    };
    if owners.iter().any(|o| o != owner) {
        plan.skip = Some(Reason::new(
            ReasonCode::OwnedByAnother,
            "the volume is attached to instances of different users",
        ));
        return plan;
    }
    match tags.get(key) {
        None => plan.write = Some((*owner).clone()),
        Some(value) if value == &owner.to_string() => {}
        Some(value) => {
            let stale_of_owner = UserId::parse_for(value, role_id).is_err()
                && stale_name(value).is_some_and(|name| &name == owner.user());
            if stale_of_owner {
                plan.write = Some((*owner).clone());
            } else {
                plan.skip = Some(Reason::new(
                    ReasonCode::OwnedByAnother,
                    format!("the volume carries {key}={value:?}, not its instance's owner {owner}"),
                ));
            }
        }
    }
    plan
}

/// The name part of a user-id value written for another (older) id of the role.
fn stale_name(value: &str) -> Option<SessionName> {
    let (id, name) = value.split_once(':')?;
    RoleId::parse(id).ok()?;
    SessionName::parse(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::detail_of;

    const ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

    fn role() -> RoleId {
        RoleId::parse(ROLE_ID).unwrap()
    }

    fn resolved() -> ResolvedRole {
        ResolvedRole {
            name: "Okta-ServiceWorkbenchUser".into(),
            id: role(),
        }
    }

    fn uid(name: &str) -> UserId {
        UserId::new(role(), SessionName::parse(name).unwrap())
    }

    fn config() -> OwnershipRules {
        OwnershipRules {
            owner_tag_key: "CreatedBy".into(),
            user_id_tag_key: "AwsUserId".into(),
            trusted_launcher_arns: vec![],
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_volume_gets_its_instances_owner_and_keeps_another_users_id() {
        let (tim, ada) = (uid("tim"), uid("ada"));
        let key = "AwsUserId";
        // an untagged volume of tim's instance gets tim's id
        let plan = volume_plan(&tags(&[]), &[&tim], &role(), &config());
        assert_eq!(plan.write, Some(tim.clone()));
        assert_eq!(plan.skip, None);
        // his own id stays as it is
        let own = tags(&[(key, &tim.to_string())]);
        assert_eq!(
            volume_plan(&own, &[&tim], &role(), &config()),
            VolumePlan::default()
        );
        // an older id of the role with his name is rewritten
        let stale = tags(&[(key, "AROAOLDROLEID0000001:tim")]);
        assert_eq!(
            volume_plan(&stale, &[&tim], &role(), &config()).write,
            Some(tim.clone())
        );
        // ada's id is never replaced, and neither is an older id with another name
        for value in [ada.to_string(), "AROAOLDROLEID0000001:ada".to_owned()] {
            let plan = volume_plan(&tags(&[(key, &value)]), &[&tim], &role(), &config());
            assert_eq!(plan.write, None, "{value}");
            assert_eq!(plan.skip.map(|r| r.code), Some(ReasonCode::OwnedByAnother));
        }
        // a volume on instances of two users is left as it is
        let plan = volume_plan(&tags(&[]), &[&tim, &ada], &role(), &config());
        assert_eq!(plan.write, None);
        assert_eq!(plan.skip.map(|r| r.code), Some(ReasonCode::OwnedByAnother));
        // a volume of no owned instance is not touched
        assert_eq!(
            volume_plan(&tags(&[]), &[], &role(), &config()),
            VolumePlan::default()
        );
        // case variants of the key are removed, and the exact key written
        let variant = tags(&[("awsuserid", &ada.to_string())]);
        let plan = volume_plan(&variant, &[&tim], &role(), &config());
        assert_eq!(plan.remove, vec![("awsuserid".to_owned(), ada.to_string())]);
        assert_eq!(plan.write, Some(tim));
    }

    #[test]
    fn every_instance_of_the_call_is_screened_with_its_event_tags() {
        // GIVEN a portal launch of two instances with CreatedBy in the tag specification
        let detail = detail_of(sample_event!("run-instances-created-by.json"));
        // WHEN it is screened
        let launch = screen(&detail, &config(), "Okta-ServiceWorkbenchUser").unwrap();
        // THEN both instances are kept with the tag, and the launcher is not a user session
        let ids: Vec<_> = launch
            .instances
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect();
        assert_eq!(ids, ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002"]);
        for instance in &launch.instances {
            assert_eq!(
                instance.tags.get("CreatedBy").map(String::as_str),
                Some("tim.malone")
            );
        }
        assert_eq!(launch.users_role_session, None);
    }

    #[test]
    fn failed_dry_run_and_other_calls_are_ignored_with_the_reason() {
        let cases = [
            (
                "runinstances-failed-unauthorized-operation.json",
                real_event!("runinstances-failed-unauthorized-operation.json"),
                "failed call (Client.UnauthorizedOperation): nothing was launched",
            ),
            (
                "runinstances-dryrun-eks-nodegroup-launch-template.json",
                real_event!("runinstances-dryrun-eks-nodegroup-launch-template.json"),
                "dry run (Client.DryRunOperation): nothing was launched",
            ),
            (
                "runinstances-dryrun-invokedby-aws-internal.json",
                real_event!("runinstances-dryrun-invokedby-aws-internal.json"),
                "dry run (Client.DryRunOperation): nothing was launched",
            ),
            (
                "negative-cloudtrail-controltower-sso-assumed-role.json",
                real_event!("negative-cloudtrail-controltower-sso-assumed-role.json"),
                "not a RunInstances call (eventName \"CreateManagedAccount\")",
            ),
        ];
        for (file, json, reason) in cases {
            let detail = detail_of(json);
            let err = screen(&detail, &config(), "Okta-ServiceWorkbenchUser").unwrap_err();
            assert_eq!(err.text, reason, "{file}");
            // The metric code is set where the decision is made, not parsed from the text.
            let code = match reason.split(' ').next() {
                Some("dry") => ReasonCode::DryRun,
                Some("failed") => ReasonCode::FailedCall,
                _ => ReasonCode::OtherEvent,
            };
            assert_eq!(err.code, code, "{file}");
        }
    }

    #[test]
    fn all_instances_of_a_multi_instance_launch_are_kept() {
        let detail = detail_of(real_event!(
            "runinstances-root-invokedby-autoscaling-two-instances.json"
        ));
        let launch = screen(&detail, &config(), "Okta-ServiceWorkbenchUser").unwrap();
        let ids: Vec<_> = launch
            .instances
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect();
        assert_eq!(ids, ["i-784cdacd", "i-7b4cdace"]);
    }

    #[test]
    fn a_session_of_the_users_role_is_recognised_from_the_issuer() {
        let detail = detail_of(sample_event!("run-instances-users-role-session.json"));
        let launch = screen(&detail, &config(), "Okta-ServiceWorkbenchUser").unwrap();
        assert_eq!(
            launch.users_role_session,
            Some(UsersRoleSession {
                role_id: "AROAEXAMPLEROLEID1234".into(),
                session_name: "tim.malone".into()
            })
        );
    }

    #[test]
    fn untrusted_launchers_are_ignored_when_an_allow_list_is_set() {
        let mut config = config();
        config.trusted_launcher_arns =
            vec!["arn:aws:iam::123456789012:role/ServiceWorkbench-Portal".into()];
        let detail = detail_of(sample_event!("run-instances-created-by.json"));
        assert!(
            screen(&detail, &config, "Okta-ServiceWorkbenchUser").is_ok(),
            "the portal role is trusted"
        );
        let detail = detail_of(real_event!(
            "runinstances-sso-role-two-instances-tagspec.json"
        ));
        assert_eq!(
            screen(&detail, &config, "Okta-ServiceWorkbenchUser").unwrap_err().text,
            "launcher arn:aws:sts::123456789012:assumed-role/ARole/user.name is not in TRUSTED_LAUNCHER_ARNS"
        );
    }

    #[test]
    fn owner_tag_becomes_role_id_and_username() {
        let d = decide(
            &tags(&[("CreatedBy", "tim.malone")]),
            None,
            &resolved(),
            &config(),
            TagsFrom::Event,
        );
        assert_eq!(
            d,
            OwnerDecision::Tag {
                value: uid("tim.malone")
            }
        );
    }

    #[test]
    fn a_correct_tag_is_not_written_again_and_a_wrong_one_is_overwritten() {
        let right = uid("tim.malone");
        let d = decide(
            &tags(&[
                ("CreatedBy", "tim.malone"),
                ("AwsUserId", &right.to_string()),
            ]),
            None,
            &resolved(),
            &config(),
            TagsFrom::Event,
        );
        assert_eq!(
            d,
            OwnerDecision::AlreadyTagged {
                value: right.clone()
            }
        );
        let d = decide(
            &tags(&[("CreatedBy", "tim.malone"), ("AwsUserId", "AROAOTHER:eve")]),
            None,
            &resolved(),
            &config(),
            TagsFrom::Event,
        );
        assert_eq!(d, OwnerDecision::Tag { value: right });
    }

    #[test]
    fn missing_owner_asks_ec2_once_then_skips() {
        assert_eq!(
            decide(&tags(&[]), None, &resolved(), &config(), TagsFrom::Event),
            OwnerDecision::Lookup
        );
        assert_eq!(
            decide(&tags(&[]), None, &resolved(), &config(), TagsFrom::Ec2),
            OwnerDecision::Skip {
                reason: Reason::new(
                    ReasonCode::NoOwnerTag,
                    "no CreatedBy tag, and not launched by a session of Okta-ServiceWorkbenchUser"
                )
            }
        );
    }

    #[test]
    fn the_launching_session_wins_over_a_created_by_naming_someone_else() {
        let session = UsersRoleSession {
            role_id: ROLE_ID.into(),
            session_name: "alice".into(),
        };
        let d = decide(
            &tags(&[("CreatedBy", "bob")]),
            Some(&session),
            &resolved(),
            &config(),
            TagsFrom::Event,
        );
        assert_eq!(
            d,
            OwnerDecision::Tag {
                value: uid("alice")
            }
        );
    }

    #[test]
    fn a_session_of_a_recreated_role_is_skipped() {
        let session = UsersRoleSession {
            role_id: "AROAOLDROLEID".into(),
            session_name: "alice".into(),
        };
        let d = decide(
            &tags(&[]),
            Some(&session),
            &resolved(),
            &config(),
            TagsFrom::Event,
        );
        assert_eq!(
            d,
            OwnerDecision::Skip {
                reason: Reason::new(ReasonCode::RoleRecreated, format!("launched by a session of role id AROAOLDROLEID but Okta-ServiceWorkbenchUser now has id {ROLE_ID} (role recreated?)"))
            }
        );
    }

    #[test]
    fn hostile_usernames_are_skipped_with_the_reason() {
        let d = decide(
            &tags(&[("CreatedBy", "*")]),
            None,
            &resolved(),
            &config(),
            TagsFrom::Event,
        );
        assert_eq!(
            d,
            OwnerDecision::Skip {
                reason: Reason::new(ReasonCode::InvalidUsername, "CreatedBy tag \"*\" rejected: username contains '*' at character 1; only A-Z a-z 0-9 + = , . @ _ - are allowed")
            }
        );
        let d = decide(
            &tags(&[("CreatedBy", "tim\n*")]),
            None,
            &resolved(),
            &config(),
            TagsFrom::Event,
        );
        assert_eq!(
            d,
            OwnerDecision::Skip {
                reason: Reason::new(ReasonCode::InvalidUsername, "CreatedBy tag \"tim\\n*\" rejected: username contains '\\n' at character 4; only A-Z a-z 0-9 + = , . @ _ - are allowed")
            }
        );
    }

    #[test]
    fn writes_are_grouped_by_value() {
        let id = |s: &str| InstanceId::parse(s).unwrap();
        let (a, b) = (uid("aa"), uid("bb"));
        let tag_a = OwnerDecision::Tag { value: a.clone() };
        let tag_b = OwnerDecision::Tag { value: b.clone() };
        let done = OwnerDecision::AlreadyTagged { value: a.clone() };
        let ids = [
            id("i-00000001"),
            id("i-00000002"),
            id("i-00000003"),
            id("i-00000004"),
        ];
        let groups = group_writes([
            (&ids[0], &tag_a),
            (&ids[1], &tag_b),
            (&ids[2], &tag_a),
            (&ids[3], &done),
        ]);
        assert_eq!(
            groups,
            BTreeMap::from([
                (&a, vec![ids[0].clone(), ids[2].clone()]),
                (&b, vec![ids[1].clone()])
            ])
        );
    }

    #[test]
    fn the_consistency_window_is_fifteen_minutes() {
        let now = Utc::now();
        assert!(within_consistency_window(
            Some(now - Duration::minutes(14)),
            now
        ));
        assert!(!within_consistency_window(
            Some(now - Duration::minutes(16)),
            now
        ));
        assert!(within_consistency_window(None, now));
    }

    fn sweep_of(pairs: &[(&str, &str)], config: &OwnershipRules) -> SweepPlan {
        sweep(&tags(pairs), &role(), config)
    }

    #[test]
    fn the_sweep_tags_an_owner_that_no_launch_event_reported() {
        let plan = sweep_of(&[("CreatedBy", "tim.malone")], &config());
        assert_eq!(plan.write, Some(uid("tim.malone")));
        assert_eq!(plan.skip, None);
    }

    #[test]
    fn a_converged_instance_needs_nothing() {
        let value = uid("tim.malone").to_string();
        let plan = sweep_of(&[("CreatedBy", "bob"), ("AwsUserId", &value)], &config());
        // The owner chosen at launch stays, whatever CreatedBy says later.
        assert_eq!(plan, SweepPlan::default());
    }

    #[test]
    fn a_stale_role_id_is_rewritten_keeping_the_name() {
        let plan = sweep_of(
            &[
                ("CreatedBy", "tim.malone"),
                ("AwsUserId", "AROAOLDROLE1234:tim.malone"),
            ],
            &config(),
        );
        assert_eq!(plan.write, Some(uid("tim.malone")));
        assert_eq!(plan.stale.as_deref(), Some("AROAOLDROLE1234:tim.malone"));
        // A direct launch keeps its name part even with no CreatedBy.
        let plan = sweep_of(&[("AwsUserId", "AROAOLDROLE1234:alice")], &config());
        assert_eq!(plan.write, Some(uid("alice")));
    }

    #[test]
    fn case_variants_of_either_key_are_removed_and_the_exact_keys_stay() {
        let value = uid("eve").to_string();
        let plan = sweep_of(
            &[
                ("AwsUserId", &value),
                ("awsuserid", "AROAEXAMPLEROLEID1234:mallory"),
                ("AWSUSERID", "x"),
                ("createdby", "mallory"),
                ("CreatedBy", "eve"),
                ("Name", "awsuserid"),
            ],
            &config(),
        );
        assert_eq!(
            plan.remove,
            vec![
                ("AWSUSERID".to_owned(), "x".to_owned()),
                (
                    "awsuserid".to_owned(),
                    "AROAEXAMPLEROLEID1234:mallory".to_owned()
                ),
                ("createdby".to_owned(), "mallory".to_owned()),
            ]
        );
        assert_eq!(plan.write, None);
        // Unicode case folding too: the Kelvin sign lower-cases to k, the long s upper-cases to S.
        assert!(is_case_variant("AwſUserId", "AwsUserId"));
        assert!(is_case_variant("\u{212A}ey", "Key"));
        // full case folding: capital sharp s folds to "ss", which neither case mapping gives
        assert!("Se\u{1E9E}ionOwner".to_lowercase() != "SessionOwner".to_lowercase());
        assert!("Se\u{1E9E}ionOwner".to_uppercase() != "SessionOwner".to_uppercase());
        assert!(is_case_variant("Se\u{1E9E}ionOwner", "SessionOwner"));
        assert_eq!(
            code_points("Aw\u{17F}UserId").as_deref(),
            Some("U+0041 U+0077 U+017F U+0055 U+0073 U+0065 U+0072 U+0049 U+0064")
        );
        assert_eq!(code_points("awsuserid"), None);
        assert!(!is_case_variant("AwsUserId", "AwsUserId"));
    }

    #[test]
    fn a_hostile_owner_is_never_written_and_trusted_launchers_forbid_first_owners() {
        let plan = sweep_of(&[("CreatedBy", "tim*")], &config());
        assert_eq!(plan.write, None);
        assert_eq!(plan.skip.unwrap().code, ReasonCode::InvalidUsername);
        let mut trusting = config();
        trusting.trusted_launcher_arns = vec!["arn:aws:iam::1:role/Portal".into()];
        let plan = sweep_of(&[("CreatedBy", "tim.malone")], &trusting);
        assert_eq!(plan.write, None);
        assert_eq!(plan.skip.unwrap().code, ReasonCode::UntrustedLauncher);
        // ...but a stale id is still repaired, and variants still go.
        let plan = sweep_of(
            &[
                ("AwsUserId", "AROAOLDROLE1234:tim.malone"),
                ("createdBy", "x"),
            ],
            &trusting,
        );
        assert_eq!(plan.write, Some(uid("tim.malone")));
        assert_eq!(plan.remove.len(), 1);
    }

    #[test]
    fn an_event_never_re_owns_an_instance_that_carries_another_users_id() {
        let config = config();
        let ada = uid("ada");
        // no user-id tag yet: write it
        assert_eq!(
            confirm_in_ec2(&ada, &tags(&[("CreatedBy", "ada")]), &config),
            OwnerDecision::Tag { value: ada.clone() }
        );
        // already ada's: nothing to write
        assert_eq!(
            confirm_in_ec2(&ada, &tags(&[("AwsUserId", &ada.to_string())]), &config),
            OwnerDecision::AlreadyTagged { value: ada.clone() }
        );
        // tim's, in any spelling of the key: refused with the reason, nothing written
        for key in ["AwsUserId", "awsuserid"] {
            let decision =
                confirm_in_ec2(&ada, &tags(&[(key, "AROAEXAMPLEROLEID1234:tim")]), &config);
            let OwnerDecision::Skip { reason } = decision else {
                panic!("{key}: {decision:?}");
            };
            assert_eq!(reason.code, ReasonCode::OwnedByAnother);
            assert_eq!(
                reason.text,
                format!("the event names AROAEXAMPLEROLEID1234:ada, but the instance already carries {key}=AROAEXAMPLEROLEID1234:tim; an event does not re-own an instance (the tag sweep decides from the instance's own tags)")
            );
        }
    }
}
