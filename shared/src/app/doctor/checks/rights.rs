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

/// What check 5 found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RightsFinding {
    /// The caller's session name cannot be matched by a tag condition.
    Untaggable { text: String },
    /// Per-user mode asked of an Identity Center role, which IAM will not let anyone write.
    PerUserOnPermissionSet,
    /// Static mode: one statement for everybody.
    Static { evaluated: Evaluated },
    /// Per-user mode: the user's own statement, and the room left.
    PerUser {
        user: SessionName,
        role: String,
        statement: Statement,
        evaluated: Evaluated,
        room: StoreRoom,
    },
}

/// The product's own evaluation of ending and resuming one's own session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Evaluated {
    /// Both allowed, by these statements.
    Allowed {
        by: Vec<String>,
    },
    Denied,
    Unevaluable(String),
}

/// Where the user's per-user statement is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Statement {
    /// In a shard that is not attached to the role.
    Detached {
        policy: String,
        arn: String,
    },
    /// In a shard someone edited by hand.
    Edited {
        policy: String,
    },
    /// In an attached, exact shard.
    InShard {
        policy: String,
    },
    /// An inline policy that is not the user's statement.
    InlineDiffers {
        policy: String,
    },
    InlineExact {
        policy: String,
    },
    Nowhere,
}

/// The room left in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreRoom {
    Managed {
        users: usize,
        shards: usize,
        max_shards: usize,
        headroom: usize,
    },
    Inline {
        used: usize,
        headroom: usize,
    },
}

impl StoreRoom {
    fn full(self) -> bool {
        matches!(
            self,
            Self::Managed { headroom: 0, .. } | Self::Inline { headroom: 0, .. }
        )
    }
}

impl std::fmt::Display for StoreRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Managed {
                users,
                shards,
                max_shards,
                headroom,
            } => write!(
                f,
                "capacity: {users} users in {shards} of up to {max_shards} shards, room for about {headroom} more"
            ),
            Self::Inline { used, headroom } => write!(
                f,
                "capacity: {used} of {INLINE_BUDGET} inline characters used, room for about {headroom} more users"
            ),
        }
    }
}

/// Check 5: where the user's rights to end and resume their own sessions come from.
pub(crate) async fn check_rights<I: DoctorIam>(
    config: &Config,
    iam: &I,
    subject: &Subject,
    documents: &[RolePolicyDocument],
    own: &OwnEvaluations,
) -> Result<RightsFinding, Error> {
    if let Some(text) = session_iam::untaggable_reason(&subject.caller()) {
        return Ok(RightsFinding::Untaggable { text });
    }
    let evaluated = evaluated([&own.terminate, &own.resume]);
    match (config.rights.session_rights, &config.users_role) {
        (SessionRights::Static, _) => Ok(RightsFinding::Static { evaluated }),
        (SessionRights::PerUser, UsersRole::PermissionSet(_)) => {
            Ok(RightsFinding::PerUserOnPermissionSet)
        }
        (SessionRights::PerUser, UsersRole::Named(_)) => {
            let store = ManagedStore::from_config(iam.clone(), config);
            let inventory = store
                .inventory(&subject.facts.role, Attachments::Fresh)
                .await?;
            Ok(RightsFinding::PerUser {
                user: subject.name.clone(),
                role: subject.facts.role.name.clone(),
                statement: statement(config, &subject.facts, &subject.name, documents, &inventory),
                evaluated,
                room: room(config, &subject.facts, documents, &inventory),
            })
        }
    }
}

/// Both session actions allowed by the product's evaluation, or why it cannot say.
pub(crate) fn evaluated(own: [&Result<Evaluation, Unevaluable>; 2]) -> Evaluated {
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
            Err(why) => return Evaluated::Unevaluable(why.to_string()),
        }
    }
    if allowed {
        Evaluated::Allowed { by }
    } else {
        Evaluated::Denied
    }
}

/// Where the user's per-user statement is, and whether it is as the product wrote it.
fn statement(
    config: &Config,
    facts: &RoleFacts,
    user: &SessionName,
    documents: &[RolePolicyDocument],
    inventory: &ShardInventory,
) -> Statement {
    if let Some(entry) = inventory
        .shards
        .iter()
        .find(|entry| entry.shard.users.contains(user))
    {
        let policy = entry.policy.name.clone();
        return if !entry.attached {
            Statement::Detached {
                policy,
                arn: entry.policy.arn.clone(),
            }
        } else if !entry.shard.clean {
            Statement::Edited { policy }
        } else {
            Statement::InShard { policy }
        };
    }
    let inline_name = inline_policy_name(&config.rights.policy_name_prefix, user);
    match documents
        .iter()
        .find(|p| p.arn.is_none() && p.name == inline_name)
    {
        Some(policy) if same_document(&policy.document, &inline_document(&facts.role.id, user)) => {
            Statement::InlineExact {
                policy: policy.name.clone(),
            }
        }
        Some(policy) => Statement::InlineDiffers {
            policy: policy.name.clone(),
        },
        None => Statement::Nowhere,
    }
}

