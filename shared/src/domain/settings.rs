//! The choices a deployment makes that the domain decides by: where session rights come from,
//! where per-user statements live, whether changes are applied, and how the users' role is
//! named. `config` parses them; the domain never reads configuration itself.

use std::fmt;

/// Where users' rights to terminate and resume their own sessions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRights {
    /// One exact statement per user with a live instance, kept on the role by this product.
    PerUser,
    /// One static statement in the end-user policy; the product keeps no per-user state.
    Static,
}

/// Whether a change to the role's policies is made, or only planned and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Apply,
    DryRun,
}

/// Where the per-user statements live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Customer-managed policies `<prefix>shard-NN`, attached to the users' role.
    Managed,
    /// One inline role policy per user (about 40 users per role).
    Inline,
}

/// The role the users sign in through, as configured: by name (`SESSION_ROLE_NAME`), or as the
/// IAM Identity Center role of a permission set (`PERMISSION_SET_NAME`), whose name is only
/// known once it is resolved (`app::role_resolver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersRole {
    /// A SAML (or other) federated role, by name.
    Named(String),
    /// The `AWSReservedSSO_<set>_<suffix>` role of this permission set.
    PermissionSet(String),
}

impl UsersRole {
    /// The permission set, for an Identity Center role.
    pub fn permission_set(&self) -> Option<&str> {
        match self {
            UsersRole::PermissionSet(set) => Some(set),
            UsersRole::Named(_) => None,
        }
    }

    /// Whether only IAM Identity Center may change the role (IAM: `UnmodifiableEntity`).
    pub fn is_identity_center(&self) -> bool {
        matches!(self, UsersRole::PermissionSet(_))
    }
}

impl fmt::Display for UsersRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersRole::Named(name) => f.write_str(name),
            UsersRole::PermissionSet(set) => {
                write!(f, "the IAM Identity Center role of permission set {set}")
            }
        }
    }
}
