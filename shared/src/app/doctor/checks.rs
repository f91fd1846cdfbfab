//! The doctor's checks that only judge what was read: each turns facts into one verdict line
//! and its fix. No I/O here.

use std::collections::BTreeMap;

use super::{
    ActionVerdict, Actions, Check, CheckId, OwnAnswers, OwnEvaluations, RoleFacts, Subject,
};
use crate::app::managed_store::ShardInventory;
use crate::config::{Config, StoreKind};
use crate::domain::capacity::headroom_users;
use crate::domain::evaluation::{Decision, Evaluation, Unevaluable};
use crate::domain::ids::ResolvedRole;
use crate::domain::ids::{InstanceId, UserId};
use crate::domain::ownership::{is_case_variant, sweep};
use crate::domain::reason::ReasonCode;
use crate::domain::session_name::SessionName;
use crate::domain::shard_packing::SHARD_LIMIT;
use crate::domain::statements::{
    inline_document, inline_policy_name, policy_size, same_document, INLINE_BUDGET,
};
use crate::domain::trust::name_choosers;
use crate::error::Error;
use crate::ports::{ManagedNode, RolePolicyDocument, Simulated};

/// How the sweep is run now rather than on its schedule.
const SWEEP_NOW: &str = "wait for the tag sweep (TagSweepSchedule, every 15 minutes by default), or run it now: invoke the owner-tagger with events/scheduled-tag-sweep.json";