/// The store's room.
fn room(
    config: &Config,
    facts: &RoleFacts,
    documents: &[RolePolicyDocument],
    inventory: &ShardInventory,
) -> StoreRoom {
    match config.rights.policy_store {
        StoreKind::Managed => {
            let in_use: Vec<_> = inventory
                .shards
                .iter()
                .filter(|entry| !entry.shard.users.is_empty())
                .collect();
            let used: usize = in_use.iter().map(|entry| entry.shard.chars).sum();
            let available = inventory.max_shards * SHARD_LIMIT;
            StoreRoom::Managed {
                users: in_use.iter().map(|entry| entry.shard.users.len()).sum(),
                shards: in_use.len(),
                max_shards: inventory.max_shards,
                headroom: headroom_users(StoreKind::Managed, &facts.role.id, used, available),
            }
        }
        StoreKind::Inline => {
            let used: usize = documents
                .iter()
                .filter(|p| p.arn.is_none())
                .map(|p| policy_size(&p.document))
                .sum();
            StoreRoom::Inline {
                used,
                headroom: headroom_users(StoreKind::Inline, &facts.role.id, used, INLINE_BUDGET),
            }
        }
    }
}

/// The wording of check 5.
impl From<RightsFinding> for Check {
    fn from(finding: RightsFinding) -> Self {
        match finding {
            RightsFinding::Untaggable { text } => Check::fail(
                CheckId::Rights,
                text,
                "use a role-session name of letters, digits and _ . = + - @ only (no comma): the identity provider sets it",
            ),
            RightsFinding::PerUserOnPermissionSet => Check::fail(
                CheckId::Rights,
                "per-user mode cannot write to an Identity Center role (IAM: UnmodifiableEntity)",
                "use static session rights: SESSION_RIGHTS=static (template SessionRights=static)",
            ),
            RightsFinding::Static { evaluated } => static_wording(evaluated),
            RightsFinding::PerUser {
                user,
                role,
                statement,
                evaluated,
                room,
            } => per_user_wording(&user, &role, statement, evaluated, room),
        }
    }
}

fn static_wording(evaluated: Evaluated) -> Check {
    match evaluated {
        Evaluated::Unevaluable(why) => Check::not_run(
            CheckId::Rights,
            format!("static mode; the product cannot evaluate TerminateSession/ResumeSession: {why}"),
            None,
        ),
        Evaluated::Allowed { by } => Check::pass(
            CheckId::Rights,
            format!(
                "static mode: ending and resuming their own sessions is allowed by {}",
                by.join(", ")
            ),
        ),
        Evaluated::Denied => Check::fail(
            CheckId::Rights,
            "static mode, but no statement lets the user terminate or resume their own sessions",
            "deploy the template with SessionRights=static: the end-user policy then carries EndOwnSessions",
        ),
    }
}

fn per_user_wording(
    user: &SessionName,
    role: &str,
    statement: Statement,
    evaluated: Evaluated,
    room: StoreRoom,
) -> Check {
    let reconcile = "the hourly reconcile rewrites it (or invoke the session-policy function with events/scheduled-reconcile.json)";
    let found = match statement {
        Statement::Detached { policy, arn } => {
            return Check::fail(
                CheckId::Rights,
                format!("{user}'s statement is in {policy}, which is not attached to {role}; {room}"),
                format!(
                    "the hourly reconcile re-attaches it, or: aws iam attach-role-policy --role-name {role} --policy-arn {arn}"
                ),
            )
        }
        Statement::Edited { policy } => {
            return Check::fail(
                CheckId::Rights,
                format!("{policy} holds {user}'s statement but was edited by hand; {room}"),
                reconcile,
            )
        }
        Statement::InlineDiffers { policy } => {
            return Check::fail(
                CheckId::Rights,
                format!("the inline policy {policy} differs from {user}'s statement; {room}"),
                reconcile,
            )
        }
        Statement::InShard { policy } => {
            format!("{user}'s statement is in {policy} (attached, exact)")
        }
        Statement::InlineExact { policy } => {
            format!("{user}'s statement is the inline policy {policy} (exact)")
        }
        Statement::Nowhere => return no_statement(user, role, evaluated, room),
    };
    match evaluated {
        Evaluated::Allowed { .. } => Check::pass(CheckId::Rights, format!("{found}; {room}")),
        Evaluated::Denied => Check::fail(
            CheckId::Rights,
            format!("{found}, yet ending or resuming their own session is denied; {room}"),
            "look for a Deny on ssm:TerminateSession or ssm:ResumeSession among the role's policies",
        ),
        Evaluated::Unevaluable(why) => Check::not_run(
            CheckId::Rights,
            format!("{found}; the product cannot evaluate it: {why}; {room}"),
            None,
        ),
    }
}

/// No per-user statement: fine if something else already allows it, else why not and the fix.
fn no_statement(user: &SessionName, role: &str, evaluated: Evaluated, room: StoreRoom) -> Check {
    if let Evaluated::Allowed { by } = evaluated {
        return Check::pass(
            CheckId::Rights,
            format!(
                "no per-user statement for {user}, but {} already allows ending and resuming their own sessions; {room}",
                by.join(", ")
            ),
        );
    }
    let fix = if room.full() {
        "the store is full: raise MAX_POLICY_SHARDS and ROLE_MANAGED_POLICY_LIMIT (quota: 25 managed policies per role), or use SESSION_RIGHTS=static"
    } else {
        "per-user rights follow ownership: once the instance carries the user's tag (check 3) the grant follows within seconds, and the hourly reconcile catches up on any it missed"
    };
    Check::fail(
        CheckId::Rights,
        format!("no statement for {user} on {role}: per-user rights exist only while the user owns a live instance; {room}"),
        fix,
    )
}
