//! The users' role: its name and id (`AROA…`). From config, or resolved once per process: by
//! name (one `GetRole`), or, for IAM Identity Center, by permission set (`ListRoles` under
//! `/aws-reserved/sso.amazonaws.com/`). Identity Center re-creates the role with a new suffix and
//! id when a permission set is re-provisioned, so the tag sweep re-resolves it on every run.

use std::sync::Mutex;

use tracing::{info, warn};

use crate::config::{Config, UsersRole};
pub use crate::domain::ids::ResolvedRole;
use crate::domain::ids::{Partition, RoleId};
use crate::error::Error;
use crate::ports::RoleDirectory;

pub struct RoleResolver {
    role: UsersRole,
    /// The home region's partition: the role lives there, and its statements name it.
    partition: Partition,
    /// The id from config: never re-resolved.
    configured: Option<ResolvedRole>,
    cached: Mutex<Option<ResolvedRole>>,
}

impl RoleResolver {
    pub fn new(config: &Config) -> Self {
        let configured = match (&config.users_role, &config.session_role_id) {
            (UsersRole::Named(name), Some(id)) => Some(ResolvedRole {
                name: name.clone(),
                id: id.clone().in_partition(config.regions.partition),
            }),
            _ => None,
        };
        Self {
            role: config.users_role.clone(),
            partition: config.regions.partition,
            cached: Mutex::new(configured.clone()),
            configured,
        }
    }

    /// The role as configured.
    pub fn users_role(&self) -> &UsersRole {
        &self.role
    }

    /// The role, resolving it on first use. A failure is not cached, so the next event retries.
    pub async fn resolved<R: RoleDirectory + Sync>(&self, iam: &R) -> Result<ResolvedRole, Error> {
        if let Some(role) = self.lock().clone() {
            return Ok(role);
        }
        self.refresh(iam).await
    }

    /// The role id, resolving it on first use.
    pub async fn get<R: RoleDirectory + Sync>(&self, iam: &R) -> Result<RoleId, Error> {
        Ok(self.resolved(iam).await?.id)
    }

    /// Resolve the role again (unless its id is configured), and log when it changed.
    pub async fn refresh<R: RoleDirectory + Sync>(&self, iam: &R) -> Result<ResolvedRole, Error> {
        if let Some(role) = &self.configured {
            return Ok(role.clone());
        }
        let role = match &self.role {
            UsersRole::Named(name) => ResolvedRole {
                name: name.clone(),
                id: iam.role_id(name).await?.in_partition(self.partition),
            },
            UsersRole::PermissionSet(set) => {
                let role = iam.role_for_permission_set(set).await?;
                ResolvedRole {
                    id: role.id.in_partition(self.partition),
                    ..role
                }
            }
        };
        let previous = self.lock().replace(role.clone());
        match previous {
            Some(old) if old != role => {
                warn!(old_name = %old.name, old_id = %old.id, name = %role.name, role_id = %role.id, "the users' role changed (re-created)")
            }
            Some(_) => {}
            None => info!(name = %role.name, role_id = %role.id, "resolved the users' role"),
        }
        Ok(role)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ResolvedRole>> {
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeAws;

    #[tokio::test]
    async fn the_role_takes_the_home_regions_partition() {
        let fake = FakeAws::new().with_role("R", &RoleId::parse("AROAEXAMPLE1234").unwrap());
        for (id, expected) in [
            (Some("AROAEXAMPLE1234"), Partition::AwsUsGov),
            (None, Partition::AwsUsGov),
        ] {
            let config = Config::from_lookup(|k| match k {
                "SESSION_ROLE_NAME" => Some("R".into()),
                "SESSION_ROLE_ID" => id.map(str::to_owned),
                "AWS_REGION" => Some("us-gov-west-1".into()),
                _ => None,
            })
            .unwrap();
            let role = RoleResolver::new(&config).resolved(&fake).await.unwrap();
            assert_eq!(role.id.partition(), expected);
            assert_eq!(role.id.as_str(), "AROAEXAMPLE1234");
        }
    }
}
