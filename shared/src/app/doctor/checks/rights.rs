//! Check 5: the user's rights to end and resume their own sessions (per-user or static).

use crate::app::doctor::context::{OwnEvaluations, RoleFacts, Subject};
use crate::app::doctor::report::{Check, CheckId};
use crate::app::managed_store::{Attachments, ManagedStore, ShardInventory};
use crate::config::{Config, SessionRights, StoreKind, UsersRole};
use crate::domain::capacity::headroom_users;
use crate::domain::evaluation::{Evaluation, Unevaluable};
use crate::domain::session_iam::{self};
use crate::domain::session_name::SessionName;
use crate::domain::shard_packing::SHARD_LIMIT;
use crate::domain::statements::{
    inline_document, inline_policy_name, policy_size, same_document, INLINE_BUDGET,
};
use crate::error::Error;
use crate::ports::DoctorIam;
use crate::ports::RolePolicyDocument;

/// Check 5: where the user's rights to end and resume their own sessions come from.
pub(crate) async fn check_rights<I: DoctorIam>(
    config: &Config,
    iam: &I,
    subject: &Subject,
    documents: &[RolePolicyDocument],
    own: &OwnEvaluations,
) -> Result<Check, Error> {
    if let Some(text) = session_iam::untaggable_reason(&subject.caller()) {
        return Ok(Check::fail(
            CheckId::Rights,
            text,
            "use a role-session name of letters, digits and _ . = + - @ only (no comma): the identity provider sets it",
        ));
    }
    let own = [&own.terminate, &own.resume];
    match (config.rights.session_rights, &config.users_role) {
        (SessionRights::Static, _) => Ok(static_rights(own)),
        (SessionRights::PerUser, UsersRole::PermissionSet(_)) => Ok(Check::fail(
            CheckId::Rights,
            "per-user mode cannot write to an Identity Center role (IAM: UnmodifiableEntity)",
            "use static session rights: SESSION_RIGHTS=static (template SessionRights=static)",
        )),
        (SessionRights::PerUser, UsersRole::Named(_)) => {
            let store = ManagedStore::from_config(iam.clone(), config);
            let inventory = store
                .inventory(&subject.facts.role, Attachments::Fresh)
                .await?;
            Ok(per_user_rights(
                config,
                &subject.facts,
                &subject.name,
                documents,
                &inventory,
                own,
            ))
        }
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
pub(crate) fn static_rights(own: [&Result<Evaluation, Unevaluable>; 2]) -> Check {
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
#[expect(
    clippy::too_many_lines,
    reason = "judges per-user rights (check 5) in both stores, every wording in place; its own finding type, tested by value, is left to do"
)]
pub(crate) fn per_user_rights(
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
    let inline_name = inline_policy_name(&config.rights.policy_name_prefix, user);
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
    match config.rights.policy_store {
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