/// Check 3: the user-id tag, and what the sweep will do about it.
pub(super) fn ownership(
    tags: &BTreeMap<String, String>,
    user_id: &UserId,
    role: &ResolvedRole,
    config: &Config,
) -> Check {
    let key = &config.user_id_tag_key;
    let variants: Vec<String> = tags
        .iter()
        .filter(|(k, _)| is_case_variant(k, key) || is_case_variant(k, &config.owner_tag_key))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let tampering = (!variants.is_empty()).then(|| {
        format!(
            "; case variants of the ownership keys are present (tampering): {}. IAM reads tag keys in any case, so which value it uses is undefined; the tag sweep removes them and counts OwnershipTagTampered",
            variants.join(", ")
        )
    });
    let tampering_fix = "wait for the tag sweep to remove the variants, or have an administrator delete them now; CloudTrail's CreateTags events show who wrote them";
    let plan = sweep(tags, &role.id, config);
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
                    config.owner_tag_key
                ),
                SWEEP_NOW.to_owned(),
            ),
            (Some(write), _) => fail(
                format!(
                    "no {key} tag; {} names {}, so the tag sweep will give the instance to {}, not to {user}",
                    config.owner_tag_key,
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
                        format!("correct {} in the portal to a valid username", config.owner_tag_key),
                    ),
                    Some(reason) => (
                        reason.text.clone(),
                        format!(
                            "have the portal tag the instance {}={user}; the tag sweep then writes {key}",
                            config.owner_tag_key
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

/// Check 4: the end-user policy is on the role, and it lets the user start a session here.
pub(super) fn end_user_policy(
    config: &Config,
    documents: &[RolePolicyDocument],
    subject: &Subject,
    own: &OwnEvaluations,
) -> Check {
    let (facts, user_id) = (&subject.facts, &subject.user_id);
    let permission_set = config.users_role.permission_set();
    let (own_start, own_document) = (&own.start_instance, &own.start_document);
    let name = &config.end_user_policy_name;
    let role = &facts.role.name;
    let attached = documents.iter().any(|p| p.arn.is_some() && p.name == *name);
    if !attached {
        let fix = match permission_set {
            Some(set) => format!(
                "add the customer managed policy {name} (path /) to permission set {set}, and re-provision it to this account"
            ),
            None => format!(
                "deploy with AttachEndUserPolicy=true, or: aws iam attach-role-policy --role-name {role} --policy-arn arn:{}:iam::{}:policy/{name}",
                facts.partition.as_str(),
                facts.account
            ),
        };
        return Check::fail(
            CheckId::Policy,
            format!("{name} is not attached to {role}"),
            fix,
        );
    }
    match (own_start, own_document) {
        (Err(why), _) | (Ok(_), Err(why)) => Check::not_run(
            CheckId::Policy,
            format!("{name} is attached; the product cannot evaluate ssm:StartSession here: {why}"),
            None,
        ),
        (Ok(start), Ok(document)) => match (start.decision, document.decision) {
            (Decision::Allowed, Decision::Allowed) => Check::pass(
                CheckId::Policy,
                format!(
                    "{name} is attached; ssm:StartSession for {user_id} is allowed on the instance by {} and on {} by {}",
                    start.by.join(", "),
                    own.document,
                    document.by.join(", ")
                ),
            ),
            (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => {
                let by = if start.decision == Decision::ExplicitDeny { &start.by } else { &document.by };
                // The end-user policy's own guards deny exactly the instances that are not the
                // caller's: the ownership tags are the thing to look at, not the Deny.
                let guard = format!("{name}/Guard");
                let fix = if by.iter().all(|statement| statement.starts_with(&guard)) {
                    "see check 3: the guard denies every instance whose user-id tag is not exactly the caller's aws:userid"
                } else {
                    "remove or narrow that Deny statement"
                };
                Check::fail(
                    CheckId::Policy,
                    format!("ssm:StartSession for {user_id} is explicitly denied by {}", by.join(", ")),
                    fix,
                )
            }
            (Decision::ImplicitDeny, _) => Check::fail(
                CheckId::Policy,
                format!(
                    "{name} is attached, but no statement allows {user_id} ssm:StartSession on this instance: it allows the instances whose {} tag is exactly the caller's aws:userid",
                    config.user_id_tag_key
                ),
                "see check 3: the instance's user-id tag decides who may connect",
            ),
            (Decision::Allowed, Decision::ImplicitDeny) => Check::fail(
                CheckId::Policy,
                format!("no statement allows ssm:StartSession on the document {}", own.document),
                format!("restore {name}'s StartSessionWithAllowedDocuments statement (redeploy the template), or set the doctor's SHELL_SESSIONS, PORT_FORWARDING and SSH_SESSIONS to what the stack has"),
            ),
        },
    }
}

/// Both session actions allowed by the product's evaluation, or why it cannot say.
fn both_allowed(own: [&Result<Evaluation, Unevaluable>; 2]) -> Result<(bool, Vec<String>), String> {
    let mut by = Vec::new();
    let mut allowed = true;
    for evaluation in own {
        match evaluation {
            Ok(found) => {
                allowed &= found.decision.is_allowed();
                for statement in &found.by {
                    if !by.contains(statement) {
                        by.push(statement.clone());
                    }
                }
            }
            Err(why) => return Err(why.to_string()),
        }
    }
    Ok((allowed, by))
}

/// Check 5, static mode: one statement in the end-user policy for everybody.
pub(super) fn static_rights(own: [&Result<Evaluation, Unevaluable>; 2]) -> Check {
    match both_allowed(own) {
        Err(why) => Check::not_run(
            CheckId::Rights,
            format!("static mode; the product cannot evaluate TerminateSession/ResumeSession: {why}"),
            None,
        ),
        Ok((true, by)) => Check::pass(
            CheckId::Rights,
            format!(
                "static mode: ending and resuming their own sessions is allowed by {}",
                by.join(", ")
            ),
        ),
        Ok((false, _)) => Check::fail(
            CheckId::Rights,
            "static mode, but no statement lets the user terminate or resume their own sessions",
            "deploy the template with SessionRights=static: the end-user policy then carries EndOwnSessions",
        ),
    }
}

/// Check 5, per-user mode: the user's own statement, where it is, and the room left.
pub(super) fn per_user_rights(
    config: &Config,
    facts: &RoleFacts,
    user: &SessionName,
    documents: &[RolePolicyDocument],
    inventory: &ShardInventory,
    own: [&Result<Evaluation, Unevaluable>; 2],
) -> Check {
    let role = &facts.role;
    let (capacity, full) = capacity(config, facts, documents, inventory);
    let evaluated = both_allowed(own);
    let shard = inventory
        .shards
        .iter()
        .find(|entry| entry.shard.users.contains(user));
    let inline_name = inline_policy_name(&config.policy_name_prefix, user);
    let inline = documents
        .iter()
        .find(|p| p.arn.is_none() && p.name == inline_name);
    let reconcile = "the hourly reconcile rewrites it (or invoke the session-policy function with events/scheduled-reconcile.json)";
    let found = match (shard, inline) {
        (Some(entry), _) => {
            let (shard, policy) = (&entry.shard, &entry.policy);
            if !entry.attached {
                return Check::fail(
                    CheckId::Rights,
                    format!("{user}'s statement is in {}, which is not attached to {}; {capacity}", policy.name, role.name),
                    format!(
                        "the hourly reconcile re-attaches it, or: aws iam attach-role-policy --role-name {} --policy-arn {}",
                        role.name, policy.arn
                    ),
                );
            }
            if !shard.clean {
                return Check::fail(
                    CheckId::Rights,
                    format!(
                        "{} holds {user}'s statement but was edited by hand; {capacity}",
                        policy.name
                    ),
                    reconcile,
                );
            }
            format!("{user}'s statement is in {} (attached, exact)", policy.name)
        }
        (None, Some(policy)) => {
            if !same_document(&policy.document, &inline_document(&role.id, user)) {
                return Check::fail(
                    CheckId::Rights,
                    format!(
                        "the inline policy {} differs from {user}'s statement; {capacity}",
                        policy.name
                    ),
                    reconcile,
                );
            }
            format!(
                "{user}'s statement is the inline policy {} (exact)",
                policy.name
            )
        }
        (None, None) => {
            if let Ok((true, by)) = &evaluated {
                return Check::pass(
                    CheckId::Rights,
                    format!(
                        "no per-user statement for {user}, but {} already allows ending and resuming their own sessions; {capacity}",
                        by.join(", ")
                    ),
                );
            }
            let fix = if full {
                "the store is full: raise MAX_POLICY_SHARDS and ROLE_MANAGED_POLICY_LIMIT (quota: 25 managed policies per role), or use SESSION_RIGHTS=static".to_owned()
            } else {
                "per-user rights follow ownership: once the instance carries the user's tag (check 3) the grant follows within seconds, and the hourly reconcile catches up on any it missed".to_owned()
            };
            return Check::fail(
                CheckId::Rights,
                format!("no statement for {user} on {}: per-user rights exist only while the user owns a live instance; {capacity}", role.name),
                fix,
            );
        }
    };
    match evaluated {
        Ok((true, _)) => Check::pass(CheckId::Rights, format!("{found}; {capacity}")),
        Ok((false, _)) => Check::fail(
            CheckId::Rights,
            format!("{found}, yet ending or resuming their own session is denied; {capacity}"),
            "look for a Deny on ssm:TerminateSession or ssm:ResumeSession among the role's policies",
        ),
        Err(why) => Check::not_run(
            CheckId::Rights,
            format!("{found}; the product cannot evaluate it: {why}; {capacity}"),
            None,
        ),
    }
}

/// The store's room, in words, and whether it is full.
fn capacity(
    config: &Config,
    facts: &RoleFacts,
    documents: &[RolePolicyDocument],
    inventory: &ShardInventory,
) -> (String, bool) {
    match config.policy_store {
        StoreKind::Managed => {
            let in_use: Vec<_> = inventory
                .shards
                .iter()
                .filter(|entry| !entry.shard.users.is_empty())
                .collect();
            let users: usize = in_use.iter().map(|entry| entry.shard.users.len()).sum();
            let used: usize = in_use.iter().map(|entry| entry.shard.chars).sum();
            let available = inventory.max_shards * SHARD_LIMIT;
            let headroom = headroom_users(StoreKind::Managed, &facts.role.id, used, available);
            (
                format!(
                    "capacity: {users} users in {} of up to {} shards, room for about {headroom} more",
                    in_use.len(),
                    inventory.max_shards
                ),
                headroom == 0,
            )
        }
        StoreKind::Inline => {
            let used: usize = documents
                .iter()
                .filter(|p| p.arn.is_none())
                .map(|p| policy_size(&p.document))
                .sum();
            let headroom = headroom_users(StoreKind::Inline, &facts.role.id, used, INLINE_BUDGET);
            (
                format!(
                    "capacity: {used} of {INLINE_BUDGET} inline characters used, room for about {headroom} more users"
                ),
                headroom == 0,
            )
        }
    }
}

/// Check 6: Session Manager can reach the node.
pub(super) fn reachability(
    found: Result<Option<ManagedNode>, Error>,
    instance: &InstanceId,
) -> Check {
    let connect = "make sure the instance has a profile with AmazonSSMManagedInstanceCore (or Default Host Management Configuration), the SSM agent runs, and it reaches the ssm, ssmmessages and ec2messages endpoints (VPC endpoints or a NAT)";
    match found {
        Ok(Some(node)) => {
            let about = [
                node.agent_version.as_ref().map(|v| format!("agent {v}")),
                node.platform.clone(),
                node.last_ping.as_ref().map(|t| format!("last ping {t}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            if node.ping_status == "Online" {
                Check::pass(
                    CheckId::Reachability,
                    format!("{instance} is a managed node, Online ({about})"),
                )
            } else {
                Check::fail(
                    CheckId::Reachability,
                    format!(
                        "{instance} is a managed node, but {} ({about})",
                        node.ping_status
                    ),
                    connect,
                )
            }
        }
        Ok(None) => Check::fail(
            CheckId::Reachability,
            format!(
                "{instance} is not a managed node in this region: Session Manager cannot reach it"
            ),
            connect,
        ),
        Err(err) => Check::not_run(
            CheckId::Reachability,
            format!("not checked: {}", failure(&err)),
            is_access_denied(&err)
                .then(|| "allow ssm:DescribeInstanceInformation to whoever runs the doctor".into()),
        ),
    }
}

/// Check 7: IAM's own answers (StartSession on the instance, on the document, TerminateSession,
/// ResumeSession, in that order), compared with the product's. IAM's answer is the verdict.
pub(super) fn confirmation(
    role_arn: &str,
    unavailable: Option<Error>,
    answers: &[Simulated],
    own: &OwnAnswers,
) -> (Check, Actions) {
    let own_actions = Actions {
        start_session: ActionVerdict::of(own.start),
        terminate_session: ActionVerdict::of(own.terminate),
        resume_session: ActionVerdict::of(own.resume),
    };
    let decisions: Vec<Decision> = answers.iter().map(|a| a.decision).collect();
    let [instance, document, terminate, resume] = decisions.as_slice() else {
        let (why, denied) = match &unavailable {
            Some(err) => (failure(err), is_access_denied(err)),
            None => (
                format!("{} answers where 4 were asked", answers.len()),
                false,
            ),
        };
        return (
            Check::not_run(
                CheckId::Simulator,
                format!("IAM's policy simulator did not answer ({why}); the verdicts are the product's own evaluation"),
                denied.then(|| format!("for IAM's own answer, allow iam:SimulatePrincipalPolicy on {role_arn} to whoever runs the doctor")),
            ),
            own_actions,
        );
    };
    let start = super::start_decision(*instance, *document);
    let iam = Actions {
        start_session: ActionVerdict::of(Some(start)),
        terminate_session: ActionVerdict::of(Some(*terminate)),
        resume_session: ActionVerdict::of(Some(*resume)),
    };
    let said = |a: &Actions| {
        format!(
            "StartSession {}, TerminateSession {}, ResumeSession {}",
            a.start_session.as_str(),
            a.terminate_session.as_str(),
            a.resume_session.as_str()
        )
    };
    let disagree = [
        (own_actions.start_session, iam.start_session),
        (own_actions.terminate_session, iam.terminate_session),
        (own_actions.resume_session, iam.resume_session),
    ]
    .iter()
    .any(|(own, iam)| *own != ActionVerdict::Unknown && own != iam);
    let missing: Vec<&str> = answers
        .iter()
        .flat_map(|a| a.missing_context.iter().map(String::as_str))
        .collect();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(" (context IAM missed: {})", missing.join(", "))
    };
    let check = if disagree {
        let matched: Vec<&str> = answers
            .iter()
            .flat_map(|a| a.matched.iter().map(String::as_str))
            .collect();
        Check::fail(
            CheckId::Simulator,
            format!(
                "IAM's policy simulator says {}, where the product's evaluation says {}; IAM's answer is the verdict{missing}",
                said(&iam),
                said(&own_actions)
            ),
            format!(
                "IAM sees what the product does not model (a permissions boundary, an organisation SCP); the statements IAM matched: {}",
                if matched.is_empty() { "none".to_owned() } else { matched.join(", ") }
            ),
        )
    } else {
        Check::pass(
            CheckId::Simulator,
            format!("IAM's policy simulator agrees: {}{missing}", said(&iam)),
        )
    };
    (check, iam)
}

/// Check 8: nobody can assume the users' role with a session name of their choosing. With
/// `sts:AssumeRole` a caller picks `--role-session-name alice` and IAM calls them
/// `<role-id>:alice`: alice's instances and sessions are then theirs.
pub(super) fn trust(facts: &RoleFacts) -> Check {
    let role = &facts.role.name;
    let read = facts
        .trust_policy
        .as_deref()
        .ok_or_else(|| "IAM's GetRole answer carried no trust policy".to_owned())
        .and_then(name_choosers);
    match read {
        Err(why) => Check::fail(
            CheckId::Trust,
            format!("{role}'s trust policy cannot be read: {why}"),
            format!("read it with: aws iam get-role --role-name {role}"),
        ),
        Ok(choosers) if choosers.is_empty() => Check::pass(
            CheckId::Trust,
            format!("only the identity provider or a service names the sessions of {role}: no caller chooses their aws:userid"),
        ),
        Ok(choosers) => Check::fail(
            CheckId::Trust,
            format!(
                "{role}'s trust policy lets callers choose their session name, and so their aws:userid and whose instances they reach: {}",
                choosers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ),
            choosers.iter().map(|c| c.fix()).collect::<Vec<_>>().join("; "),
        ),
    }
}

/// Why a read failed, in words: an endpoint that does not implement the API (moto has neither
/// `DescribeInstanceInformation` nor `SimulatePrincipalPolicy`) answers with something that is
/// not an AWS answer (an unparseable body, or a bare HTTP status with no error code), and that
/// is said plainly rather than as a parser error.
pub(super) fn failure(err: &Error) -> String {
    match err {
        Error::Aws {
            operation,
            code,
            message,
            ..
        } if code == "ResponseError" || (code.starts_with("HTTP ") && message.is_empty()) => {
            let answer = if code == "ResponseError" {
                "an answer that is not AWS's"
            } else {
                code.as_str()
            };
            format!("{operation} is not available on this endpoint, which gave {answer}")
        }
        other => other.to_string(),
    }
}

/// Whether AWS refused the caller (rather than failing).
fn is_access_denied(err: &Error) -> bool {
    matches!(
        err.aws_code(),
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
    )
}
